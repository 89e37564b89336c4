// TLS as the client speaks it: which certificates to trust (system CAs, a CA file, or a
// pinned fingerprint), our own certificate for mutual TLS, and TLS failures told as what
// the user should do about them.
import tls from 'node:tls';
import { BurrowError, systemCode } from '../shared/errors.ts';
import { normalizeFingerprint } from '../shared/fingerprint.ts';
import { certificateNames, type CertificateSubject } from '../shared/certificate-names.ts';

export interface ClientTlsOptions {
  /** Trust this CA (PEM) instead of the system's: a private CA, or the server's own
   * self-signed certificate. */
  ca?: string | Buffer;
  /** Pin the server's certificate: accept it if and only if its SHA-256 fingerprint is
   * this (`AB:CD:...` or 64 hex digits), like an SSH host key. The CA chain and host name
   * are then not checked, unless `ca` is given too. */
  fingerprint?: string;
  /** Mutual TLS: our certificate (PEM) and its key. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** What dial() needs for every TLS connection to the server. */
export interface ClientTls {
  connect: tls.ConnectionOptions;
  /** The canonical fingerprint to insist on, if pinned. */
  pin: string | undefined;
}

/** Resolves the options once, for the control and every data connection. */
export function clientTls(options: true | ClientTlsOptions, host: string): ClientTls {
  const { ca, fingerprint, cert, key } = options === true ? {} : options;
  const pin = fingerprint === undefined ? undefined : normalizeFingerprint(fingerprint);
  if (fingerprint !== undefined && pin === undefined) {
    throw new BurrowError(
      'tls',
      `"${fingerprint}" is not a SHA-256 fingerprint (64 hex digits, AB:CD:... as the server prints it)`,
    );
  }
  const connect: tls.ConnectionOptions = {
    minVersion: 'TLSv1.2',
    ca,
    cert,
    key,
    // A pin alone replaces the CA and host name checks; with a CA file, both must hold.
    rejectUnauthorized: pin === undefined || ca !== undefined,
  };
  // SNI carries host names only; an address is checked against the certificate's IP SANs.
  if (!/^[0-9.]+$|:/.test(host)) connect.servername = host;
  // The name checked is the host we dialed. Node would otherwise check an address against
  // 'localhost' (it takes the name from servername or host, and we hand it a socket).
  connect.checkServerIdentity = (_name, cert) => tls.checkServerIdentity(host, cert);
  return { connect, pin };
}

/** The pin check, once the handshake is done; undefined if the certificate is accepted. */
export function checkPin(socket: tls.TLSSocket, pin: string | undefined, where: string): BurrowError | undefined {
  if (pin === undefined) return undefined;
  const actual = socket.getPeerCertificate().fingerprint256;
  if (actual === pin) return undefined;
  return new BurrowError(
    'tls',
    `the certificate of ${where} has SHA-256 fingerprint ${actual || '(none)'}, not the pinned ${pin}: ` +
      'someone may be intercepting the connection, or the server has a new certificate',
  );
}

/** Certificate chain checks that failed on our side: nothing we trust vouches for it. */
const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** A certificate that does not name the host we connected to (ERR_TLS_CERT_ALTNAME_INVALID
 * carries the host and the peer's certificate): which names it has, and what works. A CA
 * file cannot help here, so it is not suggested. */
function nameMismatch(error: unknown): string {
  const { host, cert } = (typeof error === 'object' && error !== null ? error : {}) as {
    host?: string;
    cert?: CertificateSubject;
  };
  const names = certificateNames(cert ?? {});
  const ways = [
    ...(names.length > 0 ? ['connect to one of those names (`server`)'] : []),
    `restart the server with \`names\` ${host ?? '<host>'} (or give it a certificate that names ${host ?? 'that host'})`,
    'pin the certificate with `tls.fingerprint` (a pin alone does not check names)',
  ];
  const it = host === undefined ? 'the host we connected to' : host;
  const has = names.length > 0 ? `it names ${names.join(', ')}` : 'it names no host at all';
  const last = ways.pop() ?? '';
  return `the server's certificate does not name ${it} (${has}): ${ways.join(', ')}${ways.length > 1 ? ',' : ''} or ${last}`;
}

/** A TLS failure as a `tls` BurrowError that says what to do, or undefined if `error` is
 * not one (a reset or a timeout is a network matter, worth retrying). */
export function tlsFailure(error: unknown, where: string): BurrowError | undefined {
  const code = systemCode(error) ?? '';
  const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
  const advice = tlsAdvice(code, reason, error);
  return advice === undefined ? undefined : new BurrowError('tls', `${where}: ${advice}`, { cause: error });
}

function tlsAdvice(code: string, reason: string | undefined, error: unknown): string | undefined {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return nameMismatch(error);
  if (UNTRUSTED_CODES.has(code))
    return `cannot verify the server's certificate (${reason}): trust its CA with \`tls.ca\`, or pin it with \`tls.fingerprint\``;
  // Dates: a CA file is no remedy; a new certificate (or a right clock) is.
  if (code === 'CERT_HAS_EXPIRED')
    return `the server's certificate has expired (${reason}): the server needs a new one, or this machine's clock is wrong`;
  if (code === 'CERT_NOT_YET_VALID')
    return `the server's certificate is not valid yet (${reason}): check the clocks of this machine and the server`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER')
    return 'the server does not speak TLS here (it answered in plain text): drop `tls`, or check the port';
  // A burrow server answers a missing certificate with ERR bad-certificate; a TLS proxy in
  // front of it may send this alert instead.
  if (code.includes('CERTIFICATE_REQUIRED'))
    return 'the server requires a client certificate: pass `tls.cert` and `tls.key`';
  const rejected =
    /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|DECRYPT_ERROR|CERTIFICATE_EXPIRED|ACCESS_DENIED)/;
  if (rejected.test(code)) return `the server rejected our client certificate (${reason})`;
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS failed: ${reason}`;
  return undefined;
}
