// Failure paths and lifecycle, end to end on loopback: what the server answers to bad or
// stale lines, how timeouts, refused ports, dead local services and vanished peers are
// reported, and that every failure leaves the rest of the system serving.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { test } from 'node:test';
import { BurrowError, startClient, startServer, type BurrowClient, type BurrowServer } from '../index.ts';
import { connectVisitor, echo, HOST, listenLocal, readAll, replyOnEnd, request, startRig, within } from './helpers.ts';
import {
  assertClosedByServer,
  assertRefused,
  clientOf,
  errReason,
  exposeAndVisit,
  freePort,
  holdPort,
  openControl,
  openRaw,
  rejectsWith,
  serverOn,
  tryHold,
  untilRefused,
  withServer,
} from './raw.ts';

// ---------------------------------------------------------------------------------------
// 1. Data port: bad, stale and missing ID lines.

test('data port: an id nobody issued gets ERR unknown-id and the connection is closed', async () => {
  await withServer({}, async (server) => {
    await assertRefused(server.dataPort, 'ID abcdefghijklmnopqrstu\n', 'unknown-id');
  });
});

test('data port: an id is single-use; a second ID for it gets ERR unknown-id', async () => {
  await withServer({}, async (server, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const { id, visitor } = await exposeAndVisit(control);
    sockets.push(visitor);

    const first = await openRaw(server.dataPort);
    sockets.push(first.socket);
    first.send(`ID ${id}\n`);
    assert.equal(await first.reader.line(), 'OK');
    // The pairing is real: bytes cross from the data connection to the visitor.
    const received = readAll(visitor);
    first.socket.end('paired');
    assert.equal((await within(received, 5_000, 'the visitor to get the bytes')).toString(), 'paired');

    await assertRefused(server.dataPort, `ID ${id}\n`, 'unknown-id');
  });
});

test('data port: malformed first lines get unknown-verb / bad-arguments / line-too-long and are closed', async () => {
  await withServer({}, async (server) => {
    const cases: Array<[string, string]> = [
      ['HOWDY\n', 'unknown-verb'],
      ['ID a b c\n', 'bad-arguments'],
      ['ID a b\n', 'auth-disabled'], // a proof, to a server without a secret
      ['ID !!!\n', 'bad-arguments'],
      ['ID\n', 'bad-arguments'],
      [`ID ${'x'.repeat(300)}`, 'line-too-long'],
    ];
    for (const [line, reason] of cases) {
      await assertRefused(server.dataPort, line, reason, `reply to ${JSON.stringify(line.slice(0, 20))}`);
    }
  });
});

test('data port: a connection that never sends its ID line gets ERR timeout and is closed', async () => {
  await withServer({ handshakeTimeoutMs: 300 }, async (server) => {
    await assertRefused(server.dataPort, undefined, 'timeout');
  });
});

// ---------------------------------------------------------------------------------------
// 2. A visitor nobody dials back for.

test('a visitor whose client never dials back is closed after visitorTimeoutMs and its id expires', async () => {
  await withServer({ visitorTimeoutMs: 300 }, async (server, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const { id, visitor } = await exposeAndVisit(control);
    sockets.push(visitor);
    const got = await within(readAll(visitor), 5_000, 'the waiting visitor to be closed');
    assert.equal(got.length, 0);

    await assertRefused(server.dataPort, `ID ${id}\n`, 'unknown-id');
    // The control connection is untouched by the expiry.
    assert.equal(control.socket.destroyed, false);
  });
});

// ---------------------------------------------------------------------------------------
// 3. A client that leaves frees its public ports.

