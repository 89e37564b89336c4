// Graceful shutdown (issue 4): SIGTERM to a `burrow server` process during a transfer (it
// finishes, exit 0; a second SIGTERM exits at once), and the library's close()/destroy()
// on both sides: GOAWAY, no new clients or visitors, joined connections finish (up to the
// shutdown timeout), destroy() at once, all idempotent.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { startClient, type BurrowClient, type ClientOptions, type ServerOptions } from '../index.ts';
import { CHILD_MS, killAll, LISTENING, lines, OPEN_RELAY_NOTICE, startCli, waitForOutput, type Cli } from './child.ts';
import { assertSameBytes, echo, HOST, listenLocal, pseudoRandomBytes, request, untilEqual, within } from './helpers.ts';
import { endingOf, openInbox, type Inbox } from './inbox.ts';
import { LineReader, openControl, probe, serverOn, untilRefused, type Raw } from './raw.ts';

// ---------------------------------------------------------------------------------------
// Local helpers

const KiB = 1024;
/** Far longer than any test: a close() that waited for it would miss its deadline. */
const LONG_MS = 60_000;

const SHUTTING_DOWN = /^burrow: shutting down: .*$/m;

/** A library client with one tunnel to `localPort` on a server's ports. */
function clientOf(
  ports: { controlPort: number; dataPort: number },
  localPort: number,
  more: Partial<ClientOptions> = {},
): Promise<BurrowClient> {
  return startClient({
    tunnels: [{ localPort }],
    server: HOST,
    localHost: HOST,
    controlPort: ports.controlPort,
    dataPort: ports.dataPort,
    ...more,
  });
}

/** A joined visitor connection through an echo tunnel, and a way to push seeded chunks
 * through it one at a time (each awaits its echo, so the transfer is paced by the test). */
interface Stream {
  inbox: Inbox;
  sent: Buffer[];
  received: Buffer[];
  /** One chunk of `size` bytes there and back, byte-exact. */
  pulse(size: number, what: string): Promise<void>;
}

async function openStream(publicPort: number): Promise<Stream> {
  const inbox = await openInbox(publicPort);
  let seed = 100;
  const stream: Stream = {
    inbox,
    sent: [],
    received: [],
    async pulse(size, what) {
      const chunk = pseudoRandomBytes(size, ++seed);
      stream.sent.push(chunk);
      inbox.socket.write(chunk);
      const back = await inbox.take(size);
      stream.received.push(back);
      assertSameBytes(back, chunk, what);
    },
  };
  await stream.pulse(4 * KiB, 'the first pulse');
  return stream;
}

/** Server + echo service + library client, for the library shutdown tests. */
async function startEchoRig(server: ServerOptions, client: Partial<ClientOptions> = {}) {
  const local = await listenLocal(echo);
  const relay = await serverOn(server);
  const burrow = await clientOf(relay, local.port, client);
  return {
    server: relay,
    client: burrow,
    publicPort: burrow.tunnels[0]?.publicPort ?? 0,
    async close(): Promise<void> {
      await burrow.destroy();
      await relay.destroy();
      await local.close();
    },
  };
}

type EchoRig = Awaited<ReturnType<typeof startEchoRig>>;

/** Runs `body` once per way a server shutdown cuts a joined connection: 'deadline' (close()
 * with a 500 ms shutdown timeout) and 'destroy'; each time on a fresh echo rig (client without
 * reconnect, its warnings ignored) with one stream open through it. */
async function eachServerCut(
  body: (mode: 'deadline' | 'destroy', rig: EchoRig, stream: Stream) => Promise<void>,
): Promise<void> {
  for (const mode of ['deadline', 'destroy'] as const) {
    const rig = await startEchoRig({ shutdownTimeoutMs: mode === 'deadline' ? 500 : LONG_MS }, { reconnect: false });
    try {
      rig.client.on('warning', () => {});
      await body(mode, rig, await openStream(rig.publicPort));
    } finally {
      await rig.close();
    }
  }
}

const ZERO = { clients: 0, clientAddresses: 0, tunnels: 0, leasedPorts: 0, ports: 0, pendingVisitors: 0, sockets: 0 };

/** Whether `promise` has settled by the time a few turns of the event loop have passed. */
async function settledYet(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
  return settled;
}

/** A hand-made server that answers the first EXPOSE with OK (and a lease) and otherwise only
 * reads: `readers` has one line reader per connection, in order; `close()` destroys them all. */
