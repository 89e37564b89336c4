// TLS on the control and data ports, end to end over real sockets on loopback: a CA file,
// a pinned fingerprint, what a client must reject, the two plaintext/TLS mismatches (on the
// control and on the data port), mutual TLS, TLS with a secret, aborts carried through TLS
// as resets, nothing held after clients, visitors and failed handshakes have gone, and a
// handshake that never completes. The certificates come from test/certs.ts.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import {
  startClient,
  BurrowClient,
  type BurrowServer,
  type ClientOptions,
  type ClientTlsOptions,
  type RefusedEvent,
  type ServerOptions,
  type ServerStats,
} from '../index.ts';
import { tlsFailure } from '../client/tls.ts';
import { loadOrCreateCertificate } from '../server/self-signed-cert.ts';
import { testCerts, type TestCerts } from './certs.ts';
import { selfSignedFor } from './named-certs.ts';
import {
  assertSameBytes,
  connectVisitor,
  HOST,
  listenLocal,
  pseudoRandomBytes,
  replyOnEnd,
  startRig,
  untilEqual,
  within,
} from './helpers.ts';
import { serviceResetSeenByVisitor, visitorResetSeenByService } from './endings.ts';
import { endingOf } from './inbox.ts';
import { assertClosedByServer, assertRefused, errReason, LineReader, openRaw, rejectsWith, serverOn } from './raw.ts';

// ---------------------------------------------------------------------------------------
// Local helpers

const KiB = 1024;
const MiB = 1024 * KiB;

const ZERO: ServerStats = {
  clients: 0,
  clientAddresses: 0,
  tunnels: 0,
  leasedPorts: 0,
  ports: 0,
  pendingVisitors: 0,
  sockets: 0,
};

/** What the local service answers: the request, byte-reversed. A reply that is exactly the
 * reversed payload proves every byte of the request arrived, in order, and the service
 * only answers after the visitor's FIN (replyOnEnd), so the half-close crossed too. */
const reversed = (request: Buffer): Buffer => Buffer.from(request).reverse();

const reverseService = replyOnEnd(reversed);

/** The server's certificate and key, plus `extra` (mutual TLS). */
async function serverTls(extra: { clientCa?: string } = {}): Promise<NonNullable<ServerOptions['tls']>> {
  const certs = await testCerts();
  return { cert: certs.server.cert, key: certs.server.key, ...extra };
}

/** A visitor sends `payload` and half-closes; the reply must be exactly the reversed
 * payload, ending with a clean FIN (no error). */
async function exchange(port: number, payload: Buffer, what: string): Promise<void> {
  const visitor = await connectVisitor(port);
  try {
    const ending = endingOf(visitor);
    visitor.end(payload);
    const { code, received } = await within(ending, 30_000, `${what}: the reply`);
    assert.equal(code, undefined, `${what}: the visitor's connection failed`);
    assertSameBytes(received, reversed(payload), `${what}: the reply`);
  } finally {
    visitor.destroy();
  }
}

/** A client of `server` exposing `localPort`, with `extra` options (tls, secret). */
function clientOf(server: BurrowServer, localPort: number, extra: Partial<ClientOptions> = {}): Promise<BurrowClient> {
  return startClient({
    tunnels: [{ localPort }],
    server: HOST,
    localHost: HOST,
    controlPort: server.controlPort,
    dataPort: server.dataPort,
    ...extra,
  });
}

/** Runs `body` against a server with `options` and a local reverse service; closes both
 * (and every client `body` put into `clients`) afterwards, pass or fail. */
async function withServerAndLocal(
  options: ServerOptions,
  body: (server: BurrowServer, localPort: number, clients: BurrowClient[]) => Promise<void>,
): Promise<void> {
  const local = await listenLocal(reverseService);
  const clients: BurrowClient[] = [];
  let server: BurrowServer | undefined;
  try {
    server = await serverOn(options);
    await body(server, local.port, clients);
  } finally {
    for (const client of clients) await client.destroy();
    await server?.close();
    await local.close();
  }
}

/** Starts a client with `extra`, checks that a 64 KiB exchange crosses its tunnel
 * byte-exact, and closes it. */
async function assertTunnelWorks(
  server: BurrowServer,
  localPort: number,
  extra: Partial<ClientOptions>,
  what: string,
  seed: number,
): Promise<void> {
  const client = await within(clientOf(server, localPort, extra), 10_000, `${what}: start()`);
  try {
    const port = client.tunnels[0]?.publicPort ?? 0;
    await exchange(port, pseudoRandomBytes(64 * KiB, seed), what);
  } finally {
    await within(client.close(), 10_000, `${what}: client close()`);
  }
}

