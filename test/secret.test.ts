// The shared secret (docs/SECURITY.md), with real sockets on loopback: a right secret
// carries bytes exactly; a wrong, missing or unexpected one is refused at once with a
// clear reason on both sides and leaves nothing behind; the raw control exchange (AUTH,
// CHALLENGE, PROOF) and the data proofs (`ID <id> <proof>`) hold against the obvious
// attacks (no proof, wrong proof, a proof of the other kind, a replayed handshake, PINGs
// to stretch the deadline); the secret itself never crosses the wire; a reconnecting
// client stops on a secret that no longer matches; and a non-ASCII secret is a UTF-8 key.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import {
  BurrowError,
  startClient,
  startServer,
  type BurrowClient,
  type BurrowServer,
  type ClientOptions,
  type RefusedEvent,
  type ServerStats,
  type TraceEvent,
} from '../index.ts';
import { controlProof, dataProof } from '../shared/secret.ts';
import {
  assertSameBytes,
  echo,
  HOST,
  listenLocal,
  pseudoRandomBytes,
  request,
  startRig,
  untilEqual,
  within,
} from './helpers.ts';
import { Inbox, openInbox } from './inbox.ts';
import {
  assertClosedByServer,
  assertRefused,
  errReason,
  expose,
  exposeAndVisit,
  openControl,
  openRaw,
  rejectsWith,
  withServer,
  type Raw,
} from './raw.ts';
import { MAX_WARM } from '../client/warm-data.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SECRET = 'a long random test secret: 3f9c1e7a52d8b604';
/** base64url of 32 bytes: what a nonce and every proof look like on the wire. */
const TOKEN_43 = /^[A-Za-z0-9_-]{43}$/;
const EMPTY_SERVER: ServerStats = {
  clients: 0,
  clientAddresses: 0,
  tunnels: 0,
  leasedPorts: 0,
  ports: 0,
  pendingVisitors: 0,
  sockets: 0,
};

// ---------------------------------------------------------------------------------------
// Local helpers

/** Every 'refused' event of `server`, in order. */
function recordRefusals(server: BurrowServer): RefusedEvent[] {
  const refusals: RefusedEvent[] = [];
  server.on('refused', (event) => refusals.push(event));
  return refusals;
}

/** Sends AUTH, checks the CHALLENGE, answers it with the proof for `secret`; returns the
 * nonce and the server's answer to PROOF. */
async function answerChallenge(raw: Raw, secret: string): Promise<{ nonce: string; reply: string }> {
  raw.send('AUTH\n');
  const challenge = await raw.reader.line();
  const match = /^CHALLENGE (\S+)$/.exec(challenge);
  assert.ok(match, `AUTH answered ${JSON.stringify(challenge)}`);
  const nonce = match[1] ?? '';
  assert.match(nonce, TOKEN_43, 'the nonce is 32 bytes, base64url');
  raw.send(`PROOF ${controlProof(secret, nonce)}\n`);
  return { nonce, reply: await raw.reader.line() };
}

/** A raw control connection to `server`, authenticated with `secret`. */
async function authenticatedRaw(server: BurrowServer, secret: string, sockets: net.Socket[]): Promise<Raw> {
  const raw = await openControl(server.controlPort);
  sockets.push(raw.socket);
  const { reply } = await answerChallenge(raw, secret);
  assert.equal(reply, 'OK', 'the right proof is accepted');
  return raw;
}

/** Every remaining line of `raw` until the server closes it (at most `max`). */
async function linesUntilClosed(raw: Raw, max = 10): Promise<string[]> {
  const lines: string[] = [];
  for (let i = 0; i < max; i++) {
    const line = await raw.reader.next();
    if (line === null) return lines;
    lines.push(line);
  }
  assert.fail(`more than ${max} lines and the connection is still open: ${JSON.stringify(lines)}`);
}

interface Recording {
  /** Bytes the client sent, chunk by chunk. */
  fromClient: Buffer[];
  /** Bytes the server sent. */
  fromServer: Buffer[];
}