async function fakeServer(): Promise<{
  port: number;
  sockets: Set<net.Socket>;
  readers: LineReader[];
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  const readers: LineReader[] = [];
  const fake = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const reader = new LineReader(socket);
    readers.push(reader);
    // A burrow-like server: it agrees to heartbeats and GOAWAY, then opens the tunnel.
    void (async () => {
      if ((await reader.next())?.startsWith('HELLO ')) socket.write('HELLO ping goaway\n');
      if ((await reader.next())?.startsWith('EXPOSE ')) socket.write('OK 23456 AAAAAAAAAAAAAAAAAAAAA\n');
    })().catch(() => {});
  });
  fake.listen(0, HOST);
  await once(fake, 'listening');
  return {
    port: (fake.address() as net.AddressInfo).port,
    sockets,
    readers,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    },
  };
}

/** Opens a stream through `publicPort`, then destroys `side` (the server or the client) at once
 * or, in 'close-then-destroy', while its close() waits for that stream; destroy() must resolve
 * without the long wait (returning `close()`'s promise if one is in progress: `sameShutdown`)
 * and end the joined connection. Returns the stream. */
async function destroyDuringStream(
  side: { close(): Promise<void>; destroy(): Promise<void> },
  publicPort: number,
  mode: 'destroy' | 'close-then-destroy',
  sameShutdown: string,
): Promise<Stream> {
  const stream = await openStream(publicPort);
  const ending = endingOf(stream.inbox.socket);
  let closing: Promise<void> | undefined;
  if (mode === 'close-then-destroy') {
    closing = side.close();
    await stream.pulse(4 * KiB, 'while close() waits');
    assert.equal(await settledYet(closing), false, 'close() is waiting');
  }
  const destroying = side.destroy();
  if (closing) assert.equal(destroying, closing, sameShutdown);
  await within(destroying, 5_000, `${mode}: destroy() to resolve without the ${LONG_MS} ms wait`);
  await within(ending, 5_000, `${mode}: the joined connection to be closed`);
  return stream;
}

// ---------------------------------------------------------------------------------------
// The server process

/** A `burrow server` child, a library client on it exposing an echo service, and a joined
 * visitor connection through the tunnel. */
async function serverProcessWithTransfer(live: Set<Cli>) {
  const server = startCli(['server', '--bind', HOST, '--control-port', '0', '--data-port', '0'], {}, live);
  const [, control = '', data = ''] = await waitForOutput(server, 'stdout', LISTENING, 'the server to listen');
  const ports = { controlPort: Number(control), dataPort: Number(data) };
  const local = await listenLocal(echo);
  const client = await clientOf(ports, local.port);
  client.on('warning', () => {});
  const publicPort = client.tunnels[0]?.publicPort ?? 0;
  const stream = await openStream(publicPort);
  return { server, ports, local, client, publicPort, stream };
}

/** Runs `body` with a `serverProcessWithTransfer`, then closes all of it and kills the child. */
async function withServerProcess(
  body: (rig: Awaited<ReturnType<typeof serverProcessWithTransfer>>) => Promise<void>,
): Promise<void> {
  const live = new Set<Cli>();
  let rig: Awaited<ReturnType<typeof serverProcessWithTransfer>> | undefined;
  try {
    rig = await serverProcessWithTransfer(live);
    await body(rig);
  } finally {
    rig?.stream.inbox.socket.destroy();
    await rig?.client.destroy();
    await killAll(live);
    await rig?.local.close();
  }
}

test('SIGTERM to the server process during a transfer: new clients are refused at once, the transfer completes byte-exact, exit 0', async () => {
  await withServerProcess(async ({ server, ports, client, publicPort, stream }) => {
    const CHUNK = 64 * KiB;
    for (let i = 0; i < 8; i++) await stream.pulse(CHUNK, `chunk ${i} before SIGTERM`);

    const lost = once(client, 'disconnected');
    server.child.kill('SIGTERM');
    await waitForOutput(server, 'stderr', SHUTTING_DOWN, 'the shutdown notice');
    assert.equal(
      server.stderr,
      `${OPEN_RELAY_NOTICE}\n` +
        'burrow: shutting down: told 1 client to reconnect later; open connections get 10 s to finish (signal again to stop now)\n',
    );
    // No new clients, no new visitors; the client was told (GOAWAY). It keeps its control
    // connection while its joined connection lasts (the heartbeat checks its FIN).
    await untilRefused(ports.controlPort);
    await untilRefused(publicPort);

    // The transfer goes on: 56 more chunks (4 MiB in all), each echoed.
    for (let i = 8; i < 64; i++) await stream.pulse(CHUNK, `chunk ${i} after SIGTERM`);
    assert.equal(server.child.exitCode, null, 'the server waits for the open transfer');
    stream.inbox.socket.end();
    assert.equal((await stream.inbox.rest()).length, 0, 'nothing after the last echo');
    assertSameBytes(Buffer.concat(stream.received), Buffer.concat(stream.sent), 'the whole transfer');
    assert.equal(Buffer.concat(stream.sent).length, 4 * KiB + 64 * CHUNK);
    await within(lost, 5_000, 'the client to let the server go once the transfer ended');

    assert.deepEqual(await within(server.closed, CHILD_MS, 'the server to exit'), { code: 0, signal: null });
    assert.match(server.stdout, LISTENING);
    assert.deepEqual(
      lines(server.stderr).map((line) => line.slice(0, 30)),
      [OPEN_RELAY_NOTICE.slice(0, 30), 'burrow: shutting down: told 1 '],
      `the notice and one shutdown line: ${server.stderr}`,
    );
  });
});

