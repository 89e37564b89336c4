// What the operator sees of the clients: one 'client' event per moment that matters
// (connected, tunnel opened, left and why, lease kept, reclaimed, run out), and a
// port-in-use that says when the port is only kept for a client that went away.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ClientEvent } from '../server/client-events.ts';
import type { BurrowServer, ServerStats } from '../server/server.ts';
import { controlProof } from '../shared/secret.ts';
import { untilEqual } from './helpers.ts';
import {
  assertClosedByServer,
  errReason,
  expose,
  openControl,
  openRaw,
  probe,
  untilRefused,
  withServer,
  type Raw,
} from './raw.ts';

const SECRET = 'a long random test secret: 5e0b7c21d9a4f386';
const EMPTY: ServerStats = {
  clients: 0,
  clientAddresses: 0,
  tunnels: 0,
  leasedPorts: 0,
  ports: 0,
  pendingVisitors: 0,
  sockets: 0,
};

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
    assert.match(
      line,
      new RegExp(
        `^ERR port-in-use port ${port} is kept for the client that held it \\(a lease\\), for (60|59) s more$`,
      ),
    );
  });
});

/** Sends AUTH and answers the CHALLENGE with the proof for `secret`; returns the answer. */
async function authenticate(raw: Raw, secret: string): Promise<string> {
  raw.send('AUTH\n');
  const nonce = /^CHALLENGE (\S+)$/.exec(await raw.reader.line())?.[1];
  assert.ok(nonce !== undefined, 'AUTH is answered with a CHALLENGE');
  raw.send(`PROOF ${controlProof(secret, nonce)}\n`);
  return raw.reader.line();
}

/** Waits until the server holds nothing of the connections a test made (so that any
 * 'disconnected' they would cause has been emitted). */
const untilNothingHeld = (server: BurrowServer): Promise<void> =>
  untilEqual(() => server.stats(), EMPTY, 'every connection gone');

test('no client events for connections that never become clients: a scanner, garbage, EXPOSE before AUTH, a wrong secret, HELLO alone', async () => {
  await withServer({ secret: SECRET }, async (server, sockets) => {
    const events: string[] = [];
    server.on('client', (event) => events.push(shape(event)));
    const open = async (): Promise<Raw> => {
      const raw = await openRaw(server.controlPort);
      sockets.push(raw.socket);
      return raw;
    };
    // Connects and leaves without a byte.
    const scanner = await open();
    scanner.socket.destroy();
    // An HTTP request: refused line by line; the scanner gives up.
    const http = await open();
    http.send('GET / HTTP/1.1\r\nHost: relay\r\n\r\n');
    assert.equal(errReason(await http.reader.line()), 'unknown-verb');
    http.socket.destroy();
    // EXPOSE without the secret: refused, and closed by the server.
    const early = await open();
    early.send('EXPOSE 3000\n');
    assert.equal(errReason(await early.reader.line()), 'auth-required');
    await assertClosedByServer(early);
    // A wrong secret (after a HELLO, as burrow's client would).
    const wrong = await openControl(server.controlPort);
    sockets.push(wrong.socket);
    assert.equal(errReason(await authenticate(wrong, `${SECRET}x`)), 'auth-failed');
    await assertClosedByServer(wrong);
    // HELLO and no more: not authenticated, so not yet a client.
    const hello = await openControl(server.controlPort);
    sockets.push(hello.socket);
    hello.socket.destroy();
    await untilNothingHeld(server);
    assert.deepEqual(events, []);
    // The right secret makes a client, which is then told of when it leaves.
    const client = await openControl(server.controlPort);
    sockets.push(client.socket);
    assert.deepEqual(events, [], 'HELLO is not enough on a server with a secret');
    assert.equal(await authenticate(client, SECRET), 'OK');
    assert.deepEqual(events, ['connected 127.0.0.1']);
    client.socket.destroy();
    await untilNothingHeld(server);
    assert.deepEqual(events, ['connected 127.0.0.1', 'disconnected connection closed 0']);
  });
});

