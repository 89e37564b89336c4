// Turning visitors away at once: a client at its limit says REFUSE <id>, and the relay
// resets that visitor rather than let it wait for the visitor timeout. Only a tunnel's own
// client may refuse its visitors.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { startClient, type BurrowError } from '../index.ts';
import { connectVisitor, HOST, listenLocal, untilEqual, within } from './helpers.ts';
import { endingOf } from './inbox.ts';
import { connectionId, dialBack, expose, openControl, serverOn, withServer } from './raw.ts';

test('REFUSE <id>: the relay resets that visitor at once and counts it; the tunnel goes on', async () => {
  await withServer({ visitorTimeoutMs: 60_000 }, async (server, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const port = await expose(control, 1);
    const visitor = await connectVisitor(port);
    sockets.push(visitor);
    const ending = endingOf(visitor);
    control.send(`REFUSE ${await connectionId(control, port)}\n`);
    assert.equal((await within(ending, 5_000, 'the refused visitor to be reset')).code, 'ECONNRESET');
    assert.equal(server.totals().visitorsRefused, 1);
    assert.equal(server.stats().pendingVisitors, 0);
    // The next visitor is served as usual.
    const next = await connectVisitor(port);
    sockets.push(next);
    const data = await dialBack(server.dataPort, await connectionId(control, port), sockets);
    next.write('ping');
    assert.equal((await data.take(4)).toString(), 'ping');
  });
});

test("REFUSE of another client's visitor does nothing: it keeps waiting and its own client can still take it", async () => {
  await withServer({ visitorTimeoutMs: 60_000 }, async (server, sockets) => {
    const owner = await openControl(server.controlPort);
    const stranger = await openControl(server.controlPort);
    sockets.push(owner.socket, stranger.socket);
    const port = await expose(owner, 1);
    const visitor = await connectVisitor(port);
    sockets.push(visitor);
    const id = await connectionId(owner, port);
    stranger.send(`REFUSE ${id}\nREFUSE nosuchid\n`);
    // Lines are handled in order: once PING is answered, both REFUSEs were.
    stranger.send('PING\n');
    assert.equal(await stranger.reader.line(), 'PONG', 'no answer to REFUSE, no error');
    assert.equal(server.stats().pendingVisitors, 1);
    assert.equal(server.totals().visitorsRefused, 0);
    const data = await dialBack(server.dataPort, id, sockets);
    visitor.write('still here');
    assert.equal((await data.take(10)).toString(), 'still here');
  });
});

test('a client at maxConnections turns the extra visitors away at once (reset within moments, not the visitor timeout), with one warning', async () => {
  const held = new Set<net.Socket>();
  const local = await listenLocal((socket) => held.add(socket)); // holds every connection open
  // A visitor timeout far longer than the test: a reset can only come from REFUSE.
  const server = await serverOn({ visitorTimeoutMs: 120_000 });
  const limit = 20;
  const client = await startClient({
    tunnels: [{ localPort: local.port }],
    server: HOST,
    localHost: HOST,
    controlPort: server.controlPort,
    dataPort: server.dataPort,
    maxConnections: limit,
  });
  const warnings: BurrowError[] = [];
  client.on('warning', (warning) => warnings.push(warning));
  const visitors: net.Socket[] = [];
  try {
    const publicPort = client.tunnels[0]?.publicPort ?? 0;
    const resets: string[] = [];
    for (let i = 0; i < 100; i++) {
      const visitor = await connectVisitor(publicPort);
      visitors.push(visitor);
      void endingOf(visitor).then((ending) => resets.push(ending.code ?? 'FIN'));
    }
    // 80 are turned away; the 20 served stay open (the local service holds them).
    await untilEqual(() => resets.length, 80, '80 visitors to be turned away', 20_000);
    assert.deepEqual(new Set(resets), new Set(['ECONNRESET']));
    assert.equal(server.totals().visitorsRefused, 80);
    await untilEqual(() => held.size, limit, 'the local service to hold the 20 served');
    assert.equal(server.stats().pendingVisitors, 0, 'nobody left waiting');
    assert.equal(warnings.length, 1, warnings.map((w) => w.message).join('; '));
    assert.equal(warnings[0]?.code, 'over-limit');
  } finally {
    for (const visitor of visitors) visitor.destroy();
    await client.destroy();
    await server.destroy();
    await local.close();
  }
});
