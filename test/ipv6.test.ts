// IPv6 end to end (issue 7): the server listens dual-stack unless told otherwise, so its
// control, data and public ports answer on 127.0.0.1 and on ::1; a visitor over [::1]
// crosses the tunnel and is named `[::1]:port` (an IPv4 one `127.0.0.1:port`, never
// `::ffff:127.0.0.1`); a client reaches the server by an IPv6 address (plain and TLS); a
// local service on ::1 is served; and every address burrow prints, as a library and as the
// `burrow` command, is `[::1]:port`, never a bare `::1:port`.
// Needs the IPv6 loopback (::1), as every machine burrow is tested on has.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { BurrowClient, startClient, startServer, type BurrowServer, type ConnectionEvent } from '../index.ts';
import { testCerts } from './certs.ts';
import { interrupt, killAll, lines, runCli, startCli, untilJson, waitForOutput, type Cli, type Json } from './child.ts';
import { assertSameBytes, echo, pseudoRandomBytes, readAll, within } from './helpers.ts';
import { LineReader, probe, rejectsWith } from './raw.ts';
import { SERVER_FORMS } from '../cli/address.ts';

// ---------------------------------------------------------------------------------------
// Local helpers: test/helpers.ts speaks 127.0.0.1 only; these take the host.

const V4 = '127.0.0.1';
const V6 = '::1';
const HOSTS = [V4, V6] as const;

/** An echo service (or `onSocket`) listening on `host` only, port 0. */
async function listenOn(
  host: string,
  onSocket: (socket: net.Socket) => void = echo,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  server.listen(0, host);
  await within(once(server, 'listening'), 5_000, `a listener on ${host}`);
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Connects to `host`:`port`. */
async function connectTo(host: string, port: number): Promise<net.Socket> {
  const socket = net.connect({ host, port, allowHalfOpen: true });
  socket.on('error', () => {});
  await within(once(socket, 'connect'), 5_000, `connect to ${host} port ${port}`);
  return socket;
}

/** A visitor on `host`:`port` sends `payload`, half-closes, and must get exactly it back
 * (the local services here echo). Returns its own port: the server names it by that. */
async function visit(host: string, port: number, payload: Buffer): Promise<number> {
  const socket = await connectTo(host, port);
  const own = socket.localPort ?? 0; // read now: a closed socket no longer knows it
  try {
    const reply = readAll(socket);
    socket.end(payload);
    assertSameBytes(
      await within(reply, 10_000, `the echo over ${host}`),
      payload,
      `the echo over ${host} port ${port}`,
    );
    return own;
  } finally {
    socket.destroy();
  }
}

/** Sends `line` on a fresh connection to `host`:`port` and returns the first line back. */
async function ask(host: string, port: number, line: string): Promise<string> {
  const socket = await connectTo(host, port);
  try {
    const reader = new LineReader(socket);
    socket.write(line);
    return await reader.line();
  } finally {
    socket.destroy();
  }
}

/** A port nothing listens on, on ::1. */
async function closedV6Port(): Promise<number> {
  const held = await listenOn(V6);
  await held.close();
  return held.port;
}

/** Every trace text of `emitter`, as it happens. */
function traces(emitter: BurrowServer | BurrowClient): string[] {
  const texts: string[] = [];
  emitter.on('trace', (event) => texts.push(event.text));
  return texts;
}

/** A `host:port` form with a bare IPv6 `::1` in front of a port: what must never print. */
const BARE_V6 = /(?<![[\w:])::1:\d/;

const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------
// Library

test('default bind (none given) is dual-stack: the control, data and public ports answer on 127.0.0.1 and on ::1', async () => {
  const local = await listenOn(V4);
  const server = await startServer({ controlPort: 0, dataPort: 0 });
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: V4,
      localHost: V4,
      controlPort: server.controlPort,
      dataPort: server.dataPort,
    });
    const publicPort = client.tunnels[0]?.publicPort ?? 0;
    for (const [i, host] of HOSTS.entries()) {
      // burrow itself answers, not just something listening: PING on the control port,
      // an unknown id on the data port.
      assert.equal(await ask(host, server.controlPort, 'PING\n'), 'PONG', `control port over ${host}`);
      assert.match(await ask(host, server.dataPort, 'ID nosuchid\n'), /^ERR unknown-id( |$)/, `data port over ${host}`);
      await visit(host, publicPort, pseudoRandomBytes(100_000, 700 + i));
    }
  } finally {
    await client?.close();
    await server.close();
    await local.close();
  }
});