test('closing a client frees its public port for the next client', async () => {
  const port = await freePort();
  const local = await listenLocal(replyOnEnd((req) => `hi:${req.toString()}`));
  const server = await serverOn({ portRange: { min: port, max: port } });
  const clients: BurrowClient[] = [];
  try {
    const first = await clientOf(server, [{ localPort: local.port, remotePort: port }]);
    clients.push(first);
    assert.equal(first.tunnels[0]?.publicPort, port);
    assert.equal((await request(port, 'one')).toString(), 'hi:one');

    await first.close();
    await untilRefused(port);

    const second = await clientOf(server, [{ localPort: local.port, remotePort: port }]);
    clients.push(second);
    assert.equal(second.tunnels[0]?.publicPort, port);
    assert.equal((await request(port, 'two')).toString(), 'hi:two');
  } finally {
    for (const client of clients) await client.close();
    await server.close();
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// 4. Requested ports that cannot be had.

/** Two adjacent free ports: one held by a plain listener (returned open), one free. */
async function adjacentPorts(): Promise<{ plain: { port: number; close(): Promise<void> }; free: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const plain = await holdPort(0);
    for (const neighbour of [plain.port + 1, plain.port - 1]) {
      if (neighbour < 1024 || neighbour > 65535) continue;
      const held = await tryHold(neighbour);
      if (held) {
        await held.close();
        return { plain, free: neighbour };
      }
    }
    await plain.close();
  }
  throw new Error('could not find two adjacent free ports in 20 attempts');
}

test('a requested port held by another tunnel or another program, or outside the range, is refused', async () => {
  const { plain, free } = await adjacentPorts();
  const range = { min: Math.min(plain.port, free), max: Math.max(plain.port, free) };
  const local = await listenLocal(replyOnEnd((req) => `hi:${req.toString()}`));
  let server: BurrowServer | undefined;
  let first: BurrowClient | undefined;
  try {
    server = await serverOn({ portRange: range });
    first = await clientOf(server, [{ localPort: local.port, remotePort: free }]);
    const firstPort = first.tunnels[0]?.publicPort ?? 0;
    assert.equal(firstPort, free);

    const attempts: Array<[string, number, string]> = [
      ['held by a tunnel of another client', free, 'port-in-use'],
      ['held by a plain listener', plain.port, 'port-in-use'],
      ['below the range', range.min - 1, 'port-out-of-range'],
      ['above the range', range.max + 1, 'port-out-of-range'],
      ['any port, with every port of the range taken', 0, 'no-free-port'],
    ];
    for (const [what, remotePort, reason] of attempts) {
      await rejectsWith(clientOf(server, [{ localPort: local.port, remotePort }]), 'refused', reason);
      assert.equal((await request(firstPort, what)).toString(), `hi:${what}`, `first client after: ${what}`);
    }
  } finally {
    await first?.close();
    await server?.close();
    await local.close();
    await plain.close();
  }
});

test('a range of one port held by a tunnel answers no-free-port for "any port"', async () => {
  const port = await freePort();
  const local = await listenLocal(replyOnEnd((req) => `hi:${req.toString()}`));
  const server = await serverOn({ portRange: { min: port, max: port } });
  let first: BurrowClient | undefined;
  try {
    first = await clientOf(server, [{ localPort: local.port, remotePort: port }]);
    const error = await rejectsWith(clientOf(server, [{ localPort: local.port }]), 'refused', 'no-free-port');
    assert.match(error.message, /no free port/);
    assert.equal((await request(port, 'still')).toString(), 'hi:still');
  } finally {
    await first?.close();
    await server.close();
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// 5. The local service is down.

test('a dead local service: the visitor is closed with no data, one warning, other tunnels keep working', async () => {
  const deadPort = await freePort();
  const live = await listenLocal(echo);
  const server = await serverOn();
  let client: BurrowClient | undefined;
  const sockets: net.Socket[] = [];
  try {
    client = await clientOf(server, [{ localPort: deadPort }, { localPort: live.port }]);
    const [dead, alive] = client.tunnels;
    assert.ok(dead && alive);
    const warnings: BurrowError[] = [];
    client.on('warning', (warning) => warnings.push(warning));
    let clientClosed = false;
    client.on('close', () => (clientClosed = true));
    const warned = within(once(client, 'warning'), 5_000, 'a warning');

    const visitor = await connectVisitor(dead.publicPort);
    sockets.push(visitor);
    const got = await within(readAll(visitor), 5_000, 'the visitor of the dead tunnel to be closed');
    assert.equal(got.length, 0);
    await warned;

    assert.equal((await request(alive.publicPort, 'still alive')).toString(), 'still alive');
    assert.equal(warnings.length, 1, warnings.map((w) => w.message).join('; '));
    assert.ok(warnings[0] instanceof BurrowError);
    assert.equal(warnings[0].code, 'local-unavailable');
    assert.equal(clientClosed, false);
  } finally {
    for (const socket of sockets) socket.destroy();
    await client?.close();
    await server.close();
    await live.close();
  }
});

// ---------------------------------------------------------------------------------------
// 6. / 7. The server is unreachable or goes away; close() is idempotent.

test('startClient against a port nobody listens on rejects with unreachable / connection refused', async () => {
  const port = await freePort();
  const error = await rejectsWith(
    startClient({ tunnels: [{ localPort: 1 }], server: HOST, controlPort: port, dataPort: port }),
    'unreachable',
  );
  assert.match(error.message, /connection refused/);
});

test('when the server closes, the client emits close with a closed BurrowError; close() twice is fine', async () => {
  const local = await listenLocal(echo);
  const server = await serverOn();
  let client: BurrowClient | undefined;
  try {
    client = await clientOf(server, [{ localPort: local.port }]);
    const events: Array<BurrowError | undefined> = [];
    client.on('close', (error) => events.push(error));
    const closed = within(once(client, 'close'), 5_000, "the client's close");
    await Promise.all([server.close(), server.close()]);
    await server.close();
    const [error] = (await closed) as [BurrowError | undefined];
    assert.ok(error instanceof BurrowError, `expected a BurrowError, got ${String(error)}`);
    assert.equal(error.code, 'closed');
    await client.close(); // after the server went away: no second event
    assert.equal(events.length, 1);
  } finally {
    await client?.close();
    await server.close();
    await local.close();
  }
});

test('client.close() emits close with undefined exactly once, even when called twice', async () => {
  const local = await listenLocal(echo);
  const server = await serverOn();
  try {
    const client = await clientOf(server, [{ localPort: local.port }]);
    const events: Array<BurrowError | undefined> = [];
    client.on('close', (error) => events.push(error));
    await client.close();
    await client.close();
    assert.deepEqual(events, [undefined]);
  } finally {
    await server.close();
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// 8. / 9. Garbage and limits on the control port.

test('control port: refused lines keep the connection usable; a too-long line closes it; other tunnels unaffected', async () => {
  const rig = await startRig(replyOnEnd((req) => `rig:${req.toString()}`));
  const sockets: net.Socket[] = [];
  try {
    assert.equal((await request(rig.publicPort, 'before')).toString(), 'rig:before');
    const control = await openControl(rig.server.controlPort);
    sockets.push(control.socket);
    const refused: Array<[string, string]> = [
      ['HOWDY\n', 'unknown-verb'],
      ['EXPOSE abc\n', 'bad-arguments'],
      ['\n', 'bad-line'],
      ['ID abc\n', 'wrong-port'],
      ['EXPOSE 70000\n', 'bad-arguments'],
    ];
    for (const [line, reason] of refused) {
      control.send(line);
      assert.equal(errReason(await control.reader.line()), reason, `reply to ${JSON.stringify(line)}`);
    }
    control.send('EXPOSE 1\n');
    const ok = await control.reader.line();
    assert.match(ok, /^OK [0-9]+ [A-Za-z0-9_-]+$/);
    assert.equal((await request(rig.publicPort, 'between')).toString(), 'rig:between');

    control.send(`${'A'.repeat(300)}\n`);
    assert.equal(errReason(await control.reader.line()), 'line-too-long');
    await assertClosedByServer(control);
    // Its tunnel went with it.
    await untilRefused(Number(ok.split(' ')[1]));

    // Without a newline: detected as soon as the fragment passes the limit.
    await assertRefused(rig.server.controlPort, 'B'.repeat(300), 'line-too-long');

    assert.equal((await request(rig.publicPort, 'after')).toString(), 'rig:after');
  } finally {
    for (const socket of sockets) socket.destroy();
    await rig.close();
  }
});

test('control port: the EXPOSE beyond maxTunnelsPerClient gets ERR too-many-tunnels', async () => {
  await withServer({ maxTunnelsPerClient: 2 }, async (server, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      control.send('EXPOSE 1\n');
      replies.push(await control.reader.line());
    }
    assert.match(replies[0] ?? '', /^OK [0-9]+ [A-Za-z0-9_-]+$/);
    assert.match(replies[1] ?? '', /^OK [0-9]+ [A-Za-z0-9_-]+$/);
    assert.equal(errReason(replies[2] ?? ''), 'too-many-tunnels');
    // The connection stays open: a bad line still gets its own answer.
    control.send('HOWDY\n');
    assert.equal(errReason(await control.reader.line()), 'unknown-verb');
  });
});

test('control port: pipelined lines are answered in the order they arrived (ERR replies included)', async () => {
  await withServer({ maxTunnelsPerClient: 2 }, async (server, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    control.send('EXPOSE 1\nEXPOSE 1\nEXPOSE 1\nHOWDY\n');
    const replies: string[] = [];
    for (let i = 0; i < 4; i++) replies.push(await control.reader.line());
    assert.match(replies[0] ?? '', /^OK [0-9]+ [A-Za-z0-9_-]+$/, replies.join(' | '));
    assert.match(replies[1] ?? '', /^OK [0-9]+ [A-Za-z0-9_-]+$/, replies.join(' | '));
    assert.equal(errReason(replies[2] ?? ''), 'too-many-tunnels', replies.join(' | '));
    assert.equal(errReason(replies[3] ?? ''), 'unknown-verb', replies.join(' | '));
  });
});

// ---------------------------------------------------------------------------------------
// 10. / 11. Start-up failures leave nothing open.

test('startServer on a control port in use rejects with listen-failed / address already in use', async () => {
  const taken = await holdPort(0);
  try {
    const error = await rejectsWith(startServer({ controlPort: taken.port, dataPort: 0, bind: HOST }), 'listen-failed');
    assert.match(error.message, /address already in use/);
    assert.match(error.message, /control/);
  } finally {
    await taken.close();
  }
});

test('startServer on a data port in use rejects and releases the control port it had opened', async () => {
  const taken = await holdPort(0);
  const controlPort = await freePort();
  try {
    const error = await rejectsWith(startServer({ controlPort, dataPort: taken.port, bind: HOST }), 'listen-failed');
    assert.match(error.message, /address already in use/);
    assert.match(error.message, /data/);
    const again = await tryHold(controlPort);
    assert.ok(again, `control port ${controlPort} is still held after the failed start`);
    await again.close();
  } finally {
    await taken.close();
  }
});

// The client that gives up leaves on purpose; a client that shuts down says GOAWAY
// (docs/PROTOCOL.md, Graceful shutdown), so the server frees its first port at once
// rather than keeping it under a lease nobody holds.
test("startClient whose second tunnel is refused rejects and releases the first tunnel's port", async () => {
  const local = await listenLocal(replyOnEnd((req) => `hi:${req.toString()}`));
  const server = await serverOn();
  let holder: BurrowClient | undefined;
  try {
    holder = await clientOf(server, [{ localPort: local.port }]);
    const takenPort = holder.tunnels[0]?.publicPort ?? 0;
    const wanted = await freePort();
    await rejectsWith(
      clientOf(server, [
        { localPort: local.port, remotePort: wanted },
        { localPort: local.port, remotePort: takenPort },
      ]),
      'refused',
      'port-in-use',
    );
    await untilRefused(wanted);
    // The holder is unaffected, and the freed port can be had again.
    assert.equal((await request(takenPort, 'holder')).toString(), 'hi:holder');
    const again = await clientOf(server, [{ localPort: local.port, remotePort: wanted }]);
    try {
      assert.equal((await request(wanted, 'again')).toString(), 'hi:again');
    } finally {
      await again.close();
    }
  } finally {
    await holder?.close();
    await server.close();
    await local.close();
  }
});
