// A reset must never arrive as a clean end. Each test cuts a connection with a real reset
// while bytes are still flowing, and checks that the far end of the tunnel sees a reset
// too (not a FIN after partial data, which would make a truncated stream look complete).
// Every case runs over plain TCP and over TLS on the control and data ports: under TLS the
// reset hits the TCP connection beneath a TLS socket, which must be probed for it too (a
// TLS socket reports an empty write as done whatever the state of the connection). Last,
// abortSocket() itself on a socket that has sent its FIN: reset while bytes are still
// queued before that FIN, closed once they are all out.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { startClient, type ClientOptions } from '../client/client.ts';
import { startServer, type BurrowServer, type ServerOptions } from '../server/server.ts';
import { abortSocket } from '../shared/pipe.ts';
import { testCerts } from './certs.ts';
import { connectVisitor, HOST, listenLocal, startRig, within } from './helpers.ts';
import {
  assertReset,
  honestEnding,
  localResetReachesVisitor,
  pushBytes,
  receivedAtLeast,
  visitorResetReachesLocal,
  type HonestEnding,
} from './endings.ts';
import { startTcpProxy } from './tcp-proxy.ts';

const MiB = 1024 * 1024;
/** Each case runs this many times: the end-of-stream mix-up it guards against is a race. */
const ROUNDS = 3;

type Mode = 'plain TCP' | 'TLS';
const MODES: readonly Mode[] = ['plain TCP', 'TLS'];

/** Server and client options for `mode`: TLS on the control and data ports, with the test
 * CA (test/certs.ts), or nothing. */
async function security(mode: Mode): Promise<{ server: Partial<ServerOptions>; client: Partial<ClientOptions> }> {
  if (mode === 'plain TCP') return { server: {}, client: {} };
  const certs = await testCerts();
  return {
    server: { tls: { cert: certs.server.cert, key: certs.server.key } },
    client: { tls: { ca: certs.ca.cert } },
  };
}

/** Options for a client of `server` exposing `localPort`, all on loopback. */
const clientTo = (server: BurrowServer, localPort: number, extra: Partial<ClientOptions> = {}): ClientOptions => ({
  tunnels: [{ localPort }],
  server: HOST,
  localHost: HOST,
  controlPort: server.controlPort,
  dataPort: server.dataPort,
  ...extra,
});

for (const mode of MODES) {
  test(`${mode}: the client's data connection reset mid-download: the visitor and the local service are reset, not ended`, async () => {
    const { server: serverSecurity, client: clientSecurity } = await security(mode);
    const locals: Promise<HonestEnding>[] = [];
    const local = await listenLocal((socket) => {
      locals.push(honestEnding(socket));
      pushBytes(socket, 256 * MiB);
    });
    const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, ...serverSecurity });
    // The client reaches the data port through a proxy the test can reset: under TLS it
    // carries the TLS records, and its reset cuts the TCP connection beneath them.
    const proxy = await startTcpProxy(server.dataPort);
    const client = await startClient(clientTo(server, local.port, { dataPort: proxy.port, ...clientSecurity }));
    client.on('warning', () => {}); // a reset connection may be reported; not asserted here
    try {
      const publicPort = client.tunnels[0]?.publicPort ?? 0;
      for (let round = 0; round < ROUNDS; round++) {
        const visitor = await connectVisitor(publicPort);
        const ending = honestEnding(visitor);
        await receivedAtLeast(visitor, 2 * MiB);
        proxy.resetAll();
        assertReset(await within(ending, 10_000, 'the visitor to end'), `round ${round + 1}, visitor`);
      }
      const localEndings = await within(Promise.all(locals), 10_000, 'the local connections to end');
      localEndings.forEach((ending, i) => assertReset(ending, `round ${i + 1}, local service`));
    } finally {
      await client.destroy();
      await proxy.close();
      await server.close();
      await local.close();
    }
  });

  test(`${mode}: the local service resets mid-response: the visitor is reset, not ended`, async () => {
    const options = await security(mode);
    await localResetReachesVisitor((onLocal) => startRig(onLocal, options), ROUNDS);
  });

  test(`${mode}: the visitor resets mid-upload: the local service is reset, not ended`, async () => {
    const options = await security(mode);
    await visitorResetReachesLocal((onLocal) => startRig(onLocal, options), ROUNDS);
  });

  test(`${mode}: the client closes with no time to drain mid-download: the visitor is reset, not ended`, async () => {
    const { server: serverSecurity, client: clientSecurity } = await security(mode);
    const local = await listenLocal((socket) => void pushBytes(socket, 256 * MiB));
    const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, ...serverSecurity });
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const client = await startClient(clientTo(server, local.port, { shutdownTimeoutMs: 0, ...clientSecurity }));
        client.on('warning', () => {});
        const visitor = await connectVisitor(client.tunnels[0]?.publicPort ?? 0);
        const ending = honestEnding(visitor);
        await receivedAtLeast(visitor, 2 * MiB);
        await client.close();
        assertReset(await within(ending, 10_000, 'the visitor to end'), `round ${round + 1}`);
      }
    } finally {
      await server.close();
      await local.close();
    }
  });
}

test('abortSocket() on a socket that has sent its FIN with bytes still queued resets it: its peer never gets a FIN after a truncated stream', async () => {
  // joinSockets passes a FIN on with end() while bytes for a slow reader may still wait in
  // Node's buffer: Node shuts the socket down only once they are written. If the pair is
  // aborted before that, a plain destroy would throw those bytes away and the kernel would
  // still send a FIN after the rest: a truncated stream that looks complete.
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const writer = net.connect({ host: HOST, port, allowHalfOpen: true });
  writer.on('error', () => {});
  try {
    const [reader] = (await within(once(server, 'connection'), 5_000, 'the connection')) as [net.Socket];
    const ending = honestEnding(reader);
    reader.pause(); // pauseOnConnect: it reads nothing until resumed below
    await within(once(writer, 'connect'), 5_000, 'connect');
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    let written = 0;
    // The reader reads nothing, so the kernel's buffers fill up and Node starts queueing.
    for (let i = 0; i < 100_000 && writer.write(chunk); i++) written += chunk.length;
    writer.end(chunk);
    written += chunk.length;
    assert.ok(writer.writableLength > 0, 'bytes are queued in Node');
    abortSocket(writer);
    reader.resume();
    const ended = await within(ending, 10_000, 'the reader to end');
    assertReset(ended, 'the reader');
    assert.ok(ended.received < written, `${ended.received} of ${written} bytes arrived`);
  } finally {
    writer.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('abortSocket() on a socket whose FIN went out after all its bytes closes it (libuv cannot reset it then): its peer has the whole stream', async () => {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const writer = net.connect({ host: HOST, port, allowHalfOpen: true });
  writer.on('error', () => {});
  try {
    const [reader] = (await within(once(server, 'connection'), 5_000, 'the connection')) as [net.Socket];
    const ending = honestEnding(reader);
    writer.end(Buffer.alloc(1000, 0x5a));
    await within(once(writer, 'finish'), 5_000, 'the FIN to go out');
    const closed = once(writer, 'close');
    abortSocket(writer);
    await within(closed, 5_000, 'the aborted socket to close');
    assert.deepEqual(await within(ending, 5_000, 'the reader to end'), { how: 'fin', received: 1000 });
  } finally {
    writer.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
