// The base protocol of docs/PROTOCOL.md ("The base protocol"), against the example peers
// written from it alone (examples/minimal-*.mjs, run with plain node): burrow's relay must
// serve a minimal client, burrow's client must work through a minimal server, and the two
// examples must work with each other. Every byte through the tunnel is compared exactly.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { describe, test } from 'node:test';
import { startClient, startServer, type BurrowClient } from '../index.ts';
import { killAll, type Cli } from './child.ts';
import { startMinimalClient, startMinimalServer } from './examples.ts';
import {
  assertSameBytes,
  connectVisitor,
  echo,
  HOST,
  listenLocal,
  pseudoRandomBytes,
  readAll,
  request,
  within,
} from './helpers.ts';
import { openRaw } from './raw.ts';

const TEN_MB = 10 * 1024 * 1024;
const BIG_MS = 60_000;

/** A local HTTP service on 127.0.0.1 whose answer depends on the request. */
async function startHttp(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(201, { 'content-type': 'text/plain', 'x-seen-path': req.url ?? '' });
    res.end(`hello from the local service: ${req.method ?? '?'} ${req.url ?? '?'}\n`);
  });
  server.listen(0, HOST);
  await within(once(server, 'listening'), 5_000, 'the HTTP service to listen');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return {
    port: address.port,
    close: async () => {
      server.closeAllConnections();
      await within(new Promise<void>((resolve) => server.close(() => resolve())), 5_000, 'the HTTP service to close');
    },
  };
}

/** One GET through `port` (no keep-alive): status, a header and the whole body. */
function httpGet(
  port: number,
  path: string,
): Promise<{ status: number | undefined; seenPath: string | string[] | undefined; body: string }> {
  const response = new Promise<{ status: number | undefined; seenPath: string | string[] | undefined; body: string }>(
    (resolve, reject) => {
      const req = http.get({ host: HOST, port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, seenPath: res.headers['x-seen-path'], body }));
        res.on('error', reject);
      });
      req.on('error', reject);
    },
  );
  return within(response, 10_000, `an HTTP response through port ${port}`);
}

async function checkHttp(publicPort: number): Promise<void> {
  const response = await httpGet(publicPort, '/through/the/tunnel?x=1');
  assert.deepEqual(response, {
    status: 201,
    seenPath: '/through/the/tunnel?x=1',
    body: 'hello from the local service: GET /through/the/tunnel?x=1\n',
  });
}

/** 10 MB of pseudo-random bytes: the visitor writes them and half-closes; the echo service
 * sends them all back and closes. */
async function checkBigEcho(publicPort: number, seed: number): Promise<void> {
  const payload = pseudoRandomBytes(TEN_MB, seed);
  assertSameBytes(await request(publicPort, payload, BIG_MS), payload, '10 MB echoed through the tunnel');
}

/** A local service that speaks first (like SSH or SMTP), then echoes: its first bytes race
 * the ID line on the data connection and may share a packet with it. */
const BANNER = 'BANNER from the local service\n';
function bannerEcho(socket: net.Socket): void {
  socket.write(BANNER);
  socket.pipe(socket);
}

/** Short heartbeat settings: a peer that wrongly expected heartbeats from a minimal one
 * would give it up within the test. */
const HEARTBEAT_INTERVAL_MS = 100;
const HEARTBEAT_TIMEOUT_MS = 400;

/** Keeps visitors coming through a bannerEcho tunnel (the control connection stays silent
 * meanwhile) until several heartbeat timeouts have passed since `since`: no sleeping, and
 * every round trip is bounded. */
async function visitorsFor(publicPort: number, since: number): Promise<void> {
  let rounds = 0;
  while (Date.now() - since < 3 * HEARTBEAT_TIMEOUT_MS && rounds < 10_000) {
    const message = `visitor ${rounds++}\n`;
    assert.equal((await request(publicPort, message)).toString(), BANNER + message);
  }
  assert.ok(Date.now() - since >= 3 * HEARTBEAT_TIMEOUT_MS, `only ${rounds} rounds`);
}