/** Every 'refused' event of `server`, as it happens. */
function recordRefusals(server: BurrowServer): RefusedEvent[] {
  const seen: RefusedEvent[] = [];
  server.on('refused', (event) => seen.push(event));
  return seen;
}

/** Waits until the refusals seen are exactly `reasons` (in any order). */
async function untilRefusals(seen: RefusedEvent[], reasons: string[], what: string, ms = 10_000): Promise<void> {
  await untilEqual(() => seen.map((event) => event.reason).sort(), [...reasons].sort(), what, ms);
}

/** Asserts the fields of a refusal: the connection label, the peer's loopback address,
 * and a message. */
function assertRefusedEvent(event: RefusedEvent | undefined, kind: 'control' | 'data', reason: string): void {
  assert.ok(event, `expected a 'refused' event (${reason})`);
  assert.equal(event.reason, reason);
  assert.match(
    event.conn,
    kind === 'control' ? /^control#[0-9]+$/ : /^data#[0-9]+$/,
    `conn of ${JSON.stringify(event)}`,
  );
  assert.match(event.address, /^127\.0\.0\.1:[1-9][0-9]*$/, `address of ${JSON.stringify(event)}`);
  assert.ok(event.message.length > 0, 'the refusal has a message');
}

/** A TLS connection to `port` as a raw client (for ERR lines sent over TLS). */
async function openTls(
  port: number,
  options: tls.ConnectionOptions,
): Promise<{ socket: tls.TLSSocket; reader: LineReader; closed: Promise<void> }> {
  const socket = tls.connect({ host: HOST, port, servername: 'localhost', ...options });
  socket.on('error', () => {}); // the test asserts on lines and closes
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const reader = new LineReader(socket);
  await within(once(socket, 'secureConnect'), 5_000, `a TLS connection to ${port}`);
  return { socket, reader, closed };
}

/** Client TLS options with the client certificate of `pem`. */
const withClientCert = (certs: TestCerts, pem: { cert: string; key: string }): ClientTlsOptions => ({
  ca: certs.ca.cert,
  cert: pem.cert,
  key: pem.key,
});

// ---------------------------------------------------------------------------------------
// 1. TLS with a CA file: a real tunnel, byte-exact.

test('TLS with a CA file: 4 MiB each way byte-exact with the half-close carried through; sequential and concurrent visitors', async () => {
  const certs = await testCerts();
  const rig = await startRig(reverseService, {
    server: { tls: await serverTls() },
    client: { tls: { ca: certs.ca.cert } },
  });
  try {
    const traces: string[] = [];
    rig.server.on('trace', (event) => traces.push(`${event.conn} ${event.text}`));
    await exchange(rig.publicPort, pseudoRandomBytes(4 * MiB, 7), '4 MiB each way');
    for (let i = 0; i < 5; i++)
      await exchange(rig.publicPort, pseudoRandomBytes(256 * KiB + i, 100 + i), `sequential visitor ${i}`);
    await within(
      Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          exchange(rig.publicPort, pseudoRandomBytes(1 * MiB + i, 200 + i), `concurrent visitor ${i}`),
        ),
      ),
      30_000,
      'the concurrent visitors',
    );
    // Every one of those 10 visitors came over its own data connection, and each was TLS
    // (those opened ahead, prewarm, are TLS too, but say no ID unless a visitor takes one).
    const withId = traces.flatMap((line) => /^(data#[0-9]+) ID /.exec(line)?.[1] ?? []);
    assert.equal(new Set(withId).size, 10, `data connections:\n${traces.join('\n')}`);
    for (const conn of withId) {
      const overTls = new RegExp(`^${conn} TLS TLSv1\\.[23] established`);
      assert.ok(
        traces.some((line) => overTls.test(line)),
        `${conn} over TLS:\n${traces.join('\n')}`,
      );
    }
    assert.equal(rig.server.stats().clients, 1, 'the client is still connected');
  } finally {
    await rig.close();
  }
});

// ---------------------------------------------------------------------------------------
// 2. Which server certificates the client accepts.

test('TLS with a pinned fingerprint and no CA works, also given as 64 lowercase hex digits without colons', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls() }, async (server, localPort) => {
    assert.match(certs.server.fingerprint, /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    await assertTunnelWorks(server, localPort, { tls: { fingerprint: certs.server.fingerprint } }, 'pin AB:CD:...', 1);
    const bare = certs.server.fingerprint.replaceAll(':', '').toLowerCase();
    assert.match(bare, /^[0-9a-f]{64}$/);
    await assertTunnelWorks(server, localPort, { tls: { fingerprint: bare } }, 'pin abcd...', 2);
  });
});

