// A data connection's first line (the `ID`, and its answer), read without losing a byte
// of what follows; then the join of two sockets into one byte stream each way, which is
// what the tunnel does for every visitor.
import type { Socket } from 'node:net';
import createDebug from 'debug';
import { BurrowError } from './errors.ts';
import { ownReadsOf } from './own-reads.ts';

const debug = createDebug('burrow:pipe');

// Reads the first line of a socket without losing a byte of what follows it.
// split2 cannot do this (it keeps the bytes after the newline in its own buffer, where
// unpipe() drops them), so we read in paused mode and unshift() the remainder: whoever
// pipes the socket next sees exactly the bytes the peer sent after the line.
export interface FirstLineOptions {
  /** Longest line accepted, in bytes, without the newline (a `\r` before it is allowed). */
  maxLength: number;
  /** Deadline for the whole line, in milliseconds. */
  timeoutMs: number;
  /** A first byte no line can begin with, refused at once (with a `tls` BurrowError) rather
   * than read on in search of a newline: a TLS handshake's 0x16, on a plain server. */
  refuseFirstByte?: number;
}

/** Resolves with the line (without `\n`, possibly ending in `\r`), decoded byte for byte. */
export function readFirstLine(
  socket: Socket,
  { maxLength, timeoutMs, refuseFirstByte }: FirstLineOptions,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;

    const finish = (error: BurrowError | undefined, line?: string): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if (error) reject(error);
      else resolve(line ?? '');
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        if (length === 0 && chunks.length === 0 && chunk[0] === refuseFirstByte)
          return finish(new BurrowError('tls', 'the peer began a TLS handshake'));
        const newline = chunk.indexOf(0x0a);
        if (newline === -1) {
          chunks.push(chunk);
          length += chunk.length;
          if (length > maxLength + 1) return finish(new BurrowError('line-too-long', `line over ${maxLength} bytes`));
          continue;
        }
        if (length + newline > maxLength + 1)
          return finish(new BurrowError('line-too-long', `line over ${maxLength} bytes`));
        chunks.push(chunk.subarray(0, newline));
        const rest = chunk.subarray(newline + 1);
        if (rest.length > 0) socket.unshift(rest);
        return finish(undefined, Buffer.concat(chunks).toString('latin1'));
      }
    };
    const onEnd = (): void => finish(new BurrowError('closed', 'connection closed before a complete line'));
    const onError = (error: Error): void =>
      finish(new BurrowError('closed', `connection failed: ${error.message}`, { cause: error }));
    const timer = setTimeout(
      () => finish(new BurrowError('timeout', `no complete line within ${timeoutMs} ms`)),
      timeoutMs,
    );

    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}

/** Bytes that crossed a joined pair, counted at the first socket: pass the outer socket
 * (visitor, local service) as `a`, since every byte read from it was meant for the other
 * side, while the data socket also carried the handshake. */
export interface PipeTotals {
  /** Bytes read from `a` (and so sent towards `b`). */
  fromA: number;
  /** Bytes read from `b` that the kernel took for `a` (see bytesAccepted()): after a
   * reset, not those that were still queued and so never left. */
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
 * - Backpressure: pump() pauses the reader while the writer's buffer is full, so a slow
 *   reader never makes us buffer more than one high-water mark per direction.
 * - Half-close: both sockets must be created with `allowHalfOpen: true`; a FIN from one
 *   side becomes `end()` on the other after everything before it is flushed, while the
 *   opposite direction keeps flowing.
 * - Abort: if one side closes before both of its directions completed (an error, a reset,
 *   a destroy), the other side is reset, so a truncated stream never looks like a clean end.
 */
export function joinSockets(a: Socket, b: Socket, observer: PipeObserver = {}): Promise<PipeTotals> {
  let aborted = false;
  const totals = (): PipeTotals => ({ fromA: a.bytesRead, toA: bytesAccepted(a), aborted });
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
      // A reset's close resets `other` (onClose).
      whenRealEnd(self, confirmed);
    };
    a.once('end', onEnd(a, b, 'a'));
    b.once('end', onEnd(b, a, 'b'));
    a.once('close', onClose(a, b));
    b.once('close', onClose(b, a));
    a.on('error', (error) => debug('socket a: %s', error.message));
    b.on('error', (error) => debug('socket b: %s', error.message));
    // A FIN is passed on by onEnd, after it has been checked, not by pump().
    pump(a, b);
    pump(b, a);
  });
}

