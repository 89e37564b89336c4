// How the client waits for a socket (client/cancel.ts waitFor, client/dial.ts): the event
// comes, an error comes, its own deadline passes, or the client stops first (one listener
// on its signal for every wait in flight). The deadline
// and the stop are the paths a healthy loopback never takes, so they are forced here: a
// TLS dial to a port that accepts TCP and then says nothing.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { CLOSED, TIMED_OUT, waitFor } from '../client/cancel.ts';
import { dial } from '../client/dial.ts';
import { clientTls } from '../client/tls.ts';
import { BurrowError } from '../shared/errors.ts';
import { HOST } from './helpers.ts';

/** A port that accepts connections and never sends a byte (no TLS handshake either). */
async function silentPort(): Promise<{ port: number; close(): Promise<void> }> {
  const accepted = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted.add(socket);
    socket.on('error', () => {});
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of accepted) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('waitFor: the event resolves it; its deadline destroys the socket (TIMED_OUT); the client stopping destroys it (CLOSED)', async () => {
  const silent = await silentPort();
  const sockets: net.Socket[] = [];
  const connect = (): net.Socket => {
    const socket = net.connect(silent.port, HOST);
    socket.on('error', () => {});
    sockets.push(socket);
    return socket;
  };
  try {
    const stopping = new AbortController();
    await waitFor(connect(), 'connect', stopping.signal, 10_000);

    const late = connect();
    await waitFor(late, 'connect', stopping.signal, 10_000);
    await assert.rejects(waitFor(late, 'never', stopping.signal, 20), (error) => error === TIMED_OUT);
    assert.ok(late.destroyed, 'the socket that ran out of time is destroyed');

    const stopped = connect();
    await waitFor(stopped, 'connect', stopping.signal, 10_000);
    const waiting = [
      waitFor(stopped, 'never', stopping.signal, 10_000),
      waitFor(connect(), 'never', stopping.signal, 10_000),
    ];
    const ends = Promise.allSettled(waiting);
    stopping.abort(new Error('stop'));
    assert.deepEqual(
      (await ends).map((end) => (end.status === 'rejected' ? (end.reason as unknown) : end.value)),
      [CLOSED, CLOSED],
    );
    assert.ok(stopped.destroyed, 'a stop destroys every socket still waiting');
    const after = connect();
    await assert.rejects(waitFor(after, 'connect', stopping.signal, 10_000), (error) => error === CLOSED);
    assert.ok(after.destroyed, 'a wait that begins after the stop ends at once');
  } finally {
    for (const socket of sockets) socket.destroy();
    await silent.close();
  }
});

test('a TLS dial to a port that never answers the handshake fails with unreachable, "no answer within", and closes its sockets', async () => {
  const silent = await silentPort();
  const tracked: net.Socket[] = [];
  try {
    const options = {
      timeoutMs: 100,
      signal: new AbortController().signal,
      track: (socket: net.Socket) => void tracked.push(socket),
      tls: clientTls(true, HOST),
    };
    await assert.rejects(dial('data port', HOST, silent.port, options), (error) => {
      assert.ok(error instanceof BurrowError);
      assert.equal(error.code, 'unreachable');
      assert.match(error.message, /^cannot connect to data port at 127\.0\.0\.1:\d+: no answer within 100 ms$/);
      return true;
    });
    assert.equal(tracked.length, 2, 'the TCP socket and the TLS socket over it');
    await Promise.all(tracked.filter((socket) => !socket.closed).map((socket) => once(socket, 'close')));
  } finally {
    await silent.close();
  }
});
