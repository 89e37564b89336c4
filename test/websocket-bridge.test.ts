// The WebSocket transport's two parts on their own, over real sockets on 127.0.0.1: the
// loopback socket pair (shared/socket-pair.ts), and the bridge between a WebSocket and one
// end of a pair (shared/websocket-bridge.ts), driven by a raw `ws` peer. The bridge's
// mapping: bytes ↔ binary messages; FIN ↔ an empty binary message; FIN both ways → close
// 1000; a reset ↔ close 4000; a text message → 1003; a message after the FIN → 1002; a
// peer silent between two pings → terminated. "core" below is the pair's other end: what
// the relay's or the client's core would read and write.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { BurrowError } from '../shared/errors.ts';
import { SocketPairs, type SocketPair } from '../shared/socket-pair.ts';
import { bridge, CLOSE, MAX_MESSAGE_BYTES, pauseUntilBridged } from '../shared/websocket-bridge.ts';
import { honestEnding } from './endings.ts';
import { WsPeer } from './ws-peer.ts';
import { assertSameBytes, HOST, pseudoRandomBytes, readAll, untilEqual, within } from './helpers.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

// ---------------------------------------------------------------------------------------
// Local helpers

/** Resolves once `socket` has read `count` bytes (counted from now); the bytes are returned. */
function receiveBytes(socket: net.Socket, count: number): Promise<Buffer> {
  return within(
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      let length = 0;
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk);
        length += chunk.length;
        if (length < count) return;
        socket.off('data', onData);
        resolve(Buffer.concat(chunks));
      };
      socket.on('data', onData);
    }),
    10_000,
    `${count} bytes at the core`,
  );
}

/** Writes to `socket` until a write fails (it must: its peer is gone), at most 10,000
 * writes; resolves with the error's code. */
async function writeUntilError(socket: net.Socket): Promise<string> {
  const failed = new Promise<string>((resolve) =>
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message)),
  );
  for (let i = 0; i < 10_000 && !socket.destroyed; i++) {
    await new Promise<void>((resolve) => socket.write(Buffer.alloc(KiB, 1), () => resolve()));
  }
  return within(failed, 5_000, 'a write to fail');
}

const pairs = new SocketPairs();
let server: WebSocketServer;
let url = '';
/** Server-side WebSockets not taken by a test yet, paused (pauseUntilBridged) on arrival. */
const arrivals: WebSocket[] = [];
const arrived = new Set<() => void>();
/** Everything a test opened, closed after it whatever happened. */
const opened: Array<WebSocket | net.Socket> = [];

before(async () => {
  server = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: false, maxPayload: MAX_MESSAGE_BYTES });
  await once(server, 'listening');
  url = `ws://${HOST}:${(server.address() as net.AddressInfo).port}`;
  server.on('connection', (ws) => {
    pauseUntilBridged(ws);
    ws.on('error', () => {});
    opened.push(ws);
    arrivals.push(ws);
    for (const wake of [...arrived]) wake();
  });
});

