// Issue 4, "staying up", with real sockets and real processes: heartbeats find a frozen
// client and a silent server, a client survives server restarts (SIGKILL and SIGTERM) with
// the same public port, joined connections survive a control-connection drop, leases keep a
// dropped client's port for it (and only for it) during the grace period, a lease takes a
// port over from a zombie connection, and the CLI's --no-reconnect / default reconnect.
import assert from 'node:assert/strict';
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
  type ServerOptions,
  type TraceEvent,
} from '../index.ts';
import {
  CHILD_MS,
  FORWARDING,
  killAll,
  LISTENING,
  lines,
  OPEN_RELAY_NOTICE,
  startCli,
  waitForOutput,
  type Cli,
} from './child.ts';
import {
  assertSameBytes,
  echo,
  HOST,
  listenLocal,
  nextEvent,
  pseudoRandomBytes,
  readAll,
  untilEqual,
  within,
} from './helpers.ts';
import { assertEchoes } from './healthy-tunnel.ts';
import { startTcpProxy } from './tcp-proxy.ts';
import {
  dialBack,
  errReason,
  freePort,
  freeRangeStart,
  holdPort,
  LineReader,
  openControl,
  rejectsWith,
  serverOn,
  type Raw,
} from './raw.ts';

// ---------------------------------------------------------------------------------------
// Local helpers

const MiB = 1024 * 1024;

const noStack = (text: string): void => {
  assert.ok(!text.split('\n').some((line) => /^\s+at /.test(line)), `no stack trace expected in: ${text}`);
};

/** `burrow server` on fixed ports (a restart must find the same ones). */
function startServerCli(
  ports: { control: number; data: number; range: string },
  live: Set<Cli>,
  extra: string[] = [],
): Cli {
  const args = [
    'server',
    '--bind',
    HOST,
    '--control-port',
    String(ports.control),
    '--data-port',
    String(ports.data),
    '--port-range',
    ports.range,
  ];
  return startCli([...args, ...extra], {}, live);
}

/** `OK <port> <lease>`, parsed. */
function parseOk(line: string): { port: number; lease: string } {
  const match = /^OK ([1-9][0-9]*) ([A-Za-z0-9_-]{21})$/.exec(line);
  assert.ok(match, `expected OK <port> <21-char lease>, got ${JSON.stringify(line)}`);
  return { port: Number(match[1]), lease: match[2] ?? '' };
}

/** Sends an EXPOSE line on a raw control connection and returns the reply line. */
async function exposeLine(raw: Raw, line: string): Promise<string> {
  raw.send(`${line}\n`);
  return raw.reader.line();
}

/** `count` different free ports, each passing `accept`. */
async function distinctFreePorts(count: number, accept: (port: number) => boolean = () => true): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; attempt < 100 && ports.size < count; attempt++) {
    const port = await freePort();
    if (accept(port)) ports.add(port);
  }
  assert.equal(ports.size, count, `${count} distinct free ports`);
  return [...ports];
}

/** Every lifecycle event of a client, in order, as text (errors by code). */
function recordLifecycle(client: BurrowClient): string[] {
  const events: string[] = [];
  client.on('disconnected', (error) => events.push(`disconnected ${error.code}`));
  client.on('reconnecting', ({ attempt }) => events.push(`reconnecting ${attempt}`));
  client.on('reconnected', ({ moved }) => events.push(`reconnected moved=${moved.length}`));
  client.on('close', (error) => events.push(`close ${error?.code ?? 'clean'}`));
  return events;
}

/** Resolves with the first trace event of `server` for which `match` holds. */
function traceMatching(
  server: BurrowServer,
  match: (event: TraceEvent) => boolean,
  what: string,
  ms = 10_000,
): Promise<TraceEvent> {
  let listener: (event: TraceEvent) => void = () => {};
  const found = new Promise<TraceEvent>((resolve) => {
    listener = (event) => {
      if (match(event)) resolve(event);
    };
    server.on('trace', listener);
  });
  return within(found, ms, what).finally(() => server.off('trace', listener));
}

function clientOptions(
  server: { controlPort: number; dataPort: number },
  localPort: number,
  more: Partial<ClientOptions> = {},
): ClientOptions {
  return {
    tunnels: [{ localPort }],
    server: HOST,
    localHost: HOST,
    controlPort: server.controlPort,
    dataPort: server.dataPort,
    ...more,
  };
}

/** For the restart tests: a server (on `setup.server`), an echo service, and a library client
 * of them that retries fast (its one tunnel asking for `setup.remotePort`, if given). `body`
 * stops the server, holds ports while it is down, and starts it again on the same ports; the
 * fixture closes all of it afterwards. */