interface RecordingProxy {
  port: number;
  /** One recording per accepted connection, in order of arrival. */
  recordings: Recording[];
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1:0 to `targetPort` that records every byte in both directions
 * (half-closes carried). */
async function startRecordingProxy(targetPort: number): Promise<RecordingProxy> {
  const sockets = new Set<net.Socket>();
  const recordings: Recording[] = [];
  const own = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  };
  const server = net.createServer({ allowHalfOpen: true }, (inbound) => {
    const recording: Recording = { fromClient: [], fromServer: [] };
    recordings.push(recording);
    const outbound = net.connect({ host: HOST, port: targetPort, allowHalfOpen: true });
    own(inbound);
    own(outbound);
    inbound.on('data', (chunk: Buffer) => recording.fromClient.push(chunk));
    outbound.on('data', (chunk: Buffer) => recording.fromServer.push(chunk));
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    recordings,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The lines of a recorded byte stream (protocol lines are ASCII; payload bytes after
 * them come out as latin1 garbage, which no line pattern here matches). */
function linesOf(chunks: Buffer[]): string[] {
  return Buffer.concat(chunks).toString('latin1').split('\n');
}

/** Starts a client that must be refused: returns the rejection (code `refused`, `reason`),
 * which must come within 10 s although the client's own deadline is 60 s. A client that
 * starts anyway is destroyed. */
async function refusedStart(options: ClientOptions, reason: string): Promise<BurrowError> {
  const starting = startClient({ ...options, connectTimeoutMs: 60_000 });
  const cleanup = starting.then(
    (client) => client.destroy(),
    () => undefined,
  );
  try {
    return await rejectsWith(within(starting, 10_000, `startClient to be refused (${reason})`), 'refused', reason);
  } finally {
    await within(cleanup, 10_000, 'a wrongly started client to close').catch(() => undefined);
  }
}

/** HMAC-SHA256 with the UTF-8 bytes of `secret` as key, computed here independently of
 * shared/secret.ts. */
function independentProof(secret: string, message: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(message, 'utf8').digest('base64url');
}

/** A visitor socket read through an Inbox, with a count of every byte it received and
 * whether it has ended (attach before any byte can arrive). */
class Inboxed {
  received = 0;
  ended = false;
  readonly inbox: Inbox;

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => (this.received += chunk.length));
    socket.once('end', () => (this.ended = true));
    socket.once('close', () => (this.ended = true));
    this.inbox = new Inbox(socket);
  }
}

// ---------------------------------------------------------------------------------------
// 1. The right secret

test('right secret: a 1 MiB pseudo-random payload echoes byte-exact both ways through an authenticated tunnel (half-close carried)', async () => {
  const rig = await startRig(echo, { server: { secret: SECRET }, client: { secret: SECRET } });
  try {
    const refusals = recordRefusals(rig.server);
    const payload = pseudoRandomBytes(MiB, 51);
    // request() half-closes after sending and reads until the echo's FIN: both half-closes
    // must be carried for it to return.
    assertSameBytes(await request(rig.publicPort, payload, 30_000), payload, 'the 1 MiB echo');
    const second = pseudoRandomBytes(MiB, 52);
    assertSameBytes(
      await request(rig.publicPort, second, 30_000),
      second,
      'a second 1 MiB echo on a new visitor connection',
    );
    assert.deepEqual(refusals, [], 'the server refused nothing');
  } finally {
    await rig.close();
  }
});

// ---------------------------------------------------------------------------------------
// 2. Wrong, missing and unexpected secrets

const MISMATCHES: Array<{
  name: string;
  server: string | undefined;
  client: string | undefined;
  reason: string;
  says: string;
}> = [
  {
    name: 'wrong secret',
    server: SECRET,
    client: 'not the secret',
    reason: 'auth-failed',
    says: 'rejected our secret',
  },
  {
    name: 'missing secret (the client has none)',
    server: SECRET,
    client: undefined,
    reason: 'auth-required',
    says: 'the server requires a secret',
  },
  {
    name: 'unexpected secret (the server has none)',
    server: undefined,
    client: SECRET,
    reason: 'auth-disabled',
    says: 'the server has no secret, but this client was given one',
  },
];

for (const mismatch of MISMATCHES) {
  test(`${mismatch.name}: startClient is refused at once with ${mismatch.reason} and the advice; the server reports it and holds nothing after`, async () => {
    const local = await listenLocal(echo);
    const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, secret: mismatch.server });
    try {
      const refusals = recordRefusals(server);
      const error = await refusedStart(
        {
          tunnels: [{ localPort: local.port }],
          server: HOST,
          localHost: HOST,
          controlPort: server.controlPort,
          dataPort: server.dataPort,
          secret: mismatch.client,
        },
        mismatch.reason,
      );
      assert.ok(error.message.includes(mismatch.says), `the client's message: ${error.message}`);
      assert.ok(error.message.includes(`(${mismatch.reason}`), `the message names the reason: ${error.message}`);
      // The server emits 'refused' before it sends the ERR line the client has just read.
      assert.equal(refusals.length, 1, JSON.stringify(refusals));
      const [refusal] = refusals;
      assert.equal(refusal?.reason, mismatch.reason);
      assert.match(refusal?.conn ?? '', /^control#[0-9]+$/);
      assert.match(refusal?.address ?? '', /^127\.0\.0\.1:[0-9]+$/);
      assert.notEqual(refusal?.message ?? '', '');
      await untilEqual(
        () => server.stats(),
        EMPTY_SERVER,
        'the server holds no client, tunnel or socket after the refusal',
      );
    } finally {
      await server.close();
      await local.close();
    }
  });
}

