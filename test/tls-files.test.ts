// The TLS building blocks that touch no socket of burrow's own: fingerprint parsing
// (shared/fingerprint.ts), the certificate `burrow server --tls` creates once and reuses
// (server/self-signed-cert.ts), and the generated test certificates (test/certs.ts).
// Every test works in its own temporary directory and removes it.
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { certificateNames, canonicalIp } from '../shared/certificate-names.ts';
import {
  loadOrCreateCertificate,
  defaultTlsDir,
  DEFAULT_TLS_NAMES,
  tlsName,
  type StoredCertificate,
} from '../server/self-signed-cert.ts';
import { BurrowError } from '../shared/errors.ts';
import { fingerprintOf, normalizeFingerprint } from '../shared/fingerprint.ts';
import { testCerts } from './certs.ts';
import { selfSignedFor } from './named-certs.ts';

const HOST = '127.0.0.1';
const DAY_MS = 86_400_000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

// A fingerprint in every spelling a user might paste.
const CANONICAL = Array.from({ length: 32 }, (_, i) =>
  ((i * 37 + 11) % 256).toString(16).padStart(2, '0').toUpperCase(),
).join(':');
const BARE = CANONICAL.replaceAll(':', '');

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'burrow-tls-'));
  try {
    await body(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const modeOf = async (file: string): Promise<number> => (await fs.stat(file)).mode & 0o777;

/** Asserts `promise` rejects with a listen-failed BurrowError whose message contains every
 * one of `parts`. */
async function rejectsWith(promise: Promise<unknown>, parts: string[]): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BurrowError, `a BurrowError, got ${String(error)}`);
    assert.equal(error.code, 'listen-failed');
    for (const part of parts) assert.ok(error.message.includes(part), `${JSON.stringify(part)} in: ${error.message}`);
    return true;
  });
}

/** `leaf` names `issuer` as its issuer and carries its signature. (Not checkIssued: OpenSSL
 * also requires keyCertSign there, which a self-signed server certificate rightly lacks.) */
function issuedBy(leaf: string, issuer: string): boolean {
  const [child, parent] = [new X509Certificate(leaf), new X509Certificate(issuer)];
  return child.issuer === parent.subject && child.verify(parent.publicKey);
}

/** A TLS server on 127.0.0.1:0 that greets every client, a client connected to it, and what
 * the client read; both ends closed before returning. */