async function withRestarts(
  setup: { server?: ServerOptions; remotePort?: number },
  body: (rig: {
    client: BurrowClient;
    /** Stops the server and waits until the client has noticed ('disconnected'). */
    stop(): Promise<void>;
    /** Starts a server on the same control and data ports again, with `more`. */
    restart(more?: ServerOptions): Promise<void>;
    /** Holds `port` with a plain listener until its close() or the end of the test. */
    hold(port: number): Promise<{ close(): Promise<void> }>;
  }) => Promise<void>,
): Promise<void> {
  let server = await serverOn(setup.server);
  const local = await listenLocal(echo);
  let client: BurrowClient | undefined;
  const holders = new Set<{ close(): Promise<void> }>();
  try {
    const { controlPort, dataPort } = server;
    const tunnels = [
      setup.remotePort === undefined
        ? { localPort: local.port }
        : { localPort: local.port, remotePort: setup.remotePort },
    ];
    const running = await startClient(
      clientOptions(server, local.port, { tunnels, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }),
    );
    client = running;
    await body({
      client: running,
      async stop() {
        const disconnected = nextEvent(running, 'disconnected');
        await server.destroy();
        await disconnected;
      },
      async restart(more = {}) {
        server = await startServer({ controlPort, dataPort, bind: HOST, ...more });
      },
      async hold(port) {
        const held = await holdPort(port);
        const holder = {
          close: async () => {
            if (holders.delete(holder)) await held.close();
          },
        };
        holders.add(holder);
        return holder;
      },
    });
  } finally {
    for (const holder of [...holders]) await holder.close();
    await client?.destroy();
    await server.destroy();
    await local.close();
  }
}

// ---------------------------------------------------------------------------------------
// Heartbeats

test('a client frozen mid-session (stops reading and writing) gets ERR timeout and is dropped; after the grace its port is free', async () => {
  const server = await serverOn({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500, leaseGraceMs: 300 });
  const local = await listenLocal(echo);
  let raw: Raw | undefined;
  let client: BurrowClient | undefined;
  try {
    raw = await openControl(server.controlPort);
    const { port } = parseOk(await exposeLine(raw, 'EXPOSE 1'));
    assert.deepEqual(server.stats(), {
      clients: 1,
      clientAddresses: 1,
      tunnels: 1,
      leasedPorts: 0,
      ports: 1,
      pendingVisitors: 0,
      sockets: 1,
    });
    // Frozen: no more reads (the server's PINGs pile up in the kernel), no PONG, no PING.
    raw.socket.pause();
    await untilEqual(() => server.stats().clients, 0, 'the server drops the frozen client');
    await untilEqual(() => server.stats().ports, 0, 'the port returns to the pool after the grace');
    assert.deepEqual(server.stats(), {
      clients: 0,
      clientAddresses: 0,
      tunnels: 0,
      leasedPorts: 0,
      ports: 0,
      pendingVisitors: 0,
      sockets: 0,
    });

    // What the frozen client would have read: heartbeats, then ERR timeout, then the end.
    raw.socket.resume();
    const received: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      const line = await raw.reader.next();
      if (line === null) break;
      received.push(line);
    }
    const last = received.pop() ?? '';
    assert.equal(errReason(last), 'timeout', `last line ${JSON.stringify(last)}`);
    assert.equal(last, 'ERR timeout no line for 500 ms');
    assert.ok(received.length >= 1, 'the server sent at least one PING before giving up');
    assert.deepEqual(new Set(received), new Set(['PING']), 'only PINGs came between OK and ERR');
    await within(raw.closed, 5_000, 'the frozen connection to close');

    // A new client asks for exactly that port and gets it.
    client = await startClient(
      clientOptions(server, local.port, { tunnels: [{ localPort: local.port, remotePort: port }] }),
    );
    assert.equal(client.tunnels[0]?.publicPort, port);
    await assertEchoes(port, 10_000, 1, 'the port after the frozen client');
  } finally {
    raw?.socket.destroy();
    await client?.destroy();
    await server.destroy();
    await local.close();
  }
});