describe('minimal-client.mjs against the burrow relay', () => {
  async function withRelayAndMinimalClient(
    localPort: number,
    body: (publicPort: number, client: Cli) => Promise<void>,
  ): Promise<void> {
    const live = new Set<Cli>();
    const server = await startServer({
      controlPort: 0,
      dataPort: 0,
      bind: HOST,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
    });
    try {
      const { publicPort, cli } = await startMinimalClient(localPort, server, live);
      await body(publicPort, cli);
    } finally {
      await killAll(live);
      await server.close();
    }
  }

  test('an HTTP request gets the exact response (no data-port OK in the stream)', async () => {
    const local = await startHttp();
    try {
      await withRelayAndMinimalClient(local.port, checkHttp);
    } finally {
      await local.close();
    }
  });

  test('10 MB echo with a half-close comes back byte-exact', async () => {
    const local = await listenLocal(echo);
    try {
      await withRelayAndMinimalClient(local.port, (publicPort) => checkBigEcho(publicPort, 11));
    } finally {
      await local.close();
    }
  });

  test('keeps a minimal client, which sends no heartbeats, and serves a service that speaks first', async () => {
    const local = await listenLocal(bannerEcho);
    try {
      await withRelayAndMinimalClient(local.port, async (publicPort, client) => {
        await visitorsFor(publicPort, Date.now());
        assert.deepEqual(
          [client.child.exitCode, client.child.signalCode],
          [null, null],
          `minimal-client.mjs is still running; stderr: ${client.stderr}`,
        );
        assert.equal(client.stderr, '');
      });
    } finally {
      await local.close();
    }
  });
});

describe('the burrow client against minimal-server.mjs', () => {
  interface Watched {
    client: BurrowClient;
    publicPort: number;
    /** Everything that would mean the client lost or doubted the server. */
    trouble: string[];
    startedAt: number;
  }

  async function withMinimalServerAndClient(
    localPort: number,
    body: (watched: Watched) => Promise<void>,
  ): Promise<void> {
    const live = new Set<Cli>();
    let client: BurrowClient | undefined;
    try {
      const minimal = await startMinimalServer(live);
      client = await startClient({
        tunnels: [{ localPort }],
        server: HOST,
        localHost: HOST,
        controlPort: minimal.controlPort,
        dataPort: minimal.dataPort,
        reconnect: true,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      });
      const trouble: string[] = [];
      client.on('disconnected', (error) => trouble.push(`disconnected: ${error.message}`));
      client.on('reconnecting', ({ attempt }) => trouble.push(`reconnecting (attempt ${attempt})`));
      client.on('warning', (warning) => trouble.push(`warning: ${warning.message}`));
      client.on('close', (error) => error && trouble.push(`close: ${error.message}`));
      const publicPort = client.tunnels[0]?.publicPort ?? 0;
      assert.ok(publicPort > 0, 'the minimal server gave a public port');
      await body({ client, publicPort, trouble, startedAt: Date.now() });
    } finally {
      await client?.destroy();
      await killAll(live);
    }
  }

  test('an HTTP request gets the exact response', async () => {
    const local = await startHttp();
    try {
      await withMinimalServerAndClient(local.port, async ({ publicPort, trouble }) => {
        await checkHttp(publicPort);
        assert.deepEqual(trouble, []);
      });
    } finally {
      await local.close();
    }
  });

  test('10 MB echo with a half-close comes back byte-exact', async () => {
    const local = await listenLocal(echo);
    try {
      await withMinimalServerAndClient(local.port, async ({ publicPort, trouble }) => {
        await checkBigEcho(publicPort, 12);
        assert.deepEqual(trouble, []);
      });
    } finally {
      await local.close();
    }
  });

  test('stays connected to a server that sends no heartbeats, serves a service that speaks first, and close() works', async () => {
    const local = await listenLocal(bannerEcho);
    try {
      await withMinimalServerAndClient(local.port, async ({ client, publicPort, trouble, startedAt }) => {
        await visitorsFor(publicPort, startedAt);
        assert.deepEqual(trouble, [], 'the client neither lost nor doubted the minimal server');

        const closed = once(client, 'close');
        await within(client.close(), 5_000, 'client.close()');
        assert.deepEqual(await within(closed, 1_000, "the client's 'close' event"), [undefined]);
        // The minimal server closes the public port once the control connection is gone.
        let refused = false;
        for (let attempt = 0; attempt < 200 && !refused; attempt++) {
          const socket = net.connect({ host: HOST, port: publicPort });
          refused = await within(
            new Promise<boolean>((resolve) => {
              socket.once('connect', () => resolve(false));
              socket.once('error', () => resolve(true));
            }),
            5_000,
            'a connect to the closed public port',
          );
          socket.destroy();
        }
        assert.ok(refused, 'the public port still accepts visitors after client.close()');
        assert.deepEqual(trouble, []);
      });
    } finally {
      await local.close();
    }
  });
});