test('dual-stack: a visitor over [::1] is echoed byte for byte and named [::1]:port, an IPv4 one 127.0.0.1:port (not ::ffff:), in the connection events and the server trace', async () => {
  const local = await listenOn(V4);
  const server = await startServer({ controlPort: 0, dataPort: 0 });
  const serverTrace = traces(server);
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: V6,
      localHost: V4,
      controlPort: server.controlPort,
      dataPort: server.dataPort,
    });
    const publicPort = client.tunnels[0]?.publicPort ?? 0;
    const joined: ConnectionEvent[] = [];
    const closed: ConnectionEvent[] = [];
    client.on('connection', (event) => joined.push(event));
    client.on('connection-close', (event) => closed.push(event));

    // The client is joined before the first visitor byte is relayed: once the echo is
    // back, its 'connection' event has been emitted.
    const v6Port = await visit(V6, publicPort, pseudoRandomBytes(300_000, 710));
    assert.equal(joined.length, 1);
    assert.equal(joined[0]?.visitor, `[::1]:${v6Port}`);
    const v4Port = await visit(V4, publicPort, pseudoRandomBytes(300_000, 711));
    assert.equal(joined.length, 2);
    assert.equal(joined[1]?.visitor, `127.0.0.1:${v4Port}`);

    assert.ok(
      serverTrace.includes(`accepted from [::1]:${v6Port} on public port ${publicPort}`),
      serverTrace.join('\n'),
    );
    assert.ok(
      serverTrace.includes(`accepted from 127.0.0.1:${v4Port} on public port ${publicPort}`),
      serverTrace.join('\n'),
    );
    assert.ok(
      serverTrace.some((text) => /^client connected from \[::1\]:\d+$/.test(text)),
      serverTrace.join('\n'),
    );
    assert.ok(!serverTrace.some((text) => text.includes('::ffff:') || BARE_V6.test(text)), serverTrace.join('\n'));
  } finally {
    await client?.close();
    await server.close();
    await local.close();
  }
});

test('a client reaches the server by its IPv6 address (server "::1"), bound to ::1 and bound to nothing; the url is tcp://[::1]:port', async () => {
  const local = await listenOn(V4);
  try {
    for (const bind of [V6, undefined]) {
      const server = await startServer({ controlPort: 0, dataPort: 0, ...(bind === undefined ? {} : { bind }) });
      let client: BurrowClient | undefined;
      try {
        client = await startClient({
          tunnels: [{ localPort: local.port }],
          server: V6,
          localHost: V4,
          controlPort: server.controlPort,
          dataPort: server.dataPort,
        });
        const tunnel = client.tunnels[0];
        assert.ok(tunnel);
        assert.equal(tunnel.url, `tcp://[::1]:${tunnel.publicPort}`, `bind ${bind}`);
        const visitor = nextConnection(client);
        const port = await visit(V6, tunnel.publicPort, pseudoRandomBytes(50_000, 720));
        assert.equal((await visitor).visitor, `[::1]:${port}`);
        if (bind === V6) {
          // Bound to ::1, every port of it is on ::1 only.
          for (const [name, p] of [
            ['control', server.controlPort],
            ['data', server.dataPort],
            ['public', tunnel.publicPort],
          ] as const) {
            assert.equal(await probe(p), 'refused', `bound to ::1, the ${name} port does not answer on 127.0.0.1`);
          }
        } else {
          await visit(V4, tunnel.publicPort, pseudoRandomBytes(50_000, 721));
        }
      } finally {
        await client?.close();
        await server.close();
      }
    }
  } finally {
    await local.close();
  }
});

/** The next 'connection' event of `client`. */
function nextConnection(client: BurrowClient): Promise<ConnectionEvent> {
  return within(
    once(client, 'connection') as Promise<[ConnectionEvent]>,
    10_000,
    "the client's 'connection' event",
  ).then(([event]) => event);
}

test('TLS to the server by its IPv6 address: the certificate is checked against its IP address ::1', async () => {
  const certs = await testCerts();
  const local = await listenOn(V4);
  const server = await startServer({
    controlPort: 0,
    dataPort: 0,
    tls: { cert: certs.server.cert, key: certs.server.key },
  });
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: V6,
      localHost: V4,
      controlPort: server.controlPort,
      dataPort: server.dataPort,
      tls: { ca: certs.ca.cert },
    });
    const tunnel = client.tunnels[0];
    assert.ok(tunnel);
    assert.equal(tunnel.url, `tcp://[::1]:${tunnel.publicPort}`);
    await visit(V6, tunnel.publicPort, pseudoRandomBytes(100_000, 730));
  } finally {
    await client?.close();
    await server.close();
    await local.close();
  }
});

