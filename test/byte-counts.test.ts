// Byte counts must not count what never left. Node's `bytesWritten` counts every byte
// handed to a socket, also those still queued in Node and libuv; a reset throws those
// away, so a count built on it claims bytes the peer can never get. joinSockets counts a
// write once it has completed while the socket was open (bytesAccepted); the server's
// totals and the client's connection events use that count. Each test freezes a pair with
// bytes queued (the reader does not read, so nothing moves), cuts it, and compares the
// count with what arrived, or with Node's own books: bytes handed over minus bytes still
// queued is what the kernel took.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ConnectionClosed } from '../client/types.ts';
import { ServerCounters } from '../server/counters.ts';
import { joinSockets } from '../shared/pipe.ts';
import { pushBytes } from './endings.ts';
import { connectVisitor, HOST, pseudoRandomBytes, readAll, startRig, untilEqual, within } from './helpers.ts';

const MiB = 1024 * 1024;

/** Waits, a turn of the event loop at a time (bounded), until `check()` holds. */
const until = (check: () => boolean, what: string): Promise<void> => untilEqual(check, true, what);

/** A connected pair of sockets from a server listening on `address` (a TCP port on
 * loopback, or a Unix socket path), both half-open; the accepted one is paused, so it reads
 * nothing until the test says so. */
