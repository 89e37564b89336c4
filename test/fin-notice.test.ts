// fin-notice on the relay, spoken by hand: a FIN on a data connection reaches the visitor
// only once the client process that sent it has said `FIN <id>` on a control connection;
// after a reconnect only the same process (its instance) may say it; a different process
// holding the tunnel, or no notice within the heartbeat timeout, means the visitor is
// reset. The relay's own FIN towards the client (the visitor's) is followed by its notice.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { connectVisitor, within } from './helpers.ts';
import { honestEnding } from './endings.ts';
import { dialBack, openControl, withServer, type Raw } from './raw.ts';

const EXTENSIONS = (instance: string): string => `ping goaway id-reply fin-notice=${instance} refuse`;

/** Reads lines until one matches `pattern`, answering every PING with PONG (a live client). */
async function lineMatching(raw: Raw, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = await raw.reader.line();
    if (pattern.test(line)) return line;
    if (line === 'PING') raw.send('PONG\n');
  }
  assert.fail(`no line matching ${pattern}`);
}

/** A fin-notice client by hand: HELLO with `instance`, EXPOSE (with a lease to reclaim a
 * port), and the server's answers. */
async function clientOf(
  controlPort: number,
  instance: string,
  sockets: net.Socket[],
  reclaim?: { port: number; lease: string },
) {
  const raw = await openControl(controlPort, EXTENSIONS(instance));
  sockets.push(raw.socket);
  raw.send(reclaim ? `EXPOSE 1 ${reclaim.port} ${reclaim.lease}\n` : 'EXPOSE 1\n');
  const ok = /^OK ([0-9]+) (\S+)$/.exec(await lineMatching(raw, /^OK /));
  assert.ok(ok, 'OK <port> <lease>');
  return { raw, port: Number(ok[1]), lease: ok[2] ?? '' };
}

/** A visitor on `port`, joined by hand to a data connection of the client on `raw`. */
async function joinedVisitor(raw: Raw, port: number, dataPort: number, sockets: net.Socket[]) {
  const visitor = await connectVisitor(port);
  sockets.push(visitor);
  const ending = honestEnding(visitor);
  const id = /^CONNECTION (\S+) /.exec(await lineMatching(raw, /^CONNECTION /))?.[1] ?? '';
  const data = await dialBack(dataPort, id, sockets);
  data.socket.write('hello');
  return { id, visitor, ending, data };
}

test("fin-notice: the client's FIN waits for its notice, then reaches the visitor as a FIN", async () => {
  await withServer({ heartbeatTimeoutMs: 60_000 }, async (server, sockets) => {
    const client = await clientOf(server.controlPort, 'AAAAAAAAAAAAAAAAAAAAA', sockets);
    const held = new Promise<void>((resolve) =>
      server.on('trace', (event) => {
        if (event.text.includes('waiting for its FIN notice')) resolve();
      }),
    );
    const { id, ending, data } = await joinedVisitor(client.raw, client.port, server.dataPort, sockets);
    let ended = false;
    void ending.then(() => (ended = true));
    data.socket.end();
    await within(held, 5_000, 'the relay to hold the FIN');
    assert.equal(ended, false, 'the FIN waits for its notice');
    client.raw.send(`FIN ${id}\n`);
    assert.deepEqual(await within(ending, 5_000, 'the visitor to end'), { how: 'fin', received: 5 });
  });
});

test('fin-notice: a notice that comes before the FIN is kept for it', async () => {
  await withServer({ heartbeatTimeoutMs: 60_000 }, async (server, sockets) => {
    const client = await clientOf(server.controlPort, 'EARLY_NOTICE_000000000', sockets);
    const { id, ending, data } = await joinedVisitor(client.raw, client.port, server.dataPort, sockets);
    client.raw.send(`FIN ${id}\nPING\n`);
    await lineMatching(client.raw, /^PONG$/); // lines are read in order: the notice is in
    data.socket.end();
    assert.deepEqual(await within(ending, 5_000, 'the visitor to end'), { how: 'fin', received: 5 });
  });
});

test("fin-notice: the relay passes the visitor's FIN to the client, then sends its own notice", async () => {
  await withServer({}, async (server, sockets) => {
    const client = await clientOf(server.controlPort, 'NOTICE_FROM_RELAY_0000', sockets);
    const { id, visitor, data } = await joinedVisitor(client.raw, client.port, server.dataPort, sockets);
    visitor.end('bye');
    assert.equal((await data.rest()).toString(), 'bye', "the visitor's bytes, then its FIN");
    assert.equal(await lineMatching(client.raw, /^FIN /), `FIN ${id}`);
  });
});

test('fin-notice: notices for an id that is not theirs, or from another process, are ignored', async () => {
  await withServer({ heartbeatTimeoutMs: 400, heartbeatIntervalMs: 100 }, async (server, sockets) => {
    const client = await clientOf(server.controlPort, 'REAL_OWNER_00000000000', sockets);
    const other = await clientOf(server.controlPort, 'SOMEONE_ELSE_000000000', sockets);
    const { id, ending, data } = await joinedVisitor(client.raw, client.port, server.dataPort, sockets);
    other.raw.send(`FIN ${id}\nPING\n`); // knows the id, but is another process
    client.raw.send('FIN nosuchidnosuchidnosu\nPING\n');
    // Read in order, and not an error: each connection answers the PING after its notice.
    assert.equal(await lineMatching(other.raw, /^(PONG|ERR .*)$/), 'PONG');
    assert.equal(await lineMatching(client.raw, /^(PONG|ERR .*)$/), 'PONG');
    data.socket.end();
    assert.equal((await within(ending, 5_000, 'the visitor to be reset')).how, 'reset');
  });
});

