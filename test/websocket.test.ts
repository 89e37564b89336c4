// The control and data ports over WebSocket, end to end on loopback: a burrow client that
// reaches the relay on its HTTP port (ws://) or its HTTPS port (wss://, with a test CA)
// carries tunnels byte-exact, with half-close and resets carried through both ways; it
// reconnects to the same public port when its WebSockets are cut; the relay turns away
// bad input on the WebSocket paths and stays up; an upgrade on a tunnel's own name is the
// tunnel's; and pings keep a live peer and drop a silent one. Raw peers speak the line
// protocol by hand over a `ws` WebSocket (binary messages, an empty one for FIN).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer, type ClientOptions as WsClientOptions } from 'ws';
import { startClient, type BurrowClient, type ClientOptions } from '../client/client.ts';
import { startServer, type BurrowServer, type RefusedEvent, type ServerOptions } from '../server/server.ts';
import { testCerts } from './certs.ts';
import {
  assertSameBytes,
  connectVisitor,
  echo,
  HOST,
  listenLocal,
  nextEvent,
  pseudoRandomBytes,
  readAll,
  replyOnEnd,
  request,
  untilEqual,
  within,
} from './helpers.ts';
import {
  assertReset,
  honestEnding,
  localResetReachesVisitor,
  pushBytes,
  receivedAtLeast,
  serviceResetSeenByVisitor,
  visitorResetReachesLocal,
  visitorResetSeenByService,
  type HonestEnding,
} from './endings.ts';
import { endingOf, openInbox } from './inbox.ts';
import { WsPeer } from './ws-peer.ts';
import { rejectsWith } from './raw.ts';
import { startTcpProxy } from './tcp-proxy.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const MB = 1_000_000;

// ---------------------------------------------------------------------------------------
// Local helpers

type Mode = 'ws' | 'wss';
const MODES: readonly Mode[] = ['ws', 'wss'];

/** Server options for a relay that takes WebSockets on its HTTP (ws) or HTTPS (wss) port. */
async function relayOptions(mode: Mode): Promise<ServerOptions> {
  if (mode === 'ws') return { httpPort: 0 };
  const certs = await testCerts();
  return { httpsPort: 0, httpsCert: certs.server.cert, httpsKey: certs.server.key };
}

/** The relay's WebSocket URL (no path) for `mode`. */
function relayUrl(server: BurrowServer, mode: Mode): string {
  const port = mode === 'ws' ? server.httpPorts.http : server.httpPorts.https;
  assert.ok(port, `the relay has no ${mode === 'ws' ? 'HTTP' : 'HTTPS'} port`);
  return `${mode}://${HOST}:${port}`;
}

/** Client options reaching `server` over WebSocket (`mode`), trusting the test CA for wss. */
async function overWebSocket(
  server: BurrowServer,
  mode: Mode,
  extra: Partial<WsOptions> = {},
): Promise<Partial<ClientOptions>> {
  const webSocket = { url: relayUrl(server, mode), proxy: false as const, ...extra };
  if (mode === 'ws') return { webSocket };
  const certs = await testCerts();
  return { webSocket, tls: { ca: certs.ca.cert } };
}

type WsOptions = NonNullable<ClientOptions['webSocket']>;

interface WsRig {
  server: BurrowServer;
  client: BurrowClient;
  publicPort: number;
  close(): Promise<void>;
}

/** A relay, a client over WebSocket and one local service, on loopback. */
async function startWsRig(
  mode: Mode,
  onLocalSocket: (socket: net.Socket) => void,
  options: { server?: ServerOptions; client?: Partial<ClientOptions>; webSocket?: Partial<WsOptions> } = {},
): Promise<WsRig> {
  const local = await listenLocal(onLocalSocket);
  const server = await startServer({
    controlPort: 0,
    dataPort: 0,
    bind: HOST,
    ...(await relayOptions(mode)),
    ...options.server,
  });
  let client: BurrowClient;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      localHost: HOST,
      ...(await overWebSocket(server, mode, options.webSocket)),
      ...options.client,
    });
  } catch (error) {
    await server.close();
    await local.close();
    throw error;
  }
  const publicPort = client.tunnels[0]?.publicPort ?? 0;
  assert.equal(client.tunnels[0]?.url, `tcp://${HOST}:${publicPort}`, 'the tunnel is named by the URL’s host');
  return {
    server,
    client,
    publicPort,
    close: async () => {
      await client.close();
      await server.close();
      await local.close();
    },
  };
}