test('no client events for garbage on an open relay either; its first EXPOSE (no HELLO) makes a client', async () => {
  await withServer({ leaseGraceMs: 0 }, async (server, sockets) => {
    const events: string[] = [];
    server.on('client', (event) => events.push(shape(event)));
    const garbage = await openRaw(server.controlPort);
    sockets.push(garbage.socket);
    garbage.send('\x00\xff\x13garbage\n');
    assert.equal(errReason(await garbage.reader.line()), 'bad-line');
    garbage.socket.destroy();
    await untilNothingHeld(server);
    assert.deepEqual(events, []);
    const minimal = await openRaw(server.controlPort);
    sockets.push(minimal.socket);
    await expose(minimal, 3000);
    minimal.socket.destroy();
    await untilNothingHeld(server);
    assert.deepEqual(events, ['connected 127.0.0.1', 'tunnel-opened 3000', 'disconnected connection closed 1']);
  });
});

test("a 'client' listener that throws breaks nothing: tunnels open and close, ports are freed, leases run out, no unhandled error", async () => {
  const trouble: unknown[] = [];
  const onTrouble = (error: unknown): void => void trouble.push(error);
  process.on('unhandledRejection', onTrouble);
  process.on('uncaughtException', onTrouble);
  try {
    for (const leaseGraceMs of [0, 100]) {
      await withServer({ leaseGraceMs }, async (server, sockets) => {
        const heard: string[] = [];
        server.on('client', (event) => {
          heard.push(event.kind);
          throw new Error(`a bug in a listener (${event.kind})`);
        });
        const control = await openControl(server.controlPort);
        sockets.push(control.socket);
        const ports = [await expose(control, 3000), await expose(control, 4000)];
        control.socket.destroy();
        for (const port of ports) await untilRefused(port);
        await untilNothingHeld(server);
        const leases = leaseGraceMs > 0 ? ['lease-kept', 'lease-kept', 'lease-expired', 'lease-expired'] : [];
        assert.deepEqual(
          heard,
          ['connected', 'tunnel-opened', 'tunnel-opened', 'disconnected', ...leases],
          `lease grace ${leaseGraceMs} ms`,
        );
      });
    }
    await nextTurn();
    assert.deepEqual(trouble, []);
  } finally {
    process.off('unhandledRejection', onTrouble);
    process.off('uncaughtException', onTrouble);
  }
});

test("'disconnected' is emitted once the client's tunnels are closed (ports leased or free), and before the leases kept", async () => {
  for (const leaseGraceMs of [0, 60_000]) {
    await withServer({ leaseGraceMs }, async (server, sockets) => {
      const seen: string[] = [];
      let atDisconnect: { stats: ServerStats; probes: Promise<string[]> } | undefined;
      let ports: number[] = [];
      server.on('client', (event) => {
        seen.push(event.kind);
        if (event.kind !== 'disconnected') return;
        atDisconnect = { stats: server.stats(), probes: Promise.all(ports.map(probe)) };
      });
      const control = await openControl(server.controlPort);
      sockets.push(control.socket);
      ports = [await expose(control, 3000), await expose(control, 4000)];
      control.socket.destroy();
      const kept = leaseGraceMs > 0 ? ['lease-kept', 'lease-kept'] : [];
      await untilEqual(
        () => seen,
        ['connected', 'tunnel-opened', 'tunnel-opened', 'disconnected', ...kept],
        'the events of one client',
      );
      assert.ok(atDisconnect);
      assert.equal(atDisconnect.stats.tunnels, 0, 'no tunnel counted');
      assert.equal(atDisconnect.stats.leasedPorts, leaseGraceMs > 0 ? 2 : 0, 'the ports under lease (or not)');
      assert.equal(atDisconnect.stats.ports, leaseGraceMs > 0 ? 2 : 0, 'only leased ports still held');
      assert.deepEqual(await atDisconnect.probes, ['refused', 'refused'], 'the public ports are closed');
    });
  }
});