test('a wrong pin fails start() with code tls, naming both fingerprints', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls() }, async (server, localPort) => {
    const error = await rejectsWith(
      clientOf(server, localPort, { tls: { fingerprint: certs.selfSignedServer.fingerprint } }),
      'tls',
    );
    assert.ok(error.message.includes(certs.server.fingerprint), `the server's actual fingerprint in: ${error.message}`);
    assert.ok(
      error.message.includes(certs.selfSignedServer.fingerprint),
      `the pinned fingerprint in: ${error.message}`,
    );
    assert.equal(server.stats().clients, 0, 'no control session was opened');
  });
});

test('a CA that did not sign the server, or the system CAs (tls: true), fail start() with code tls: cannot verify', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls() }, async (server, localPort) => {
    const other = await rejectsWith(clientOf(server, localPort, { tls: { ca: certs.otherCa.cert } }), 'tls');
    assert.match(other.message, /cannot verify/, other.message);
    const system = await rejectsWith(clientOf(server, localPort, { tls: true }), 'tls');
    assert.match(system.message, /cannot verify/, system.message);
    assert.equal(server.stats().clients, 0, 'no control session was opened');
  });
});

test('a pin together with a CA: works when both hold, fails with code tls when the CA does not', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls() }, async (server, localPort) => {
    await assertTunnelWorks(
      server,
      localPort,
      { tls: { ca: certs.ca.cert, fingerprint: certs.server.fingerprint } },
      'pin + CA',
      3,
    );
    const error = await rejectsWith(
      clientOf(server, localPort, { tls: { ca: certs.otherCa.cert, fingerprint: certs.server.fingerprint } }),
      'tls',
    );
    assert.match(error.message, /cannot verify/, error.message);
  });
});

// ---------------------------------------------------------------------------------------
// 3-5. Plaintext and TLS that meet: on the control port, and on the data port.

test('a plaintext client of a TLS server: start() rejects with refused / tls-required (mentions the `tls` option); the server reports tls-required', async () => {
  await withServerAndLocal({ tls: await serverTls() }, async (server, localPort) => {
    const refusals = recordRefusals(server);
    const error = await rejectsWith(clientOf(server, localPort), 'refused', 'tls-required');
    assert.match(error.message, /`tls`/, error.message);
    await untilRefusals(refusals, ['tls-required'], 'the server to report the plaintext client');
    assertRefusedEvent(refusals[0], 'control', 'tls-required');
  });
});

test('a raw plaintext EXPOSE to a TLS server gets exactly one line, ERR tls-required, and is closed', async () => {
  await withServerAndLocal({ tls: await serverTls() }, async (server) => {
    const refusals = recordRefusals(server);
    const line = await assertRefused(server.controlPort, 'EXPOSE 3000\n', 'tls-required', 'the TLS server');
    assert.match(line, /^ERR tls-required [ -~]+$/, line);
    await untilRefusals(refusals, ['tls-required'], 'the server to report it');
    assertRefusedEvent(refusals[0], 'control', 'tls-required');
  });
});

test('a TLS client of a plaintext server: start() rejects with code tls (the server does not speak TLS); the server reports tls-not-enabled', async () => {
  const certs = await testCerts();
  await withServerAndLocal({}, async (server, localPort) => {
    const refusals = recordRefusals(server);
    const error = await rejectsWith(clientOf(server, localPort, { tls: { ca: certs.ca.cert } }), 'tls');
    assert.match(error.message, /does not speak TLS/, error.message);
    await untilRefusals(refusals, ['tls-not-enabled'], 'the server to report the TLS client');
    assertRefusedEvent(refusals[0], 'control', 'tls-not-enabled');
  });
});

test('data port: plaintext ID to a TLS server gets ERR tls-required; TLS to a plaintext server fails with ERR_SSL_WRONG_VERSION_NUMBER', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls() }, async (server) => {
    const refusals = recordRefusals(server);
    await assertRefused(server.dataPort, 'ID x\n', 'tls-required', 'the TLS data port');
    await untilRefusals(refusals, ['tls-required'], 'the TLS server to report it');
    assertRefusedEvent(refusals[0], 'data', 'tls-required');
  });
  await withServerAndLocal({}, async (server) => {
    const refusals = recordRefusals(server);
    const socket = tls.connect({ host: HOST, port: server.dataPort, servername: 'localhost', ca: certs.ca.cert });
    try {
      const failed = new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
      const secured = new Promise<string>((resolve) => socket.once('secureConnect', () => resolve('secureConnect')));
      const outcome = await within(Promise.race([failed, secured]), 5_000, 'the TLS connection to fail');
      assert.ok(typeof outcome !== 'string', 'a TLS handshake with a plaintext server completed');
      assert.equal(outcome.code, 'ERR_SSL_WRONG_VERSION_NUMBER', outcome.message);
    } finally {
      socket.destroy();
    }
    await untilRefusals(refusals, ['tls-not-enabled'], 'the plaintext server to report it');
    assertRefusedEvent(refusals[0], 'data', 'tls-not-enabled');
  });
});