async function handshake(
  serverOptions: tls.TlsOptions,
  clientOptions: tls.ConnectionOptions,
): Promise<{
  greeting: string;
  client: { authorized: boolean; peerFingerprint: string };
  serverSawAuthorizedClient: boolean;
}> {
  const sockets = new Set<tls.TLSSocket>();
  let serverSawAuthorizedClient = false;
  const server = tls.createServer(serverOptions, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {}); // the client may close first; the test asserts on the client
    serverSawAuthorizedClient = socket.authorized;
    socket.end('hello from burrow');
  });
  server.on('tlsClientError', () => {});
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const client = tls.connect({ host: HOST, port, servername: 'localhost', ...clientOptions });
  try {
    await once(client, 'secureConnect');
    const result = { authorized: client.authorized, peerFingerprint: client.getPeerCertificate().fingerprint256 };
    let greeting = '';
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => (greeting += chunk));
    await once(client, 'end');
    return { greeting, client: result, serverSawAuthorizedClient };
  } finally {
    client.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test('normalizeFingerprint accepts colon pairs or 64 hex digits, any case, sha256: prefix, whitespace', () => {
  const accepted = [
    CANONICAL,
    CANONICAL.toLowerCase(),
    BARE,
    BARE.toLowerCase(),
    `${BARE.slice(0, 20).toLowerCase()}${BARE.slice(20)}`,
    `sha256:${CANONICAL}`,
    `SHA256:${BARE.toLowerCase()}`,
    `Sha256:${CANONICAL.toLowerCase()}`,
    `  ${CANONICAL}\n`,
    `\tsha256:${BARE} `,
  ];
  for (const text of accepted) assert.equal(normalizeFingerprint(text), CANONICAL, JSON.stringify(text));
});

test('normalizeFingerprint rejects wrong lengths, non-hex, odd grouping and empty input', () => {
  const rejected = [
    '',
    '   ',
    'sha256:',
    BARE.slice(0, 63),
    `${BARE}A`,
    CANONICAL.slice(0, -3),
    `${CANONICAL}:AB`,
    `${BARE.slice(0, 63)}G`,
    CANONICAL.replace(/^../, 'ZZ'),
    CANONICAL.replaceAll(':', '-'),
    CANONICAL.replace(':', ''), // pairs and bare digits mixed
    `${CANONICAL.slice(0, 4)}:${CANONICAL.slice(4)}`,
    `md5:${BARE}`,
    `sha1:${BARE}`,
    BARE.slice(0, 40), // a SHA-1 fingerprint
  ];
  for (const text of rejected) assert.equal(normalizeFingerprint(text), undefined, JSON.stringify(text));
});

test('fingerprintOf is X509Certificate#fingerprint256, from a string or a Buffer, first certificate of a bundle', async () => {
  const { server, ca, selfSignedServer } = await testCerts();
  const expected = new X509Certificate(server.cert).fingerprint256;
  assert.match(expected, /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
  assert.equal(fingerprintOf(server.cert), expected);
  assert.equal(fingerprintOf(Buffer.from(server.cert)), expected);
  assert.equal(fingerprintOf(server.cert + ca.cert), expected);
  assert.equal(server.fingerprint, expected);
  assert.equal(normalizeFingerprint(expected.replaceAll(':', '').toLowerCase()), expected);
  assert.notEqual(fingerprintOf(selfSignedServer.cert), expected);
});

test('defaultTlsDir is $XDG_CONFIG_HOME/burrow when XDG_CONFIG_HOME is set', () => {
  assert.equal(defaultTlsDir({ XDG_CONFIG_HOME: '/srv/config' }, '/home/ada'), path.join('/srv/config', 'burrow'));
});

test('defaultTlsDir is ~/.config/burrow when XDG_CONFIG_HOME is unset or empty', () => {
  assert.equal(defaultTlsDir({}, '/home/ada'), path.join('/home/ada', '.config', 'burrow'));
  assert.equal(defaultTlsDir({ XDG_CONFIG_HOME: '' }, '/home/ada'), path.join('/home/ada', '.config', 'burrow'));
  assert.equal(
    defaultTlsDir({ XDG_CONFIG_HOME: undefined, HOME: '/elsewhere' }, '/home/ada'),
    path.join('/home/ada', '.config', 'burrow'),
  );
});

test('loadOrCreateCertificate creates a private directory, a 0600 key and a self-signed EC P-256 certificate', async () => {
  await withTempDir(async (tmp) => {
    const dir = path.join(tmp, 'config', 'burrow'); // parents are created too
    const stored = await loadOrCreateCertificate(dir);
    assert.equal(stored.created, true);
    assert.equal(stored.certFile, path.join(dir, 'tls-cert.pem'));
    assert.equal(stored.keyFile, path.join(dir, 'tls-key.pem'));
    assert.deepEqual((await fs.readdir(dir)).sort(), ['tls-cert.pem', 'tls-key.pem'], 'no temporary file left behind');
    assert.equal(await fs.readFile(stored.certFile, 'utf8'), stored.cert);
    assert.equal(await fs.readFile(stored.keyFile, 'utf8'), stored.key);
    assert.equal(await modeOf(stored.keyFile), 0o600);
    assert.equal(await modeOf(dir), 0o700);

    const cert = new X509Certificate(stored.cert);
    assert.equal(stored.fingerprint, cert.fingerprint256);
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.match(cert.subject, /CN=burrow relay/);
    assert.deepEqual(stored.names, ['localhost', '127.0.0.1', '::1']);
    assert.equal(cert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.equal(stored.replaced, undefined);
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.checkIP('::1'), '::1');
    assert.equal(cert.checkHost('example.com'), undefined);
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, [SERVER_AUTH]); // Node's name for the extended key usage
    assert.ok(issuedBy(stored.cert, stored.cert), 'self-signed');
    const now = Date.now();
    assert.ok(Math.abs(Date.parse(cert.validFrom) - (now - DAY_MS)) < DAY_MS / 2, `valid from ${cert.validFrom}`);
    assert.ok(Math.abs(Date.parse(cert.validTo) - (now + 3652.5 * DAY_MS)) < 2 * DAY_MS, `valid to ${cert.validTo}`);
  });
});

test('loadOrCreateCertificate reuses the stored pair on the next call', async () => {
  await withTempDir(async (dir) => {
    const first = await loadOrCreateCertificate(dir);
    const second = await loadOrCreateCertificate(dir);
    const expected: StoredCertificate = { ...first, created: false };
    assert.deepEqual(second, expected);
  });
});

test('loadOrCreateCertificate refuses a certificate without its key, and creates nothing', async () => {
  const { selfSignedServer } = await testCerts();
  await withTempDir(async (dir) => {
    const certFile = path.join(dir, 'tls-cert.pem');
    const keyFile = path.join(dir, 'tls-key.pem');
    await fs.writeFile(certFile, selfSignedServer.cert);
    await rejectsWith(loadOrCreateCertificate(dir), [
      certFile,
      keyFile,
      'delete both',
      'pass `tls.cert` and `tls.key`',
    ]);
    assert.deepEqual(await fs.readdir(dir), ['tls-cert.pem']);
    assert.equal(await fs.readFile(certFile, 'utf8'), selfSignedServer.cert);
  });
});

test('loadOrCreateCertificate refuses a key without its certificate, and creates nothing', async () => {
  const { selfSignedServer } = await testCerts();
  await withTempDir(async (dir) => {
    const certFile = path.join(dir, 'tls-cert.pem');
    const keyFile = path.join(dir, 'tls-key.pem');
    await fs.writeFile(keyFile, selfSignedServer.key);
    await rejectsWith(loadOrCreateCertificate(dir), [
      keyFile,
      certFile,
      'delete both',
      'pass `tls.cert` and `tls.key`',
    ]);
    assert.deepEqual(await fs.readdir(dir), ['tls-key.pem']);
  });
});

test("loadOrCreateCertificate refuses a key that is not the certificate's", async () => {
  const { server } = await testCerts();
  await withTempDir(async (dir) => {
    const stored = await loadOrCreateCertificate(dir);
    await fs.writeFile(stored.keyFile, server.key);
    await rejectsWith(loadOrCreateCertificate(dir), [
      stored.keyFile,
      stored.certFile,
      'not the private key',
      'delete both',
    ]);
  });
});

test('loadOrCreateCertificate refuses files that are not PEM', async () => {
  await withTempDir(async (dir) => {
    const stored = await loadOrCreateCertificate(dir);
    await fs.writeFile(stored.certFile, 'not a certificate\n');
    await rejectsWith(loadOrCreateCertificate(dir), [stored.certFile, 'not a PEM certificate', 'delete both']);
    await fs.writeFile(stored.certFile, stored.cert);
    await fs.writeFile(stored.keyFile, 'not a key\n');
    await rejectsWith(loadOrCreateCertificate(dir), [stored.keyFile, 'private key', 'delete both']);
  });
});

test('concurrent first calls on an empty directory agree on one pair', async () => {
  await withTempDir(async (dir) => {
    const results = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateCertificate(dir)));
    const first = results[0];
    assert.ok(first !== undefined);
    for (const result of results) {
      assert.equal(result.fingerprint, first.fingerprint);
      assert.equal(result.key, first.key);
    }
    assert.equal(results.filter((result) => result.created).length, 1, 'exactly one call created the pair');
    assert.equal(fingerprintOf(await fs.readFile(first.certFile)), first.fingerprint);
    assert.deepEqual((await fs.readdir(dir)).sort(), ['tls-cert.pem', 'tls-key.pem'], 'no temporary file left behind');
    assert.equal((await loadOrCreateCertificate(dir)).fingerprint, first.fingerprint);
  });
});