describe('minimal-client.mjs against minimal-server.mjs', () => {
  test('10 MB echo with a half-close comes back byte-exact', async () => {
    const live = new Set<Cli>();
    const local = await listenLocal(echo);
    try {
      const minimal = await startMinimalServer(live);
      const { publicPort } = await startMinimalClient(local.port, minimal, live);
      await checkBigEcho(publicPort, 13);
    } finally {
      await killAll(live);
      await local.close();
    }
  });

  test('minimal-server skips unknown lines and fields, and keeps the bytes sent with the ID line', async () => {
    const live = new Set<Cli>();
    const sockets: net.Socket[] = [];
    try {
      const minimal = await startMinimalServer(live);
      const control = await openRaw(minimal.controlPort);
      sockets.push(control.socket);
      control.send('HELLO ping goaway id-reply refuse fin-notice=x\r\nNOPE whatever\nEXPOSE 1234 0 extra-field\r\n');
      const ok = /^OK (\d+)$/.exec(await control.reader.line());
      const publicPort = Number(ok?.[1]);
      assert.ok(publicPort > 0, 'OK <publicPort>');

      const visitor = await connectVisitor(publicPort);
      sockets.push(visitor);
      const toVisitor = readAll(visitor);
      visitor.end('from the visitor');
      const id = /^CONNECTION (\S+)$/.exec(await control.reader.line())?.[1] ?? '';
      assert.match(id, /^[\x21-\x7e]{16,}$/, 'a printable id without spaces');

      const data = net.connect({ host: HOST, port: minimal.dataPort, allowHalfOpen: true });
      sockets.push(data);
      data.on('error', () => {});
      await within(once(data, 'connect'), 5_000, 'connect to the data port');
      const toService = readAll(data);
      data.end(`ID ${id}\r\nbanner sent in the same write as the ID line`); // one write, one packet
      assert.equal(
        (await within(toVisitor, 5_000, 'the visitor to get everything')).toString(),
        'banner sent in the same write as the ID line',
      );
      assert.equal((await within(toService, 5_000, 'the client to get everything')).toString(), 'from the visitor');

      // The id was used: a second ID line with it finds nobody.
      const again = net.connect({ host: HOST, port: minimal.dataPort });
      sockets.push(again);
      again.on('error', () => {});
      const closedAgain = once(again, 'close');
      again.write(`ID ${id}\n`);
      await within(closedAgain, 5_000, 'a reused id to be turned away');
    } finally {
      for (const socket of sockets) socket.destroy();
      await killAll(live);
    }
  });
});

test('the burrow client with several tunnels refuses to start against a minimal server, whose CONNECTION <id> cannot say which tunnel a visitor is for', async () => {
  const live = new Set<Cli>();
  try {
    const minimal = await startMinimalServer(live);
    await assert.rejects(
      startClient({
        tunnels: [{ localPort: 1 }, { localPort: 2 }],
        server: HOST,
        localHost: HOST,
        controlPort: minimal.controlPort,
        dataPort: minimal.dataPort,
      }),
      (error: Error & { code?: string }) =>
        error.code === 'protocol' && /speaks only the base protocol/.test(error.message),
    );
  } finally {
    await killAll(live);
  }
});