/** A promise with its settle function, for values produced inside event handlers. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((res) => (resolve = res));
  return { promise, resolve };
}

/** Opens a WsPeer on `path` of the relay's `mode` port; `peers` collects it for cleanup. */
async function openPeer(
  server: BurrowServer,
  mode: Mode,
  path: string,
  peers: WsPeer[],
  options: WsClientOptions = {},
): Promise<WsPeer> {
  const tls = mode === 'wss' ? { ca: (await testCerts()).ca.cert } : {};
  const peer = WsPeer.connect(`${relayUrl(server, mode)}${path}`, { ...tls, ...options });
  peers.push(peer);
  await peer.opened();
  return peer;
}

/** Ends every peer at once and waits until each has closed. */
async function closePeers(peers: WsPeer[]): Promise<void> {
  for (const peer of peers) peer.ws.terminate();
  await within(Promise.all(peers.map((peer) => peer.closed)), 5_000, 'the raw WebSockets to close');
}

/** The HTTP answer to a plain GET of `path` on `port`: status, headers and body. */
function httpGet(
  port: number,
  path: string,
  headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return within(
    new Promise((resolve, reject) => {
      const req = http.get({ host: HOST, port, path, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
    }),
    5_000,
    `GET ${path}`,
  );
}

/** What the relay answers a WebSocket upgrade it does not take: status and body. */
function refusedUpgrade(
  url: string,
  headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(url, { headers });
  ws.on('error', () => {}); // terminate() below reports the aborted handshake as an error
  return within(
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      ws.once('open', () => reject(new Error(`${url} was upgraded`)));
      ws.once('unexpected-response', (_req, res: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.once('error', reject);
      });
    }),
    5_000,
    `the answer to the upgrade of ${url}`,
  ).finally(() => ws.terminate());
}

/** Starts a client over WebSocket to `server` and checks a 64 KiB echo through its
 * tunnel, byte-exact; then closes the client. Proves the relay is still up. */
