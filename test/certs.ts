// Certificates for the TLS tests, generated when the tests run (no PEM is committed, so
// none can expire or be mistaken for a real key): a CA and a server certificate it signed,
// an unrelated CA and a self-signed server (what a client must reject, or pin), and for
// mutual TLS a client CA, a client it signed and a self-signed stranger. All ECDSA P-256,
// generated once per test process (a few tens of milliseconds in all).
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

export interface Pem {
  cert: string;
  key: string;
}

export interface ServerPem extends Pem {
  /** SHA-256, `AB:CD:...`, as --tls-fingerprint takes it. */
  fingerprint: string;
}

export interface TestCerts {
  /** Signs `server`. */
  ca: Pem;
  /** For localhost, 127.0.0.1 and ::1; serverAuth; signed by `ca`. */
  server: ServerPem;
  /** A CA that signed nothing here: `server` does not verify against it. */
  otherCa: Pem;
  /** Self-signed, for the same names as `server`; verifies only against itself. */
  selfSignedServer: ServerPem;
  /** Signs `client`. */
  clientCa: Pem;
  /** clientAuth; signed by `clientCa`. */
  client: Pem;
  /** clientAuth; self-signed, so `clientCa` does not vouch for it. */
  strangerClient: Pem;
}

type Extensions = NonNullable<NonNullable<Parameters<typeof generate>[1]>['extensions']>;

const DAY_MS = 86_400_000;

const SERVER_NAMES: Extensions = [
  {
    name: 'subjectAltName',
    altNames: [
      { type: 2, value: 'localhost' },
      { type: 7, ip: '127.0.0.1' },
      { type: 7, ip: '::1' },
    ],
  },
];

async function make(commonName: string, extensions: Extensions, ca?: Pem): Promise<Pem> {
  const now = Date.now();
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - DAY_MS),
    notAfterDate: new Date(now + 30 * DAY_MS),
    extensions,
    ...(ca === undefined ? {} : { ca }),
  });
  // selfsigned ends its PEMs without a newline; concatenated bundles need one.
  return { cert: `${pems.cert.trimEnd()}\n`, key: `${pems.private.trimEnd()}\n` };
}

const authority = (commonName: string): Promise<Pem> =>
  make(commonName, [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
  ]);

const leaf = (usage: 'serverAuth' | 'clientAuth', names: Extensions = []): Extensions => [
  { name: 'basicConstraints', cA: false },
  { name: 'keyUsage', digitalSignature: true },
  { name: 'extKeyUsage', [usage]: true },
  ...names,
];

const withFingerprint = (pem: Pem): ServerPem => ({
  ...pem,
  fingerprint: new X509Certificate(pem.cert).fingerprint256,
});

async function generateAll(): Promise<TestCerts> {
  const [ca, otherCa, clientCa, selfSignedServer, strangerClient] = await Promise.all([
    authority('burrow test CA'),
    authority('burrow other test CA'),
    authority('burrow test client CA'),
    make('localhost', leaf('serverAuth', SERVER_NAMES)),
    make('burrow stranger client', leaf('clientAuth')),
  ]);
  const [server, client] = await Promise.all([
    make('localhost', leaf('serverAuth', SERVER_NAMES), ca),
    make('burrow test client', leaf('clientAuth'), clientCa),
  ]);
  return {
    ca,
    server: withFingerprint(server),
    otherCa,
    selfSignedServer: withFingerprint(selfSignedServer),
    clientCa,
    client,
    strangerClient,
  };
}

let pending: Promise<TestCerts> | undefined;

/** The test certificates, generated on first use and shared by every later call. */
export function testCerts(): Promise<TestCerts> {
  pending ??= generateAll();
  return pending;
}