test('a second SIGTERM while a transfer is still open: the server process exits at once with 143', async () => {
  await withServerProcess(async ({ server, stream }) => {
    const ending = endingOf(stream.inbox.socket);
    server.child.kill('SIGTERM');
    await waitForOutput(server, 'stderr', SHUTTING_DOWN, 'the shutdown notice');
    await stream.pulse(64 * KiB, 'a chunk between the two signals');
    assert.equal(server.child.exitCode, null, 'still draining the open transfer');

    server.child.kill('SIGTERM');
    // 143 comes from the second-signal handler (process.exit(143)); a process that had
    // finished draining would have exited 0, one killed by the signal itself has no code.
    assert.deepEqual(await within(server.closed, CHILD_MS, 'the server to exit'), { code: 143, signal: null });
    await within(ending, 5_000, 'the visitor connection to end with the server');
    assert.deepEqual(
      lines(server.stderr).map((line) => line.slice(0, 30)),
      [OPEN_RELAY_NOTICE.slice(0, 30), 'burrow: shutting down: told 1 '],
      `the notice and one shutdown line: ${server.stderr}`,
    );
  });
});

// ---------------------------------------------------------------------------------------
// server.close() / server.destroy()

test('server.close(): GOAWAY then EOF to clients, new clients and visitors refused, waiting visitors closed, a joined connection finishes, then it resolves', async () => {
  const rig = await startEchoRig({}, { reconnect: false });
  const raws: Raw[] = [];
  const sockets: net.Socket[] = [];
  try {
    const { server } = rig;
    const stream = await openStream(rig.publicPort);
    rig.client.on('warning', () => {});
    // A raw client with a visitor waiting on its tunnel (never dialed back).
    const raw = await openControl(server.controlPort);
    raws.push(raw);
    raw.send('EXPOSE 1\n');
    const okLine = await raw.reader.line();
    const rawPort = Number(/^OK ([0-9]+) [A-Za-z0-9_-]{21}$/.exec(okLine)?.[1]);
    assert.ok(rawPort > 0, okLine);
    const waiting = net.connect({ host: HOST, port: rawPort });
    sockets.push(waiting);
    const waitingEnding = endingOf(waiting);
    assert.match(
      await raw.reader.line(),
      new RegExp(`^CONNECTION [A-Za-z0-9_-]{21} ${rawPort} 127\\.0\\.0\\.1:[0-9]+ 127\\.0\\.0\\.1:${rawPort}$`),
    );
    assert.equal(server.stats().pendingVisitors, 1);

    const closing = server.close();
    assert.equal(await raw.reader.line(), 'GOAWAY');
    // The raw client has nothing joined: the server says BYE at once (a PING may come
    // first); the client may close without one of its own.
    raw.socket.end();
    const after: string[] = [];
    for (let line = await raw.reader.next(); line !== null && after.length < 10; line = await raw.reader.next())
      after.push(line);
    assert.deepEqual(
      after.filter((line) => line !== 'PING'),
      ['BYE'],
    );
    assert.equal(await probe(server.controlPort), 'refused', 'no new clients');
    assert.equal(await probe(rawPort), 'refused', 'no new visitors');
    assert.equal(await probe(rig.publicPort), 'refused', 'no new visitors on the joined tunnel either');
    assert.equal((await within(waitingEnding, 5_000, 'the waiting visitor to be closed')).received.length, 0);

    // The joined connection still flows, and close() waits for it.
    await stream.pulse(64 * KiB, 'after close()');
    assert.equal(await settledYet(closing), false, 'close() waits for the joined connection');
    stream.inbox.socket.end();
    assert.equal((await stream.inbox.rest()).length, 0);
    assertSameBytes(Buffer.concat(stream.received), Buffer.concat(stream.sent), 'the joined connection');
    await within(closing, 5_000, 'close() to resolve once the joined connection ended');
    assert.deepEqual(server.stats(), ZERO);

    // Idempotent: the same promise, and both calls again resolve.
    assert.equal(server.close(), closing);
    await within(server.close(), 5_000, 'close() again');
    await within(server.destroy(), 5_000, 'destroy() after close()');
  } finally {
    for (const socket of sockets) socket.destroy();
    for (const raw of raws) raw.socket.destroy();
    await rig.close();
  }
});