test('a CLI client stopped with SIGSTOP is dropped by the server within the heartbeat timeout; its port comes free after the grace', async () => {
  const live = new Set<Cli>();
  const server = await serverOn({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1_000, leaseGraceMs: 300 });
  const local = await listenLocal(echo);
  let client: BurrowClient | undefined;
  try {
    const cli = startCli(
      [
        'client',
        String(local.port),
        '--server',
        HOST,
        '--local-host',
        HOST,
        '--control-port',
        String(server.controlPort),
        '--data-port',
        String(server.dataPort),
        '--heartbeat-interval',
        '0.1',
        '--heartbeat-timeout',
        '1',
      ],
      {},
      live,
    );
    const [, publicPort = ''] = await waitForOutput(cli, 'stdout', FORWARDING, 'the CLI client to forward');
    const port = Number(publicPort);
    await assertEchoes(port, 50_000, 2, 'through the CLI client before SIGSTOP');
    assert.equal(server.stats().clients, 1);

    const timedOut = traceMatching(
      server,
      (e) => e.kind === 'send' && e.text.startsWith('ERR timeout'),
      'the server to send ERR timeout',
    );
    assert.ok(cli.child.kill('SIGSTOP'), 'SIGSTOP delivered');
    const event = await timedOut;
    assert.equal(event.text, 'ERR timeout no line for 1000 ms');
    await untilEqual(() => server.stats().clients, 0, 'the server drops the stopped client');
    await untilEqual(() => server.stats().ports, 0, 'the port returns to the pool after the grace');

    client = await startClient(
      clientOptions(server, local.port, { tunnels: [{ localPort: local.port, remotePort: port }] }),
    );
    assert.equal(client.tunnels[0]?.publicPort, port, "another client gets the stopped client's port");
    await assertEchoes(port, 10_000, 3, 'the port taken over from the stopped client');
  } finally {
    await killAll(live);
    await client?.destroy();
    await server.destroy();
    await local.close();
  }
});

test('the client notices a silent server (OK, then nothing): disconnected and close with a timeout BurrowError', async () => {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const fake = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const reader = new LineReader(socket);
    void (async () => {
      // Agree to heartbeats, answer the EXPOSE, then read (and never answer) whatever comes.
      for (let i = 0; i < 1_000; i++) {
        const line = await reader.next(10_000).catch(() => null);
        if (line === null) return;
        received.push(line);
        if (line.startsWith('HELLO ')) socket.write('HELLO ping\n');
        if (line.startsWith('EXPOSE ')) socket.write('OK 23456 AAAAAAAAAAAAAAAAAAAAA\n');
      }
    })();
  });
  fake.listen(0, HOST);
  await once(fake, 'listening');
  const controlPort = (fake.address() as net.AddressInfo).port;
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: 3000 }],
      server: HOST,
      controlPort,
      dataPort: controlPort,
      reconnect: false,
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 500,
    });
    assert.equal(client.tunnels[0]?.publicPort, 23456);
    const events = recordLifecycle(client);
    const disconnected = nextEvent<[BurrowError]>(client, 'disconnected', 10_000);
    const closed = nextEvent<[BurrowError | undefined]>(client, 'close', 10_000);
    const [lost] = await disconnected;
    const [closeError] = await closed;
    assert.ok(lost instanceof BurrowError);
    assert.equal(lost.code, 'timeout', lost.message);
    assert.equal(lost.message, 'the server has been silent for 0.5 s');
    assert.equal(closeError, lost, 'close carries the same error');
    assert.deepEqual(events, ['disconnected timeout', 'close timeout']);
    // The client did its part of the heartbeat: PINGs after its EXPOSE, nothing else.
    assert.match(received[0] ?? '', /^HELLO /);
    assert.equal(received[1], 'EXPOSE 3000');
    assert.ok(received.length >= 3, `the client sent PINGs: ${JSON.stringify(received)}`);
    assert.deepEqual(new Set(received.slice(2)), new Set(['PING']));
  } finally {
    await client?.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => fake.close(() => resolve()));
  }
});

// ---------------------------------------------------------------------------------------
// Reconnect