async function assertRelayWorks(server: BurrowServer, mode: Mode, localPort: number, seed: number): Promise<void> {
  const client = await within(
    startClient({ tunnels: [{ localPort }], localHost: HOST, ...(await overWebSocket(server, mode)) }),
    10_000,
    'a client over WebSocket to start',
  );
  try {
    const payload = pseudoRandomBytes(64 * KiB, seed);
    assertSameBytes(await request(client.tunnels[0]?.publicPort ?? 0, payload), payload, 'an echo through the relay');
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------------------------------
// 1. Tunnels over ws:// and wss://, byte-exact.

for (const mode of MODES) {
  test(`${mode}: 20 MB each way through an echo service arrive byte-exact`, async () => {
    const rig = await startWsRig(mode, echo);
    try {
      const sent = pseudoRandomBytes(20 * MB, mode === 'ws' ? 0x5eed : 0xbeef);
      assertSameBytes(await request(rig.publicPort, sent, 60_000), sent, `${mode}: echoed bytes`);
    } finally {
      await rig.close();
    }
  });

  test(`${mode}: half-close: the visitor ends its request and receives a 1 MiB reply whole`, async () => {
    const reply = pseudoRandomBytes(MiB, 99);
    const requests: string[] = [];
    const rig = await startWsRig(
      mode,
      replyOnEnd((req) => {
        requests.push(req.toString());
        return reply;
      }),
    );
    try {
      assertSameBytes(await request(rig.publicPort, 'GET /big\n', 20_000), reply, `${mode}: the 1 MiB reply`);
      assert.deepEqual(requests, ['GET /big\n']);
    } finally {
      await rig.close();
    }
  });

  test(`${mode}: half-close: the local service ends first and still receives what the visitor sends afterwards`, async () => {
    const localGot = deferred<Buffer>();
    const rig = await startWsRig(mode, (socket) => {
      void readAll(socket).then(localGot.resolve);
      socket.end('greeting\n');
    });
    const visitor = await connectVisitor(rig.publicPort);
    try {
      const greeting = await within(readAll(visitor), 5_000, 'the greeting and FIN');
      assert.equal(greeting.toString(), 'greeting\n');
      assert.equal(visitor.readableEnded, true, 'the visitor got a clean FIN');
      const later = Buffer.concat([Buffer.from('after the local side closed\n'), pseudoRandomBytes(256 * KiB, 3)]);
      const visitorClosed = once(visitor, 'close');
      visitor.write(later.subarray(0, 1000));
      visitor.end(later.subarray(1000));
      assertSameBytes(
        await within(localGot.promise, 10_000, 'the visitor bytes at the local service'),
        later,
        `${mode}: bytes sent after the local FIN`,
      );
      await within(visitorClosed, 5_000, 'the visitor to close');
    } finally {
      visitor.destroy();
      await rig.close();
    }
  });

  test(`${mode}: 50 concurrent visitors each get exactly their own bytes back`, async () => {
    const rig = await startWsRig(mode, echo);
    try {
      const idle = rig.server.stats();
      const inputs = Array.from({ length: 50 }, (_, index) => pseudoRandomBytes(100 * KiB, index + 1));
      const outputs = await Promise.all(inputs.map((input) => request(rig.publicPort, input, 30_000)));
      outputs.forEach((output, index) => assertSameBytes(output, inputs[index] ?? Buffer.alloc(0), `visitor ${index}`));
      // Fifty data WebSockets came and went: the relay holds what it held before them.
      await untilEqual(() => rig.server.stats(), idle, `${mode}: the relay to hold only the idle client again`);
    } finally {
      await rig.close();
    }
  });

  // -------------------------------------------------------------------------------------
  // 2. Resets carried through as resets.

  test(`${mode}: a local service that resets mid-stream reaches the visitor as a reset (ECONNRESET), not a clean end`, async () => {
    await serviceResetSeenByVisitor((onLocal) => startWsRig(mode, onLocal), mode);
  });

  test(`${mode}: a visitor that resets mid-stream reaches the local service as a reset (ECONNRESET), not a clean end`, async () => {
    await visitorResetSeenByService((onLocal) => startWsRig(mode, onLocal), mode);
  });
}

// ---------------------------------------------------------------------------------------
// 2b. Honest ends under load (as test/honest-ends.test.ts over TCP and TLS): a reset while
// bytes are in flight on every hop must reach the far end as a reset, never as a FIN.

/** Each case runs this many times: the end-of-stream mix-up it guards against is a race. */
const ROUNDS = 3;

for (const mode of MODES) {
  test(`${mode}: honest ends: the local service resets mid-response (bytes in flight): the visitor is reset, not ended`, async () => {
    await localResetReachesVisitor((onLocal) => startWsRig(mode, onLocal), ROUNDS, `${mode}, `);
  });

  test(`${mode}: honest ends: the visitor resets mid-upload (bytes in flight): the local service is reset, not ended`, async () => {
    await visitorResetReachesLocal((onLocal) => startWsRig(mode, onLocal), ROUNDS, `${mode}, `);
  });
}

test('ws: honest ends: the client’s WebSockets reset mid-download (connection lost, no close): visitor and local service are reset', async () => {
  const locals: Promise<HonestEnding>[] = [];
  const local = await listenLocal((socket) => {
    locals.push(honestEnding(socket));
    pushBytes(socket, 256 * MiB);
  });
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0 });
  const proxy = await startTcpProxy(server.httpPorts.http ?? 0);
  const client = await startClient({
    tunnels: [{ localPort: local.port }],
    localHost: HOST,
    webSocket: { url: `ws://${HOST}:${proxy.port}`, proxy: false },
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
  });
  client.on('warning', () => {});
  try {
    const publicPort = client.tunnels[0]?.publicPort ?? 0;
    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0) await nextEvent(client, 'reconnected', 10_000);
      const visitor = await connectVisitor(publicPort);
      const ending = honestEnding(visitor);
      await receivedAtLeast(visitor, 2 * MiB);
      proxy.resetAll(); // the control WebSocket too: the client reconnects for the next round
      assertReset(await within(ending, 10_000, 'the visitor to end'), `round ${round + 1}, visitor`);
    }
    const localEndings = await within(Promise.all(locals), 10_000, 'the local connections to end');
    localEndings.forEach((ending, i) => assertReset(ending, `round ${i + 1}, local service`));
  } finally {
    await client.destroy();
    await proxy.close();
    await server.destroy();
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// 3. Reconnecting to the same public port.

for (const mode of MODES) {
  test(`${mode}: a client whose WebSockets are cut (FIN, then RST) reconnects and keeps its public port; visitors work again`, async () => {
    const local = await listenLocal(echo);
    const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, ...(await relayOptions(mode)) });
    // A TCP proxy in front of the HTTP(S) port: TLS passes through it, and it can cut.
    const proxy = await startTcpProxy((mode === 'ws' ? server.httpPorts.http : server.httpPorts.https) ?? 0);
    let client: BurrowClient | undefined;
    try {
      client = await startClient({
        tunnels: [{ localPort: local.port }],
        localHost: HOST,
        ...(await overWebSocket(server, mode)),
        webSocket: { url: `${mode}://${HOST}:${proxy.port}`, proxy: false },
        reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
      });
      client.on('warning', () => {}); // a retry that meets the old session may be reported
      const publicPort = client.tunnels[0]?.publicPort ?? 0;
      assert.equal((await request(publicPort, 'before')).toString(), 'before');
      for (const [how, cut] of [
        ['FIN', () => proxy.breakAll()],
        ['RST', () => proxy.resetAll()],
      ] as const) {
        const lost: Promise<[Error]> = nextEvent(client, 'disconnected', 10_000);
        const back: Promise<[{ moved: unknown[] }]> = nextEvent(client, 'reconnected', 10_000);
        assert.ok(cut() > 0, `${how}: the proxy had connections to cut`);
        await lost;
        const [{ moved }] = await back;
        assert.deepEqual(moved, [], `${how}: the same public port, by its lease`);
        assert.equal(client.tunnels[0]?.publicPort, publicPort, `${how}: the same public port`);
        const payload = pseudoRandomBytes(256 * KiB, how === 'FIN' ? 1 : 2);
        assertSameBytes(await request(publicPort, payload), payload, `${how}: an echo after the reconnect`);
      }
      await untilEqual(() => server.stats().clients, 1, 'one client session on the relay, the old ones gone');
    } finally {
      await client?.destroy();
      await proxy.close();
      await server.destroy();
      await local.close();
    }
  });
}

