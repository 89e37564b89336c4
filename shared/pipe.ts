// Joins two sockets into one byte stream each way: what the tunnel does for every visitor.
import type { Socket } from 'node:net';
import createDebug from 'debug';

const debug = createDebug('burrow:pipe');

/** Bytes that crossed a joined pair, counted at the first socket: pass the outer socket
 * (visitor, local service) as `a`, since every byte read from it was meant for the other
 * side, while the data socket also carried the handshake. */
export interface PipeTotals {
  /** Bytes read from `a` (and so sent towards `b`). */
  fromA: number;
  /** Bytes written to `a` (read from `b`). */
  toA: number;
  /** One side failed or closed early, so the other was reset rather than ended. */
  aborted: boolean;
}

/** Moments of a joined pair worth reporting (traces, logs), and the one decision the
 * owner of a pair may take: whether a FIN may be passed on. */
export interface PipeObserver {
  /** `from` sent its FIN: it has no more to say; the other direction goes on. Called once
   * the FIN has been passed on. */
  onHalfClose?(from: 'a' | 'b'): void;
  /** Called when `from` has sent a FIN that is not a disguised reset, before it is passed
   * on: `proceed(true)` passes it on, `proceed(false)` aborts the pair instead. Lets the
   * owner check that the program at the other end of `from` is still alive, so that a
   * FIN its operating system sent for it as it died is not taken for a complete stream.
   * Without it, a FIN is passed on at once. */
  confirmEnd?(from: 'a' | 'b', proceed: (ok: boolean) => void): void;
}

/** What an empty write sends: nothing, but the kernel still fails it on a reset socket. */
const PROBE = Buffer.alloc(0);

/**
 * Pipes `a` and `b` into each other until both are closed, and resolves with the totals.
 * - Backpressure: `pipe()` pauses the reader while the writer's buffer is full, so a slow
 *   reader never makes us buffer more than one high-water mark per direction.
 * - Half-close: both sockets must be created with `allowHalfOpen: true`; a FIN from one
 *   side becomes `end()` on the other after everything before it is flushed, while the
 *   opposite direction keeps flowing.
 * - Abort: if one side closes before both of its directions completed (an error, a reset,
 *   a destroy), the other side is reset, so a truncated stream never looks like a clean end.
 */
export function joinSockets(a: Socket, b: Socket, observer: PipeObserver = {}): Promise<PipeTotals> {
  let aborted = false;
  const totals = (): PipeTotals => ({ fromA: a.bytesRead, toA: a.bytesWritten, aborted });
  if (a.destroyed || b.destroyed) {
    // One side is already gone (its 'close' may have fired): nothing can flow.
    abortSocket(a);
    abortSocket(b);
    aborted = true;
    return Promise.resolve(totals());
  }
  return new Promise((resolve) => {
    let open = 2;
    const abortBoth = (): void => {
      aborted = true;
      abortSocket(a);
      abortSocket(b);
    };
    const onClose = (self: Socket, other: Socket) => (hadError: boolean) => {
      if (hadError || !self.readableEnded || !self.writableFinished) {
        aborted = true;
        abortSocket(other);
      }
      if (--open === 0) resolve(totals());
    };
    /** `self` ended its stream: pass the FIN on once it is known to be a real one. */
    const onEnd = (self: Socket, other: Socket, from: 'a' | 'b') => () => {
      const passOn = (): void => {
        if (other.destroyed) return;
        other.end();
        observer.onHalfClose?.(from);
      };
      const confirmed = (): void => {
        if (!observer.confirmEnd) return passOn();
        observer.confirmEnd(from, (ok) => (ok ? passOn() : abortBoth()));
      };
      // libuv reports a reset that arrives while it reads as a plain end of stream, and
      // the error is then never read. An empty write makes the kernel tell: it fails on a
      // reset connection (the failure destroys `self`, and onClose resets `other`) and
      // succeeds on one that only half-closed. Once we have sent our own FIN there is
      // nothing to write with: that case stays undetectable (docs/PROTOCOL.md).
      if (self.writableEnded || self.destroyed) return confirmed();
      self.write(PROBE, (error) => {
        if (!error) confirmed();
      });
    };
    a.once('end', onEnd(a, b, 'a'));
    b.once('end', onEnd(b, a, 'b'));
    a.once('close', onClose(a, b));
    b.once('close', onClose(b, a));
    a.on('error', (error) => debug('socket a: %s', error.message));
    b.on('error', (error) => debug('socket b: %s', error.message));
    // end: false: a FIN is passed on by onEnd, after it has been checked.
    a.pipe(b, { end: false });
    b.pipe(a, { end: false });
  });
}

/** The TCP socket under each TLS socket: an abort must reset the TCP connection, since a
 * TLS socket that just closes looks to its peer like a clean end of stream. */
const tcpUnder = new WeakMap<Socket, Socket>();

/** Records that `secure` runs over `tcp`, for abortSocket(). */
export function rememberTcp(secure: Socket, tcp: Socket): void {
  tcpUnder.set(secure, tcp);
}

/** Closes a socket with a reset (RST) rather than a FIN, so its peer sees an abort. */
export function abortSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded) {
    // We already sent our FIN (or the stream is complete): libuv refuses to reset a socket
    // after shutdown, and resetAndDestroy() would then never emit 'close'. A plain destroy
    // is all that is left.
    socket.destroy();
    return;
  }
  try {
    // Under TLS, reset the TCP connection: the TLS socket closes with it.
    (tcpUnder.get(socket) ?? socket).resetAndDestroy();
  } catch (error) {
    // resetAndDestroy() throws for sockets without a TCP handle (not yet connected).
    debug('reset failed (%s); destroying instead', (error as Error).message);
    socket.destroy();
  }
}