/** After `socket`'s 'end': calls `then` if it was a FIN, or destroys the socket if it was
 * a reset in disguise (its 'close' then says so). libuv reports a reset that arrives while
 * it reads as a plain end of stream, and the error is then never read. An empty write
 * makes the kernel tell: it fails on a reset connection and succeeds on one that only
 * half-closed. Once we have sent our own FIN there is nothing to write with: that case
 * stays undetectable (docs/PROTOCOL.md), and counts as a FIN. */
export function whenRealEnd(socket: Socket, then: () => void): void {
  if (socket.writableEnded || socket.destroyed) return then();
  // Under TLS the probe goes to the TCP socket beneath: a TLS socket does not pass an
  // empty write down as a write (it reports success whatever the connection's state),
  // while an empty write on the TCP socket sends nothing, so the TLS stream on it is left
  // as it was.
  (tcpUnder.get(socket) ?? socket).write(PROBE, (error) => {
    if (!error) return then();
    // The failed write destroyed the socket it went to; under TLS that is the TCP socket,
    // and the TLS socket must close too.
    socket.destroy();
  });
}

/** Per socket: bytes joinSockets wrote to it whose write completed while it was open. */
const accepted = new WeakMap<Socket, { bytes: number }>();

/**
 * Bytes joinSockets has written to `socket` that its kernel took: those of writes that
 * completed while the socket was open. Never more than really left: `bytesWritten` also
 * counts what is still queued in Node and libuv, which a reset throws away, and after a
 * destroy Node reports the writes it cancelled as done. After an abort it may be short by
 * the part of the one write in progress that the kernel had taken already (or by a write
 * that had completed when the abort came but was not reported yet); when both sides end
 * cleanly it is exact.
 */
export function bytesAccepted(socket: Socket): number {
  return accepted.get(socket)?.bytes ?? 0;
}

/** Writes everything `from` reads to `to`, reading only as fast as `to` takes it (what
 * pipe() does, and no more: no end, no unpipe, since joinSockets decides both); counts what
 * `to` accepted. */
function pump(from: Socket, to: Socket): void {
  // One counter per socket, looked up once: not a map lookup for every write.
  const count = { bytes: 0 };
  accepted.set(to, count);
  // One callback for every write, not a closure each: Node batches the callbacks of
  // consecutive writes that share one, which keeps a busy pair off the nextTick queue.
  // Writes complete in order, so each call is for the oldest size still listed.
  const sizes: number[] = [];
  const written = (error?: Error | null): void => {
    const size = sizes.shift() ?? 0;
    if (!error && !to.destroyed) count.bytes += size;
  };
  /** Writes a chunk on; false when `to`'s buffer is full. */
  const forward = (chunk: Buffer): boolean => {
    if (to.destroyed) return true; // the pair is being aborted (onClose)
    sizes.push(chunk.length);
    return to.write(chunk, written);
  };
  to.on('drain', () => from.resume());
  const reads = ownReadsOf(from);
  if (!reads) {
    from.on('data', (chunk: Buffer) => forward(chunk) || from.pause());
    // It may have been paused (while its first line was read): start it, as pipe() would.
    from.resume();
    return;
  }
  // Read in place. `to` is a socket (TCP, or TLS over it): a write it did not finish at
  // once still holds the chunk, so the next read must not overwrite it.
  reads.setReader((chunk) => {
    const more = forward(chunk);
    if (to.writableLength > 0) reads.retain();
    return more;
  });
  // What the stream holds (read with the first line) goes first: the reader's first
  // chunk comes from a later read.
  let more = true;
  for (let held = from.read() as Buffer | null; held !== null; held = from.read() as Buffer | null)
    more = forward(held) && more;
  if (more) from.resume(); // (else at 'drain')
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
  if (socket.writableEnded && socket.writableLength === 0) {
    // We sent our FIN, or will send it right after bytes the kernel already holds: that
    // direction is complete. libuv refuses to reset a socket after shutdown, and
    // resetAndDestroy() would then never emit 'close'. A plain destroy is all that is left.
    // With bytes still queued, Node has not shut the socket down yet (it does so once they
    // are written): it must be reset, or the peer would get a FIN after a truncated stream.
    socket.destroy();
    return;
  }
  const tcp = tcpUnder.get(socket);
  if (tcp?.destroyed) {
    // Its TCP connection is gone already: the TLS socket only has to follow.
    socket.destroy();
    return;
  }
  try {
    // Under TLS, reset the TCP connection: the TLS socket closes with it.
    (tcp ?? socket).resetAndDestroy();
  } catch (error) {
    // resetAndDestroy() throws for sockets without a TCP handle (not yet connected).
    debug('reset failed (%s); destroying instead', (error as Error).message);
    socket.destroy();
  }
}