// ---------------------------------------------------------------------------------------
// 3. The raw control exchange

test('raw control, secret server: AUTH gets CHALLENGE <43-char nonce>, the right PROOF gets OK, then EXPOSE opens a tunnel that works', async () => {
  await withServer({ secret: SECRET }, async (server, sockets) => {
    const raw = await authenticatedRaw(server, SECRET, sockets);
    const { id, visitor } = await exposeAndVisit(raw);
    sockets.push(visitor);
    assert.equal(server.stats().tunnels, 1);
    assert.equal(server.stats().pendingVisitors, 1);
    assert.ok(id.length > 0);
    raw.send('PING\n');
    assert.equal(await raw.reader.line(), 'PONG', 'the authenticated connection keeps serving');
  });
});

test('raw control, secret server: EXPOSE before authenticating (or after AUTH, without PROOF) → ERR auth-required and the server closes', async () => {
  await withServer({ secret: SECRET }, async (server) => {
    const refusals = recordRefusals(server);
    await assertRefused(server.controlPort, 'EXPOSE 3000\n', 'auth-required', 'EXPOSE as the first line');
    const raw = await openControl(server.controlPort);
    try {
      raw.send('AUTH\n');
      assert.match(await raw.reader.line(), /^CHALLENGE /);
      raw.send('EXPOSE 3000\n');
      assert.equal(errReason(await raw.reader.line()), 'auth-required', 'EXPOSE between CHALLENGE and PROOF');
      await assertClosedByServer(raw);
    } finally {
      raw.socket.destroy();
    }
    assert.deepEqual(
      refusals.map((r) => r.reason),
      ['auth-required', 'auth-required'],
    );
    await untilEqual(() => server.stats(), EMPTY_SERVER, 'no tunnel was opened');
  });
});

test('raw control, secret server: PROOF before AUTH → ERR auth-required and the server closes', async () => {
  await withServer({ secret: SECRET }, async (server) => {
    // A proof that would be right for some nonce: without a CHALLENGE it proves nothing.
    await assertRefused(
      server.controlPort,
      `PROOF ${controlProof(SECRET, 'x'.repeat(43))}\n`,
      'auth-required',
      'PROOF as the first line',
    );
    await untilEqual(() => server.stats(), EMPTY_SERVER, 'nothing held');
  });
});

test('raw control, secret server: a wrong PROOF (another secret, or garbage) → ERR auth-failed and the server closes; one try per connection', async () => {
  await withServer({ secret: SECRET }, async (server) => {
    const refusals = recordRefusals(server);
    for (const [what, proofOf] of [
      ['a proof made with another secret', (nonce: string) => controlProof(`${SECRET}x`, nonce)],
      ['a proof of the right length but made up', () => 'A'.repeat(43)],
      ['a short proof', () => 'abc'],
    ] as const) {
      const raw = await openControl(server.controlPort);
      try {
        raw.send('AUTH\n');
        const match = /^CHALLENGE (\S+)$/.exec(await raw.reader.line());
        assert.ok(match, what);
        // The right proof right after the wrong one: too late, the connection is condemned.
        raw.send(`PROOF ${proofOf(match[1] ?? '')}\nPROOF ${controlProof(SECRET, match[1] ?? '')}\nEXPOSE 3000\n`);
        const lines = await linesUntilClosed(raw);
        assert.equal(lines.length, 1, `${what}: ${JSON.stringify(lines)}`);
        assert.equal(errReason(lines[0] ?? ''), 'auth-failed', what);
        await within(raw.closed, 5_000, 'the socket to close');
      } finally {
        raw.socket.destroy();
      }
    }
    assert.deepEqual(
      refusals.map((r) => r.reason),
      ['auth-failed', 'auth-failed', 'auth-failed'],
    );
    await untilEqual(() => server.stats(), EMPTY_SERVER, 'no tunnel was opened');
  });
});