test('server restart (SIGKILL, then SIGTERM with GOAWAY): the client reconnects to a new process on the same ports and keeps its public port', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(echo);
  let client: BurrowClient | undefined;
  try {
    const rangeStart = await freeRangeStart();
    const [control, data] = await distinctFreePorts(2, (port) => port < rangeStart || port > rangeStart + 20);
    const ports = { control: control ?? 0, data: data ?? 0, range: `${rangeStart}-${rangeStart + 20}` };
    const first = startServerCli(ports, live);
    await waitForOutput(first, 'stdout', LISTENING, 'the first server to listen');

    client = await startClient(
      clientOptions({ controlPort: ports.control, dataPort: ports.data }, local.port, {
        reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
        heartbeatIntervalMs: 200,
        heartbeatTimeoutMs: 3_000,
      }),
    );
    const publicPort = client.tunnels[0]?.publicPort ?? 0;
    assert.ok(publicPort >= rangeStart && publicPort <= rangeStart + 20, `public port ${publicPort} in the range`);
    await assertEchoes(publicPort, 100_000, 4, 'before the restarts');
    const events = recordLifecycle(client);
    const delays: Array<{ attempt: number; delayMs: number }> = [];
    client.on('reconnecting', (retry) => delays.push(retry));

    // 1. SIGKILL: the connection just drops; the first retry is the first backoff step.
    let reconnected = nextEvent<[{ moved: unknown[] }]>(client, 'reconnected', CHILD_MS);
    const disconnected = nextEvent<[BurrowError]>(client, 'disconnected', CHILD_MS);
    first.child.kill('SIGKILL');
    assert.deepEqual(await within(first.closed, CHILD_MS, 'the first server to die'), {
      code: null,
      signal: 'SIGKILL',
    });
    const [lost] = await disconnected;
    assert.equal(lost.code, 'closed', lost.message);
    const second = startServerCli(ports, live);
    await waitForOutput(second, 'stdout', LISTENING, 'the second server to listen');
    const [{ moved }] = await reconnected;
    assert.deepEqual(moved, []);
    assert.equal(client.tunnels[0]?.publicPort, publicPort, 'same public port after SIGKILL + restart');
    await assertEchoes(publicPort, 100_000, 5, 'after the SIGKILL restart');
    const firstRound = delays.splice(0);
    assert.ok(firstRound.length >= 1);
    assert.deepEqual(
      firstRound.map((d) => d.attempt),
      firstRound.map((_, i) => i + 1),
      'attempts count from 1',
    );
    const [firstDelay] = firstRound;
    assert.ok(
      firstDelay && firstDelay.delayMs >= 25 && firstDelay.delayMs <= 50,
      `first delay ${firstDelay?.delayMs} is step 0 of 50 ms`,
    );
    for (const { delayMs } of firstRound)
      assert.ok(delayMs >= 25 && delayMs <= 200, `delay ${delayMs} within [25, 200]`);

    // 2. SIGTERM: the server says GOAWAY, exits 0; the client starts its backoff one step in.
    reconnected = nextEvent<[{ moved: unknown[] }]>(client, 'reconnected', CHILD_MS);
    const disconnectedAgain = nextEvent<[BurrowError]>(client, 'disconnected', CHILD_MS);
    second.child.kill('SIGTERM');
    assert.deepEqual(await within(second.closed, CHILD_MS, 'the second server to exit'), { code: 0, signal: null });
    assert.equal(
      second.stderr,
      `${OPEN_RELAY_NOTICE}\n` +
        'burrow: shutting down: told 1 client to reconnect later; open connections get 10 s to finish (signal again to stop now)\n',
    );
    await disconnectedAgain;
    const third = startServerCli(ports, live);
    await waitForOutput(third, 'stdout', LISTENING, 'the third server to listen');
    const [{ moved: movedAgain }] = await reconnected;
    assert.deepEqual(movedAgain, []);
    assert.equal(client.tunnels[0]?.publicPort, publicPort, 'same public port after SIGTERM + restart');
    assert.equal(client.tunnels[0]?.url, `tcp://${HOST}:${publicPort}`);
    await assertEchoes(publicPort, 100_000, 6, 'after the SIGTERM restart');
    const [goAwayDelay] = delays;
    assert.equal(goAwayDelay?.attempt, 1, 'attempts count from 1 again');
    assert.ok(
      goAwayDelay && goAwayDelay.delayMs >= 50 && goAwayDelay.delayMs <= 100,
      `after GOAWAY the first delay ${goAwayDelay?.delayMs} is step 1 (50-100 ms)`,
    );

    const kinds = events.filter((e) => !e.startsWith('reconnecting'));
    assert.deepEqual(kinds, [
      'disconnected closed',
      'reconnected moved=0',
      'disconnected closed',
      'reconnected moved=0',
    ]);
  } finally {
    await client?.destroy();
    await killAll(live);
    await local.close();
  }
});