test('a TLS handshake works with the created pair, trusting the certificate itself', async () => {
  await withTempDir(async (dir) => {
    const stored = await loadOrCreateCertificate(dir);
    const result = await handshake(
      { cert: stored.cert, key: stored.key, minVersion: 'TLSv1.2' },
      { ca: stored.cert, minVersion: 'TLSv1.2' },
    );
    assert.equal(result.greeting, 'hello from burrow');
    assert.equal(result.client.authorized, true);
    assert.equal(result.client.peerFingerprint, stored.fingerprint);
  });
});

test('the test certificates: server by ca (not otherCa), client by clientCa, strangers by neither', async () => {
  const certs = await testCerts();
  assert.equal(testCerts(), testCerts(), 'generated once');
  for (const ca of [certs.ca, certs.otherCa, certs.clientCa]) assert.equal(new X509Certificate(ca.cert).ca, true);

  assert.ok(issuedBy(certs.server.cert, certs.ca.cert));
  assert.ok(!issuedBy(certs.server.cert, certs.otherCa.cert));
  assert.ok(!issuedBy(certs.selfSignedServer.cert, certs.ca.cert));
  assert.ok(issuedBy(certs.selfSignedServer.cert, certs.selfSignedServer.cert));
  for (const server of [certs.server, certs.selfSignedServer]) {
    const cert = new X509Certificate(server.cert);
    assert.equal(server.fingerprint, cert.fingerprint256);
    assert.deepEqual(cert.keyUsage, [SERVER_AUTH]);
    assert.ok(
      cert.checkHost('localhost') !== undefined &&
        cert.checkIP('127.0.0.1') !== undefined &&
        cert.checkIP('::1') !== undefined,
    );
    assert.ok(cert.checkPrivateKey(createPrivateKey(server.key)));
  }

  assert.ok(issuedBy(certs.client.cert, certs.clientCa.cert));
  assert.ok(!issuedBy(certs.client.cert, certs.ca.cert));
  assert.ok(!issuedBy(certs.strangerClient.cert, certs.clientCa.cert));
  assert.ok(!issuedBy(certs.strangerClient.cert, certs.ca.cert));
  for (const client of [certs.client, certs.strangerClient])
    assert.deepEqual(new X509Certificate(client.cert).keyUsage, [CLIENT_AUTH]);
});