test('raw control, secret server: a second AUTH is refused (after OK, and before PROOF) and the server closes', async () => {
  await withServer({ secret: SECRET }, async (server, sockets) => {
    const authenticated = await authenticatedRaw(server, SECRET, sockets);
    authenticated.send('AUTH\n');
    assert.equal(errReason(await authenticated.reader.line()), 'auth-required', 'AUTH after OK');
    await assertClosedByServer(authenticated);

    const twice = await openControl(server.controlPort);
    sockets.push(twice.socket);
    twice.send('AUTH\n');
    assert.match(await twice.reader.line(), /^CHALLENGE /);
    twice.send('AUTH\n'); // asking for a fresh nonce (another guess) on the same connection
    assert.equal(errReason(await twice.reader.line()), 'auth-required', 'AUTH twice before PROOF');
    await assertClosedByServer(twice);
  });
});

test('raw control, secret server: two connections get different nonces, and a proof for one nonce fails on the other connection', async () => {
  await withServer({ secret: SECRET }, async (server, sockets) => {
    const first = await openControl(server.controlPort);
    const second = await openControl(server.controlPort);
    sockets.push(first.socket, second.socket);
    first.send('AUTH\n');
    second.send('AUTH\n');
    const nonces = [await first.reader.line(), await second.reader.line()].map((line) => {
      const match = /^CHALLENGE (\S+)$/.exec(line);
      assert.ok(match, line);
      assert.match(match[1] ?? '', TOKEN_43);
      return match[1] ?? '';
    });
    const [firstNonce = '', secondNonce = ''] = nonces;
    assert.notEqual(firstNonce, secondNonce, 'each connection gets a fresh nonce');
    // The proof for the first connection's nonce, on the second connection.
    second.send(`PROOF ${controlProof(SECRET, firstNonce)}\n`);
    assert.equal(errReason(await second.reader.line()), 'auth-failed');
    await assertClosedByServer(second);
    // The first connection still authenticates with its own nonce.
    first.send(`PROOF ${controlProof(SECRET, firstNonce)}\n`);
    assert.equal(await first.reader.line(), 'OK');
    assert.match(String(await expose(first, 1)), /^[0-9]+$/);
  });
});

test('raw control, secret server: PINGs before authenticating get PONGs but do not extend the deadline: ERR timeout', async () => {
  await withServer({ secret: SECRET, handshakeTimeoutMs: 300 }, async (server, sockets) => {
    const raw = await openControl(server.controlPort);
    sockets.push(raw.socket);
    raw.send('AUTH\n');
    assert.match(await raw.reader.line(), /^CHALLENGE /);
    // Keep the connection busy: a PING every time a PONG arrives. Were the deadline
    // re-armed by each line, this would go on until MAX_PINGS (or the 10 s guard).
    const MAX_PINGS = 200_000;
    let pongs = 0;
    let last: string | null = null;
    await within(
      (async () => {
        raw.send('PING\n');
        for (let i = 0; i < MAX_PINGS; i++) {
          last = await raw.reader.next();
          if (last !== 'PONG') return;
          pongs++;
          raw.send('PING\n');
        }
      })(),
      10_000,
      'the unauthenticated connection to time out while it PINGs',
    );
    assert.ok(pongs > 0, 'the PINGs were answered');
    assert.ok(pongs < MAX_PINGS, `the connection was still open after ${pongs} PINGs`);
    assert.ok(last !== null, 'the server closed without a line');
    assert.equal(errReason(last ?? ''), 'timeout', `the line that ended the PINGs: ${JSON.stringify(last)}`);
    await assertClosedByServer(raw);
    await untilEqual(() => server.stats(), EMPTY_SERVER, 'nothing held');
  });
});

