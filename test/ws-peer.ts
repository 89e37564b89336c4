// A hand-driven WebSocket peer, for the tests of the WebSocket transport: its binary
// messages are one byte stream (read as lines or bytes), an empty binary message is a FIN,
// and it records what arrived in order, pings, and how the WebSocket closed.
import type http from 'node:http';
import { WebSocket, type ClientOptions } from 'ws';
import { within } from './helpers.ts';
import { ByteStream } from './inbox.ts';

export interface Closed {
  code: number;
  reason: string;
}

export class WsPeer {
  /** Resolves when the WebSocket has closed, with the code and reason it closed with. */
  readonly closed: Promise<Closed>;
  /** What arrived, in order: 'bytes' for non-empty binary messages (consecutive ones
   * merged), 'fin' for an empty one, 'text'. */
  readonly events: ('bytes' | 'fin' | 'text')[] = [];
  /** Messages that were text (burrow never sends one). */
  readonly texts: string[] = [];
  pings = 0;
  private readonly bytes = new ByteStream('the WebSocket closed');

  /** A peer of a new WebSocket to `url` (compression off, as burrow's). */
  static connect(url: string, options: ClientOptions = {}): WsPeer {
    return new WsPeer(new WebSocket(url, { perMessageDeflate: false, ...options }));
  }

  constructor(readonly ws: WebSocket) {
    ws.on('error', () => {}); // tests assert on messages and closes
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const event = !isBinary ? 'text' : data.length === 0 ? 'fin' : 'bytes';
      if (event !== 'bytes' || this.events.at(-1) !== 'bytes') this.events.push(event);
      if (event === 'text') this.texts.push(data.toString());
      if (event === 'bytes') this.bytes.push(data);
      else this.bytes.changed();
    });
    ws.on('ping', () => {
      this.pings++;
      this.bytes.changed();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code: number, reason: Buffer) => {
        this.bytes.end();
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  /** Resolves once the WebSocket is open; rejects with the answer if it is not upgraded. */
  opened(ms = 5_000): Promise<void> {
    return within(
      new Promise<void>((resolve, reject) => {
        this.ws.once('open', () => resolve());
        this.ws.once('unexpected-response', (_req, res: http.IncomingMessage) => {
          res.resume();
          reject(new Error(`not upgraded: HTTP ${res.statusCode}`));
        });
        this.ws.once('error', reject);
      }),
      ms,
      'the WebSocket to open',
    );
  }

  /** Bytes received and not read yet. */
  unread(): number {
    return this.bytes.unread;
  }

  /** Sends `data` as one binary message (an empty one is a FIN). */
  send(data: Buffer | string): void {
    this.ws.send(Buffer.from(data), { binary: true });
  }

  /** The next `\n`-terminated line of the byte stream, without its `\n`. */
  line(ms = 5_000): Promise<string> {
    return this.bytes.line(ms);
  }

  /** Exactly the next `count` bytes of the stream. */
  take(count: number, ms = 10_000): Promise<Buffer> {
    return this.bytes.take(count, ms);
  }

  /** Every byte up to the FIN (the first empty binary message). */
  async untilFin(ms = 10_000): Promise<Buffer> {
    await this.bytes.until(() => this.events.includes('fin'), ms, 'an empty binary message (FIN)');
    return this.bytes.rest(ms, () => true);
  }

  /** Resolves once `count` pings have arrived in all. */
  untilPings(count: number, ms = 10_000): Promise<void> {
    return this.bytes.until(() => this.pings >= count, ms, `${count} pings`);
  }
}
