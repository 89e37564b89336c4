// fin-check on the relay, spoken by hand: a FIN on a data connection reaches the visitor
// only once the client process that sent it has answered a PING sent after it; after a
// reconnect only the same process (its instance) may answer; a different process holding
// the tunnel, or nobody within the heartbeat timeout, means the visitor is reset.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import { connectVisitor, within } from './helpers.ts';
import { honestEnding } from './endings.ts';
import { dialBack, openControl, withServer, type Raw } from './raw.ts';

const EXTENSIONS = (instance: string): string => `ping goaway id-reply fin-check=${instance} refuse`;

/** Reads lines until one matches `pattern` (skipping PINGs and the like); answers every
 * PING with PONG when `answer` is set. */
async function lineMatching(raw: Raw, pattern: RegExp, answer: boolean): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = await raw.reader.line();
    if (pattern.test(line)) return line;
    if (line === 'PING' && answer) raw.send('PONG\n');
  }
  assert.fail(`no line matching ${pattern}`);
}

/** A fin-check client by hand: HELLO with `instance`, EXPOSE (with a lease to reclaim a
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
  const ok = /^OK ([0-9]+) (\S+)$/.exec(await lineMatching(raw, /^OK /, true));
  assert.ok(ok, 'OK <port> <lease>');
  return { raw, port: Number(ok[1]), lease: ok[2] ?? '' };
}

/** A visitor on `port`, joined by hand to a data connection of the client on `raw`. */
async function joinedVisitor(raw: Raw, port: number, dataPort: number, sockets: net.Socket[]) {
  const visitor = await connectVisitor(port);
  sockets.push(visitor);
  const ending = honestEnding(visitor);
  const id = /^CONNECTION (\S+) /.exec(await lineMatching(raw, /^CONNECTION /, true))?.[1] ?? '';
  const data = await dialBack(dataPort, id, sockets);
  data.socket.write('hello');
  return { visitor, ending, data };
}

test("fin-check: the client's FIN waits for a PING it answers, then reaches the visitor as a FIN", async () => {
  await withServer({}, async (server, sockets) => {
    const client = await clientOf(server.controlPort, 'AAAAAAAAAAAAAAAAAAAAA', sockets);
    const { ending, data } = await joinedVisitor(client.raw, client.port, server.dataPort, sockets);
    data.socket.end();
    assert.equal(await lineMatching(client.raw, /^PING$/, false), 'PING', 'the server asks');
    client.raw.send('PONG\n');
    const end = await within(ending, 5_000, 'the visitor to end');
    assert.deepEqual(end, { how: 'fin', received: 5 });
  });
});

test("fin-check: the client's control connection drops; the same process reconnects and reclaims the tunnel: it vouches for the FIN", async () => {
  await withServer({ heartbeatTimeoutMs: 10_000 }, async (server, sockets) => {
    const first = await clientOf(server.controlPort, 'SAME_PROCESS_000000000', sockets);
    const { ending, data } = await joinedVisitor(first.raw, first.port, server.dataPort, sockets);
    first.raw.socket.destroy(); // the control connection drops; the data connection lives on
    data.socket.end(); // and the local service finishes while we are away
    // Back, as the same process, with the tunnel's lease: the PING for the FIN comes here.
    const again = await clientOf(server.controlPort, 'SAME_PROCESS_000000000', sockets, {
      port: first.port,
      lease: first.lease,
    });
    assert.equal(again.port, first.port);
    assert.equal(again.lease, first.lease, 'the lease stays the same across the reclaim');
    await lineMatching(again.raw, /^PING$/, false);
    again.raw.send('PONG\n');
    assert.deepEqual(await within(ending, 5_000, 'the visitor to end'), { how: 'fin', received: 5 });
  });
});

test('fin-check: a different process reclaims the tunnel (a restarted client): the old FIN is not vouched for, the visitor is reset at once', async () => {
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

test('fin-check: the client never comes back: the visitor is reset once the heartbeat timeout has passed', async () => {
  await withServer({ heartbeatTimeoutMs: 300, heartbeatIntervalMs: 100 }, async (server, sockets) => {
    const first = await clientOf(server.controlPort, 'GONE_FOR_GOOD_00000000', sockets);
    const { ending, data } = await joinedVisitor(first.raw, first.port, server.dataPort, sockets);
    first.raw.socket.destroy();
    data.socket.end();
    assert.equal((await within(ending, 5_000, 'the visitor to be reset')).how, 'reset');
  });
});

test('fin-check: a client that stays connected but never answers the PING: the visitor is reset, not ended', async () => {
  await withServer({ heartbeatTimeoutMs: 300, heartbeatIntervalMs: 100 }, async (server, sockets) => {
    const first = await clientOf(server.controlPort, 'FROZEN_PROCESS_0000000', sockets);
    const { ending, data } = await joinedVisitor(first.raw, first.port, server.dataPort, sockets);
    data.socket.end();
    assert.equal((await within(ending, 5_000, 'the visitor to be reset')).how, 'reset');
  });
});

test('without fin-check (a client that did not ask for it), a FIN passes at once, with no PING', async () => {
  await withServer({ heartbeatIntervalMs: 60_000 }, async (server, sockets) => {
    const raw = await openControl(server.controlPort, 'ping goaway id-reply');
    sockets.push(raw.socket);
    raw.send('EXPOSE 1\n');
    const port = Number(/^OK ([0-9]+) /.exec(await raw.reader.line())?.[1]);
    const { ending, data } = await joinedVisitor(raw, port, server.dataPort, sockets);
    data.socket.end();
    assert.deepEqual(await within(ending, 5_000, 'the visitor to end'), { how: 'fin', received: 5 });
  });
});