// ---------------------------------------------------------------------------------------
// 4. Bad input on the WebSocket paths; the relay stays up.

describe('bad input on the WebSocket paths', () => {
  let server: BurrowServer;
  let local: Awaited<ReturnType<typeof listenLocal>>;
  const peers: WsPeer[] = [];
  let seed = 100;
  before(async () => {
    local = await listenLocal(echo);
    server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0, handshakeTimeoutMs: 1_000 });
  });
  after(async () => {
    await closePeers(peers);
    await server.close();
    await local.close();
  });
  const port = (): number => server.httpPorts.http ?? 0;

  test('a plain GET of /_burrow/control or /_burrow/data gets 426 Upgrade Required, naming WebSocket', async () => {
    for (const path of ['/_burrow/control', '/_burrow/data', '/_burrow/data?x=1']) {
      const answer = await httpGet(port(), path);
      assert.equal(answer.status, 426, path);
      assert.equal(answer.headers.upgrade, 'websocket', path);
      assert.match(answer.body, /WebSocket/, path);
    }
    await assertRelayWorks(server, 'ws', local.port, seed++);
  });

  test('an upgrade to a path that is not a door (/_burrow/nope, /_burrow/control/x, /) is not taken: 404, no tunnel', async () => {
    for (const path of ['/_burrow/nope', '/_burrow/control/x', '/']) {
      const answer = await refusedUpgrade(`ws://${HOST}:${port()}${path}`);
      assert.equal(answer.status, 404, path);
      assert.match(answer.body, /no tunnel/, path);
    }
    await assertRelayWorks(server, 'ws', local.port, seed++);
  });

  test('a text message on /_burrow/control or /_burrow/data closes the WebSocket with 1003', async () => {
    for (const path of ['/_burrow/control', '/_burrow/data']) {
      const peer = await openPeer(server, 'ws', path, peers);
      peer.ws.send('EXPOSE 1\n'); // text, not binary
      const { code } = await within(peer.closed, 5_000, `${path}: the close`);
      assert.equal(code, 1003, path);
      assert.equal(peer.unread(), 0, `${path}: nothing was answered`);
    }
    await untilEqual(() => server.stats().clients, 0, 'no client session left');
    await assertRelayWorks(server, 'ws', local.port, seed++);
  });

  test('a message over 1 MiB closes the WebSocket with 1009; one of exactly 1 MiB is accepted', async () => {
    const peer = await openPeer(server, 'ws', '/_burrow/control', peers);
    // 1 MiB of a line too long: the relay reads the message and refuses the line.
    peer.send(Buffer.alloc(MiB, 0x41));
    assert.match(await peer.line(), /^ERR line-too-long/);
    const big = await openPeer(server, 'ws', '/_burrow/control', peers);
    big.send(Buffer.alloc(MiB + 1, 0x41));
    const { code } = await within(big.closed, 5_000, 'the close of the oversized message');
    assert.equal(code, 1009);
    await untilEqual(() => server.stats().clients, 0, 'no client session left');
    await assertRelayWorks(server, 'ws', local.port, seed++);
  });

  test('an upgrade that then says nothing gets ERR timeout (a binary message), then FIN, then close', async () => {
    for (const path of ['/_burrow/control', '/_burrow/data']) {
      const peer = await openPeer(server, 'ws', path, peers);
      assert.match(await peer.line(5_000), /^ERR timeout /, path);
      assert.deepEqual(await peer.untilFin(), Buffer.alloc(0), `${path}: nothing after the ERR line`);
      assert.deepEqual(peer.texts, [], `${path}: no text message`);
      peer.send(Buffer.alloc(0)); // our FIN: both ways done
      const { code } = await within(peer.closed, 5_000, `${path}: the close`);
      assert.equal(code, 1000, `${path}: a clean close after both FINs`);
    }
    await assertRelayWorks(server, 'ws', local.port, seed++);
  });

  test('the line protocol by hand over WebSocket: EXPOSE → OK, CONNECTION, ID on /_burrow/data, bytes and FINs both ways', async () => {
    const control = await openPeer(server, 'ws', '/_burrow/control', peers);
    control.send('EXPOSE 1\n');
    const ok = /^OK ([1-9][0-9]*) [A-Za-z0-9_-]+$/.exec(await control.line());
    assert.ok(ok, 'EXPOSE answered OK <port> <lease>');
    const publicPort = Number(ok[1]);
    const visitor = await openInbox(publicPort);
    try {
      const connection = (await control.line()).split(' ');
      assert.equal(connection[0], 'CONNECTION');
      assert.equal(connection[2], String(publicPort));
      assert.equal(connection[3], `${HOST}:${visitor.socket.localPort}`, 'the visitor’s address');
      const data = await openPeer(server, 'ws', '/_burrow/data', peers);
      const fromLocal = 'hello from the local end';
      const fromVisitor = 'hello from the visitor';
      data.send(`ID ${connection[1]}\n${fromLocal}`); // no HELLO: no OK before the bytes
      assert.equal((await visitor.take(fromLocal.length)).toString(), fromLocal);
      visitor.socket.write(fromVisitor);
      assert.equal((await data.take(fromVisitor.length)).toString(), fromVisitor);
      visitor.socket.end('!');
      assert.equal((await data.untilFin()).toString(), '!', 'the visitor’s FIN is an empty message');
      data.send('after the visitor’s FIN');
      data.send(Buffer.alloc(0));
      assert.equal((await visitor.rest()).toString(), 'after the visitor’s FIN', 'then a clean end');
      const { code } = await within(data.closed, 5_000, 'the data WebSocket to close');
      assert.equal(code, 1000, 'FIN both ways: a clean close');
      control.send('EXPOSE 2\n');
      assert.match(await control.line(), /^OK [1-9][0-9]* /, 'the control connection goes on');
    } finally {
      visitor.socket.destroy();
    }
    control.ws.close(1000);
    await within(control.closed, 5_000, 'the control WebSocket to close');
    await untilEqual(() => server.stats().clients, 0, 'the session ends with its WebSocket');
  });

  test('lines pipelined in one message, and one line split over many messages, are read as over TCP', async () => {
    const control = await openPeer(server, 'ws', '/_burrow/control', peers);
    control.send('HELLO ping\nEXPOSE 1\nBOGUS\n');
    assert.equal(await control.line(), 'HELLO ping');
    assert.match(await control.line(), /^OK [1-9][0-9]* /);
    assert.match(await control.line(), /^ERR unknown-verb/);
    for (const byte of 'EXPOSE 70000\n') control.send(byte);
    assert.match(await control.line(), /^ERR bad-arguments/);
    control.send('PING\n');
    assert.equal(await control.line(), 'PONG');
    control.ws.close(1000);
    await within(control.closed, 5_000, 'the control WebSocket to close');
  });
});

