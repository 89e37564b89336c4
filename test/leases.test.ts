// Leased ports are ports: they count towards the limits of the address that held them and
// of the server, so a client that exposes and vanishes, again and again, cannot hoard the
// range; and they show in stats().
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { HOST, untilEqual, within } from './helpers.ts';
import { errReason, LineReader, openControl, withServer, type Raw } from './raw.ts';

/** A raw control connection from `source` (another loopback address is another client). */
async function controlFrom(port: number, source: string): Promise<Raw> {
  const socket = net.connect({ host: HOST, port, localAddress: source });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const reader = new LineReader(socket);
  await within(once(socket, 'connect'), 5_000, 'connect');
  const raw = { socket, reader, closed, send: (text: string) => void socket.write(text) };
  raw.send('HELLO ping goaway id-reply refuse\n');
  assert.match(await reader.line(), /^HELLO /);
  return raw;
}

/** Sends `count` EXPOSEs and returns the replies, in order. */
async function exposeMany(raw: Raw, count: number): Promise<string[]> {
  raw.send('EXPOSE 1\n'.repeat(count));
  const replies: string[] = [];
  for (let i = 0; i < count; i++) replies.push(await raw.reader.line());
  return replies;
}

test('an address that exposes and vanishes again and again holds no more than its limit, leases included; others still get ports', async () => {
  // A 30-port range, as in the report this test comes from, starting at a port free now.
  const probe = net.createServer().listen(0, HOST);
  await once(probe, 'listening');
  const min = Math.min((probe.address() as net.AddressInfo).port, 65535 - 29);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  await withServer(
    { maxTunnelsPerIp: 4, maxTunnels: 9, leaseGraceMs: 60_000, portRange: { min, max: min + 29 } },
    async (server, sockets) => {
      const held: string[] = [];
      for (let round = 0; round < 8; round++) {
        const hoarder = await controlFrom(server.controlPort, '127.0.0.1');
        sockets.push(hoarder.socket);
        for (const reply of await exposeMany(hoarder, 4)) {
          if (reply.startsWith('OK ')) held.push(reply);
          else assert.equal(errReason(reply), 'too-many-tunnels', reply);
        }
        hoarder.socket.destroy(); // no GOAWAY: its ports go under lease
        await within(hoarder.closed, 5_000, 'the hoarder to go');
      }
      assert.equal(held.length, 4, 'four ports in all, over eight rounds');
      await untilEqual(
        () => ({ tunnels: server.stats().tunnels, leasedPorts: server.stats().leasedPorts }),
        { tunnels: 0, leasedPorts: 4 },
        'four leased ports',
      );

      // Another address still gets ports, up to its own limit.
      const honest = await controlFrom(server.controlPort, '127.0.0.2');
      sockets.push(honest.socket);
      const replies = await exposeMany(honest, 5);
      assert.deepEqual(
        replies.map((reply) => (reply.startsWith('OK ') ? 'OK' : errReason(reply))),
        ['OK', 'OK', 'OK', 'OK', 'too-many-tunnels'],
      );
      assert.deepEqual(
        { tunnels: server.stats().tunnels, leasedPorts: server.stats().leasedPorts },
        { tunnels: 4, leasedPorts: 4 },
      );
      // The server's limit (9) counts the leases too: a third address gets one port, then server-full.
      const third = await controlFrom(server.controlPort, '127.0.0.3');
      sockets.push(third.socket);
      assert.deepEqual(
        (await exposeMany(third, 2)).map((reply) => (reply.startsWith('OK ') ? 'OK' : errReason(reply))),
        ['OK', 'server-full'],
      );
    },
  );
});

test('a leased port counts until it is reclaimed or runs out; reclaiming it takes no extra place, even at the limit', async () => {
  await withServer({ maxTunnelsPerIp: 2, leaseGraceMs: 400 }, async (server, sockets) => {
    const first = await openControl(server.controlPort);
    sockets.push(first.socket);
    const oks = await exposeMany(first, 2);
    const [port, lease] = (oks[0] ?? '').split(' ').slice(1);
    first.socket.destroy();
    await untilEqual(() => server.stats().leasedPorts, 2, 'both ports leased');
    // At the limit with its own leases, the client still gets its port back.
    const again = await openControl(server.controlPort);
    sockets.push(again.socket);
    again.send(`EXPOSE 1 ${port} ${lease}\n`);
    assert.equal(await again.reader.line(), `OK ${port} ${lease}`);
    // ... but not one port more while the other lease lasts.
    assert.equal(errReason((await exposeMany(again, 1))[0] ?? ''), 'too-many-tunnels');
    // Once that lease runs out, its place is free again.
    await untilEqual(() => server.stats().leasedPorts, 0, 'the other lease to run out');
    assert.match((await exposeMany(again, 1))[0] ?? '', /^OK /);
  });
});

test('a reconnect attempt the client gave up on still reclaims the port, and the lease stays good for the next attempt (a frozen server)', async () => {
  // What a server frozen for longer than the client's patience does: when it wakes, it
  // answers attempts the client has already abandoned. Those must not spend the lease.
  await withServer({ leaseGraceMs: 60_000 }, async (server, sockets) => {
    const original = await openControl(server.controlPort);
    sockets.push(original.socket);
    const [port, lease] = ((await exposeMany(original, 1))[0] ?? '').split(' ').slice(1);
    original.socket.destroy();
    await untilEqual(() => server.stats().leasedPorts, 1, 'the port under lease');
    for (let attempt = 0; attempt < 3; attempt++) {
      // The abandoned attempt: its EXPOSE is answered, but nobody reads the answer.
      const abandoned = await openControl(server.controlPort);
      sockets.push(abandoned.socket);
      abandoned.send(`EXPOSE 1 ${port} ${lease}\n`);
      assert.equal(await abandoned.reader.line(), `OK ${port} ${lease}`);
      abandoned.socket.destroy();
      await untilEqual(() => server.stats().leasedPorts, 1, 'the port under lease again');
    }
    const later = await openControl(server.controlPort);
    sockets.push(later.socket);
    later.send(`EXPOSE 1 ${port} ${lease}\n`);
    assert.equal(await later.reader.line(), `OK ${port} ${lease}`, 'the same port, with the lease it had');
  });
});
