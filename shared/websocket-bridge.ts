// One WebSocket carrying one TCP byte stream, both ways, as docs/PROTOCOL.md ("Over
// WebSocket") maps it:
//   bytes          → binary messages (text messages are a protocol error: close 1003)
//   FIN            → an empty binary message; the other direction goes on
//   closed after a FIN → close 1000: the other side reads what it was sent, to the end; its
//                    own writes from then on meet a closed socket (a reset), as over TCP
//   reset or abort → close 4000 "reset"; so does any close but 1000 after a FIN, and a
//                    connection lost without a close
// Both ends ping every `pingIntervalMs` and give up on a peer that sent nothing since the
// last ping (on a stream idle since before that ping): proxies drop idle connections, and a
// dead peer must not hold a socket.
import type net from 'node:net';
import createDebug from 'debug';
import type { WebSocket } from 'ws';
import { abortSocket, whenRealEnd } from './pipe.ts';

export { DEFAULT_WEBSOCKET_PING_MS } from './protocol.ts';

const debug = createDebug('burrow:websocket');

/** Close codes: RFC 6455 (1000, 1002, 1003) and one of the private range for a reset. */
export const CLOSE = { normal: 1000, protocol: 1002, textFrame: 1003, reset: 4000 } as const;

/** Longest message accepted; ours are at most one read of a socket (64 KiB). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Bytes queued on the WebSocket before the socket stops being read. */
const HIGH_WATER = 256 * 1024;

const EMPTY = Buffer.alloc(0);

/** Joins `ws` and `socket` until both are done. `socket` is one end of a socket pair whose
 * other end, `coreEnd`, belongs to the core; what happens to one side happens to the other.
 * `ws` is paused (pauseUntilBridged) from its opening until now, so that no message is
 * missed. */
export function bridge(ws: WebSocket, socket: net.Socket, coreEnd: net.Socket, pingIntervalMs: number): void {
  if (ws.readyState !== ws.OPEN) {
    abortSocket(socket); // it closed while the pair was being made
    return;
  }
  let sentFin = false;
  let gotFin = false;
  let heard = true;
  /** We sent bytes since the last ping. */
  let sentSome = false;
  /** The ping now awaited went out while our bytes were moving or waiting: it may be queued
   * behind them in buffers we cannot see (the kernel's, ours and the peer's), so its pong
   * may come late from a peer that is alive. */
  let pingBehindBytes = false;

  const sent = (error?: Error): void => {
    if (error) debug('send: %s', error.message);
    if (socket.isPaused() && ws.bufferedAmount <= HIGH_WATER) socket.resume();
  };
  socket.on('data', (chunk: Buffer) => {
    sentSome = true;
    ws.send(chunk, { binary: true }, sent);
    if (ws.bufferedAmount > HIGH_WATER) socket.pause();
  });
  socket.on('end', () => {
    const passOn = (): void => {
      sentFin = true;
      if (ws.readyState === ws.OPEN) ws.send(EMPTY, { binary: true }, sent);
      closeIfCoreGone();
    };
    // A reset that arrives while we read may look like a plain end: its 'close' then says
    // 4000 instead.
    whenRealEnd(socket, passOn);
  });
  socket.on('error', (error) => debug('socket: %s', error.message));
  socket.on('close', (hadError) => closeWebSocket(hadError));
  // The core may close its end after its FIN without waiting for ours (a refusal after
  // its linger): the WebSocket must not outlive it, half-open, on our end. Once we have
  // read that FIN, that is: bytes before it may still be on their way to us. (A reset
  // reaches our socket as an error, and its 'close' says so.)
  let coreClosed = false;
  coreEnd.once('close', () => {
    coreClosed = true;
    closeIfCoreGone();
  });
  const closeIfCoreGone = (): void => {
    if (!coreClosed || !sentFin || socket.destroyed) return;
    closeWebSocket(false);
    socket.destroy();
  };
  const closeWebSocket = (hadError: boolean): void => {
    clearInterval(pings);
    if (ws.readyState !== ws.OPEN) return;
    if (!hadError && sentFin) ws.close(CLOSE.normal);
    else ws.close(CLOSE.reset, 'reset');
  };

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    heard = true;
    if (!isBinary) return fail(CLOSE.textFrame, 'binary messages only');
    if (gotFin) return fail(CLOSE.protocol, 'a message after the end of the stream');
    if (data.length === 0) {
      gotFin = true;
      socket.end();
      return;
    }
    // A message is up to 64 KiB and a socket's own high-water mark is 16 KiB: pausing the
    // WebSocket at every full mark would pause it for every message.
    if (!socket.write(data) && socket.writableLength > HIGH_WATER && !ws.isPaused) {
      ws.pause();
      socket.once('drain', () => ws.resume());
    }
  });
  ws.on('pong', () => (heard = true));
  ws.on('error', (error) => debug('websocket: %s', error.message));
  ws.on('close', (code: number) => {
    clearInterval(pings);
    if (code !== CLOSE.normal || !gotFin) return abortSocket(socket);
    // Closed after its FIN: the core reads what we still hold for it, to the end; then our
    // end closes, and what the core writes from then on meets a closed socket.
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  });

  /** Closes the WebSocket with `code` and resets the socket: the stream is broken. */
  const fail = (code: number, why: string): void => {
    debug('closing with %d: %s', code, why);
    ws.close(code, why);
    abortSocket(socket);
  };

  const pings = setInterval(() => {
    // Silence is a dead peer only on an idle stream: while we hold its messages back
    // (paused: the socket is slow to take them) or it is slow to take ours (bytes queued,
    // or sent lately), its pings and pongs wait in line too. And a ping that went out behind
    // bytes is answered only once the peer has read them: after a stall, our own queue may
    // be empty long before. A stalled stream is bounded by TCP's own retransmission timeout
    // instead.
    const busy = sentSome || ws.isPaused || ws.bufferedAmount > 0;
    if (!heard && !busy && !pingBehindBytes) {
      debug('no answer to the last ping within %d ms: giving up', pingIntervalMs);
      ws.terminate();
      return;
    }
    heard = false;
    sentSome = false;
    pingBehindBytes = busy;
    ws.ping();
  }, pingIntervalMs);
  pings.unref();
  ws.resume();
}

/** Holds back `ws`'s messages until bridge() listens for them. */
export function pauseUntilBridged(ws: WebSocket): void {
  ws.pause();
}
