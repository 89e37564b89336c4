// SHA-256 certificate fingerprints. A client can pin the server's certificate by its
// fingerprint (`--tls-fingerprint`), like an SSH host key: that works with the self-signed
// certificate `burrow server --tls` prints at startup, with no CA to distribute.
import { X509Certificate } from 'node:crypto';

/** The SHA-256 fingerprint of the (first) certificate in `certPem`, as `AB:CD:...`
 * (32 uppercase hex pairs, the form `X509Certificate#fingerprint256` and OpenSSL print). */
export function fingerprintOf(certPem: string | Buffer): string {
  return new X509Certificate(certPem).fingerprint256;
}

const PAIRS = /^[0-9a-f]{2}(?::[0-9a-f]{2}){31}$/i;
const DIGITS = /^[0-9a-f]{64}$/i;

/** `text` as a canonical fingerprint (`AB:CD:...`), or undefined if it is not a SHA-256
 * fingerprint. Accepts colon-separated pairs or 64 bare hex digits, in any case, with an
 * optional `sha256:` prefix and surrounding whitespace (what users paste). */
export function normalizeFingerprint(text: string): string | undefined {
  const value = text.trim().replace(/^sha256:\s*/i, '');
  if (!PAIRS.test(value) && !DIGITS.test(value)) return undefined;
  const hex = value.replaceAll(':', '').toUpperCase();
  return hex.match(/../g)?.join(':');
}