test('a control-connection drop during a 20 MiB transfer: the transfer completes byte-exact and the client reconnects to the same public port', async () => {
  const server = await serverOn();
  const local = await listenLocal(echo);
  const proxy = await startTcpProxy(server.controlPort);
  let client: BurrowClient | undefined;
  let visitor: net.Socket | undefined;
  try {
    // Only the control connection goes through the proxy; data connections go direct.
    client = await startClient(
      clientOptions({ controlPort: proxy.port, dataPort: server.dataPort }, local.port, {
        reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      }),
    );
    const publicPort = client.tunnels[0]?.publicPort ?? 0;
    const events = recordLifecycle(client);
    const disconnected = nextEvent<[BurrowError]>(client, 'disconnected', 10_000);
    const reconnected = nextEvent<[{ moved: unknown[] }]>(client, 'reconnected', 20_000);

    const payload = pseudoRandomBytes(20 * MiB, 7);
    visitor = net.connect({ host: HOST, port: publicPort, allowHalfOpen: true });
    await within(once(visitor, 'connect'), 5_000, 'the visitor to connect');
    let received = 0;
    let brokenAt = -1;
    let broken = 0;
    visitor.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (brokenAt === -1 && received >= 2 * MiB) {
        brokenAt = received;
        broken = proxy.breakAll();
      }
    });
    const echoed = readAll(visitor);
    visitor.end(payload);

    const [lost] = await disconnected;
    assert.equal(lost.code, 'closed', lost.message);
    assertSameBytes(
      await within(echoed, 60_000, 'the 20 MiB echo'),
      payload,
      '20 MiB through a control-connection drop',
    );
    assert.ok(
      brokenAt > 0 && brokenAt < payload.length,
      `the control connection broke mid-transfer (at ${brokenAt} bytes)`,
    );
    assert.equal(broken, 2, 'the proxy held the control connection (both halves) when it broke');

    const [{ moved }] = await reconnected;
    assert.deepEqual(moved, []);
    assert.equal(client.tunnels[0]?.publicPort, publicPort, 'same public port through the lease');
    assert.equal(proxy.accepted(), 2, 'the client reconnected through the proxy once');
    await assertEchoes(publicPort, 100_000, 8, 'after the reconnect');
    assert.deepEqual(
      events.filter((e) => !e.startsWith('reconnecting')),
      ['disconnected closed', 'reconnected moved=0'],
    );
    await untilEqual(
      () => server.stats(),
      { clients: 1, clientAddresses: 1, tunnels: 1, leasedPorts: 0, ports: 1, pendingVisitors: 0, sockets: 1 },
      'one client, one tunnel, nothing else',
    );
  } finally {
    visitor?.destroy();
    await client?.destroy();
    await proxy.close();
    await server.destroy();
    await local.close();
  }
});

test('after a server restart, a port someone else took meanwhile: the client takes a new port and reports the move', async () => {
  await withRestarts({}, async ({ client, stop, restart, hold }) => {
    const tunnel = client.tunnels[0];
    assert.ok(tunnel);
    const oldPort = tunnel.publicPort;
    await stop();
    await hold(oldPort); // another program takes the port while the relay is down
    const reconnected = nextEvent<[{ moved: Array<{ tunnel: unknown; previousPort: number }> }]>(
      client,
      'reconnected',
      CHILD_MS,
    );
    await restart();
    const [{ moved }] = await reconnected;
    assert.equal(moved.length, 1, JSON.stringify(moved));
    assert.equal(moved[0]?.previousPort, oldPort);
    assert.equal(moved[0]?.tunnel, tunnel, 'the move names the tunnel, updated in place');
    assert.equal(client.tunnels[0], tunnel);
    assert.notEqual(tunnel.publicPort, oldPort);
    assert.equal(tunnel.url, `tcp://${HOST}:${tunnel.publicPort}`);
    await assertEchoes(tunnel.publicPort, 20_000, 13, 'through the new port');
  });
});

test('after a server restart with another port range, a client that never asked for a port takes a new one', async () => {
  const [first = 0, second = 0] = await distinctFreePorts(2);
  await withRestarts({ server: { portRange: { min: first, max: first } } }, async ({ client, stop, restart }) => {
    assert.equal(client.tunnels[0]?.publicPort, first);
    await stop();
    const outcome = within(
      new Promise<{ moved: Array<{ previousPort: number }> }>((resolve, reject) => {
        client.once('reconnected', resolve);
        client.once('close', (error) => reject(new Error(`the client gave up: ${error?.message}`)));
      }),
      CHILD_MS,
      'the client to reconnect',
    );
    await restart({ portRange: { min: second, max: second } });
    const { moved } = await outcome;
    assert.deepEqual(
      moved.map((move) => move.previousPort),
      [first],
    );
    assert.equal(client.tunnels[0]?.publicPort, second);
  });
});

test('after a server restart with another port range, a client that asked for its port stops: port-out-of-range is final', async () => {
  const [first = 0, second = 0] = await distinctFreePorts(2);
  await withRestarts(
    { server: { portRange: { min: first, max: first } }, remotePort: first },
    async ({ client, stop, restart }) => {
      assert.equal(client.tunnels[0]?.publicPort, first);
      await stop();
      let reconnected = false;
      client.once('reconnected', () => (reconnected = true));
      const closed = nextEvent<[BurrowError | undefined]>(client, 'close', CHILD_MS);
      await restart({ portRange: { min: second, max: second } });
      const [error] = await closed;
      assert.ok(error instanceof BurrowError, 'close carries the refusal');
      assert.equal(error.code, 'refused');
      assert.equal(error.reason, 'port-out-of-range');
      assert.equal(reconnected, false);
    },
  );
});

