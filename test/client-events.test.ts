// What the operator sees of the clients: one 'client' event per moment that matters
// (connected, tunnel opened, left and why, lease kept, reclaimed, run out), and a
// port-in-use that says when the port is only kept for a client that went away.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientEvent } from '../server/client-events.ts';
import { untilEqual } from './helpers.ts';
import { errReason, openControl, withServer } from './raw.ts';

/** The events' kinds and the fields a test can know, in order. */
const shape = (event: ClientEvent): string => {
  switch (event.kind) {
    case 'connected':
      return `connected ${event.address}`;
    case 'tunnel-opened':
      return `tunnel-opened ${event.localPort}${event.reclaimed ? ' reclaimed' : ''}`;
    case 'lease-kept':
      return `lease-kept ${event.graceMs}`;
    case 'lease-expired':
      return 'lease-expired';
    case 'disconnected':
      return `disconnected ${event.why} ${event.tunnels}`;
  }
};

test('client events: connected, tunnel opened, left without GOAWAY (lease kept), reclaimed, left with GOAWAY; a lease that runs out', async () => {
  await withServer({ leaseGraceMs: 300 }, async (server, sockets) => {
    const events: string[] = [];
    server.on('client', (event) => events.push(shape(event)));
    const first = await openControl(server.controlPort);
    sockets.push(first.socket);
    first.send('EXPOSE 3000\n');
    const [port, lease] = (await first.reader.line()).split(' ').slice(1);
    first.socket.destroy();
    await untilEqual(() => events.length, 4, 'four events');
    const again = await openControl(server.controlPort);
    sockets.push(again.socket);
    again.send(`EXPOSE 3000 ${port} ${lease}\n`);
    assert.match(await again.reader.line(), /^OK /);
    again.send('GOAWAY\n');
    again.socket.end();
    await untilEqual(() => events.length, 7, 'seven events');
    // A lease nobody comes back for.
    const third = await openControl(server.controlPort);
    sockets.push(third.socket);
    third.send('EXPOSE 4000\n');
    assert.match(await third.reader.line(), /^OK /);
    third.socket.destroy();
    await untilEqual(() => events.length, 11, 'eleven events');
    assert.deepEqual(events, [
      'connected 127.0.0.1',
      'tunnel-opened 3000',
      'disconnected connection closed 1',
      'lease-kept 300',
      'connected 127.0.0.1',
      'tunnel-opened 3000 reclaimed',
      'disconnected goaway 0',
      'connected 127.0.0.1',
      'tunnel-opened 4000',
      'disconnected connection closed 1',
      'lease-kept 300',
    ]);
    await untilEqual(() => events.at(-1), 'lease-expired', 'the lease to run out');
  });
});

test('a requested port kept for a client that went away: port-in-use says so, and for how long', async () => {
  await withServer({ leaseGraceMs: 60_000 }, async (server, sockets) => {
    const gone = await openControl(server.controlPort);
    sockets.push(gone.socket);
    gone.send('EXPOSE 3000\n');
    const port = (await gone.reader.line()).split(' ')[1];
    gone.socket.destroy();
    await untilEqual(() => server.stats().leasedPorts, 1, 'the port under lease');
    const restarted = await openControl(server.controlPort);
    sockets.push(restarted.socket);
    restarted.send(`EXPOSE 3000 ${port}\n`);
    const line = await restarted.reader.line();
    assert.equal(errReason(line), 'port-in-use');
    assert.match(line, new RegExp(`^ERR port-in-use port ${port} is kept for the client that held it \\(a lease\\), for (60|59) s more$`));
  });
});
