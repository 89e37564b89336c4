// Reading a socket byte by byte: an Inbox takes a line (such as the `OK` of a handshake)
// and then exactly the bytes that follow it, for tests that check what crosses a tunnel
// to the byte; endingOf tells how a socket ended (FIN or reset) and what it received.
import { once } from 'node:events';
import net from 'node:net';
import { HOST, within } from './helpers.ts';

/** Bytes received as one stream, read as lines and then exactly as many bytes as asked:
 * what an Inbox (a socket) and a WsPeer (a WebSocket's binary messages) share. Every wait
 * is bounded, and fails once the stream is over without what it waited for. */
export class ByteStream {
  private chunks: Buffer[] = [];
  private length = 0;
  private over = false;
  private readonly waiters = new Set<() => void>();

  /** `overWhat` says how the stream ended, in a failed wait's message. */
  constructor(private readonly overWhat: string) {}

  /** Bytes received and not read yet. */
  get unread(): number {
    return this.length;
  }

  get ended(): boolean {
    return this.over;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.changed();
  }

  /** No more bytes will come. */
  end(): void {
    this.over = true;
    this.changed();
  }

  /** Something a wait may be waiting for has changed (its owner counts more than bytes). */
  changed(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** The next line, without its `\n`. */
  async line(ms = 5_000): Promise<string> {
    await this.until(() => this.buffered().includes(0x0a), ms, 'a complete line');
    const buffer = this.buffered();
    const newline = buffer.indexOf(0x0a);
    this.keep(buffer.subarray(newline + 1));
    return buffer.subarray(0, newline).toString('latin1');
  }

  /** Exactly the next `count` bytes. */
  async take(count: number, ms = 10_000): Promise<Buffer> {
    await this.until(() => this.length >= count, ms, `${count} bytes`);
    const buffer = this.buffered();
    this.keep(buffer.subarray(count));
    return buffer.subarray(0, count);
  }

  /** Everything unread once `ready` holds (by default: once the stream is over). */
  async rest(ms = 10_000, ready = (): boolean => this.over, what = 'the end of the stream'): Promise<Buffer> {
    await this.until(ready, ms, what, true);
    const buffer = this.buffered();
    this.keep(Buffer.alloc(0));
    return buffer;
  }

  /** Waits until `ready` holds; fails once the stream is over first, unless `endIsReady`. */
  until(ready: () => boolean, ms: number, what: string, endIsReady = false): Promise<void> {
    if (ready()) return Promise.resolve();
    let check = (): void => {};
    const waiting = new Promise<void>((resolve, reject) => {
      check = (): void => {
        if (ready()) resolve();
        else if (this.over && !endIsReady) {
          const have = JSON.stringify(this.buffered().toString('latin1').slice(0, 80));
          reject(new Error(`${this.overWhat} before ${what} (have ${this.length} bytes: ${have})`));
        }
      };
      this.waiters.add(check);
      check();
    });
    return within(waiting, ms, what).finally(() => this.waiters.delete(check));
  }

  private buffered(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private keep(rest: Buffer): void {
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
  }
}

/** Everything a socket receives, consumable as lines and then as raw bytes, so a test can
 * read `OK\n` and then exactly the bytes that follow it (a LineReader only gives lines). */
export class Inbox {
  /** Resolves when the socket has fully closed. */
  readonly closed: Promise<void>;
  private readonly bytes = new ByteStream('connection ended');

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.bytes.push(chunk));
    socket.on('error', () => {}); // tests assert on bytes and closes, not on resets
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('end', () => this.bytes.end());
    socket.once('close', () => this.bytes.end());
  }

  /** The next line, without its `\n`. */
  line(ms = 5_000): Promise<string> {
    return this.bytes.line(ms);
  }

  /** Exactly the next `count` bytes. */
  take(count: number, ms = 10_000): Promise<Buffer> {
    return this.bytes.take(count, ms);
  }

  /** Everything left once the peer has closed its side. */
  rest(ms = 10_000): Promise<Buffer> {
    return this.bytes.rest(ms);
  }
}

/** A connection to `host`:`port` read through an Inbox: half-open allowed (the test can
 * still send after the peer's FIN), Nagle off (each write leaves as its own packet). */
export async function openInbox(port: number, host = HOST): Promise<Inbox> {
  const socket = net.connect({ host, port, allowHalfOpen: true, noDelay: true });
  const inbox = new Inbox(socket);
  await within(once(socket, 'connect'), 5_000, `connect to ${port}`);
  return inbox;
}

/** How a socket ended: the first error code it saw (if any) and every byte it received. */
export interface Ending {
  code: string | undefined;
  received: Buffer;
}

/** Resolves once the peer has closed `socket`: its FIN ('end', even on a half-open
 * socket) or a reset / close. Attach it before any data can arrive. */
export function endingOf(socket: net.Socket): Promise<Ending> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let code: string | undefined;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      code ??= error.code ?? error.message;
    });
    const done = (): void => resolve({ code, received: Buffer.concat(chunks) });
    socket.once('end', done);
    socket.once('close', done);
  });
}
