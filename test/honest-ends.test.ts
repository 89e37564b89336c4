// A reset must never arrive as a clean end. Each test cuts a connection with a real reset
// while bytes are still flowing, and checks that the far end of the tunnel sees a reset
// too (not a FIN after partial data, which would make a truncated stream look complete).
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { startClient, type ClientOptions } from '../client/client.ts';
import { startServer, type BurrowServer } from '../server/server.ts';
import { connectVisitor, HOST, listenLocal, startRig, within } from './helpers.ts';
import { honestEnding, pushBytes, type HonestEnding } from './endings.ts';
import { startTcpProxy } from './tcp-proxy.ts';

const MiB = 1024 * 1024;
/** Each case runs this many times: the end-of-stream mix-up it guards against is a race. */
const ROUNDS = 3;

/** Counts what a socket receives, and resolves `reached` once it has `atLeast` bytes. */
function receivedAtLeast(socket: net.Socket, atLeast: number): Promise<void> {
  let received = 0;
  return within(
    new Promise<void>((resolve) => {
      const onData = (chunk: Buffer): void => {
        received += chunk.length;
        if (received >= atLeast) {
          socket.off('data', onData);
          resolve();
        }
      };
      socket.on('data', onData);
    }),
    10_000,
    `${atLeast} bytes`,
  );
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

function assertReset(ending: HonestEnding, what: string): void {
  assert.equal(ending.how, 'reset', `${what}: ended with a FIN after ${ending.received} bytes: a truncated stream that looks complete`);
}

test('the client\'s data connection reset mid-download: the visitor and the local service are reset, not ended', async () => {
  const locals: Promise<HonestEnding>[] = [];
  const local = await listenLocal((socket) => {
    locals.push(honestEnding(socket));
    pushBytes(socket, 256 * MiB);
  });
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST });
  // The client reaches the data port through a proxy the test can reset.
  const proxy = await startTcpProxy(server.dataPort);
  const client = await startClient(clientTo(server, local.port, { dataPort: proxy.port }));
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

test('the local service resets mid-response: the visitor is reset, not ended', async () => {
  const rig = await startRig((socket) => void pushBytes(socket, 6 * MiB, 'reset'));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const visitor = await connectVisitor(rig.publicPort);
      const ending = await within(honestEnding(visitor), 10_000, 'the visitor to end');
      assertReset(ending, `round ${round + 1}`);
      assert.ok(ending.received <= 6 * MiB);
    }
  } finally {
    await rig.close();
  }
});

test('the visitor resets mid-upload: the local service is reset, not ended', async () => {
  const locals: Promise<HonestEnding>[] = [];
  const arrived: Array<() => void> = [];
  const rig = await startRig((socket) => {
    locals.push(honestEnding(socket));
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= 2 * MiB) arrived.shift()?.();
    });
  });
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const visitor = await connectVisitor(rig.publicPort);
      visitor.on('error', () => {});
      const twoMiB = new Promise<void>((resolve) => arrived.push(resolve));
      pushBytes(visitor, 256 * MiB);
      await within(twoMiB, 10_000, '2 MiB at the local service');
      visitor.resetAndDestroy();
      const ending = await within(locals[round] ?? Promise.reject(new Error('no local connection')), 10_000, 'the local service to end');
      assertReset(ending, `round ${round + 1}`);
    }
  } finally {
    await rig.close();
  }
});

test('the client closes with no time to drain mid-download: the visitor is reset, not ended', async () => {
  const local = await listenLocal((socket) => void pushBytes(socket, 256 * MiB));
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST });
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const client = await startClient(clientTo(server, local.port, { shutdownTimeoutMs: 0 }));
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