test('the core sees the WebSocket’s client, not the socket pair: maxClientsPerIp counts control WebSockets; a refusal names the WebSocket’s own port', async () => {
  const server = await startServer({
    controlPort: 0,
    dataPort: 0,
    bind: HOST,
    httpPort: 0,
    maxClientsPerIp: 1,
    secret: 'the secret',
  });
  const peers: WsPeer[] = [];
  try {
    const first = await openPeer(server, 'ws', '/_burrow/control', peers);
    first.send('AUTH\n');
    assert.match(await first.line(), /^CHALLENGE /);
    const second = await openPeer(server, 'ws', '/_burrow/control', peers);
    assert.match(await second.line(), /^ERR too-many-connections /, 'one control connection per address');
    // A data connection without the secret's proof: refused, and named by its own address.
    const data = WsPeer.connect(`${relayUrl(server, 'ws')}/_burrow/data`);
    peers.push(data);
    const localPort = new Promise<number>((resolve) =>
      data.ws.once('upgrade', (res: http.IncomingMessage) => resolve(res.socket.localPort ?? 0)),
    );
    const refused = nextEvent<[RefusedEvent]>(server, 'refused');
    await data.opened();
    data.send('ID nosuchid\n');
    assert.match(await data.line(), /^ERR auth-required/);
    const [event] = await refused;
    assert.equal(event.reason, 'auth-required');
    assert.equal(event.address, `${HOST}:${await localPort}`, 'the address and port of the WebSocket’s connection');
  } finally {
    await closePeers(peers);
    await server.close();
  }
});