test('server "[::1]", the form burrow prints, works like "::1"', async () => {
  const local = await listenOn(V4);
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: V6 });
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: '[::1]',
      localHost: V4,
      controlPort: server.controlPort,
      dataPort: server.dataPort,
    });
    const tunnel = client.tunnels[0];
    assert.ok(tunnel);
    assert.equal(tunnel.url, `tcp://[::1]:${tunnel.publicPort}`);
    await visit(V6, tunnel.publicPort, pseudoRandomBytes(10_000, 740));
  } finally {
    await client?.close();
    await server.close();
    await local.close();
  }
});

test('a local service on ::1: the client\'s localHost "::1" and a tunnel\'s own localHost "::1" are served; the trace says joined to [::1]:port', async () => {
  const v6Local = await listenOn(V6);
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: V4 });
  const clients: BurrowClient[] = [];
  try {
    const common = { server: V4, controlPort: server.controlPort, dataPort: server.dataPort };
    // Nothing listens on 127.0.0.1 at that port, so only ::1 can serve these visitors.
    assert.equal(await probe(v6Local.port), 'refused');
    clients.push(await startClient({ ...common, tunnels: [{ localPort: v6Local.port }], localHost: V6 }));
    clients.push(
      await startClient({ ...common, tunnels: [{ localPort: v6Local.port, localHost: V6 }], localHost: V4 }),
    );
    for (const [i, client] of clients.entries()) {
      const tunnel = client.tunnels[0];
      assert.ok(tunnel);
      assert.equal(tunnel.localHost, V6);
      const clientTrace = traces(client);
      await visit(V4, tunnel.publicPort, pseudoRandomBytes(200_000, 750 + i));
      assert.ok(clientTrace.includes(`joined to [::1]:${v6Local.port}; piping`), clientTrace.join('\n'));
    }
  } finally {
    for (const client of clients) await client.close();
    await server.close();
    await v6Local.close();
  }
});

test('listen failures name an IPv6 bind address in brackets: cannot listen on control [::1]:port', async () => {
  const held = await listenOn(V6);
  try {
    const control = await rejectsWith(startServer({ controlPort: held.port, dataPort: 0, bind: V6 }), 'listen-failed');
    assert.equal(control.message, `cannot listen on control [::1]:${held.port}: address already in use`);
    const data = await rejectsWith(startServer({ controlPort: 0, dataPort: held.port, bind: V6 }), 'listen-failed');
    assert.equal(data.message, `cannot listen on data [::1]:${held.port}: address already in use`);
    // Dual-stack, the port is taken as soon as one family holds it.
    const dual = await rejectsWith(startServer({ controlPort: held.port, dataPort: 0 }), 'listen-failed');
    assert.equal(dual.message, `cannot listen on control port ${held.port}: address already in use`);
  } finally {
    await held.close();
  }
});

test('dual-stack, per-address limit: 127.0.0.1 and ::1 count apart, and the refusal traced names 127.0.0.1:port (not ::ffff:)', async () => {
  const server = await startServer({ controlPort: 0, dataPort: 0, maxClientsPerIp: 1 });
  const serverTrace = traces(server);
  const sockets: net.Socket[] = [];
  try {
    const first = await connectTo(V4, server.controlPort);
    sockets.push(first);
    const firstReader = new LineReader(first);
    first.write('PING\n');
    assert.equal(await firstReader.line(), 'PONG');
    assert.equal(await ask(V6, server.controlPort, 'PING\n'), 'PONG', '::1 is another address');
    const second = await connectTo(V4, server.controlPort);
    sockets.push(second);
    const reader = new LineReader(second);
    assert.equal(await reader.line(), 'ERR too-many-connections limit is 1 per address');
    assert.equal(await reader.next(), null);
    const expected = `ERR too-many-connections limit is 1 per address (to 127.0.0.1:${second.localPort})`;
    assert.ok(serverTrace.includes(expected), `${expected} in:\n${serverTrace.join('\n')}`);
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.close();
  }
});

test('the client names an IPv6 server in brackets when it cannot reach it: cannot connect to burrow server at [::1]:port', async () => {
  const port = await closedV6Port();
  const error = await rejectsWith(
    startClient({ tunnels: [{ localPort: 1 }], server: V6, controlPort: port, dataPort: port }),
    'unreachable',
  );
  assert.equal(error.message, `cannot connect to burrow server at [::1]:${port}: connection refused`);
});