test('raw control, secret server: the authentication deadline runs from connecting, not from the first byte (a late first byte buys no time)', async () => {
  // Three servers, three deadlines, used as clocks (no sleeping): K times out a silent
  // connection at 200 ms, S (the one under test) must have its connection authenticated
  // 400 ms after connecting, R times out a silent connection at 500 ms. The connection to S
  // sends its first byte (AUTH) only when K's deadline has passed, then PINGs; it must be
  // cut at ~400 ms, before R's deadline, not at ~200 + 400 ms.
  const sockets: net.Socket[] = [];
  const servers = [
    await startServer({ controlPort: 0, dataPort: 0, bind: HOST, secret: SECRET, handshakeTimeoutMs: 400 }),
    await startServer({ controlPort: 0, dataPort: 0, bind: HOST, handshakeTimeoutMs: 200 }),
    await startServer({ controlPort: 0, dataPort: 0, bind: HOST, handshakeTimeoutMs: 500 }),
  ];
  try {
    const [s, k, r] = servers;
    assert.ok(s && k && r);
    const late = await openRaw(s.controlPort);
    const early = await openRaw(k.controlPort);
    const reference = await openRaw(r.controlPort);
    sockets.push(late.socket, early.socket, reference.socket);
    let referenceDone = false;
    const referenceLine = reference.reader.next(10_000).then((line) => {
      referenceDone = true;
      return line;
    });
    assert.equal(errReason(await early.reader.line()), 'timeout', 'the 200 ms clock');
    late.send('AUTH\n');
    assert.match(await late.reader.line(), /^CHALLENGE /);
    let last: string | null = null;
    await within(
      (async () => {
        late.send('PING\n');
        for (let i = 0; i < 200_000; i++) {
          last = await late.reader.next();
          if (last !== 'PONG') return;
          late.send('PING\n');
        }
      })(),
      10_000,
      'the late connection to time out',
    );
    const referenceEndedFirst = referenceDone;
    assert.equal(errReason((await referenceLine) ?? ''), 'timeout', 'the 500 ms clock');
    assert.equal(errReason(last ?? ''), 'timeout', JSON.stringify(last));
    assert.equal(
      referenceEndedFirst,
      false,
      'the connection to S was still open after the 500 ms clock: its 400 ms deadline started at its first byte',
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    for (const server of servers) await server.close();
  }
});

// ---------------------------------------------------------------------------------------
// 4. Replay

test('replay: the exact bytes a real client sent on its control connection, replayed on a new connection, get CHALLENGE then ERR auth-failed, never OK', async () => {
  const local = await listenLocal(echo);
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, secret: SECRET });
  const proxy = await startRecordingProxy(server.controlPort);
  let client: BurrowClient | undefined;
  const sockets: net.Socket[] = [];
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: HOST,
      localHost: HOST,
      controlPort: proxy.port,
      dataPort: server.dataPort,
      secret: SECRET,
    });
    assert.equal(proxy.recordings.length, 1, 'one control connection went through the proxy');
    const [recording] = proxy.recordings;
    assert.ok(recording);
    const sent = Buffer.concat(recording.fromClient);
    // The recording is a genuine, accepted handshake: HELLO, AUTH, the right proof for the
    // nonce the server chose then, and an EXPOSE that was answered OK.
    const clientLines = linesOf(recording.fromClient);
    const serverLines = linesOf(recording.fromServer);
    assert.match(serverLines[0] ?? '', /^HELLO /);
    const recordedNonce = /^CHALLENGE (\S+)$/.exec(serverLines[1] ?? '')?.[1] ?? '';
    assert.match(recordedNonce, TOKEN_43, JSON.stringify(serverLines));
    assert.deepEqual(clientLines.slice(1, 4), [
      'AUTH',
      `PROOF ${controlProof(SECRET, recordedNonce)}`,
      `EXPOSE ${local.port}`,
    ]);
    assert.equal(serverLines[2], 'OK');
    assert.match(serverLines[3] ?? '', /^OK [0-9]+ /);
    assert.equal(server.stats().tunnels, 1);

    const replay = await openRaw(server.controlPort);
    sockets.push(replay.socket);
    replay.socket.write(sent);
    const lines = await linesUntilClosed(replay);
    assert.equal(lines.length, 3, JSON.stringify(lines));
    const nonce = /^CHALLENGE (\S+)$/.exec(lines[1] ?? '')?.[1] ?? '';
    assert.match(nonce, TOKEN_43, JSON.stringify(lines));
    assert.notEqual(nonce, recordedNonce, 'the replayed connection gets a new nonce');
    assert.equal(errReason(lines[2] ?? ''), 'auth-failed', JSON.stringify(lines));
    assert.ok(!lines.some((line) => line.startsWith('OK')), `the replay was accepted: ${JSON.stringify(lines)}`);
    assert.equal(server.stats().tunnels, 1, 'the replay opened no tunnel');
    // The real client is untouched.
    const payload = pseudoRandomBytes(64 * KiB, 41);
    assertSameBytes(
      await request(client.tunnels[0]?.publicPort ?? 0, payload),
      payload,
      'the real client after the replay',
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    await client?.close();
    await proxy.close();
    await server.close();
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// 5. Data proofs

test('data port, secret server: ID without a proof, with a wrong proof, or with a control proof is refused and leaves the visitor waiting untouched; the right data proof joins it', async () => {
  await withServer({ secret: SECRET, visitorTimeoutMs: 30_000 }, async (server, sockets) => {
    const control = await authenticatedRaw(server, SECRET, sockets);
    const { id, visitor } = await exposeAndVisit(control);
    sockets.push(visitor);
    const visitorInbox = new Inboxed(visitor);
    const refusals = recordRefusals(server);
    const attempts: Array<[string, string, string]> = [
      ['no proof', `ID ${id}\n`, 'auth-required'],
      ['a proof made with another secret', `ID ${id} ${dataProof(`${SECRET}x`, id)}\n`, 'auth-failed'],
      [
        'the control proof over the id instead of the data proof',
        `ID ${id} ${controlProof(SECRET, id)}\n`,
        'auth-failed',
      ],
      ['the data proof of another id', `ID ${id} ${dataProof(SECRET, `${id}x`)}\n`, 'auth-failed'],
      ['a made-up proof', `ID ${id} ${'A'.repeat(43)}\n`, 'auth-failed'],
    ];
    for (const [what, line, reason] of attempts) {
      await assertRefused(server.dataPort, line, reason, what);
      assert.equal(server.stats().pendingVisitors, 1, `${what}: the visitor is still waiting`);
      assert.equal(visitorInbox.received, 0, `${what}: the visitor received bytes`);
      assert.equal(visitorInbox.ended, false, `${what}: the visitor was closed`);
    }
    assert.deepEqual(
      refusals.map((r) => [r.reason, /^data#[0-9]+$/.test(r.conn)]),
      attempts.map(([, , reason]) => [reason, true]),
      'each refusal is reported',
    );

    const data = await openInbox(server.dataPort);
    sockets.push(data.socket);
    data.socket.write(`ID ${id} ${dataProof(SECRET, id)}\n`);
    assert.equal(await data.line(), 'OK', 'the right data proof');
    assert.equal(server.stats().pendingVisitors, 0);
    const up = pseudoRandomBytes(128 * KiB, 61);
    const down = pseudoRandomBytes(128 * KiB, 62);
    visitor.write(up);
    data.socket.write(down);
    assertSameBytes(await data.take(up.length), up, 'visitor → data connection');
    assertSameBytes(await visitorInbox.inbox.take(down.length), down, 'data connection → visitor');
  });
});

test('data port, open server: ID with a proof → ERR auth-disabled; the visitor keeps waiting and joins on a plain ID', async () => {
  await withServer({ visitorTimeoutMs: 30_000 }, async (server, sockets) => {
    const refusals = recordRefusals(server);
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const { id, visitor } = await exposeAndVisit(control);
    sockets.push(visitor);
    const visitorInbox = new Inboxed(visitor);
    await assertRefused(server.dataPort, `ID ${id} ${dataProof(SECRET, id)}\n`, 'auth-disabled', 'ID with a proof');
    assert.equal(server.stats().pendingVisitors, 1, 'the visitor is still waiting');
    assert.equal(visitorInbox.received, 0);
    assert.deepEqual(
      refusals.map((r) => r.reason),
      ['auth-disabled'],
    );
    const data = await openInbox(server.dataPort);
    sockets.push(data.socket);
    data.socket.write(`ID ${id}\n`);
    assert.equal(await data.line(), 'OK');
    data.socket.write('hello');
    assert.equal((await visitorInbox.inbox.take(5)).toString(), 'hello');
  });
});

// ---------------------------------------------------------------------------------------
// 6. The secret never crosses the wire

test('the secret never crosses the wire: control and data bytes (recorded by proxies) hold AUTH, PROOF and ID proofs, never the secret in any encoding', async () => {
  const secret = 'correct horse battery staple 42';
  const local = await listenLocal(echo);
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, secret });
  const controlProxy = await startRecordingProxy(server.controlPort);
  const dataProxy = await startRecordingProxy(server.dataPort);
  let client: BurrowClient | undefined;
  const VISITORS = 4;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: HOST,
      localHost: HOST,
      controlPort: controlProxy.port,
      dataPort: dataProxy.port,
      secret,
    });
    const publicPort = client.tunnels[0]?.publicPort ?? 0;
    await Promise.all(
      Array.from({ length: VISITORS }, async (_, i) => {
        const payload = pseudoRandomBytes(32 * KiB, 70 + i);
        assertSameBytes(await request(publicPort, payload), payload, `visitor ${i}`);
      }),
    );
    await client.close();
    client = undefined;

    assert.equal(controlProxy.recordings.length, 1);
    // The client's start-up check of the data port is a connection that sends nothing.
    const [check, ...dataRecordings] = dataProxy.recordings;
    assert.equal(Buffer.concat(check?.fromClient ?? []).length, 0, 'the start-up check sends nothing');
    // One data connection per visitor; those opened ahead (prewarm) and never used send nothing.
    const used = dataRecordings.filter((recording) => Buffer.concat(recording.fromClient).length > 0);
    assert.equal(used.length, VISITORS, 'one data connection per visitor');
    assert.ok(dataRecordings.length <= VISITORS + MAX_WARM, `${dataRecordings.length} data connections`);
    const forbidden = new Map<string, Buffer>([
      ['utf8', Buffer.from(secret, 'utf8')],
      ['base64', Buffer.from(Buffer.from(secret, 'utf8').toString('base64'))],
      ['base64url', Buffer.from(Buffer.from(secret, 'utf8').toString('base64url'))],
      ['hex', Buffer.from(Buffer.from(secret, 'utf8').toString('hex'))],
      ['HEX', Buffer.from(Buffer.from(secret, 'utf8').toString('hex').toUpperCase())],
      ['utf16le', Buffer.from(secret, 'utf16le')],
    ]);
    for (const [kind, proxy] of [
      ['control', controlProxy],
      ['data', dataProxy],
    ] as const) {
      proxy.recordings.forEach((recording, i) => {
        const sent = Buffer.concat(recording.fromClient);
        for (const [encoding, bytes] of forbidden) {
          assert.equal(sent.indexOf(bytes), -1, `${kind} connection ${i} carries the secret (${encoding})`);
        }
      });
    }

    // What did cross: a control handshake whose proof answers the nonce ...
    const [control] = controlProxy.recordings;
    assert.ok(control);
    const clientLines = linesOf(control.fromClient);
    const nonce = /^CHALLENGE (\S+)$/.exec(linesOf(control.fromServer)[1] ?? '')?.[1] ?? '';
    assert.match(clientLines[0] ?? '', /^HELLO /);
    assert.equal(clientLines[1], 'AUTH');
    assert.equal(clientLines[2], `PROOF ${controlProof(secret, nonce)}`);
    assert.match(clientLines[2] ?? '', /^PROOF [A-Za-z0-9_-]{43}$/);
    // ... and on each data connection an ID line whose proof is over its id.
    for (const [i, recording] of used.entries()) {
      const first = linesOf(recording.fromClient)[0] ?? '';
      const match = /^ID ([A-Za-z0-9_-]+) ([A-Za-z0-9_-]{43})$/.exec(first);
      assert.ok(match, `data connection ${i} began with ${JSON.stringify(first.slice(0, 80))}`);
      assert.equal(match[2], dataProof(secret, match[1] ?? ''), `data connection ${i}: the proof is over its id`);
    }
  } finally {
    await client?.close();
    await controlProxy.close();
    await dataProxy.close();
    await server.close();
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// 7. No retry loop

test('a reconnecting client whose server comes back (same ports) with another secret stops with auth-failed instead of retrying', async () => {
  const rig = await startRig(echo, {
    server: { secret: SECRET },
    client: { secret: SECRET, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } },
  });
  let next: BurrowServer | undefined;
  const sockets: net.Socket[] = [];
  try {
    const { controlPort, dataPort } = rig.server;
    let reconnecting = 0;
    let reconnectingAfterRestart = 0;
    let restarted = false;
    let closedYet = false;
    let reconnectingAfterClose = 0;
    rig.client.on('reconnecting', () => {
      reconnecting++;
      if (restarted) reconnectingAfterRestart++;
      if (closedYet) reconnectingAfterClose++;
    });
    const closed = new Promise<BurrowError | undefined>((resolve) =>
      rig.client.once('close', (error) => {
        closedYet = true;
        resolve(error);
      }),
    );
    await rig.server.close();
    next = await startServer({
      controlPort,
      dataPort,
      bind: HOST,
      secret: `${SECRET} (rotated)`,
      handshakeTimeoutMs: 500,
    });
    restarted = true;
    const refusals = recordRefusals(next);
    const error = await within(closed, 10_000, "the client's 'close'");
    assert.ok(error instanceof BurrowError, `close carries the refusal: ${String(error)}`);
    assert.equal(error.code, 'refused', error.message);
    assert.equal(error.reason, 'auth-failed', error.message);
    assert.ok(reconnecting >= 1, 'the client did try to reconnect');
    // Only an attempt already under way when the new server came up can fail otherwise.
    assert.ok(
      reconnectingAfterRestart <= 1,
      `${reconnectingAfterRestart} retries scheduled after the new server was up`,
    );
    assert.ok(reconnecting <= 10, `${reconnecting} retries`);

    // Let more than a retry delay (100 ms) pass, measured by the new server's own
    // handshake deadline (500 ms) on a silent connection: a client still retrying would
    // have been refused again meanwhile.
    const silent = await openControl(controlPort);
    sockets.push(silent.socket);
    assert.equal(errReason(await silent.reader.line()), 'timeout');
    assert.equal(reconnectingAfterClose, 0, "'reconnecting' after 'close'");
    assert.deepEqual(
      refusals.map((r) => r.reason),
      ['auth-failed'],
      'exactly one attempt reached the new server',
    );
    await untilEqual(() => next?.stats().clients, 0, 'the new server holds no client');
  } finally {
    for (const socket of sockets) socket.destroy();
    await rig.close();
    await next?.close();
  }
});