test('after a server restart, a port the user asked for and someone else holds: the client keeps retrying (port-in-use is not final) and gets it once it is free', async () => {
  const asked = await freePort();
  await withRestarts({ remotePort: asked }, async ({ client, stop, restart, hold }) => {
    assert.equal(client.tunnels[0]?.publicPort, asked);
    await stop();
    const holder = await hold(asked);
    const refusals: BurrowError[] = [];
    let sawRefusal: () => void = () => {};
    const refused = new Promise<void>((resolve) => (sawRefusal = resolve));
    client.on('warning', (warning) => {
      if (warning.code === 'refused') {
        refusals.push(warning);
        sawRefusal();
      }
    });
    let closedWith: BurrowError | undefined | null = null;
    client.on('close', (error) => (closedWith = error));
    await restart();
    await within(refused, CHILD_MS, 'a retry to be refused port-in-use');
    assert.equal(refusals[0]?.reason, 'port-in-use', refusals[0]?.message);
    const reconnected = nextEvent<[{ moved: unknown[] }]>(client, 'reconnected', CHILD_MS);
    await holder.close();
    const [{ moved }] = await reconnected;
    assert.deepEqual(moved, []);
    assert.equal(closedWith, null, 'the client never gave up');
    assert.equal(client.tunnels[0]?.publicPort, asked);
    await assertEchoes(asked, 20_000, 14, 'through the asked-for port');
  });
});

// ---------------------------------------------------------------------------------------
// Leases

test('a leased port: others get port-in-use during the grace, the lease holder reclaims it, and after the grace anyone can have it', async () => {
  const GRACE_MS = 1_500;
  const server = await serverOn({ leaseGraceMs: GRACE_MS });
  const local = await listenLocal(echo);
  const raws: Raw[] = [];
  const open = async (): Promise<Raw> => {
    const raw = await openControl(server.controlPort);
    raws.push(raw);
    return raw;
  };
  let client: BurrowClient | undefined;
  try {
    // A opens a port and drops without GOAWAY.
    const a = await open();
    const { port, lease } = parseOk(await exposeLine(a, 'EXPOSE 1'));
    a.socket.destroy();
    await untilEqual(
      () => server.stats(),
      { clients: 0, clientAddresses: 0, tunnels: 0, leasedPorts: 1, ports: 1, pendingVisitors: 0, sockets: 0 },
      'the port kept under lease',
    );

    // Another client asking for that port: port-in-use.
    const refused = await rejectsWith(
      startClient(clientOptions(server, local.port, { tunnels: [{ localPort: local.port, remotePort: port }] })),
      'refused',
      'port-in-use',
    );
    assert.match(refused.message, new RegExp(`port ${port}`));
    // With a wrong lease, or without one on a raw connection: port-in-use too.
    const b = await open();
    assert.equal(errReason(await exposeLine(b, `EXPOSE 1 ${port} ${'x'.repeat(21)}`)), 'port-in-use');
    assert.equal(errReason(await exposeLine(b, `EXPOSE 1 ${port}`)), 'port-in-use');

    // The holder comes back with its lease on a new connection: the same port, and the
    // same lease, which stays its proof of ownership across reclaims.
    const a2 = await open();
    const reclaimed = parseOk(await exposeLine(a2, `EXPOSE 1 ${port} ${lease}`));
    assert.equal(reclaimed.port, port);
    assert.equal(reclaimed.lease, lease, 'a reclaimed port keeps its lease');
    a2.socket.destroy();
    await untilEqual(
      () => server.stats(),
      { clients: 1, clientAddresses: 1, tunnels: 0, leasedPorts: 1, ports: 1, pendingVisitors: 0, sockets: 1 },
      'the reclaimed port leased again',
    );
    assert.equal(
      errReason(await exposeLine(b, `EXPOSE 1 ${port} ${'y'.repeat(21)}`)),
      'port-in-use',
      'a wrong lease, still',
    );

    // After the grace, the port returns to the pool and anyone may have it.
    await untilEqual(() => server.stats().ports, 0, 'the lease to run out', GRACE_MS + 10_000);
    client = await startClient(
      clientOptions(server, local.port, { tunnels: [{ localPort: local.port, remotePort: port }] }),
    );
    assert.equal(client.tunnels[0]?.publicPort, port);
    await assertEchoes(port, 20_000, 9, 'the port after its lease ran out');
  } finally {
    for (const raw of raws) raw.socket.destroy();
    await client?.destroy();
    await server.destroy();
    await local.close();
  }
});

test('"any port" requests skip a leased port', async () => {
  const rangeStart = await freeRangeStart();
  const server = await serverOn({ leaseGraceMs: 30_000, portRange: { min: rangeStart, max: rangeStart } });
  const raws: Raw[] = [];
  try {
    const a = await openControl(server.controlPort);
    raws.push(a);
    const { port } = parseOk(await exposeLine(a, 'EXPOSE 1'));
    assert.equal(port, rangeStart);
    a.socket.destroy();
    await untilEqual(() => server.stats().ports, 1, 'the lease');
    await untilEqual(() => server.stats().clients, 0, 'the drop');
    const b = await openControl(server.controlPort);
    raws.push(b);
    assert.equal(errReason(await exposeLine(b, 'EXPOSE 1')), 'no-free-port', 'the only port of the range is leased');
  } finally {
    for (const raw of raws) raw.socket.destroy();
    await server.destroy();
  }
});