// ---------------------------------------------------------------------------------------
// 6. Mutual TLS.

test('mutual TLS: a client with a certificate from the client CA works end to end, byte-exact', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls({ clientCa: certs.clientCa.cert }) }, async (server, localPort) => {
    const refusals = recordRefusals(server);
    const traces: string[] = [];
    server.on('trace', (event) => traces.push(`${event.conn} ${event.text}`));
    const client = await clientOf(server, localPort, { tls: withClientCert(certs, certs.client) });
    try {
      const port = client.tunnels[0]?.publicPort ?? 0;
      await exchange(port, pseudoRandomBytes(1 * MiB, 11), 'mTLS, 1 MiB');
      await exchange(port, pseudoRandomBytes(64 * KiB, 12), 'mTLS, 64 KiB');
    } finally {
      await within(client.close(), 10_000, 'client close()');
    }
    // The control and both data connections (and any opened ahead, prewarm) presented the
    // client's certificate.
    const established = traces.filter((line) => line.includes(' established'));
    const identified = established.filter(
      (line) => line.includes('established (client certificate:') && line.includes('burrow test client'),
    );
    assert.ok(identified.length >= 3, `connections identified by their client certificate:\n${traces.join('\n')}`);
    assert.deepEqual(identified, established, 'every TLS connection presented it');
    assert.deepEqual(refusals, [], 'nothing was refused');
  });
});

test('mutual TLS: a client without a certificate, or with one the client CA did not sign, fails with refused / bad-certificate', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls({ clientCa: certs.clientCa.cert }) }, async (server, localPort) => {
    const refusals = recordRefusals(server);
    const none = await rejectsWith(
      clientOf(server, localPort, { tls: { ca: certs.ca.cert } }),
      'refused',
      'bad-certificate',
    );
    assert.match(none.message, /client certificate.*none presented/, none.message);
    await untilRefusals(refusals, ['bad-certificate'], 'the server to report the client without a certificate');
    assertRefusedEvent(refusals[0], 'control', 'bad-certificate');

    const stranger = await rejectsWith(
      clientOf(server, localPort, { tls: withClientCert(certs, certs.strangerClient) }),
      'refused',
      'bad-certificate',
    );
    assert.match(stranger.message, /not signed by the client CA/, stranger.message);
    await untilRefusals(refusals, ['bad-certificate', 'bad-certificate'], 'the server to report the stranger');
    assertRefusedEvent(refusals[1], 'control', 'bad-certificate');
    assert.equal(server.stats().clients, 0, 'no control session was opened');
  });
});

/** One raw TLS 1.3 connection to `port` without a client certificate: sends `line`, and
 * returns what the server answered, whether the session was resumed, and the session
 * ticket the server issued (if it did). */
function tlsAttempt(
  port: number,
  ca: string,
  line: string,
  session?: Buffer,
): Promise<{ answer: string; reused: boolean; ticket?: Buffer }> {
  return within(
    new Promise((resolve) => {
      let ticket: Buffer | undefined;
      let reused = false;
      let answer = '';
      const socket = tls.connect({ host: HOST, port, ca, servername: 'localhost', minVersion: 'TLSv1.3', session });
      socket.on('session', (value: Buffer) => (ticket = value));
      socket.on('secureConnect', () => {
        reused = socket.isSessionReused();
        socket.write(line);
      });
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('error', () => {});
      socket.on('close', () => resolve(ticket === undefined ? { answer, reused } : { answer, reused, ticket }));
    }),
    10_000,
    'a raw TLS attempt to end',
  );
}

test('mutual TLS: a session resumed without a certificate is turned away like a fresh one (no tickets, and a certificate must be there)', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls({ clientCa: certs.clientCa.cert }) }, async (server) => {
    const refusals = recordRefusals(server);
    const first = await tlsAttempt(server.controlPort, certs.ca.cert, 'EXPOSE 3000\n');
    assert.match(first.answer, /^ERR bad-certificate /, first.answer);
    // Whatever the client keeps from the first connection, presenting it again gets nothing.
    const again = await tlsAttempt(server.controlPort, certs.ca.cert, 'EXPOSE 3000\n', first.ticket);
    assert.equal(again.reused, false, 'the server does not resume sessions');
    assert.match(again.answer, /^ERR bad-certificate /, again.answer);
    assert.doesNotMatch(again.answer, /^OK/m, 'no tunnel for a client without a certificate');
    await untilRefusals(refusals, ['bad-certificate', 'bad-certificate'], 'both attempts reported');
    await untilEqual(() => server.stats(), ZERO, 'nothing held');
  });
});