test("the client's trace names an IPv6 server in brackets: connected to [::1]:port", async () => {
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: V6 });
  const client = new BurrowClient({
    tunnels: [{ localPort: 1 }],
    server: V6,
    controlPort: server.controlPort,
    dataPort: server.dataPort,
  });
  const clientTrace = traces(client);
  try {
    await client.start();
    assert.ok(clientTrace.includes(`connected to [::1]:${server.controlPort}`), clientTrace.join('\n'));
    assert.ok(!clientTrace.some((text) => BARE_V6.test(text)), clientTrace.join('\n'));
  } finally {
    await client.close();
    await server.close();
  }
});

// ---------------------------------------------------------------------------------------
// The `burrow` command

const timeless = ({ time: _time, ...rest }: Json): Json => rest;

/** What `burrow server` prints once it listens, with whatever it shows of the bind address. */
const LISTENING_ANY =
  /^burrow server listening on (?:(\S+) )?control port (\d+), data port (\d+); public ports 1024-65535$/m;

test('CLI text: server --bind ::1 --trace, client --server ::1 --local-host ::1: Forwarding tcp://[::1]:X -> [::1]:P; the log line and the server trace name the visitor [::1]:port', async () => {
  const live = new Set<Cli>();
  const local = await listenOn(V6);
  try {
    const server = startCli(['server', '--bind', V6, '--control-port', '0', '--data-port', '0', '--trace'], {}, live);
    const [, shown = '', controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING_ANY,
      'the server to listen',
    );
    assert.ok(shown === '::1' || shown === '[::1]', `the listen line shows the bind address: ${server.stdout}`);

    const client = startCli(
      [
        'client',
        String(local.port),
        '--server',
        V6,
        '--local-host',
        V6,
        '--control-port',
        controlPort,
        '--data-port',
        dataPort,
      ],
      {},
      live,
    );
    const forwarding = new RegExp(`^Forwarding tcp://\\[::1\\]:(\\d+) -> \\[::1\\]:${local.port}$`, 'm');
    const [, publicPort = ''] = await waitForOutput(client, 'stdout', forwarding, 'the client to forward');
    assert.equal(await probe(Number(publicPort)), 'refused', 'the public port is bound to ::1 as well');

    const visitorPort = await visit(V6, Number(publicPort), pseudoRandomBytes(1000, 760));
    const logLine = new RegExp(
      `^\\d\\d:\\d\\d:\\d\\d \\[::1\\]:${visitorPort} -> tcp://\\[::1\\]:${publicPort} -> \\[::1\\]:${local.port}  in 1000 B  out 1000 B  \\S+ m?s$`,
      'm',
    );
    await waitForOutput(client, 'stdout', logLine, `the connection log line ${logLine}`);
    await waitForOutput(
      server,
      'stderr',
      new RegExp(literal(`accepted from [::1]:${visitorPort} on public port ${publicPort}`)),
      'the server to trace the visitor',
    );
    await waitForOutput(server, 'stderr', /client connected from \[::1\]:\d+/, 'the server to trace the client');

    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    for (const [who, cli] of [
      ['server', server],
      ['client', client],
    ] as const) {
      for (const line of lines(`${cli.stdout}\n${cli.stderr}`))
        assert.doesNotMatch(line, BARE_V6, `${who} printed a bare ::1:port`);
    }
  } finally {
    await killAll(live);
    await local.close();
  }
});

test('CLI: the listen line shows an IPv6 bind address in brackets, like every other address', async () => {
  const live = new Set<Cli>();
  try {
    const server = startCli(['server', '--bind', V6, '--control-port', '0', '--data-port', '0'], {}, live);
    const [, shown = ''] = await waitForOutput(server, 'stdout', LISTENING_ANY, 'the server to listen');
    assert.equal(shown, '[::1]');
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
  } finally {
    await killAll(live);
  }
});

