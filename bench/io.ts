// Socket primitives shared by the load generator and the local services. Every wait
// rejects when its socket closes, and every socket carries a deadline that destroys it,
// so nothing here can hang: a stuck measurement fails instead.
import net from 'node:net';

export const HOST = '127.0.0.1';

/** Counts (and optionally keeps) what a socket receives, and lets one caller at a time
 * wait for a byte count, the peer's FIN, or the close. */
export class Reader {
  bytes = 0;
  ended = false;
  closed = false;
  error: Error | undefined;
  readonly chunks: Buffer[] = [];
  /** Resolves once connected; rejects if the socket closes first. */
  readonly connected: Promise<void>;
  private wake: (() => void) | undefined;
  private readonly endedPromise: Promise<void>;
  private readonly closedPromise: Promise<void>;

  constructor(
    readonly socket: net.Socket,
    what: string,
    private readonly keep = false,
  ) {
    this.closedPromise = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.connected = new Promise<void>((resolve, reject) => {
      const onClose = (): void => reject(this.failure(`${what}: connect to ${socket.remotePort ?? 'the port'} failed`));
      socket.once('close', onClose);
      socket.once('connect', () => {
        socket.off('close', onClose);
        resolve();
      });
    });
    this.connected.catch(() => undefined); // only a caller that awaits it cares
    this.endedPromise = new Promise<void>((resolve, reject) => {
      socket.once('end', () => resolve());
      socket.once('close', () => reject(this.failure(`closed without a FIN after ${this.bytes} bytes`)));
    });
    this.endedPromise.catch(() => undefined); // only a caller of end() cares
    socket.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      if (this.keep) this.chunks.push(chunk);
      this.poke();
    });
    socket.on('end', () => {
      this.ended = true;
      this.poke();
    });
    socket.on('error', (error) => {
      this.error = error;
    });
    socket.on('close', () => {
      this.closed = true;
      this.poke();
    });
  }

  /** Resolves once `n` bytes in total have arrived; rejects if the stream ends first. */
  async atLeast(n: number): Promise<void> {
    // Each pass consumes one event that delivered at least one byte (or ended the stream),
    // so n + 2 passes always suffice.
    for (let pass = 0; this.bytes < n; pass++) {
      if (this.ended || this.closed || pass > n + 2) throw this.failure(`expected ${n} bytes, got ${this.bytes}`);
      await this.next();
    }
  }

  /** Resolves when the peer has half-closed (FIN); rejects on a close without one. */
  end(): Promise<void> {
    return this.endedPromise;
  }

  /** Resolves when the socket has closed, however it closed. */
  close(): Promise<void> {
    return this.closedPromise;
  }

  private next(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  private poke(): void {
    const wake = this.wake;
    if (wake === undefined) return;
    this.wake = undefined;
    wake();
  }

  private failure(what: string): Error {
    return new Error(this.error ? `${what}: ${this.error.message}` : what);
  }
}

/** Destroys `socket` (with an error naming `what`) if it is still open after `ms`. */
export function guard(socket: net.Socket, ms: number, what: string): void {
  const timer = setTimeout(() => socket.destroy(new Error(`${what}: not finished within ${ms} ms`)), ms);
  socket.once('close', () => clearTimeout(timer));
}

/** Every connection opened by open() that has not closed yet. */
const live = new Set<net.Socket>();

/** Destroys every connection open() opened that is still open (cleanup after a failure). */
export function destroyOpenConnections(): void {
  for (const socket of live) socket.destroy();
}

/** Starts a TCP connection to 127.0.0.1:`port` with Nagle off, destroyed if still open
 * after `lifeMs`; returns its Reader at once (attached before any byte can arrive). */
export function open(port: number, lifeMs: number, what: string, keep = false): Reader {
  const socket = net.connect({ host: HOST, port, noDelay: true });
  live.add(socket);
  socket.once('close', () => live.delete(socket));
  guard(socket, lifeMs, what);
  return new Reader(socket, what, keep);
}

/** open(), resolved once connected. */
export async function connect(port: number, lifeMs: number, what: string, keep = false): Promise<Reader> {
  const reader = open(port, lifeMs, what, keep);
  await reader.connected;
  return reader;
}

/** Writes `total` bytes taken from `chunk` (repeated), honouring backpressure. */
export async function writeBytes(socket: net.Socket, total: number, chunk: Buffer): Promise<void> {
  let left = total;
  const writes = Math.ceil(total / chunk.length);
  for (let i = 0; i < writes && left > 0; i++) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!socket.write(piece)) await drained(socket);
  }
}

/** Resolves on 'drain'; rejects if the socket closes (or is already gone) instead. */
function drained(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.reject(new Error('socket closed while writing'));
  return new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      socket.off('drain', onDrain);
      reject(new Error('socket closed while writing'));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/** Resolves with `promise`, or rejects after `ms` (calling `onTimeout` first). */
export async function within<T>(promise: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`${what}: not done within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Nanoseconds since an arbitrary origin, as a number (exact below 2^53 ns ≈ 104 days). */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}
