// One WebSocket carrying one TCP byte stream, both ways, as docs/PROTOCOL.md ("Over
// WebSocket") maps it:
//   bytes          → binary messages (text messages are a protocol error: close 1003)
//   FIN            → an empty binary message; the other direction goes on
//   FIN both ways  → close 1000
//   reset or abort → close 4000 "reset"; any close other than 1000 after both FINs, and a
//                    connection lost without a close, reset the socket on the other side
// Both ends ping every `pingIntervalMs` and give up on a peer that sent nothing since the
// last ping (on an idle stream): proxies drop idle connections, and a dead peer must not
// hold a socket.
import type net from 'node:net';
import createDebug from 'debug';
import type { WebSocket } from 'ws';
import { abortSocket } from './pipe.ts';

const debug = createDebug('burrow:websocket');

/** Close codes: RFC 6455 (1000, 1002, 1003) and one of the private range for a reset. */
export const CLOSE = { normal: 1000, protocol: 1002, textFrame: 1003, reset: 4000 } as const;

/** Longest message accepted; ours are at most one read of a socket (64 KiB). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Default time between pings. */
export const DEFAULT_WEBSOCKET_PING_MS = 25_000;

/** Bytes queued on the WebSocket before the socket stops being read. */
const HIGH_WATER = 256 * 1024;

const EMPTY = Buffer.alloc(0);

/** Joins `ws` and `socket` until both are done. `socket` is one end of a socket pair whose
 * other end belongs to the core; what happens to one side happens to the other. `ws` is
 * paused (pauseUntilBridged) from its opening until now, so that no message is missed. */
export function bridge(ws: WebSocket, socket: net.Socket, pingIntervalMs: number): void {
  if (ws.readyState !== ws.OPEN) {
    abortSocket(socket); // it closed while the pair was being made
    return;
  }
  let sentFin = false;
  let gotFin = false;
  let heard = true;

  const sent = (error?: Error): void => {
    if (error) debug('send: %s', error.message);
    if (socket.isPaused() && ws.bufferedAmount <= HIGH_WATER) socket.resume();
  };
  socket.on('data', (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, sent);
    if (ws.bufferedAmount > HIGH_WATER) socket.pause();
  });
  socket.on('end', () => {
    sentFin = true;
    ws.send(EMPTY, { binary: true }, sent);
  });
  socket.on('error', (error) => debug('socket: %s', error.message));
  socket.on('close', (hadError) => {
    clearInterval(pings);
    if (ws.readyState !== ws.OPEN) return;
    const clean = !hadError && sentFin && gotFin;
    if (clean) ws.close(CLOSE.normal);
    else ws.close(CLOSE.reset, 'reset');
  });

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    heard = true;
    if (!isBinary) return fail(CLOSE.textFrame, 'binary messages only');
    if (gotFin) return fail(CLOSE.protocol, 'a message after the end of the stream');
    if (data.length === 0) {
      gotFin = true;
      socket.end();
      return;
    }
    if (!socket.write(data) && !ws.isPaused) {
      ws.pause();
      socket.once('drain', () => ws.resume());
    }
  });
  ws.on('pong', () => (heard = true));
  ws.on('error', (error) => debug('websocket: %s', error.message));
  ws.on('close', (code: number) => {
    clearInterval(pings);
    // After both FINs the socket closes by itself once it has written what it holds.
    if (code !== CLOSE.normal || !sentFin || !gotFin) abortSocket(socket);
  });

  /** Closes the WebSocket with `code` and resets the socket: the stream is broken. */
  const fail = (code: number, why: string): void => {
    debug('closing with %d: %s', code, why);
    ws.close(code, why);
    abortSocket(socket);
  };

  const pings = setInterval(() => {
    // Silence is a dead peer only on an idle stream: while we hold its messages back
    // (paused: the socket is slow to take them) or it is slow to take ours (bytes queued),
    // its pings and pongs wait in line too. A stalled stream is bounded by TCP's own
    // retransmission timeout instead.
    if (!heard && !ws.isPaused && ws.bufferedAmount === 0) {
      debug('no answer to the last ping within %d ms: giving up', pingIntervalMs);
      ws.terminate();
      return;
    }
    heard = false;
    ws.ping();
  }, pingIntervalMs);
  pings.unref();
  ws.resume();
}

/** Holds back `ws`'s messages until bridge() listens for them. */
export function pauseUntilBridged(ws: WebSocket): void {
  ws.pause();
}
