// Self-signed server certificates for exactly the names a test gives (test/certs.ts has
// only localhost, 127.0.0.1 and ::1), optionally outside their validity: for the host name
// check and the date checks of the client. ECDSA P-256, generated when the tests run.
import net from 'node:net';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import type { ServerPem } from './certs.ts';

const DAY_MS = 86_400_000;

export interface NamedCertOptions {
  /** The common name; 'burrow test relay' unless given. */
  commonName?: string;
  /** Valid from this many days from now (negative: in the past); -1 unless given. */
  fromDays?: number;
  /** Valid until this many days from now; 30 unless given. */
  toDays?: number;
}

/** A self-signed serverAuth certificate whose subject alternative names are `names` (DNS
 * names and IP addresses as their own types; none at all for an empty list). */
export async function selfSignedFor(names: string[], options: NamedCertOptions = {}): Promise<ServerPem> {
  const now = Date.now();
  const altNames = names.map((name) =>
    net.isIP(name) !== 0 ? { type: 7 as const, ip: name } : { type: 2 as const, value: name },
  );
  const pems = await generate([{ name: 'commonName', value: options.commonName ?? 'burrow test relay' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now + (options.fromDays ?? -1) * DAY_MS),
    notAfterDate: new Date(now + (options.toDays ?? 30) * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true },
      { name: 'extKeyUsage', serverAuth: true },
      ...(altNames.length > 0 ? [{ name: 'subjectAltName' as const, altNames }] : []),
    ],
  });
  const cert = `${pems.cert.trimEnd()}\n`;
  return { cert, key: `${pems.private.trimEnd()}\n`, fingerprint: new X509Certificate(cert).fingerprint256 };
}