// ---------------------------------------------------------------------------------------
// 5. An upgrade on a tunnel's own name is the tunnel's.

test('an upgrade at /_burrow/control on NAME.<domain> goes to tunnel routing: the tunnel’s service, or 404 without one', async () => {
  // The local service of the HTTP tunnel takes WebSockets on any path, and says which.
  const web = http.createServer((req, res) => res.end(`the local service: ${req.url ?? ''}`));
  const wss = new WebSocketServer({ server: web });
  wss.on('connection', (ws, req) => ws.send(`the local service, at ${req.url ?? ''}`));
  web.listen(0, HOST);
  await once(web, 'listening');
  const webPort = (web.address() as net.AddressInfo).port;
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0 });
  const peers: WsPeer[] = [];
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: webPort, http: { name: 'demo' } }],
      localHost: HOST,
      ...(await overWebSocket(server, 'ws')),
    });
    const port = server.httpPorts.http ?? 0;
    const url = `ws://${HOST}:${port}/_burrow/control`;
    // On the tunnel's name: the tunnel's own WebSocket.
    const tunnelled = WsPeer.connect(url, { headers: { host: `demo.localhost:${port}` } });
    peers.push(tunnelled);
    const text = within(once(tunnelled.ws, 'message'), 5_000, 'the local service’s message');
    await tunnelled.opened();
    const [message] = (await text) as [Buffer];
    assert.equal(message.toString(), 'the local service, at /_burrow/control');
    // A plain GET there is the tunnel's too, not the 426 page.
    const plain = await httpGet(port, '/_burrow/control', { host: `demo.localhost:${port}` });
    assert.equal(plain.status, 200);
    assert.equal(plain.body, 'the local service: /_burrow/control');
    // A name with no tunnel: the 404 page, not the relay's door.
    for (const host of [`nosuch.localhost:${port}`, 'nosuch.localhost']) {
      const answer = await refusedUpgrade(url, { host });
      assert.equal(answer.status, 404, host);
      assert.match(answer.body, /no tunnel is open at nosuch\.localhost/, host);
    }
    // The relay's own name (the domain itself) and an address are the door.
    for (const host of [`localhost:${port}`, `${HOST}:${port}`]) {
      const door = WsPeer.connect(url, { headers: { host } });
      peers.push(door);
      await door.opened();
      door.send('EXPOSE 1\n');
      assert.match(await door.line(), /^OK [1-9][0-9]* /, host);
    }
  } finally {
    await closePeers(peers);
    await client?.close();
    await server.close();
    wss.close();
    web.closeAllConnections();
    await new Promise<void>((resolve) => web.close(() => resolve()));
  }
});

// ---------------------------------------------------------------------------------------
// 6. Pings.

test('pings: a peer that answers no ping is terminated; one that does stays, and so does a client with short pings', async () => {
  const local = await listenLocal(echo);
  const server = await startServer({
    controlPort: 0,
    dataPort: 0,
    bind: HOST,
    httpPort: 0,
    webSocketPingMs: 200,
  });
  const peers: WsPeer[] = [];
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      localHost: HOST,
      ...(await overWebSocket(server, 'ws', { pingIntervalMs: 200 })),
    });
    const lost: unknown[] = [];
    client.on('disconnected', (error) => lost.push(error));
    // A silent peer: it opens a tunnel, then neither sends nor answers pings.
    const silent = await openPeer(server, 'ws', '/_burrow/control', peers, { autoPong: false });
    silent.send('EXPOSE 1\n');
    assert.match(await silent.line(), /^OK [1-9][0-9]* /);
    // A live peer: ws answers every ping (autoPong, the default).
    const live = await openPeer(server, 'ws', '/_burrow/control', peers);
    live.send('EXPOSE 1\n');
    assert.match(await live.line(), /^OK [1-9][0-9]* /);

    const { code } = await within(silent.closed, 10_000, 'the silent peer to be terminated');
    assert.equal(code, 1006, 'terminated: no close frame');
    assert.ok(silent.pings >= 1, 'it was pinged first');

    await live.untilPings(silent.pings + 5); // five more intervals of the relay
    assert.equal(live.ws.readyState, WebSocket.OPEN, 'the live peer is still connected');
    live.send('EXPOSE 1\n');
    assert.match(await live.line(), /^OK [1-9][0-9]* /, 'and its session goes on');
    assert.deepEqual(lost, [], 'the client never lost the relay');
    const payload = pseudoRandomBytes(64 * KiB, 9);
    assertSameBytes(await request(client.tunnels[0]?.publicPort ?? 0, payload), payload, 'an echo after the pings');
    await untilEqual(() => server.stats().clients, 2, 'the client and the live peer; the silent one gone');
  } finally {
    await closePeers(peers);
    await client?.close();
    await server.close();
    await local.close();
  }
});

