// Reads in place (shared/own-reads.ts): the client's plain TCP sockets read into one buffer
// of their own, read into again once its bytes have left. These tests join such a socket
// to an ordinary one and check that no byte is lost, changed or reordered: when writes
// complete at once (the buffer is reused), when they are left pending (a slow reader: the
// buffer must not be read into while a write still holds it), and when the bytes after a
// first line were read before the join.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { connectWithOwnReads, ownReadsOf } from '../shared/own-reads.ts';
import { joinSockets, readFirstLine } from '../shared/pipe.ts';
import { assertSameBytes, HOST, pseudoRandomBytes, readAll, within } from './helpers.ts';

const MiB = 1024 * 1024;

interface Rig {
  /** Reads in place; connected to `source`. */
  own: net.Socket;
  /** The far end of `own`. */
  source: net.Socket;
  /** An ordinary socket, connected to `sink`; joined to `own` by the test. */
  plain: net.Socket;
  /** The far end of `plain`: paused until the test reads it. */
  sink: net.Socket;
  close(): Promise<void>;
}

async function listen(): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, HOST);
  await once(server, 'listening');
  return server;
}

const portOf = (server: net.Server): number => (server.address() as net.AddressInfo).port;

async function rig(): Promise<Rig> {
  const servers = [await listen(), await listen()] as const;
  const accepted = (server: net.Server): Promise<[net.Socket]> =>
    within(once(server, 'connection'), 5_000, 'a connection') as Promise<[net.Socket]>;
  const accepting = Promise.all([accepted(servers[0]), accepted(servers[1])]);
  const own = connectWithOwnReads({ host: HOST, port: portOf(servers[0]), allowHalfOpen: true });
  const plain = net.connect({ host: HOST, port: portOf(servers[1]), allowHalfOpen: true });
  const [[source], [sink]] = await accepting;
  await Promise.all([once(own, 'connect'), once(plain, 'connect')]);
  const sockets = [own, plain, source, sink];
  for (const socket of sockets) socket.on('error', () => {});
  return {
    own,
    source,
    plain,
    sink,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}

/** Writes `data` in pieces of `piece` bytes, one per turn of the event loop (so that each
 * arrives as a read of its own), then ends. */
async function trickle(socket: net.Socket, data: Buffer, piece: number): Promise<void> {
  for (let at = 0; at < data.length; at += piece) {
    socket.write(data.subarray(at, at + piece));
    await new Promise(setImmediate);
  }
  socket.end();
}

test('bytes read in place arrive intact, and one buffer serves while writes complete at once', async () => {
  const { own, source, plain, sink, close } = await rig();
  try {
    const data = pseudoRandomBytes(16 * MiB, 7);
    const joined = joinSockets(own, plain);
    const arrived = readAll(sink);
    sink.resume();
    source.end(data);
    assertSameBytes(await within(arrived, 30_000, 'the bytes'), data, 'what the sink got');
    sink.end(); // the other direction, so that the pair closes
    source.resume();
    assert.equal((await within(joined, 10_000, 'the join')).aborted, false);
    const buffers = ownReadsOf(own)?.buffers ?? 0;
    // A read whose write was still in progress moves on to a fresh buffer; with a sink that
    // reads as fast as it can, that is rare. Node's own read path would use one per read.
    assert.ok(buffers >= 1 && buffers < (16 * MiB) / (64 * 1024) / 4, `${buffers} buffers for 16 MiB`);
  } finally {
    await close();
  }
});

test('a slow reader: a buffer a pending write still holds is never read into', async () => {
  const { own, source, plain, sink, close } = await rig();
  try {
    // Reads of one piece each (over the 4 KiB a socket reads in place from, under the
    // 16 KiB high-water mark) into a sink that reads nothing until all is sent: the
    // kernel's buffers fill, writes are left pending but the pump keeps reading, and each
    // pending write holds its buffer.
    const data = pseudoRandomBytes(32 * MiB, 11);
    const joined = joinSockets(own, plain);
    await trickle(source, data, 6000);
    const arrived = readAll(sink);
    sink.resume();
    assertSameBytes(await within(arrived, 60_000, 'the bytes'), data, 'what the slow sink got');
    sink.end();
    source.resume();
    assert.equal((await within(joined, 10_000, 'the join')).aborted, false);
    const buffers = ownReadsOf(own)?.buffers ?? 0;
    assert.ok(buffers > 1, `writes were left pending, so more than one buffer was used (${buffers})`);
  } finally {
    await close();
  }
});

test('the bytes after a first line, read with it before the join, go first; both ways, FIN each way', async () => {
  const { own, source, plain, sink, close } = await rig();
  try {
    const first = pseudoRandomBytes(1000, 3);
    const rest = pseudoRandomBytes(3 * MiB, 5);
    const line = readFirstLine(own, { maxLength: 100, timeoutMs: 5_000 });
    source.resume();
    source.write(Buffer.concat([Buffer.from('OK\n'), first])); // one write: one read, most likely
    assert.equal(await within(line, 5_000, 'the first line'), 'OK');
    const joined = joinSockets(own, plain);
    const arrived = readAll(sink);
    const back = readAll(source);
    sink.resume();
    source.end(rest);
    sink.end('and back');
    assertSameBytes(await within(arrived, 30_000, 'the bytes'), Buffer.concat([first, rest]), 'what the sink got');
    assert.equal((await within(back, 10_000, 'the bytes back')).toString(), 'and back');
    const totals = await within(joined, 10_000, 'the join');
    assert.equal(totals.aborted, false);
    assert.equal(totals.fromA, 3 + first.length + rest.length, 'bytesRead counts reads in place too');
  } finally {
    await close();
  }
});