test('server.close() with a short shutdownTimeoutMs and a joined connection that never ends: resolves after the deadline, the connection is closed', async () => {
  const rig = await startEchoRig({ shutdownTimeoutMs: 1_000 }, { reconnect: false });
  try {
    rig.client.on('warning', () => {});
    const stream = await openStream(rig.publicPort);
    const ending = endingOf(stream.inbox.socket);
    const closing = rig.server.close();
    await stream.pulse(4 * KiB, 'right after close()');
    await within(closing, 10_000, 'close() to give up on the joined connection');
    await within(ending, 5_000, 'the joined connection to be closed');
    await untilEqual(() => rig.server.stats(), ZERO, 'the server to hold nothing');
  } finally {
    await rig.close();
  }
});

test('server.destroy() ends a joined connection at once; destroy() during a close() cuts its wait short; both idempotent', async () => {
  for (const mode of ['destroy', 'close-then-destroy'] as const) {
    const rig = await startEchoRig({ shutdownTimeoutMs: LONG_MS }, { reconnect: false });
    try {
      rig.client.on('warning', () => {});
      await destroyDuringStream(rig.server, rig.publicPort, mode, 'destroy() returns the shutdown in progress');
      await untilEqual(() => rig.server.stats(), ZERO, `${mode}: the server to hold nothing`);
      await within(rig.server.destroy(), 5_000, 'destroy() again');
      await within(rig.server.close(), 5_000, 'close() after destroy()');
    } finally {
      await rig.close();
    }
  }
});

test('a joined connection the server cuts at shutdown (deadline or destroy) reaches the visitor as a reset, not a clean end', async () => {
  await eachServerCut(async (mode, rig, stream) => {
    const ending = endingOf(stream.inbox.socket);
    if (mode === 'deadline') await rig.server.close();
    else await rig.server.destroy();
    const { code } = await within(ending, 5_000, 'the visitor connection to end');
    assert.equal(code, 'ECONNRESET', `${mode}: the visitor must see an abort`);
  });
});

test('server.close() resolves only once every socket has closed (stats().sockets is 0 when it resolves)', async () => {
  await eachServerCut(async (mode, rig, stream) => {
    if (mode === 'deadline') await within(rig.server.close(), 10_000, 'close()');
    else await within(rig.server.destroy(), 5_000, 'destroy()');
    assert.deepEqual(rig.server.stats(), ZERO, `${mode}: nothing held when the shutdown resolves`);
    stream.inbox.socket.destroy();
  });
});

// ---------------------------------------------------------------------------------------
// client.close() / client.destroy()

test('client.close() sends GOAWAY: the server frees its port at once (no lease) and another client gets it right away', async () => {
  const rig = await startEchoRig({ leaseGraceMs: LONG_MS });
  let other: BurrowClient | undefined;
  const local = await listenLocal(echo);
  try {
    const { server, publicPort } = rig;
    const closed = once(rig.client, 'close');
    await within(rig.client.close(), 5_000, 'client.close()');
    assert.deepEqual(await closed, [undefined], 'close without an error');
    await untilEqual(() => server.stats(), ZERO, 'the server to free everything (no lease after GOAWAY)');
    other = await clientOf(server, local.port, { tunnels: [{ localPort: local.port, remotePort: publicPort }] });
    assert.equal(other.tunnels[0]?.publicPort, publicPort);
    const payload = pseudoRandomBytes(20_000, 5);
    assertSameBytes(await request(publicPort, payload), payload, 'the port under its new owner');
    // Idempotent.
    await within(rig.client.close(), 5_000, 'close() again');
    await within(rig.client.destroy(), 5_000, 'destroy() after close()');
  } finally {
    await other?.destroy();
    await rig.close();
    await local.close();
  }
});