test("fin-notice: the client's control connection drops; the same process reconnects, reclaims the tunnel and sends the notice there", async () => {
  await withServer({ heartbeatTimeoutMs: 10_000 }, async (server, sockets) => {
    const first = await clientOf(server.controlPort, 'SAME_PROCESS_000000000', sockets);
    const { id, ending, data } = await joinedVisitor(first.raw, first.port, server.dataPort, sockets);
    first.raw.socket.destroy(); // the control connection drops; the data connection lives on
    data.socket.end(); // and the local service finishes while we are away
    const again = await clientOf(server.controlPort, 'SAME_PROCESS_000000000', sockets, {
      port: first.port,
      lease: first.lease,
    });
    assert.equal(again.port, first.port);
    assert.equal(again.lease, first.lease, 'the lease stays the same across the reclaim');
    again.raw.send(`FIN ${id}\n`);
    assert.deepEqual(await within(ending, 5_000, 'the visitor to end'), { how: 'fin', received: 5 });
  });
});

test("fin-notice: the relay's own notice, owed while the client was away, goes to its new connection", async () => {
  await withServer({ heartbeatTimeoutMs: 10_000 }, async (server, sockets) => {
    const first = await clientOf(server.controlPort, 'OWED_NOTICE_0000000000', sockets);
    const { id, visitor, data } = await joinedVisitor(first.raw, first.port, server.dataPort, sockets);
    first.raw.socket.destroy();
    visitor.end();
    assert.equal((await data.rest()).length, 0, "the visitor's FIN on the data connection");
    const again = await clientOf(server.controlPort, 'OWED_NOTICE_0000000000', sockets, {
      port: first.port,
      lease: first.lease,
    });
    assert.equal(await lineMatching(again.raw, /^FIN /), `FIN ${id}`);
  });
});

test('fin-notice: a different process reclaims the tunnel (a restarted client): the old FIN has no notice, the visitor is reset at once', async () => {
  // The heartbeat timeout is long: a reset before it proves the reclaim decided, not the deadline.
  await withServer({ heartbeatTimeoutMs: 60_000 }, async (server, sockets) => {
    const first = await clientOf(server.controlPort, 'CRASHED_PROCESS_000000', sockets);
    const { ending, data } = await joinedVisitor(first.raw, first.port, server.dataPort, sockets);
    first.raw.socket.destroy();
    data.socket.end(); // what the dying process's operating system sends
    await clientOf(server.controlPort, 'RESTARTED_PROCESS_0000', sockets, { port: first.port, lease: first.lease });
    assert.equal((await within(ending, 5_000, 'the visitor to be reset')).how, 'reset');
  });
});

test('fin-notice: the client never comes back: the visitor is reset once the heartbeat timeout has passed', async () => {
  await withServer({ heartbeatTimeoutMs: 300, heartbeatIntervalMs: 100 }, async (server, sockets) => {
    const first = await clientOf(server.controlPort, 'GONE_FOR_GOOD_00000000', sockets);
    const { ending, data } = await joinedVisitor(first.raw, first.port, server.dataPort, sockets);
    first.raw.socket.destroy();
    data.socket.end();
    assert.equal((await within(ending, 5_000, 'the visitor to be reset')).how, 'reset');
  });
});

test('fin-notice: a client that stays connected but never sends the notice: the visitor is reset, not ended', async () => {
  await withServer({ heartbeatTimeoutMs: 300, heartbeatIntervalMs: 100 }, async (server, sockets) => {
    const first = await clientOf(server.controlPort, 'FROZEN_PROCESS_0000000', sockets);
    const { ending, data } = await joinedVisitor(first.raw, first.port, server.dataPort, sockets);
    data.socket.end();
    assert.equal((await within(ending, 5_000, 'the visitor to be reset')).how, 'reset');
  });
});

test('without fin-notice (a client that did not ask for it), a FIN passes at once, and the relay sends no notice', async () => {
  await withServer({ heartbeatIntervalMs: 60_000 }, async (server, sockets) => {
    const raw = await openControl(server.controlPort, 'ping goaway id-reply');
    sockets.push(raw.socket);
    raw.send('EXPOSE 1\n');
    const port = Number(/^OK ([0-9]+) /.exec(await raw.reader.line())?.[1]);
    const { ending, data, visitor } = await joinedVisitor(raw, port, server.dataPort, sockets);
    data.socket.end();
    assert.deepEqual(await within(ending, 5_000, 'the visitor to end'), { how: 'fin', received: 5 });
    visitor.end();
    assert.equal((await data.rest()).length, 0, "the visitor's FIN on the data connection");
    raw.send('PING\n');
    assert.equal(await raw.reader.line(), 'PONG', 'no FIN line before the answer to our PING');
  });
});