test('mutual TLS: the data port turns away a stranger certificate too (ERR bad-certificate over TLS, then close)', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls({ clientCa: certs.clientCa.cert }) }, async (server) => {
    const refusals = recordRefusals(server);
    for (const [what, options] of [
      ['a stranger certificate', withClientCert(certs, certs.strangerClient)],
      ['no certificate', { ca: certs.ca.cert }],
    ] as const) {
      const raw = await openTls(server.dataPort, options);
      try {
        raw.socket.write('ID abcdefghijklmnopqrstu\n');
        const line = await raw.reader.line();
        assert.equal(errReason(line), 'bad-certificate', `${what}: ${line}`);
        assert.equal(await raw.reader.next(), null, `${what}: expected the server to close the connection`);
        await within(raw.closed, 5_000, `${what}: the socket to close`);
      } finally {
        raw.socket.destroy();
      }
    }
    await untilRefusals(refusals, ['bad-certificate', 'bad-certificate'], 'the server to report both');
    for (const event of refusals) assertRefusedEvent(event, 'data', 'bad-certificate');
  });
});

// ---------------------------------------------------------------------------------------
// 7. TLS and a secret together.

test('TLS and a secret together: works end to end; a wrong or missing secret is still refused over TLS', async () => {
  const certs = await testCerts();
  const secret = 'a-long-random-test-secret-for-tls';
  await withServerAndLocal({ tls: await serverTls(), secret }, async (server, localPort) => {
    const refusals = recordRefusals(server);
    const client = await clientOf(server, localPort, { tls: { ca: certs.ca.cert }, secret });
    try {
      const port = client.tunnels[0]?.publicPort ?? 0;
      await exchange(port, pseudoRandomBytes(1 * MiB, 21), 'TLS + secret, 1 MiB');
      await Promise.all(
        [0, 1, 2].map((i) => exchange(port, pseudoRandomBytes(128 * KiB, 22 + i), `TLS + secret, concurrent ${i}`)),
      );
    } finally {
      await within(client.close(), 10_000, 'client close()');
    }
    assert.deepEqual(refusals, [], 'nothing was refused');
    await rejectsWith(
      clientOf(server, localPort, { tls: { ca: certs.ca.cert }, secret: `${secret}-not` }),
      'refused',
      'auth-failed',
    );
    await rejectsWith(clientOf(server, localPort, { tls: { ca: certs.ca.cert } }), 'refused', 'auth-required');
    await untilRefusals(refusals, ['auth-failed', 'auth-required'], 'the server to report both');
  });
});

// ---------------------------------------------------------------------------------------
// 8. Aborts: a reset on one end reaches the other end as a reset, over TLS as over TCP.

type Mode = 'plain TCP' | 'TLS';

async function rigOptions(mode: Mode): Promise<{ server: ServerOptions; client: Partial<ClientOptions> }> {
  if (mode === 'plain TCP') return { server: {}, client: {} };
  const certs = await testCerts();
  return { server: { tls: await serverTls() }, client: { tls: { ca: certs.ca.cert } } };
}

test('a local service that resets mid-stream reaches the visitor as a reset (ECONNRESET), not a clean end: over TLS as over TCP', async () => {
  for (const mode of ['plain TCP', 'TLS'] as const) {
    const options = await rigOptions(mode);
    await serviceResetSeenByVisitor((onLocal) => startRig(onLocal, options), mode);
  }
});

test('a visitor that resets mid-stream reaches the local service as a reset (ECONNRESET), not a clean end: over TLS as over TCP', async () => {
  for (const mode of ['plain TCP', 'TLS'] as const) {
    const options = await rigOptions(mode);
    await visitorResetSeenByService((onLocal) => startRig(onLocal, options), mode);
  }
});

// ---------------------------------------------------------------------------------------
// 9. Nothing held afterwards.