test('the GOAWAY is on the wire: a raw server reads EXPOSE, then GOAWAY and BYE (nothing was joined), and after its own BYE the EOF from client.close()', async () => {
  const fake = await fakeServer();
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: 3000 }],
      server: HOST,
      controlPort: fake.port,
      dataPort: fake.port,
      heartbeatIntervalMs: LONG_MS,
    });
    const closing = client.close();
    const reader = fake.readers[0];
    assert.ok(reader);
    assert.equal(await reader.next(), 'GOAWAY');
    assert.equal(await reader.next(), 'BYE', 'nothing joined: BYE at once');
    for (const socket of fake.sockets) socket.write('BYE\n');
    assert.equal(await reader.next(), null, 'both said BYE: the client half-closes');
    for (const socket of fake.sockets) socket.end();
    await within(closing, 5_000, 'close() once the server closed too');
  } finally {
    await client?.destroy();
    await fake.close();
  }
});

test('client.close() lets a joined connection finish (the public port closes at once) and resolves when it has', async () => {
  const rig = await startEchoRig({ leaseGraceMs: LONG_MS }, { shutdownTimeoutMs: LONG_MS });
  try {
    const stream = await openStream(rig.publicPort);
    const closing = rig.client.close();
    await untilRefused(rig.publicPort);
    await stream.pulse(64 * KiB, 'after client.close()');
    assert.equal(await settledYet(closing), false, 'close() waits for the joined connection');
    await stream.pulse(64 * KiB, 'still after client.close()');
    stream.inbox.socket.end();
    assert.equal((await stream.inbox.rest()).length, 0);
    assertSameBytes(Buffer.concat(stream.received), Buffer.concat(stream.sent), 'the joined connection');
    await within(closing, 5_000, 'close() to resolve once the connection ended');
    await untilEqual(() => rig.server.stats(), ZERO, 'the server to hold nothing');
  } finally {
    await rig.close();
  }
});

test('client.close() with a short shutdownTimeoutMs and a joined connection that never ends: resolves after the deadline and closes it', async () => {
  const rig = await startEchoRig({}, { shutdownTimeoutMs: 1_000 });
  try {
    const stream = await openStream(rig.publicPort);
    const ending = endingOf(stream.inbox.socket);
    const closing = rig.client.close();
    await stream.pulse(4 * KiB, 'right after client.close()');
    await within(closing, 10_000, 'close() to give up on the joined connection');
    await within(ending, 5_000, 'the joined connection to be closed');
    // Closing the visitor's own side too lets the server let go of the pair at once.
    stream.inbox.socket.destroy();
    await untilEqual(() => rig.server.stats(), ZERO, 'the server to hold nothing');
  } finally {
    await rig.close();
  }
});

test('client.destroy() ends a joined connection at once, also during a close(); idempotent', async () => {
  for (const mode of ['destroy', 'close-then-destroy'] as const) {
    const rig = await startEchoRig({}, { shutdownTimeoutMs: LONG_MS });
    try {
      const stream = await destroyDuringStream(
        rig.client,
        rig.publicPort,
        mode,
        'destroy() returns the close in progress',
      );
      stream.inbox.socket.destroy(); // let the server let go of the pair at once
      await untilEqual(() => rig.server.stats(), ZERO, 'the server to hold nothing');
      await within(rig.client.destroy(), 5_000, 'destroy() again');
      await within(rig.client.close(), 5_000, 'close() after destroy()');
    } finally {
      await rig.close();
    }
  }
});

test('a joined connection the client cuts (destroy, or the close deadline) reaches the visitor as a reset, not a clean end', async () => {
  for (const mode of ['deadline', 'destroy'] as const) {
    const rig = await startEchoRig({}, { shutdownTimeoutMs: mode === 'deadline' ? 500 : LONG_MS });
    try {
      const stream = await openStream(rig.publicPort);
      const ending = endingOf(stream.inbox.socket);
      if (mode === 'deadline') await within(rig.client.close(), 10_000, 'close()');
      else await within(rig.client.destroy(), 5_000, 'destroy()');
      const { code } = await within(ending, 5_000, 'the visitor connection to end');
      assert.equal(code, 'ECONNRESET', `${mode}: the visitor must see an abort`);
    } finally {
      await rig.close();
    }
  }
});

test('client.close() with no joined connection resolves at once, even if the server never closes its side of the control connection', async () => {
  const fake = await fakeServer();
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: 3000 }],
      server: HOST,
      controlPort: fake.port,
      dataPort: fake.port,
      shutdownTimeoutMs: LONG_MS,
    });
    await within(client.close(), 5_000, 'close() with no joined connection');
  } finally {
    await client?.destroy();
    await fake.close();
  }
});