// ---------------------------------------------------------------------------------------
// 8. A non-ASCII secret

test('a secret with non-ASCII characters works end to end, as a UTF-8 key on both sides', async () => {
  const secret = 'pässwörd-✓';
  const local = await listenLocal(echo);
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, secret });
  // The data port behind a recording proxy: the client's ID lines, proofs and all.
  const dataProxy = await startRecordingProxy(server.dataPort);
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: HOST,
      localHost: HOST,
      controlPort: server.controlPort,
      dataPort: dataProxy.port,
      secret,
    });
    const payload = pseudoRandomBytes(256 * KiB, 81);
    assertSameBytes(await request(client.tunnels[0]?.publicPort ?? 0, payload), payload, 'the echo');
    // The client's data proof is HMAC-SHA256 keyed with the secret's UTF-8 bytes.
    const idLine = linesOf(dataProxy.recordings[1]?.fromClient ?? [])[0] ?? ''; // [0]: the start-up check
    const [, id = '', proof = ''] = idLine.split(' ');
    assert.equal(proof, independentProof(secret, `burrow-data:${id}`), `the ID line ${JSON.stringify(idLine)}`);
    // The server accepts a control proof keyed with the UTF-8 bytes.
    const raw = await openControl(server.controlPort);
    try {
      raw.send('AUTH\n');
      const nonce = /^CHALLENGE (\S+)$/.exec(await raw.reader.line())?.[1] ?? '';
      raw.send(`PROOF ${independentProof(secret, `burrow-control:${nonce}`)}\n`);
      assert.equal(await raw.reader.line(), 'OK');
    } finally {
      raw.socket.destroy();
    }
  } finally {
    await client?.close();
    await dataProxy.close();
    await server.close();
    await local.close();
  }
});

test('traces hide proofs: PROOF and the proof of an ID line never reach a trace listener', async () => {
  const traces: TraceEvent[] = [];
  const rig = await startRig(echo, { server: { secret: SECRET }, client: { secret: SECRET } });
  try {
    rig.server.on('trace', (event) => traces.push(event));
    rig.client.on('trace', (event) => traces.push(event));
    assertSameBytes(await request(rig.publicPort, 'hello'), Buffer.from('hello'), 'the echo');
    const idLines = traces.filter((event) => event.text.startsWith('ID '));
    assert.equal(idLines.length, 2, 'the client sent and the server received one ID line');
    for (const event of idLines)
      assert.match(event.text, /^ID [A-Za-z0-9_-]{21} <hidden>$/, `${event.side} ${event.kind}`);
    // A fresh raw authentication, traced by the server.
    const raw = await openControl(rig.server.controlPort);
    try {
      await answerChallenge(raw, SECRET);
    } finally {
      raw.socket.destroy();
    }
    const proofs = traces.filter((event) => event.text.startsWith('PROOF'));
    assert.ok(proofs.length >= 1, 'the server traced the PROOF line');
    for (const event of proofs) assert.equal(event.text, 'PROOF <hidden>');
  } finally {
    await rig.close();
  }
});