test('no leak over TLS: after visitors, a client and failed handshakes (wrong pin, plaintext, no or stranger certificate) the server holds nothing', async () => {
  const certs = await testCerts();
  const options: ServerOptions = { tls: await serverTls({ clientCa: certs.clientCa.cert }) };
  await withServerAndLocal(options, async (server, localPort, clients) => {
    const refusals = recordRefusals(server);
    const client = await clientOf(server, localPort, { tls: withClientCert(certs, certs.client) });
    clients.push(client);
    const port = client.tunnels[0]?.publicPort ?? 0;
    for (let i = 0; i < 3; i++) await exchange(port, pseudoRandomBytes(128 * KiB, 40 + i), `sequential visitor ${i}`);
    await Promise.all(
      [0, 1, 2, 3].map((i) => exchange(port, pseudoRandomBytes(256 * KiB, 50 + i), `concurrent visitor ${i}`)),
    );
    // A visitor that leaves mid-stream.
    const leaver = await connectVisitor(port);
    leaver.on('error', () => {});
    leaver.write('half a request');
    leaver.resetAndDestroy();
    await within(client.close(), 10_000, 'client close()');

    const withCert = withClientCert(certs, certs.client);
    await rejectsWith(
      clientOf(server, localPort, {
        tls: { ...withCert, ca: undefined, fingerprint: certs.selfSignedServer.fingerprint },
      }),
      'tls',
    );
    await rejectsWith(clientOf(server, localPort), 'refused', 'tls-required');
    await rejectsWith(clientOf(server, localPort, { tls: { ca: certs.ca.cert } }), 'refused', 'bad-certificate');
    await rejectsWith(
      clientOf(server, localPort, { tls: withClientCert(certs, certs.strangerClient) }),
      'refused',
      'bad-certificate',
    );

    await untilEqual(() => server.stats(), ZERO, 'the server to hold nothing');
    // The client with the wrong pin hangs up once the handshake is done on its side: the
    // server sees a handshake cut short (tls-failed), or, should the client's last
    // handshake message get through, a connection that closed before saying anything.
    const reasons = refusals.map((event) => event.reason);
    assert.deepEqual(
      reasons.filter((reason) => reason !== 'tls-failed').sort(),
      ['bad-certificate', 'bad-certificate', 'tls-required'],
      reasons.join(),
    );
    assert.ok(reasons.filter((reason) => reason === 'tls-failed').length <= 1, reasons.join());
    await within(server.close(), 10_000, 'server close()');
    assert.deepEqual(server.stats(), ZERO, 'nothing held after close()');
  });
});

test('a client that rejects the certificate hangs up mid-handshake: the server lets it go at once and reports tls-failed (the client hung up)', async () => {
  const certs = await testCerts();
  // A stuck handshake would end at the 2 s deadline too, so the refusal must say the
  // client hung up, not that time ran out.
  await withServerAndLocal({ tls: await serverTls(), handshakeTimeoutMs: 2_000 }, async (server, localPort) => {
    const refusals = recordRefusals(server);
    for (const [what, tlsOptions] of [
      ['a wrong pin', { fingerprint: certs.selfSignedServer.fingerprint }],
      ['an unrelated CA', { ca: certs.otherCa.cert }],
    ] as const) {
      const before = refusals.length;
      await rejectsWith(clientOf(server, localPort, { tls: tlsOptions }), 'tls');
      await untilEqual(() => server.stats(), ZERO, `${what}: the server to hold nothing`);
      await untilEqual(() => refusals.length, before + 1, `${what}: the server to report the handshake`);
      const event = refusals.at(-1);
      assertRefusedEvent(event, 'control', 'tls-failed');
      assert.match(
        event?.message ?? '',
        /hung up/,
        `${what}: noticed as a hang-up, not at the deadline: ${event?.message}`,
      );
    }
  });
});

// ---------------------------------------------------------------------------------------
// 10. A handshake that never completes.

test('a TLS handshake that never completes (only the byte 0x16) is closed at the handshake timeout and reported as tls-failed', async () => {
  await withServerAndLocal({ tls: await serverTls(), handshakeTimeoutMs: 300 }, async (server) => {
    const refusals = recordRefusals(server);
    for (const [kind, port] of [
      ['control', server.controlPort],
      ['data', server.dataPort],
    ] as const) {
      const raw = await openRaw(port);
      try {
        raw.send('\x16'); // the first byte of a TLS handshake record, and nothing after it
        // The server closes it (we never do): no line, just the close.
        await within(assertClosedByServer(raw), 10_000, `${kind}: the server to close the connection`);
      } finally {
        raw.socket.destroy();
      }
      await untilEqual(() => refusals.length, kind === 'control' ? 1 : 2, `${kind}: the server to report it`);
      assertRefusedEvent(refusals.at(-1), kind, 'tls-failed');
    }
    await untilEqual(() => server.stats(), ZERO, 'the server to hold nothing');
  });
});

test('closing a client whose TLS handshake hangs ends it at once: start() rejects with closed, close() does not wait for the drain', async () => {
  // A server that accepts TCP and never answers the ClientHello.
  let connected = 0;
  const silent = await listenLocal(() => connected++);
  try {
    const client = new BurrowClient({
      tunnels: [{ localPort: 1 }],
      server: HOST,
      controlPort: silent.port,
      dataPort: silent.port,
      tls: true,
      connectTimeoutMs: 60_000,
      shutdownTimeoutMs: 60_000,
    });
    const failure = rejectsWith(client.start(), 'closed');
    await untilEqual(() => connected, 1, 'the client to connect');
    // A drain of 60 s would make this time out: the dialing sockets must be cut instead.
    await within(client.close(), 10_000, 'close() during the TLS handshake');
    await within(failure, 10_000, 'start() to reject');
  } finally {
    await silent.close();
  }
});