test('a lease takes its port over even when the old connection dies while the server asks it (it answers the PING with a reset)', async () => {
  const server = await serverOn();
  const raws: Raw[] = [];
  try {
    const a = await openControl(server.controlPort);
    raws.push(a);
    const { port, lease } = parseOk(await exposeLine(a, 'EXPOSE 1'));
    // A rebooted host answers anything for the old connection with a reset.
    const pinged = a.reader.line().then((line) => {
      assert.equal(line, 'PING', 'the server asks the holder');
      a.socket.resetAndDestroy();
    });

    const b = await openControl(server.controlPort);
    raws.push(b);
    const taken = parseOk(await exposeLine(b, `EXPOSE 2 ${port} ${lease}`));
    await pinged;
    assert.equal(taken.port, port, 'B holds the right lease: it gets the port');
    await untilEqual(() => server.stats().clients, 1, 'A to be gone');
    assert.deepEqual(
      { tunnels: server.stats().tunnels, leasedPorts: server.stats().leasedPorts },
      { tunnels: 1, leasedPorts: 0 },
    );
  } finally {
    for (const raw of raws) raw.socket.destroy();
    await server.destroy();
  }
});

test('a lease takes its port over from a zombie connection the server has not seen die (it does not answer a PING)', async () => {
  const server = await serverOn();
  const raws: Raw[] = [];
  const sockets: net.Socket[] = [];
  try {
    const a = await openControl(server.controlPort);
    raws.push(a);
    const { port, lease } = parseOk(await exposeLine(a, 'EXPOSE 1'));

    const b = await openControl(server.controlPort);
    raws.push(b);
    const taken = parseOk(await exposeLine(b, `EXPOSE 2 ${port} ${lease}`));
    assert.equal(taken.port, port);
    assert.deepEqual(server.stats(), {
      clients: 2,
      clientAddresses: 1,
      tunnels: 1,
      leasedPorts: 0,
      ports: 1,
      pendingVisitors: 0,
      sockets: 2,
    });

    // A visitor now goes to B, not to A.
    const visitor = net.connect({ host: HOST, port, allowHalfOpen: true });
    sockets.push(visitor);
    visitor.on('error', () => {});
    await within(once(visitor, 'connect'), 5_000, 'the visitor to connect');
    const connection = await b.reader.line();
    const match = new RegExp(
      `^CONNECTION ([A-Za-z0-9_-]{21}) ${port} 127\\.0\\.0\\.1:[0-9]+ 127\\.0\\.0\\.1:${port}$`,
    ).exec(connection);
    assert.ok(match, `B gets the CONNECTION: ${connection}`);
    const data = await dialBack(server.dataPort, match[1] ?? '', sockets);
    visitor.write('to b');
    assert.equal((await data.take(4)).toString(), 'to b');
    // A is still connected but gets nothing: the server's PING (did A still live? it did
    // not answer, so B got the port), then the answer to A's own PING.
    a.send('PING\n');
    assert.deepEqual([await a.reader.line(), await a.reader.line()], ['PING', 'PONG'], 'A got no CONNECTION');

    // A's tunnel is gone for good: when A drops, B's tunnel stays.
    a.socket.destroy();
    await untilEqual(() => server.stats().clients, 1, 'A to be gone');
    assert.equal(server.stats().tunnels, 1);
    const second = net.connect({ host: HOST, port, allowHalfOpen: true });
    sockets.push(second);
    second.on('error', () => {});
    await within(once(second, 'connect'), 5_000, 'a second visitor to connect');
    assert.match(
      await b.reader.line(),
      new RegExp(`^CONNECTION [A-Za-z0-9_-]{21} ${port} 127\\.0\\.0\\.1:[0-9]+ 127\\.0\\.0\\.1:${port}$`),
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    for (const raw of raws) raw.socket.destroy();
    await server.destroy();
  }
});

// ---------------------------------------------------------------------------------------
// The CLI client

test('CLI client --no-reconnect: the server goes away → exit 1 with "lost the server" and the error line, no stack', async () => {
  const live = new Set<Cli>();
  const server = await serverOn();
  const local = await listenLocal(echo);
  try {
    const cli = startCli(
      // --quiet: no connection log, so stdout holds only the Forwarding line.
      [
        'client',
        String(local.port),
        '--no-reconnect',
        '--quiet',
        '--server',
        HOST,
        '--local-host',
        HOST,
        '--control-port',
        String(server.controlPort),
        '--data-port',
        String(server.dataPort),
      ],
      {},
      live,
    );
    const [, publicPort = ''] = await waitForOutput(cli, 'stdout', FORWARDING, 'the client to forward');
    await assertEchoes(Number(publicPort), 10_000, 10, 'through the CLI client');
    await server.destroy();
    assert.deepEqual(await within(cli.closed, CHILD_MS, 'the client to exit'), { code: 1, signal: null });
    assert.equal(cli.stdout, `Forwarding tcp://${HOST}:${publicPort} -> ${HOST}:${local.port}\n`);
    assert.deepEqual(lines(cli.stderr), [
      'burrow: lost the server: the server is restarting or shutting down (GOAWAY)',
    ]);
    noStack(cli.stderr);
  } finally {
    await killAll(live);
    await server.destroy();
    await local.close();
  }
});

test('CLI client (reconnect on by default): prints lost / reconnecting / reconnected across a server restart; SIGINT exits 0', async () => {
  const live = new Set<Cli>();
  let server = await serverOn();
  const local = await listenLocal(echo);
  try {
    const { controlPort, dataPort } = server;
    const cli = startCli(
      // --quiet: no connection log, so stdout holds only the Forwarding line.
      [
        'client',
        String(local.port),
        '--quiet',
        '--server',
        HOST,
        '--local-host',
        HOST,
        '--control-port',
        String(controlPort),
        '--data-port',
        String(dataPort),
      ],
      {},
      live,
    );
    const [, publicPort = ''] = await waitForOutput(cli, 'stdout', FORWARDING, 'the client to forward');
    await assertEchoes(Number(publicPort), 10_000, 11, 'before the restart');

    await server.destroy();
    await waitForOutput(cli, 'stderr', /^burrow: reconnecting in .*$/m, 'the client to announce its retry');
    server = await startServer({ controlPort, dataPort, bind: HOST });
    await waitForOutput(cli, 'stderr', /^burrow: reconnected; same public address$/m, 'the client to reconnect');
    await assertEchoes(Number(publicPort), 10_000, 12, 'after the restart');
    assert.equal(
      cli.stdout,
      `Forwarding tcp://${HOST}:${publicPort} -> ${HOST}:${local.port}\n`,
      'no new Forwarding line: same address',
    );

    cli.child.kill('SIGINT');
    assert.deepEqual(await within(cli.closed, CHILD_MS, 'the client to exit'), { code: 0, signal: null });
    const err = lines(cli.stderr);
    assert.equal(err[0], 'burrow: lost the server: the server is restarting or shutting down (GOAWAY)');
    // GOAWAY starts the backoff one step in: 1-2 s, printed to a tenth of a second.
    assert.match(err[1] ?? '', /^burrow: reconnecting in (1(\.\d)?|2) s \(attempt 1\)$/);
    assert.deepEqual(err.slice(-2), [
      'burrow: reconnected; same public address',
      'burrow: closing; open connections get 10 s to finish (signal again to stop now)',
    ]);
    for (const line of err.slice(2, -2))
      assert.match(line, /^burrow: (warning: .*|reconnecting in [0-9.]+ s \(attempt \d+\))$/);
    noStack(cli.stderr);
  } finally {
    await killAll(live);
    await server.destroy();
    await local.close();
  }
});

test('presenting its own lease again on the same connection reopens the port without using up a tunnel slot', async () => {
  const server = await serverOn({ maxTunnelsPerClient: 2 });
  const raw = await openControl(server.controlPort);
  try {
    raw.send('EXPOSE 1\n');
    const [, port, lease] = /^OK ([0-9]+) ([A-Za-z0-9_-]+)$/.exec(await raw.reader.line()) ?? [];
    assert.ok(port !== undefined && lease !== undefined, 'OK <port> <lease>');
    raw.send(`EXPOSE 1 ${port} ${lease}\n`);
    const again = /^OK ([0-9]+) ([A-Za-z0-9_-]+)$/.exec(await raw.reader.line());
    assert.equal(again?.[1], port, 'the same port');
    assert.equal(again?.[2], lease, 'the same lease: it names the tunnel across reclaims');
    // The reopened tunnel replaced the old one: one slot is still free.
    raw.send('EXPOSE 2\n');
    assert.match(await raw.reader.line(), /^OK [0-9]+ [A-Za-z0-9_-]+$/);
    assert.equal(server.stats().tunnels, 2);
    raw.send('EXPOSE 3\n');
    assert.equal(errReason(await raw.reader.line()), 'too-many-tunnels');
  } finally {
    raw.socket.destroy();
    await server.destroy();
  }
});