test('pings: a client whose relay answers no ping gives the WebSocket up and reports the server lost', async () => {
  // A relay of our own that accepts the control WebSocket, answers EXPOSE like a minimal
  // server, and then neither sends nor answers pings.
  const relay = new WebSocketServer({ host: HOST, port: 0, autoPong: false });
  await once(relay, 'listening');
  relay.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      if (data.toString().includes('EXPOSE ')) ws.send(Buffer.from('OK 40000\n'), { binary: true });
    });
  });
  let client: BurrowClient | undefined;
  try {
    const port = (relay.address() as net.AddressInfo).port;
    client = await startClient({
      tunnels: [{ localPort: 9 }],
      localHost: HOST,
      webSocket: { url: `ws://${HOST}:${port}`, proxy: false, pingIntervalMs: 200 },
    });
    assert.equal(client.tunnels[0]?.publicPort, 40000);
    const [error] = await nextEvent<[Error | undefined]>(client, 'close', 10_000);
    assert.ok(error, 'closed with an error (reconnect is off)');
    assert.match(error.message, /lost the connection/);
  } finally {
    await client?.destroy();
    for (const ws of relay.clients) ws.terminate();
    await new Promise<void>((resolve) => relay.close(() => resolve()));
  }
});

test('pings under backpressure: a local service that stops reading for many ping intervals still gets the whole upload', async () => {
  // Short pings on both sides; the local service reads nothing until the relay has pinged a
  // clock peer ten times: the stream is stalled, not dead, and neither side may cut it.
  const arrived = deferred<net.Socket>();
  const local = await listenLocal((socket) => {
    socket.pause();
    arrived.resolve(socket);
  });
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0, webSocketPingMs: 100 });
  const peers: WsPeer[] = [];
  let client: BurrowClient | undefined;
  let visitor: net.Socket | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      localHost: HOST,
      ...(await overWebSocket(server, 'ws', { pingIntervalMs: 100 })),
    });
    const clock = await openPeer(server, 'ws', '/_burrow/control', peers);
    clock.send('EXPOSE 1\n');
    assert.match(await clock.line(), /^OK /);
    visitor = await connectVisitor(client.tunnels[0]?.publicPort ?? 0);
    const ending = endingOf(visitor);
    const upload = pseudoRandomBytes(32 * MiB, 77);
    visitor.end(upload);
    const socket = await within(arrived.promise, 10_000, 'the local service to be dialed');
    await clock.untilPings(clock.pings + 10);
    const got = readAll(socket);
    socket.resume();
    assertSameBytes(await within(got, 30_000, 'the upload at the local service'), upload, 'the whole upload');
    socket.end('thanks');
    const { code, received } = await within(ending, 10_000, 'the visitor’s connection to end');
    assert.equal(code, undefined, 'a clean end');
    assert.equal(received.toString(), 'thanks');
  } finally {
    visitor?.destroy();
    await closePeers(peers);
    await client?.close();
    await server.close();
    await local.close();
  }
});

test('a peer that stays silent after ERR timeout and FIN is let go after the linger, as over TCP', async () => {
  const server = await startServer({
    controlPort: 0,
    dataPort: 0,
    bind: HOST,
    httpPort: 0,
    handshakeTimeoutMs: 300,
    webSocketPingMs: 100,
  });
  const peers: WsPeer[] = [];
  try {
    for (const path of ['/_burrow/data', '/_burrow/control']) {
      const peer = await openPeer(server, 'ws', path, peers); // answers pings (autoPong), says nothing
      assert.match(await peer.line(), /^ERR timeout /, path);
      await peer.untilFin();
      // The linger is 1 s; 40 of the relay's pings are 4 s.
      const outcome = await Promise.race([
        peer.closed.then(() => 'closed'),
        peer.untilPings(peer.pings + 40).then(() => 'still open after 40 pings'),
      ]);
      assert.equal(outcome, 'closed', `${path}: the relay let go of the WebSocket`);
      await untilEqual(() => server.stats().sockets, 0, `${path}: the relay holds no socket`);
    }
  } finally {
    await closePeers(peers);
    await server.close();
  }
});

// ---------------------------------------------------------------------------------------
// More: a secret over WebSocket, a relay without WebSockets, bad URLs.