// ---------------------------------------------------------------------------------------
// 11. The names in the server's certificate, and what the client says when its host is
//     not among them (a CA file cannot fix that; --tls-name or a pin can).

/** Asserts the message of a name mismatch for `host`: which names the certificate has and
 * what works, and no --tls-ca (the CA is not the problem). */
function assertNameMismatch(message: string, host: string, names: string): void {
  for (const part of [
    `the server's certificate does not name ${host} (it names ${names})`,
    'connect to one of those names (`server`)',
    `restart the server with \`names\` ${host}`,
    '`tls.fingerprint`',
  ]) {
    assert.ok(message.includes(part), `${JSON.stringify(part)} in: ${message}`);
  }
  assert.doesNotMatch(message, /`tls.ca`/, message);
  assert.doesNotMatch(message, /cannot verify/, message);
}

test('a certificate made with --tls-name names (loadOrCreateCertificate) serves a client trusting it: tunnel byte-exact', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'burrow-tls-names-'));
  try {
    const stored = await loadOrCreateCertificate(dir, ['relay.test', '203.0.113.7']);
    assert.deepEqual(stored.names, ['relay.test', '203.0.113.7', 'localhost', '127.0.0.1', '::1']);
    await withServerAndLocal({ tls: { cert: stored.cert, key: stored.key } }, async (server, localPort) => {
      // 127.0.0.1 is always among the names; relay.test is checked in test/tls-files.test.ts
      // (the client cannot be told to check a name other than the one it connects to).
      await assertTunnelWorks(server, localPort, { tls: { ca: stored.cert } }, 'CA = the certificate itself', 61);
      await assertTunnelWorks(server, localPort, { tls: { fingerprint: stored.fingerprint } }, 'pinned', 62);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a certificate that does not name the address connected to: code tls, its names, --tls-name or a pin, not --tls-ca; a pin then works', async () => {
  const relay = await selfSignedFor(['relay.test', '203.0.113.7']);
  await withServerAndLocal({ tls: { cert: relay.cert, key: relay.key } }, async (server, localPort) => {
    const refusals = recordRefusals(server);
    const error = await rejectsWith(clientOf(server, localPort, { tls: { ca: relay.cert } }), 'tls');
    assertNameMismatch(error.message, HOST, 'relay.test, 203.0.113.7');
    assert.match(error.message, /^cannot connect to .*127\.0\.0\.1:\d+: /, error.message);
    // A pin does not check names: the same certificate is accepted by its fingerprint.
    await assertTunnelWorks(
      server,
      localPort,
      { tls: { fingerprint: relay.fingerprint } },
      'pinned despite the names',
      63,
    );
    // A pin with the CA checks both, so the name still fails.
    const both = await rejectsWith(
      clientOf(server, localPort, { tls: { ca: relay.cert, fingerprint: relay.fingerprint } }),
      'tls',
    );
    assertNameMismatch(both.message, HOST, 'relay.test, 203.0.113.7');
    await untilEqual(() => server.stats(), ZERO, 'the server to hold nothing');
    assert.ok(
      refusals.every((event) => event.reason === 'tls-failed'),
      refusals.map((event) => event.reason).join(),
    );
  });
});

test('a certificate that does not name the host name connected to (localhost): the same advice, with its names', async () => {
  const relay = await selfSignedFor(['relay.test', '2001:db8::7']);
  await withServerAndLocal({ tls: { cert: relay.cert, key: relay.key } }, async (server, localPort) => {
    const error = await rejectsWith(
      clientOf(server, localPort, { server: 'localhost', tls: { ca: relay.cert } }),
      'tls',
    );
    assertNameMismatch(error.message, 'localhost', 'relay.test, 2001:db8::7');
  });
});

test('an address is checked as itself: a certificate for localhost alone does not do for 127.0.0.1, one for 127.0.0.1 alone does', async () => {
  const localhostOnly = await selfSignedFor(['localhost']);
  await withServerAndLocal({ tls: { cert: localhostOnly.cert, key: localhostOnly.key } }, async (server, localPort) => {
    const error = await rejectsWith(clientOf(server, localPort, { tls: { ca: localhostOnly.cert } }), 'tls');
    assertNameMismatch(error.message, HOST, 'localhost');
  });
  const addressOnly = await selfSignedFor([HOST]);
  await withServerAndLocal({ tls: { cert: addressOnly.cert, key: addressOnly.key } }, async (server, localPort) => {
    await assertTunnelWorks(
      server,
      localPort,
      { tls: { ca: addressOnly.cert } },
      'a certificate for 127.0.0.1 alone',
      64,
    );
  });
});

test('a certificate with no names at all (only a common name that is no host name): says so, and offers --tls-name and a pin', async () => {
  const nameless = await selfSignedFor([], { commonName: 'burrow test relay' });
  await withServerAndLocal({ tls: { cert: nameless.cert, key: nameless.key } }, async (server, localPort) => {
    const error = await rejectsWith(clientOf(server, localPort, { tls: { ca: nameless.cert } }), 'tls');
    assert.match(
      error.message,
      /: the server's certificate does not name 127\.0\.0\.1 \(it names no host at all\): restart the server with `names` 127\.0\.0\.1 \(or give it a certificate that names 127\.0\.0\.1\) or pin the certificate with `tls\.fingerprint` \(a pin alone does not check names\)$/,
      error.message,
    );
  });
});

test('the other certificate failures keep their own advice: an unknown issuer → --tls-ca or a pin; expired or not yet valid → a new certificate or the clock', async () => {
  const certs = await testCerts();
  await withServerAndLocal({ tls: await serverTls() }, async (server, localPort) => {
    const unknown = await rejectsWith(clientOf(server, localPort, { tls: { ca: certs.otherCa.cert } }), 'tls');
    assert.match(
      unknown.message,
      /cannot verify the server's certificate \(.+\): trust its CA with `tls\.ca`, or pin it with `tls\.fingerprint`$/,
      unknown.message,
    );
    const selfSigned = await rejectsWith(
      clientOf(server, localPort, { tls: { ca: certs.selfSignedServer.cert } }),
      'tls',
    );
    assert.match(
      selfSigned.message,
      /cannot verify the server's certificate .*`tls\.ca`.*`tls\.fingerprint`/,
      selfSigned.message,
    );
  });
  const names = ['localhost', '127.0.0.1', '::1'];
  const expired = await selfSignedFor(names, { fromDays: -60, toDays: -30 });
  await withServerAndLocal({ tls: { cert: expired.cert, key: expired.key } }, async (server, localPort) => {
    const error = await rejectsWith(clientOf(server, localPort, { tls: { ca: expired.cert } }), 'tls');
    assert.match(
      error.message,
      /the server's certificate has expired \(.+\): the server needs a new one, or this machine's clock is wrong$/,
      error.message,
    );
    assert.doesNotMatch(error.message, /`tls\.ca`/, error.message);
  });
  const early = await selfSignedFor(names, { fromDays: 30, toDays: 60 });
  await withServerAndLocal({ tls: { cert: early.cert, key: early.key } }, async (server, localPort) => {
    const error = await rejectsWith(clientOf(server, localPort, { tls: { ca: early.cert } }), 'tls');
    assert.match(
      error.message,
      /the server's certificate is not valid yet \(.+\): check the clocks of this machine and the server$/,
      error.message,
    );
    assert.doesNotMatch(error.message, /`tls\.ca`/, error.message);
  });
});

test('tlsFailure on a name mismatch as Node reports it: IPv6 names shortened, quoted names read, no certificate at all', async () => {
  const relay = await selfSignedFor(['relay.test', '2001:db8::7', '127.0.0.1']);
  const peer = new X509Certificate(relay.cert).toLegacyObject();
  const mismatch = tls.checkServerIdentity('relay.example.com', peer);
  assert.ok(mismatch);
  const failure = tlsFailure(mismatch, 'cannot connect to the burrow server at relay.example.com:7835');
  assert.ok(failure);
  assert.equal(failure.code, 'tls');
  assert.equal(failure.cause, mismatch);
  assert.equal(
    failure.message,
    "cannot connect to the burrow server at relay.example.com:7835: the server's certificate does not name relay.example.com (it names relay.test, 2001:db8::7, 127.0.0.1): " +
      'connect to one of those names (`server`), restart the server with `names` relay.example.com (or give it a certificate that names relay.example.com), ' +
      'or pin the certificate with `tls.fingerprint` (a pin alone does not check names)',
  );
  const quoted = tls.checkServerIdentity('relay.example.com', {
    ...peer,
    subjectaltname: 'DNS:"odd,name.test", IP Address:2001:DB8:0:0:0:0:0:7',
  });
  assert.match(tlsFailure(quoted, 'x')?.message ?? '', /\(it names odd,name\.test, 2001:db8::7\)/);
  // An error of that code without its host and certificate still gets the right advice.
  const bare = Object.assign(new Error("Hostname/IP does not match certificate's altnames"), {
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
  });
  assert.equal(
    tlsFailure(bare, 'x')?.message,
    "x: the server's certificate does not name the host we connected to (it names no host at all): " +
      'restart the server with `names` <host> (or give it a certificate that names that host) or pin the certificate with `tls.fingerprint` (a pin alone does not check names)',
  );
});
