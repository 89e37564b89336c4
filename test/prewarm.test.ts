// prewarm: after a visitor, the client opens one data connection ahead for the next one,
// and that visitor's dial-back takes it instead of dialing; an idle client closes what it
// opened ahead at half the relay's handshake timeout and opens no more. A TCP proxy in
// front of the data port counts the connections the client makes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startClient, startServer, type BurrowClient, type BurrowServer } from '../index.ts';
import { echo, HOST, listenLocal, request, untilEqual } from './helpers.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

interface Rig {
  server: BurrowServer;
  client: BurrowClient;
  proxy: TcpProxy;
  publicPort: number;
  /** Trace texts of both sides, in order. */
  traces: string[];
}

async function withRig(handshakeTimeoutMs: number, body: (rig: Rig) => Promise<void>): Promise<void> {
  const local = await listenLocal(echo);
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, handshakeTimeoutMs });
  const proxy = await startTcpProxy(server.dataPort);
  const traces: string[] = [];
  server.on('trace', (event) => traces.push(event.text));
  let client: BurrowClient | undefined;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: HOST,
      localHost: HOST,
      controlPort: server.controlPort,
      dataPort: proxy.port, // named explicitly: kept, though the relay names its own
    });
    client.on('trace', (event) => traces.push(event.text));
    // The start-up check of the data port is one connection, closed at once.
    await untilEqual(() => proxy.open(), 0, 'the start-up check to close');
    await body({ server, client, proxy, publicPort: client.tunnels[0]?.publicPort ?? 0, traces });
  } finally {
    await client?.destroy();
    await proxy.close();
    await server.destroy();
    await local.close();
  }
}

test('prewarm: after a visitor, one data connection is opened ahead, and the next visitor goes out on it', async () => {
  await withRig(5_000, async ({ proxy, publicPort, traces }) => {
    const before = proxy.accepted();
    assert.equal((await request(publicPort, 'first')).toString(), 'first');
    // The first visitor's dial-back, and one more opened ahead for the next.
    await untilEqual(() => proxy.accepted(), before + 2, 'a data connection opened ahead');
    await untilEqual(() => proxy.open(), 1, 'only the one opened ahead left open');
    assert.equal(traces.filter((text) => text.includes('opened ahead')).length, 0);
    assert.equal((await request(publicPort, 'second')).toString(), 'second');
    // It took the one opened ahead, and one more was opened: no dial of its own.
    await untilEqual(() => proxy.accepted(), before + 3, 'the next one opened ahead');
    assert.equal(traces.filter((text) => text.includes('on a data connection opened ahead')).length, 1);
  });
});

test('prewarm: an idle client closes what it opened ahead at half the handshake timeout, before the relay would turn it away, and opens no more', async () => {
  await withRig(600, async ({ proxy, publicPort, traces }) => {
    assert.equal((await request(publicPort, 'only one')).toString(), 'only one');
    const accepted = proxy.accepted();
    await untilEqual(() => proxy.open(), 1, 'the one opened ahead');
    await untilEqual(() => proxy.open(), 0, 'the one opened ahead closed by the client');
    assert.equal(proxy.accepted(), accepted, 'none opened in its place');
    assert.deepEqual(
      traces.filter((text) => text.includes('timeout')),
      [],
      'the relay never had to turn it away',
    );
    // The next visitor dials as before.
    assert.equal((await request(publicPort, 'later')).toString(), 'later');
  });
});