test('a secret over WebSocket: the right one works end to end, a wrong one is refused with auth-failed', async () => {
  const rig = await startWsRig('ws', echo, { server: { secret: 's3cret' }, client: { secret: 's3cret' } });
  try {
    const payload = pseudoRandomBytes(MiB, 17);
    assertSameBytes(await request(rig.publicPort, payload), payload, 'an echo with a secret');
    const local = await listenLocal(echo);
    try {
      await rejectsWith(
        startClient({
          tunnels: [{ localPort: local.port }],
          localHost: HOST,
          secret: 'wrong',
          ...(await overWebSocket(rig.server, 'ws')),
        }),
        'refused',
        'auth-failed',
      );
    } finally {
      await local.close();
    }
  } finally {
    await rig.close();
  }
});

test('a relay with `webSocket: false` takes no upgrade: 404, and a client over WebSocket fails to start (unreachable)', async () => {
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0, webSocket: false });
  try {
    const port = server.httpPorts.http ?? 0;
    assert.equal((await refusedUpgrade(`ws://${HOST}:${port}/_burrow/control`)).status, 404);
    assert.equal((await httpGet(port, '/_burrow/control')).status, 404, 'no 426 page either');
    const error = await rejectsWith(
      startClient({ tunnels: [{ localPort: 9 }], localHost: HOST, ...(await overWebSocket(server, 'ws')) }),
      'unreachable',
    );
    assert.match(error.message, /404/);
  } finally {
    await server.close();
  }
});

test('a proxy that does not answer fails the start with unreachable, naming the proxy (password hidden) as the one down', async () => {
  const closed = await listenLocal(() => {});
  const proxyPort = closed.server.address();
  await closed.close(); // a port nothing listens on any more
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0 });
  try {
    assert.ok(proxyPort && typeof proxyPort === 'object');
    const proxy = `http://user:secret@${HOST}:${proxyPort.port}`;
    const webSocket = { url: relayUrl(server, 'ws'), proxy };
    const error = await rejectsWith(
      startClient({ tunnels: [{ localPort: 9 }], localHost: HOST, webSocket }),
      'unreachable',
    );
    assert.match(error.message, /via the proxy http:\/\/user:\*\*\*@/);
    assert.match(error.message, /the proxy cannot be reached \(connection refused\)/);
    assert.ok(!error.message.includes('secret'), 'the proxy password is not shown');
  } finally {
    await server.close();
  }
});

test('wss:// with a CA that did not sign the relay’s certificate fails to start with code tls', async () => {
  const certs = await testCerts();
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, ...(await relayOptions('wss')) });
  try {
    await rejectsWith(
      startClient({
        tunnels: [{ localPort: 9 }],
        localHost: HOST,
        webSocket: { url: relayUrl(server, 'wss'), proxy: false },
        tls: { ca: certs.otherCa.cert },
      }),
      'tls',
    );
    // With a pin of its certificate instead, it works.
    const client = await startClient({
      tunnels: [{ localPort: 9 }],
      localHost: HOST,
      webSocket: { url: relayUrl(server, 'wss'), proxy: false },
      tls: { fingerprint: certs.server.fingerprint },
    });
    await client.close();
  } finally {
    await server.close();
  }
});

test('a webSocket URL that is not ws:// or wss://, or has a path, is refused at once', async () => {
  for (const url of ['http://127.0.0.1:1', 'ws://127.0.0.1:1/_burrow/control', 'not a url']) {
    await assert.rejects(
      async () => startClient({ tunnels: [{ localPort: 9 }], webSocket: { url, proxy: false } }),
      TypeError,
      url,
    );
  }
});

test('shutdown over ws and wss: a control peer that ignores GOAWAY is closed after the linger, not after shutdownTimeoutMs', async () => {
  for (const mode of MODES) {
    // A shutdown timeout far beyond the bound below: a control WebSocket counted with the
    // connections that drain would hold close() for all of it (over wss, the HTTPS server
    // owns the TCP socket beneath the TLS one the upgrade hands over).
    const server = await startServer({
      controlPort: 0,
      dataPort: 0,
      bind: HOST,
      shutdownTimeoutMs: 120_000,
      ...(await relayOptions(mode)),
    });
    const peers: WsPeer[] = [];
    try {
      // A peer that speaks goaway (so the relay waits for its BYE) but never says it.
      const control = await openPeer(server, mode, '/_burrow/control', peers);
      control.send('HELLO goaway\nEXPOSE 1\n');
      assert.match(await control.line(), /^HELLO /, `${mode}: HELLO answered`);
      assert.match(await control.line(), /^OK [1-9][0-9]* /, `${mode}: the tunnel is open`);
      const closing = server.close();
      assert.equal(await control.line(), 'GOAWAY', `${mode}: the relay says GOAWAY`);
      await within(closing, 30_000, `${mode}: close() with a control peer that stays`);
      await within(control.closed, 5_000, `${mode}: the control WebSocket closed`);
    } finally {
      await closePeers(peers);
      await server.destroy();
    }
  }
});