after(async () => {
  pairs.close();
  for (const ws of server.clients) ws.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Destroys every socket and terminates every WebSocket the test opened. */
async function cleanUp(): Promise<void> {
  const closing = opened.splice(0).map((thing) => {
    if (thing instanceof WebSocket) {
      if (thing.readyState === WebSocket.CLOSED) return Promise.resolve();
      const closed = once(thing, 'close');
      thing.terminate();
      return closed;
    }
    if (thing.closed) return Promise.resolve();
    const closed = once(thing, 'close');
    thing.destroy();
    return closed;
  });
  await within(Promise.all(closing), 5_000, 'everything the test opened to close');
}

/** The next server-side WebSocket (paused since it arrived). */
function nextArrival(): Promise<WebSocket> {
  let wake = (): void => {};
  return within(
    new Promise<WebSocket>((resolve) => {
      wake = (): void => {
        const ws = arrivals.shift();
        if (ws) resolve(ws);
      };
      arrived.add(wake);
      wake();
    }),
    5_000,
    'a WebSocket to arrive',
  ).finally(() => arrived.delete(wake));
}

/** A pair whose sockets are closed with the test's other things. */
async function newPair(): Promise<SocketPair> {
  const pair = await pairs.pair();
  opened.push(pair.accepted, pair.dialed);
  for (const socket of [pair.accepted, pair.dialed]) socket.on('error', () => {});
  return pair;
}

/** A raw peer connected to the server, whose WebSocket is bridged to the dialed end of a
 * fresh pair; the accepted end is the core's. */
async function bridged(pingIntervalMs = 60_000): Promise<{ peer: WsPeer; core: net.Socket; server: WebSocket }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  opened.push(ws);
  const peer = new WsPeer(ws);
  const serverSide = nextArrival();
  await within(once(ws, 'open'), 5_000, 'the peer to open');
  const serverWs = await serverSide;
  const { accepted, dialed } = await newPair();
  bridge(serverWs, dialed, accepted, pingIntervalMs);
  return { peer, core: accepted, server: serverWs };
}

// ---------------------------------------------------------------------------------------
// The socket pair

test('a socket pair: two connected loopback sockets, bytes both ways, half-close carried, then a clean close', async () => {
  try {
    const { accepted, dialed } = await newPair();
    assert.equal(accepted.remotePort, dialed.localPort, 'the accepted end is the dial’s other end');
    assert.equal(dialed.remotePort, accepted.localPort);
    assert.equal(accepted.remoteAddress, HOST);
    const one = pseudoRandomBytes(256 * KiB, 1);
    const two = pseudoRandomBytes(256 * KiB, 2);
    const atAccepted = readAll(accepted);
    const atDialed = readAll(dialed);
    const closes = Promise.all([once(accepted, 'close'), once(dialed, 'close')]);
    dialed.end(one);
    assertSameBytes(await within(atAccepted, 5_000, 'bytes at the accepted end'), one, 'dialed → accepted');
    assert.equal(accepted.writable, true, 'half-open: the accepted end can still send');
    accepted.end(two);
    assertSameBytes(await within(atDialed, 5_000, 'bytes at the dialed end'), two, 'accepted → dialed');
    const [errorA, errorB] = await within(closes, 5_000, 'both ends to close');
    assert.deepEqual([errorA, errorB], [[false], [false]], 'closed without error');
  } finally {
    await cleanUp();
  }
});

test('50 pairs made at once: each accepted end belongs to its own dialed end', async () => {
  try {
    const made = await Promise.all(Array.from({ length: 50 }, () => newPair()));
    assert.equal(new Set(made.map((pair) => pair.dialed.localPort)).size, 50, 'fifty distinct pairs');
    const checks = made.map(async ({ accepted, dialed }, index) => {
      const got = receiveBytes(accepted, 4);
      const tag = Buffer.alloc(4);
      tag.writeUInt32BE(index);
      dialed.write(tag);
      assert.equal((await got).readUInt32BE(0), index, `pair ${index}`);
      assert.equal(accepted.remotePort, dialed.localPort, `pair ${index}`);
    });
    await Promise.all(checks);
  } finally {
    await cleanUp();
  }
});

test('after close() a pair() rejects with code closed; pairs made before go on working', async () => {
  const own = new SocketPairs();
  try {
    const { accepted, dialed } = await own.pair();
    opened.push(accepted, dialed);
    own.close();
    await assert.rejects(own.pair(), (error: unknown) => error instanceof BurrowError && error.code === 'closed');
    const got = receiveBytes(accepted, 5);
    dialed.write('still');
    assert.equal((await got).toString(), 'still', 'a pair made before close() still carries bytes');
    own.close(); // twice is fine
    await assert.rejects(own.pair(), BurrowError);
  } finally {
    own.close();
    await cleanUp();
  }
});

test('a stranger’s connection to the pair listener is never handed out as a pair', async () => {
  const own = new SocketPairs();
  try {
    // Make the listener, then learn its port from a pair.
    const first = await own.pair();
    opened.push(first.accepted, first.dialed);
    const port = first.dialed.remotePort ?? 0;
    const stranger = net.connect({ host: HOST, port });
    stranger.on('error', () => {});
    opened.push(stranger);
    await within(once(stranger, 'connect'), 5_000, 'the stranger to connect');
    const { accepted, dialed } = await own.pair();
    opened.push(accepted, dialed);
    assert.equal(accepted.remotePort, dialed.localPort, 'the new pair is ours, not the stranger’s');
    assert.notEqual(accepted.remotePort, stranger.localPort);
  } finally {
    own.close();
    await cleanUp();
  }
});

// ---------------------------------------------------------------------------------------
// The bridge

test('bytes both ways become binary messages and back, byte-exact (4 MiB each way, nothing as text)', async () => {
  try {
    const { peer, core } = await bridged();
    const down = pseudoRandomBytes(4 * MiB, 11);
    const up = pseudoRandomBytes(4 * MiB, 12);
    const atCore = receiveBytes(core, up.length);
    core.write(down);
    for (let offset = 0; offset < up.length; offset += 64 * KiB) peer.send(up.subarray(offset, offset + 64 * KiB));
    assertSameBytes(await peer.take(down.length), down, 'core → peer');
    assertSameBytes(await atCore, up, 'peer → core');
    assert.deepEqual(peer.events, ['bytes'], 'binary messages only, no FIN');
  } finally {
    await cleanUp();
  }
});

test('FIN from the core → one empty binary message; the other direction goes on; then FIN both ways → close 1000', async () => {
  try {
    const { peer, core } = await bridged();
    const ending = honestEnding(core);
    core.end('last words');
    assert.equal((await peer.untilFin()).toString(), 'last words');
    assert.deepEqual(peer.events, ['bytes', 'fin']);
    const later = pseudoRandomBytes(512 * KiB, 13);
    const atCore = receiveBytes(core, later.length);
    peer.send(later);
    assertSameBytes(await atCore, later, 'bytes after the core’s FIN');
    peer.send(Buffer.alloc(0)); // the peer's FIN
    assert.equal((await within(ending, 5_000, 'the core to see the end')).how, 'fin', 'a clean end at the core');
    const { code } = await within(peer.closed, 5_000, 'the close');
    assert.equal(code, CLOSE.normal);
    assert.deepEqual(peer.events, ['bytes', 'fin'], 'nothing after the FIN');
  } finally {
    await cleanUp();
  }
});

test('an empty binary message from the peer → the core gets end, and can still send; FIN both ways → close 1000', async () => {
  try {
    const { peer, core, server } = await bridged();
    const atCore = readAll(core);
    peer.send('request');
    peer.send(Buffer.alloc(0));
    assert.equal((await within(atCore, 5_000, 'the end at the core')).toString(), 'request');
    assert.equal(core.readableEnded, true);
    assert.equal(server.readyState, WebSocket.OPEN, 'a FIN one way is no close');
    const reply = Buffer.from('reply after the peer’s FIN');
    core.write(reply);
    assert.equal((await peer.take(reply.length)).toString(), reply.toString());
    const coreClosed = once(core, 'close');
    core.end();
    await peer.untilFin();
    const { code } = await within(peer.closed, 5_000, 'the close');
    assert.equal(code, CLOSE.normal, 'FIN both ways');
    assert.deepEqual(await within(coreClosed, 5_000, 'the core to close'), [false]);
  } finally {
    await cleanUp();
  }
});

test('close 4000 from the peer mid-stream → the core is reset (not a clean end)', async () => {
  try {
    const { peer, core } = await bridged();
    const ending = honestEnding(core);
    peer.send('some bytes');
    await receiveBytes(core, 10);
    peer.ws.close(CLOSE.reset, 'reset');
    const { how } = await within(ending, 5_000, 'the core to see the reset');
    assert.equal(how, 'reset');
  } finally {
    await cleanUp();
  }
});

test('any close other than 1000, or a connection lost without a close, resets the core', async () => {
  try {
    for (const [what, end] of [
      ['close 1001', (ws: WebSocket) => ws.close(1001)],
      ['close 1000 before both FINs', (ws: WebSocket) => ws.close(1000)],
      ['terminate (no close frame)', (ws: WebSocket) => ws.terminate()],
    ] as const) {
      const { peer, core } = await bridged();
      const ending = honestEnding(core);
      peer.send('x');
      await receiveBytes(core, 1);
      end(peer.ws);
      assert.equal((await within(ending, 5_000, `${what}: the core's end`)).how, 'reset', what);
    }
  } finally {
    await cleanUp();
  }
});

test('the core resets its end → the peer gets close 4000 "reset", without a FIN first', async () => {
  try {
    const { peer, core } = await bridged();
    core.write('partial');
    await peer.take(7);
    core.resetAndDestroy();
    const closed = await within(peer.closed, 5_000, 'the close');
    assert.deepEqual(closed, { code: CLOSE.reset, reason: 'reset' });
    assert.deepEqual(peer.events, ['bytes'], 'no FIN before the reset');
  } finally {
    await cleanUp();
  }
});

test('the core resets while streaming (bytes in flight): the peer never gets a FIN, only close 4000 (30 rounds)', async () => {
  // A reset that arrives with data, while the bridge's socket is reading, may be reported
  // by libuv as a plain end of stream (see shared/pipe.ts, joinSockets): the bridge must not
  // pass that on as a FIN, or the other side would take a truncated stream for a whole one.
  const rounds: string[] = [];
  try {
    for (let round = 0; round < 30; round++) {
      const { peer, core } = await bridged();
      const chunk = Buffer.alloc(64 * KiB, round);
      let written = 0;
      const pump = (): void => {
        while (!core.destroyed && written < 2 * MiB) {
          written += chunk.length;
          if (!core.write(chunk)) return;
        }
        if (!core.destroyed) core.resetAndDestroy();
      };
      core.on('drain', pump);
      pump();
      // A FIN is the failure itself: no need to wait for a close that would then never come.
      const outcome = await within(
        Promise.race([peer.closed.then(({ code }) => String(code)), peer.untilFin(10_000).then(() => 'fin')]),
        10_000,
        `round ${round}: the close`,
      );
      rounds.push(`${peer.events.join(',')} ${outcome}`);
      await cleanUp();
    }
    const bad = rounds.filter((round) => round.includes('fin') || !round.endsWith(' 4000'));
    assert.deepEqual(bad, [], `rounds where the peer saw a FIN or no 4000 (of ${rounds.length})`);
  } finally {
    await cleanUp();
  }
});

test('a message after the empty one → close 1002; the core, which had its FIN, fails its next writes', async () => {
  try {
    const { peer, core } = await bridged();
    const atCore = readAll(core);
    peer.send('all of it');
    peer.send(Buffer.alloc(0));
    peer.send('more after the FIN');
    const { code } = await within(peer.closed, 5_000, 'the close');
    assert.equal(code, CLOSE.protocol);
    assert.equal((await atCore).toString(), 'all of it', 'nothing after the FIN reached the core');
    assert.match(await writeUntilError(core), /^(EPIPE|ECONNRESET)$/);
  } finally {
    await cleanUp();
  }
});

test('a text message → close 1003, and the core is reset', async () => {
  try {
    const { peer, core } = await bridged();
    const ending = honestEnding(core);
    peer.ws.send('text is not allowed');
    const { code } = await within(peer.closed, 5_000, 'the close');
    assert.equal(code, CLOSE.textFrame);
    const { how, received: count } = await within(ending, 5_000, 'the core’s end');
    assert.equal(how, 'reset');
    assert.equal(count, 0, 'the text never reached the core');
  } finally {
    await cleanUp();
  }
});

test('a WebSocket that closed before the bridge: the socket is reset at once', async () => {
  try {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    opened.push(ws);
    ws.on('error', () => {});
    const serverSide = nextArrival();
    await within(once(ws, 'open'), 5_000, 'the peer to open');
    const serverWs = await serverSide;
    const serverClosed = once(serverWs, 'close');
    ws.terminate();
    await within(serverClosed, 5_000, 'the server side to close');
    const { accepted, dialed } = await newPair();
    const ending = honestEnding(accepted);
    bridge(serverWs, dialed, accepted, 60_000);
    assert.equal((await within(ending, 5_000, 'the core’s end')).how, 'reset');
  } finally {
    await cleanUp();
  }
});

test('messages that came before bridge() are not lost: the WebSocket is paused until then', async () => {
  try {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    opened.push(ws);
    const peer = new WsPeer(ws);
    const serverSide = nextArrival();
    await within(once(ws, 'open'), 5_000, 'the peer to open');
    peer.send('early bytes');
    peer.send(Buffer.alloc(0));
    const serverWs = await serverSide;
    // Give the early messages every chance to arrive at the paused WebSocket first.
    await untilEqual(() => serverWs.isPaused, true, 'the server side to be paused');
    for (let turn = 0; turn < 20; turn++) await nextTurn();
    const { accepted, dialed } = await newPair();
    const atCore = readAll(accepted);
    bridge(serverWs, dialed, accepted, 60_000);
    assert.equal((await within(atCore, 5_000, 'the early bytes and FIN')).toString(), 'early bytes');
  } finally {
    await cleanUp();
  }
});

test('backpressure: a peer that does not read holds the core’s bytes back, and is not cut by pings meanwhile; resumed, every byte arrives', async () => {
  try {
    const { peer, core, server } = await bridged(100);
    const clock = await bridged(100); // another bridge's pings, to count intervals by
    peer.ws.pause();
    const sent = pseudoRandomBytes(16 * MiB, 21);
    core.write(sent);
    // Wait until the bridge has had to queue on the WebSocket (the kernel buffers are full).
    let maxQueued = 0;
    for (let turn = 0; turn < 200_000 && server.bufferedAmount === 0; turn++) await nextTurn();
    for (let turn = 0; turn < 200; turn++) {
      maxQueued = Math.max(maxQueued, server.bufferedAmount);
      await nextTurn();
    }
    assert.ok(maxQueued > 0, 'the WebSocket had to queue');
    assert.ok(maxQueued <= 2 * MiB, `the bridge stops reading: at most ${maxQueued} bytes queued, not 16 MiB`);
    assert.ok(core.writableLength > 0, 'the rest waits at the core');
    // A paused peer answers no ping; its pongs would wait behind our bytes anyway.
    await clock.peer.untilPings(clock.peer.pings + 6);
    assert.equal(server.readyState, WebSocket.OPEN, 'not cut while bytes wait for the peer');
    peer.ws.resume();
    assertSameBytes(await peer.take(sent.length, 30_000), sent, 'every byte after the resume');
  } finally {
    await cleanUp();
  }
});

test('backpressure: a core that does not read pauses the WebSocket; resumed, every byte arrives', async () => {
  try {
    const { peer, core, server } = await bridged();
    core.pause();
    const sent = pseudoRandomBytes(16 * MiB, 22);
    for (let offset = 0; offset < sent.length; offset += 256 * KiB)
      peer.send(sent.subarray(offset, offset + 256 * KiB));
    for (let turn = 0; turn < 200_000 && !server.isPaused; turn++) await nextTurn();
    assert.equal(server.isPaused, true, 'the bridge paused the WebSocket');
    const atCore = receiveBytes(core, sent.length);
    core.resume();
    assertSameBytes(await atCore, sent, 'every byte after the resume');
  } finally {
    await cleanUp();
  }
});

// While the bridge holds the WebSocket paused it reads no pong either: before b00a840 this
// cut a live peer after two ping intervals of backpressure.
test('backpressure longer than two ping intervals (the core does not read) does not cut a peer that answers its pings', async () => {
  try {
    const { peer, core, server } = await bridged(100);
    core.pause();
    const sent = pseudoRandomBytes(16 * MiB, 23);
    for (let offset = 0; offset < sent.length; offset += 256 * KiB)
      peer.send(sent.subarray(offset, offset + 256 * KiB));
    for (let turn = 0; turn < 200_000 && !server.isPaused; turn++) await nextTurn();
    assert.equal(server.isPaused, true, 'the bridge paused the WebSocket');
    const pings = peer.pings;
    await Promise.race([peer.untilPings(pings + 6), peer.closed]);
    assert.equal(peer.ws.readyState, WebSocket.OPEN, 'the peer answered every ping: still connected');
    const atCore = receiveBytes(core, sent.length);
    core.resume();
    assertSameBytes(await atCore, sent, 'every byte after the resume');
  } finally {
    await cleanUp();
  }
});

test('pings: a peer that answers is kept across pings; one that does not is terminated and the core reset', async () => {
  try {
    const live = await bridged(100);
    await live.peer.untilPings(4);
    assert.equal(live.peer.ws.readyState, WebSocket.OPEN, 'answering pings keeps it open');
    live.core.write('still here');
    assert.equal((await live.peer.take(10)).toString(), 'still here');

    const ws = new WebSocket(url, { perMessageDeflate: false, autoPong: false });
    opened.push(ws);
    const silent = new WsPeer(ws);
    const serverSide = nextArrival();
    await within(once(ws, 'open'), 5_000, 'the silent peer to open');
    const { accepted, dialed } = await newPair();
    const ending = honestEnding(accepted);
    bridge(await serverSide, dialed, accepted, 100);
    const { code } = await within(silent.closed, 5_000, 'the silent peer to be terminated');
    assert.equal(code, 1006, 'terminated, no close frame');
    assert.ok(silent.pings >= 1, 'pinged before');
    assert.equal((await within(ending, 5_000, 'the core’s end')).how, 'reset');
    assert.equal(live.peer.ws.readyState, WebSocket.OPEN, 'the live one is still open');
  } finally {
    await cleanUp();
  }
});