async function socketPair(
  address: { port: 0 } | { path: string },
): Promise<{ connected: net.Socket; accepted: net.Socket; close(): Promise<void> }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  if ('path' in address) server.listen(address.path);
  else server.listen(0, HOST);
  await once(server, 'listening');
  const where = server.address();
  const connected =
    typeof where === 'string' || where === null
      ? net.connect({ path: where ?? '', allowHalfOpen: true })
      : net.connect({ host: HOST, port: where.port, allowHalfOpen: true });
  const [accepted] = (await within(once(server, 'connection'), 5_000, 'the connection')) as [net.Socket];
  await within(once(connected, 'connect'), 5_000, 'connect');
  for (const socket of [connected, accepted]) socket.on('error', () => {}); // tests assert on counts
  return {
    connected,
    accepted,
    close: async () => {
      connected.destroy();
      accepted.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let paths = 0;
/** A fresh Unix socket path in the temporary directory. */
const unixPath = (): string => path.join(os.tmpdir(), `burrow-byte-counts-${process.pid}-${++paths}.sock`);

/**
 * `a` is one end of a Unix socket: there, every byte the kernel took is in the reader's
 * queue and stays readable after the writer closes (a Unix socket has no reset that would
 * throw it away, and no send queue of its own), so the reader's total after the cut is
 * exactly what the kernel took. `b` is TCP, fed by `feeder`.
 */
async function unixRig(): Promise<{
  a: net.Socket;
  reader: net.Socket;
  b: net.Socket;
  feeder: net.Socket;
  close(): Promise<void>;
}> {
  const socketPath = unixPath();
  await fs.rm(socketPath, { force: true });
  const unix = await socketPair({ path: socketPath });
  const tcp = await socketPair({ port: 0 });
  return {
    a: unix.connected,
    reader: unix.accepted,
    b: tcp.accepted,
    feeder: tcp.connected,
    close: async () => {
      await unix.close();
      await tcp.close();
      await fs.rm(socketPath, { force: true });
    },
  };
}

test('joinSockets cut with bytes queued for a socket that is not read: toA counts only what its kernel took, never what was still queued', async () => {
  const rig = await unixRig();
  try {
    const counters = new ServerCounters();
    counters.paired(rig.a); // as the server does for a visitor, before joining it
    const joined = joinSockets(rig.a, rig.b);
    pushBytes(rig.feeder, 256 * MiB);
    // Frozen: `a` waits for a drain that cannot come (its reader reads nothing), so the pump
    // into it is paused and its queue neither grows nor shrinks.
    await until(() => rig.a.writableNeedDrain && rig.a.writableLength > 0, '`a` to be full, with bytes queued');
    const handed = rig.a.bytesWritten;
    const queued = rig.a.writableLength;
    // Node's books: what it handed to the kernel and saw completed.
    assert.equal(
      counters.snapshot().bytesToVisitors,
      handed - queued,
      'the live count: bytes handed over minus bytes still queued',
    );

    rig.b.destroy(); // one side closes early: joinSockets aborts `a`, whose queue is lost
    const totals = await within(joined, 10_000, 'the pair to close');
    counters.unpaired(rig.a);
    assert.equal(totals.aborted, true);
    const received = (await within(readAll(rig.reader.resume()), 10_000, 'the reader to drain')).length;

    assert.ok(handed > received, `the test cut with bytes queued (${handed} handed over, ${received} arrived)`);
    assert.ok(totals.toA <= received, `toA ${totals.toA} is more than the ${received} bytes that arrived`);
    // Short at most by the part of the one write in progress that the kernel had taken.
    assert.ok(
      received - totals.toA <= queued,
      `toA ${totals.toA} is short of the ${received} that arrived by more than the ${queued} queued`,
    );
    assert.equal(totals.toA, handed - queued, 'toA: the count of the frozen pair');
    assert.equal(counters.snapshot().bytesToVisitors, totals.toA, "the server's total for a closed visitor");
  } finally {
    await rig.close();
  }
});

test('joinSockets on streams that end cleanly counts every byte, both ways', async () => {
  const rig = await unixRig();
  try {
    const download = 3 * MiB + 17;
    const upload = 2 * MiB + 5;
    const joined = joinSockets(rig.a, rig.b);
    const atReader = readAll(rig.reader.resume());
    const atFeeder = readAll(rig.feeder);
    rig.feeder.end(pseudoRandomBytes(download, 3));
    rig.reader.end(pseudoRandomBytes(upload, 4));
    assert.equal((await within(atReader, 10_000, 'the download')).length, download);
    assert.equal((await within(atFeeder, 10_000, 'the upload')).length, upload);
    const totals = await within(joined, 10_000, 'the pair to close');
    assert.deepEqual(totals, { fromA: upload, toA: download, aborted: false });
  } finally {
    await rig.close();
  }
});

test("the server's bytesToVisitors after a cut with bytes queued for a visitor that does not read: only what the kernel took", async () => {
  const rig = await startRig((socket) => void pushBytes(socket, 256 * MiB), { server: { shutdownTimeoutMs: 0 } });
  // The server's socket of the visitor: its Node books are the reference.
  let served: net.Socket | undefined;
  const paired = ServerCounters.prototype.paired;
  ServerCounters.prototype.paired = function (this: ServerCounters, visitor: net.Socket): void {
    served = visitor;
    paired.call(this, visitor);
  };
  rig.client.on('warning', () => {});
  const visitor = await connectVisitor(rig.publicPort);
  visitor.on('error', () => {});
  try {
    visitor.pause(); // reads nothing: the server's socket for it fills up and stays full
    await until(
      () => served !== undefined && served.writableNeedDrain && served.writableLength > 0,
      "the server's socket of the visitor to be full",
    );
    const socket = served ?? assert.fail('no visitor was paired');
    const accepted = socket.bytesWritten - socket.writableLength;
    assert.equal(rig.server.totals().bytesToVisitors, accepted, 'the live total');
    await rig.server.destroy(); // cuts the visitor: what is queued for it never leaves
    assert.equal(rig.server.totals().bytesToVisitors, accepted, 'the total once the visitor is closed');
    assert.ok(socket.bytesWritten > accepted, `the test cut with bytes queued (bytesWritten ${socket.bytesWritten})`);
  } finally {
    ServerCounters.prototype.paired = paired;
    visitor.destroy();
    await rig.close();
  }
});

test('a visitor stream that ends cleanly: the server totals and the client connection event count every byte, both ways', async () => {
  const download = 5 * MiB + 3;
  const upload = MiB + 9;
  const rig = await startRig((socket) => {
    socket.resume();
    socket.on('end', () => socket.end(pseudoRandomBytes(download, 5)));
  });
  try {
    const closed = within(
      once(rig.client, 'connection-close') as Promise<[ConnectionClosed]>,
      10_000,
      'the connection event',
    );
    const visitor = await connectVisitor(rig.publicPort);
    const reply = readAll(visitor);
    visitor.end(pseudoRandomBytes(upload, 6));
    assert.equal((await within(reply, 10_000, 'the reply')).length, download);
    visitor.destroy();
    const [event] = await closed;
    assert.equal(event.bytesIn, upload, 'client: bytes in (to the local service)');
    assert.equal(event.bytesOut, download, 'client: bytes out (to the visitor)');
    assert.equal(event.aborted, false);
    await until(() => rig.server.totals().visitorsActive === 0, 'the server to close the visitor');
    const totals = rig.server.totals();
    assert.equal(totals.bytesToVisitors, download, 'server: bytes to visitors');
    assert.equal(totals.bytesFromVisitors, upload, 'server: bytes from visitors');
  } finally {
    await rig.close();
  }
});