test('CLI --json: a dual-stack server (no --bind, --metrics [::1]:0) and a client --server [::1] --local-host ::1: tunnel and connection events use [::1]:port; an IPv4 visitor is 127.0.0.1:port', async () => {
  const live = new Set<Cli>();
  const local = await listenOn(V6);
  try {
    const server = startCli(
      ['server', '--control-port', '0', '--data-port', '0', '--metrics', '[::1]:0', '--json'],
      {},
      live,
    );
    const listening = await untilJson(server, (e) => e.event === 'listening', 'the server to listen');
    assert.equal(listening.bind, null);
    const metrics = String(listening.metrics);
    assert.match(metrics, /^http:\/\/\[::1\]:\d+\/metrics$/);
    const scrape = await within(fetch(metrics), 10_000, 'a scrape over ::1');
    assert.equal(scrape.status, 200);
    assert.match(await scrape.text(), /^burrow_clients 0$/m);
    const [controlPort, dataPort] = [String(listening.controlPort), String(listening.dataPort)];

    const client = startCli(
      [
        'client',
        String(local.port),
        '--server',
        '[::1]',
        '--local-host',
        V6,
        '--control-port',
        controlPort,
        '--data-port',
        dataPort,
        '--json',
      ],
      {},
      live,
    );
    const tunnel = await untilJson(client, (e) => e.event === 'tunnel', 'the client to forward');
    const publicPort = Number(tunnel.publicPort);
    const url = `tcp://[::1]:${publicPort}`;
    assert.deepEqual(timeless(tunnel), { event: 'tunnel', url, publicPort, local: `[::1]:${local.port}` });

    const v6Port = await visit(V6, publicPort, pseudoRandomBytes(3000, 770));
    const v4Port = await visit(V4, publicPort, pseudoRandomBytes(2000, 771));
    for (const [visitor, bytes] of [
      [`[::1]:${v6Port}`, 3000],
      [`127.0.0.1:${v4Port}`, 2000],
    ] as const) {
      const entry = await untilJson(
        client,
        (e) => e.event === 'connection' && e.visitor === visitor,
        `the connection of ${visitor}`,
      );
      const { id: _id, durationMs: _duration, ...rest } = timeless(entry);
      assert.deepEqual(rest, {
        event: 'connection',
        visitor,
        publicPort,
        url,
        local: `[::1]:${local.port}`,
        bytesIn: bytes,
        bytesOut: bytes,
        reset: false,
        localUnavailable: false,
      });
    }

    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    for (const [who, cli] of [
      ['server', server],
      ['client', client],
    ] as const) {
      assert.equal(cli.stderr, '', `${who}: nothing on stderr with --json`);
      assert.doesNotMatch(cli.stdout, BARE_V6, `${who} printed a bare ::1:port`);
      assert.ok(!cli.stdout.includes('::ffff:'), `${who} printed an IPv4-mapped address`);
    }
  } finally {
    await killAll(live);
    await local.close();
  }
});

test('CLI: --bind [::1] listens on ::1 only; brackets around anything but an IPv6 address are a usage error (exit 2)', async () => {
  const live = new Set<Cli>();
  try {
    const server = startCli(
      ['server', '--bind', '[::1]', '--control-port', '0', '--data-port', '0', '--json'],
      {},
      live,
    );
    const listening = await untilJson(server, (e) => e.event === 'listening', 'the server to listen');
    assert.equal(listening.bind, V6);
    const controlPort = Number(listening.controlPort);
    assert.equal(await ask(V6, controlPort, 'PING\n'), 'PONG');
    assert.equal(await probe(controlPort), 'refused');
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
  } finally {
    await killAll(live);
  }

  const clientHint = "Run 'burrow client --help' for usage.";
  const serverHint = "Run 'burrow server --help' for usage.";
  const why = '(an IPv6 address may be written ::1 or [::1]; ports have their own flags)';
  const forms = `give ${SERVER_FORMS}, where PORT is the control port (of ws:// and wss://: the HTTP(S) port)`;
  const cases: Array<[string[], Record<string, string>, string, string]> = [
    [
      ['client', '3000', '--server', '[localhost]'],
      {},
      `--server: "[localhost]" is not a server address (only an IPv6 address goes in brackets); ${forms}`,
      clientHint,
    ],
    [
      ['client', '3000', '--local-host', '[127.0.0.1]'],
      {},
      `--local-host: "[127.0.0.1]" is not a host name or address ${why}`,
      clientHint,
    ],
    [['server', '--bind', '[::1'], {}, `--bind: "[::1" is not a host name or address ${why}`, serverHint],
  ];
  for (const [args, env, message, hint] of cases) {
    const result = await runCli(args, env);
    assert.deepEqual(
      { code: result.code, stdout: result.stdout, stderr: result.stderr },
      { code: 2, stdout: '', stderr: `burrow: ${message}\n${hint}\n` },
      args.join(' '),
    );
  }
});