test('the test certificates work in a real mutual-TLS handshake', async () => {
  const { ca, server, clientCa, client } = await testCerts();
  const result = await handshake(
    {
      cert: server.cert,
      key: server.key,
      ca: clientCa.cert,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    { ca: ca.cert, cert: client.cert, key: client.key, minVersion: 'TLSv1.2' },
  );
  assert.equal(result.greeting, 'hello from burrow');
  assert.equal(result.client.authorized, true);
  assert.equal(result.client.peerFingerprint, server.fingerprint);
  assert.equal(result.serverSawAuthorizedClient, true);
});

// ---------------------------------------------------------------------------------------
// --tls-name: the names of the self-signed certificate.

const DEFAULTS = [...DEFAULT_TLS_NAMES];

/** The files in `dir`, sorted. */
const filesIn = async (dir: string): Promise<string[]> => (await fs.readdir(dir)).sort();
/** A pair set aside by a replacement: `tls-cert.pem.old-<suffix>`, `tls-key.pem.old-<suffix>`. */
const ASIDE = /^tls-(?:cert|key)\.pem\.old-(\d{8}T\d{6}\.\d{3}Z(?:-\d+)?)$/;

test('tlsName: host names lowercased without a trailing dot, IP addresses (IPv6 shortened, brackets off)', () => {
  const accepted: [string, string][] = [
    ['relay.example.com', 'relay.example.com'],
    ['Relay.Example.COM', 'relay.example.com'],
    ['relay.example.com.', 'relay.example.com'],
    ['  relay.test ', 'relay.test'],
    ['relay', 'relay'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['1st.example', '1st.example'],
    [`${'a'.repeat(63)}.example`, `${'a'.repeat(63)}.example`],
    ['203.0.113.7', '203.0.113.7'],
    ['2001:DB8:0:0:0:0:0:7', '2001:db8::7'],
    ['[2001:db8::7]', '2001:db8::7'],
    ['::1', '::1'],
    ['::ffff:203.0.113.7', '::ffff:cb00:7107'],
  ];
  for (const [text, name] of accepted) assert.equal(tlsName(text), name, JSON.stringify(text));
});

test('tlsName rejects what no certificate can name: wildcards, ports, URLs, underscores, odd labels, bad addresses', () => {
  const rejected = [
    '',
    ' ',
    '.',
    '*.example.com',
    'relay.example.com:7835',
    '203.0.113.7:7835',
    '[203.0.113.7]',
    '[relay.example.com]',
    'https://relay.example.com',
    'relay_1.example.com',
    '-relay.example.com',
    'relay-.example.com',
    'relay..example.com',
    '.relay.example.com',
    `${'a'.repeat(64)}.example`,
    `${'abcdefghi.'.repeat(25)}example`, // 259 characters
    'relay example',
    'rélay.example', // international names go in their xn-- form
    '256.1.1.1',
    '1.2.3',
    '10.1',
    '2001:db8::7::1',
    'fe80::1%eth0',
  ];
  for (const text of rejected) assert.equal(tlsName(text), undefined, JSON.stringify(text));
});

test('certificateNames: DNS and IP subject alternative names in order (IPv6 shortened), JSON-quoted values, the CN only without DNS names', () => {
  assert.deepEqual(
    certificateNames({
      subjectaltname: 'DNS:relay.test, IP Address:203.0.113.7, IP Address:2001:DB8:0:0:0:0:0:1, DNS:localhost',
    }),
    ['relay.test', '203.0.113.7', '2001:db8::1', 'localhost'],
  );
  // Other kinds of name are not host names; a value with a comma is quoted by Node.
  assert.deepEqual(
    certificateNames({
      subjectaltname: 'email:ops@example.com, DNS:"a,b.example", URI:https://example.com/, DNS:relay.test',
    }),
    ['a,b.example', 'relay.test'],
  );
  assert.deepEqual(certificateNames({ subject: { CN: 'burrow relay' }, subjectaltname: 'DNS:relay.test' }), [
    'relay.test',
  ]);
  assert.deepEqual(certificateNames({ subject: { CN: 'relay.test' }, subjectaltname: 'IP Address:203.0.113.7' }), [
    'relay.test',
    '203.0.113.7',
  ]);
  assert.deepEqual(certificateNames({ subject: { CN: ['a.test', 'b.test'] } }), ['a.test', 'b.test']);
  // A common name that is a label, not a host name, names nothing.
  assert.deepEqual(certificateNames({ subject: { CN: 'burrow relay' } }), []);
  assert.deepEqual(certificateNames({ subject: { CN: 'relay' } }), ['relay']);
  assert.deepEqual(certificateNames({}), []);
  assert.deepEqual(certificateNames({ subjectaltname: 'DNS:relay.test, DNS:relay.test' }), ['relay.test']);
  assert.equal(canonicalIp('2001:0DB8::0:7'), '2001:db8::7');
  assert.equal(canonicalIp('203.0.113.7'), '203.0.113.7');
});

test('certificateNames of a real certificate: its SANs as Node prints them, read back', async () => {
  const pem = await selfSignedFor(['relay.test', '203.0.113.7', '2001:db8::7', 'localhost']);
  assert.deepEqual(certificateNames(new X509Certificate(pem.cert).toLegacyObject()), [
    'relay.test',
    '203.0.113.7',
    '2001:db8::7',
    'localhost',
  ]);
  const none = await selfSignedFor([], { commonName: 'relay.test' });
  assert.deepEqual(certificateNames(new X509Certificate(none.cert).toLegacyObject()), ['relay.test']);
});

test('loadOrCreateCertificate with names: DNS names and IP addresses as their own SAN types, then the defaults; each verifies', async () => {
  await withTempDir(async (dir) => {
    const stored = await loadOrCreateCertificate(dir, [
      'Relay.Test.',
      '203.0.113.7',
      '[2001:db8::7]',
      'localhost',
      'relay.test',
    ]);
    assert.equal(stored.created, true);
    assert.deepEqual(stored.names, ['relay.test', '203.0.113.7', '2001:db8::7', 'localhost', '127.0.0.1', '::1']);
    const cert = new X509Certificate(stored.cert);
    assert.equal(
      cert.subjectAltName,
      'DNS:relay.test, IP Address:203.0.113.7, IP Address:2001:DB8:0:0:0:0:0:7, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    assert.equal(cert.checkHost('relay.test'), 'relay.test');
    assert.equal(cert.checkIP('203.0.113.7'), '203.0.113.7');
    assert.equal(cert.checkIP('2001:db8::7'), '2001:db8::7');
    assert.equal(cert.checkHost('203.0.113.7'), undefined, 'an address is not a DNS name');
    assert.equal(cert.checkHost('other.test'), undefined);
    // As a TLS client checks them.
    const peer = cert.toLegacyObject();
    for (const host of [
      'relay.test',
      'relay.test.',
      'RELAY.test',
      '203.0.113.7',
      '2001:db8::7',
      '2001:DB8:0::7',
      'localhost',
      '127.0.0.1',
      '::1',
    ]) {
      assert.equal(tls.checkServerIdentity(host, peer), undefined, host);
    }
    for (const host of ['other.test', 'sub.relay.test', '203.0.113.8']) {
      const error: NodeJS.ErrnoException | undefined = tls.checkServerIdentity(host, peer);
      assert.equal(error?.code, 'ERR_TLS_CERT_ALTNAME_INVALID', host);
    }
    assert.deepEqual(await filesIn(dir), ['tls-cert.pem', 'tls-key.pem']);
  });
});

test('a TLS handshake checking the name relay.test works with a certificate made for it, and fails for another name', async () => {
  await withTempDir(async (dir) => {
    const stored = await loadOrCreateCertificate(dir, ['relay.test']);
    const server = { cert: stored.cert, key: stored.key, minVersion: 'TLSv1.2' } as const;
    const result = await handshake(server, { ca: stored.cert, servername: 'relay.test' });
    assert.equal(result.greeting, 'hello from burrow');
    assert.equal(result.client.authorized, true);
    await assert.rejects(
      handshake(server, { ca: stored.cert, servername: 'other.test' }),
      (error: NodeJS.ErrnoException) => {
        assert.equal(error.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
        return true;
      },
    );
  });
});

test('a kept certificate that names every name asked for is reused: the same names, fewer, none, or in another spelling', async () => {
  await withTempDir(async (dir) => {
    const first = await loadOrCreateCertificate(dir, ['relay.test', '203.0.113.7']);
    for (const names of [
      ['relay.test', '203.0.113.7'],
      ['203.0.113.7', 'relay.test'],
      ['RELAY.TEST.'],
      [],
      ['localhost', '::1'],
      ['0:0:0:0:0:0:0:1'],
    ]) {
      const again = await loadOrCreateCertificate(dir, names);
      assert.deepEqual(again, { ...first, created: false }, JSON.stringify(names));
    }
    // One made without names is kept when no name is asked for.
    await withTempDir(async (plainDir) => {
      const plain = await loadOrCreateCertificate(plainDir);
      assert.deepEqual(await loadOrCreateCertificate(plainDir, []), { ...plain, created: false });
      assert.deepEqual(await loadOrCreateCertificate(plainDir, ['127.0.0.1']), { ...plain, created: false });
    });
  });
});

test('a kept certificate that lacks a name asked for is replaced: new pair, the old one kept as .old-<time>, and the result says so', async () => {
  await withTempDir(async (dir) => {
    const old = await loadOrCreateCertificate(dir);
    const stored = await loadOrCreateCertificate(dir, ['relay.test', '203.0.113.7', 'localhost']);
    assert.equal(stored.created, true);
    assert.notEqual(stored.fingerprint, old.fingerprint);
    assert.deepEqual(stored.names, ['relay.test', '203.0.113.7', 'localhost', '127.0.0.1', '::1']);
    const aside = stored.replaced;
    assert.ok(aside !== undefined);
    assert.deepEqual(aside, {
      fingerprint: old.fingerprint,
      missing: ['relay.test', '203.0.113.7'],
      certFile: aside.certFile,
      keyFile: aside.keyFile,
    });
    const suffix = ASIDE.exec(path.basename(aside.certFile))?.[1];
    assert.ok(suffix !== undefined, aside.certFile);
    assert.equal(aside.certFile, `${old.certFile}.old-${suffix}`);
    assert.equal(aside.keyFile, `${old.keyFile}.old-${suffix}`);
    const pair = [path.basename(aside.certFile), path.basename(aside.keyFile)];
    assert.deepEqual(
      await filesIn(dir),
      ['tls-cert.pem', pair[0], 'tls-key.pem', pair[1]],
      'no temporary file left behind',
    );
    assert.equal(await fs.readFile(stored.certFile, 'utf8'), stored.cert);
    assert.equal(await fs.readFile(stored.keyFile, 'utf8'), stored.key);
    assert.equal(await fs.readFile(aside.certFile, 'utf8'), old.cert);
    assert.equal(await fs.readFile(aside.keyFile, 'utf8'), old.key);
    assert.equal(await modeOf(stored.keyFile), 0o600);
    assert.equal(await modeOf(aside.keyFile), 0o600);
    assert.ok(new X509Certificate(stored.cert).checkPrivateKey(createPrivateKey(stored.key)));

    // Kept from now on; asking for yet another name replaces it again, by one that names
    // the kept names too, and sets this pair aside beside the first (test/self-signed-names.test.ts
    // has more of this).
    const { replaced: _first, ...kept } = stored;
    assert.deepEqual(await loadOrCreateCertificate(dir, ['relay.test']), { ...kept, created: false });
    const moved = await loadOrCreateCertificate(dir, ['other.test']);
    assert.deepEqual(moved.names, ['relay.test', '203.0.113.7', 'other.test', ...DEFAULTS]);
    assert.deepEqual(moved.replaced?.missing, ['other.test']);
    assert.equal(moved.replaced?.fingerprint, stored.fingerprint);
    assert.ok(moved.replaced !== undefined && moved.replaced.certFile !== aside.certFile);
    assert.equal(await fs.readFile(moved.replaced.certFile, 'utf8'), stored.cert);
    assert.equal(await fs.readFile(moved.replaced.keyFile, 'utf8'), stored.key);
    assert.equal(await fs.readFile(aside.certFile, 'utf8'), old.cert, 'the first pair set aside is still there');
    assert.equal(await fs.readFile(aside.keyFile, 'utf8'), old.key);
  });
});

test('concurrent calls asking a kept certificate for a new name agree on one new pair', async () => {
  await withTempDir(async (dir) => {
    const old = await loadOrCreateCertificate(dir);
    const results = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateCertificate(dir, ['relay.test'])));
    const [first] = results;
    assert.ok(first !== undefined);
    assert.notEqual(first.fingerprint, old.fingerprint);
    for (const result of results) {
      assert.equal(result.fingerprint, first.fingerprint);
      assert.equal(result.key, first.key);
      assert.deepEqual(result.names, ['relay.test', ...DEFAULTS]);
    }
    assert.equal(results.filter((result) => result.created).length, 1, 'exactly one call created the pair');
    const movers = results.filter((result) => result.replaced !== undefined);
    assert.equal(movers.length, 1, 'exactly one call moved the old pair');
    const aside = movers[0]?.replaced;
    assert.ok(aside !== undefined);
    assert.equal(await fs.readFile(aside.certFile, 'utf8'), old.cert);
    assert.equal(await fs.readFile(aside.keyFile, 'utf8'), old.key);
    const pair = [path.basename(aside.certFile), path.basename(aside.keyFile)];
    assert.deepEqual(
      await filesIn(dir),
      ['tls-cert.pem', pair[0], 'tls-key.pem', pair[1]],
      'no temporary file left behind',
    );
    assert.equal((await loadOrCreateCertificate(dir, ['relay.test'])).fingerprint, first.fingerprint);
  });
});

test('loadOrCreateCertificate refuses a name that is not a host name or an IP address, and touches nothing', async () => {
  await withTempDir(async (dir) => {
    const old = await loadOrCreateCertificate(dir);
    await rejectsWith(loadOrCreateCertificate(dir, ['relay.test', '*.example.com']), [
      '"*.example.com"',
      'not a host name or an IP address',
    ]);
    assert.deepEqual(await filesIn(dir), ['tls-cert.pem', 'tls-key.pem']);
    assert.equal(await fs.readFile(old.certFile, 'utf8'), old.cert);
  });
});
