// Speaking the protocol by hand, for tests of what the server answers to raw lines:
// a line reader, raw connections, refusals, hand-made dial-backs, port probes, and small
// server/client starters.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import {
  BurrowError,
  startClient,
  startServer,
  type BurrowClient,
  type BurrowServer,
  type ServerOptions,
} from '../index.ts';
import { connectVisitor, HOST, within } from './helpers.ts';
import { openInbox, type Inbox } from './inbox.ts';

/** Reads `\n`-terminated lines from a socket; `next()` resolves with `null` once the peer
 * has ended (or the socket closed) and no complete line is left. */
export class LineReader {
  private buffer = '';
  private readonly lines: string[] = [];
  private readonly waiters: Array<(line: string | null) => void> = [];
  private ended = false;

  constructor(socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) !== -1) {
        this.push(this.buffer.slice(0, newline));
        this.buffer = this.buffer.slice(newline + 1);
      }
    });
    const onEnd = (): void => {
      this.ended = true;
      for (const waiter of this.waiters.splice(0)) waiter(null);
    };
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  }

  /** The next line (without `\n`), or null if the stream ended first. */
  next(ms = 5_000): Promise<string | null> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(null);
    return within(new Promise<string | null>((resolve) => this.waiters.push(resolve)), ms, 'a line');
  }

  /** The next line, which must exist. */
  async line(ms = 5_000): Promise<string> {
    const line = await this.next(ms);
    assert.notEqual(line, null, 'expected a line, but the connection ended');
    return line ?? '';
  }

  private push(line: string): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(line);
    else this.lines.push(line);
  }
}

export interface Raw {
  socket: net.Socket;
  reader: LineReader;
  /** Resolves when the socket has fully closed. */
  closed: Promise<void>;
  send(text: string): void;
}

/** A plain TCP connection to speak the protocol by hand. */
export async function openRaw(port: number): Promise<Raw> {
  const socket = net.connect({ host: HOST, port });
  socket.on('error', () => {}); // tests assert on lines and closes, not on resets
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const reader = new LineReader(socket);
  await within(once(socket, 'connect'), 5_000, `connect to ${port}`);
  return { socket, reader, closed, send: (text) => void socket.write(text) };
}

/** What a burrow client offers, less `fin-notice`: a raw test client that sends no
 * `FIN <id>` notices still gets its FINs passed on. */
export const RAW_EXTENSIONS = 'ping goaway id-reply refuse';

/** A raw control connection that has said `HELLO <extensions>` and read the server's
 * answer (which must agree to all of them; `fin-notice=<instance>` is answered with the
 * server's own instance). */
export async function openControl(port: number, extensions = RAW_EXTENSIONS): Promise<Raw> {
  const raw = await openRaw(port);
  raw.send(`HELLO ${extensions}\n`.replace(' \n', '\n'));
  const names = (words: string): string =>
    words
      .split(' ')
      .map((word) => word.split('=')[0])
      .join(' ');
  const answer = await raw.reader.line();
  assert.equal(names(answer), names(`HELLO ${extensions}`.trimEnd()), 'the server agrees to every extension offered');
  return raw;
}

/** The reason word of an `ERR <reason> [<detail>]` line (asserting it is one). */
export function errReason(line: string): string {
  const [verb, reason] = line.split(' ');
  assert.equal(verb, 'ERR', `expected an ERR line, got ${JSON.stringify(line)}`);
  return reason ?? '';
}

/** Asserts the server has closed the raw connection: no further line, then close. */
export async function assertClosedByServer(raw: Raw): Promise<void> {
  assert.equal(await raw.reader.next(), null, 'expected the server to close the connection');
  await within(raw.closed, 5_000, 'the socket to close');
}

/** Opens a connection to `port`, sends `bytes` (if any), asserts the exact reason word of
 * the ERR reply and that the server then closes the connection; returns the ERR line. */
export async function assertRefused(
  port: number,
  bytes: Buffer | string | undefined,
  reason: string,
  what = 'the reply',
): Promise<string> {
  const raw = await openRaw(port);
  try {
    if (bytes !== undefined) raw.socket.write(bytes);
    const line = await raw.reader.line();
    assert.equal(errReason(line), reason, `${what}: got ${JSON.stringify(line)}`);
    await assertClosedByServer(raw);
    return line;
  } finally {
    raw.socket.destroy();
  }
}

/** A port nothing listens on right now: listen on 0, note the port, close. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Below the ephemeral ports Linux hands out (32768-60999 by default): a port there is
 * never some socket's local end, so a test that asks for it cannot lose it to one. */
const BELOW_EPHEMERAL = { min: 20_000, max: 32_000 };

/** The first of `count` ports that are free now and lie below the ephemeral ports (one
 * taken from them could meet an outgoing connection's local port: EADDRINUSE). */
async function freeBelowEphemeral(count: number): Promise<number> {
  const { min, max } = BELOW_EPHEMERAL;
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = min + Math.floor(Math.random() * (max - min - count));
    const held: Array<{ close(): Promise<void> }> = [];
    for (let port = start; port < start + count; port++) {
      const hold = await tryHold(port);
      if (!hold) break;
      held.push(hold);
    }
    await Promise.all(held.map((hold) => hold.close()));
    if (held.length === count) return start;
  }
  assert.fail(`no ${count} free ports in a row in ${min}-${max} in 50 attempts`);
}

/** The first port of a free 21-port range, for a server's public ports. */
export const freeRangeStart = (): Promise<number> => freeBelowEphemeral(21);

/** A free port for a server to be asked to hand out as a public port. */
export const freePublicPort = (): Promise<number> => freeBelowEphemeral(1);

/** A plain (non-burrow) listener holding a port. */
export async function holdPort(port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  server.listen(port, HOST);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Tries to listen on `port`; returns the listener, or undefined if it is taken. */
export async function tryHold(port: number): Promise<{ port: number; close(): Promise<void> } | undefined> {
  try {
    return await holdPort(port);
  } catch {
    return undefined;
  }
}

/** One connection attempt: 'refused' if nothing listens, 'open' otherwise. */
export function probe(port: number): Promise<'open' | 'refused'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve(error.code === 'ECONNREFUSED' ? 'refused' : 'open');
    });
  });
}

/** Waits, in at most 50 attempts, until `port` refuses connections. */
export async function untilRefused(port: number): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if ((await within(probe(port), 5_000, `a connect attempt to ${port}`)) === 'refused') return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  assert.fail(`port ${port} still accepts connections after 50 attempts`);
}

export function serverOn(options: ServerOptions = {}): Promise<BurrowServer> {
  return startServer({ controlPort: 0, dataPort: 0, bind: HOST, ...options });
}

/** Runs `body` against a server of its own (with `options`); afterwards, pass or fail,
 * destroys every socket `body` put into `sockets` and closes the server. */
export async function withServer(
  options: ServerOptions,
  body: (server: BurrowServer, sockets: net.Socket[]) => Promise<void>,
): Promise<void> {
  const server = await serverOn(options);
  const sockets: net.Socket[] = [];
  try {
    await body(server, sockets);
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.close();
  }
}

export function clientOf(
  server: BurrowServer,
  tunnels: Array<{ localPort: number; remotePort?: number }>,
): Promise<BurrowClient> {
  return startClient({
    tunnels,
    server: HOST,
    localHost: HOST,
    controlPort: server.controlPort,
    dataPort: server.dataPort,
  });
}

/** Asserts that `promise` rejects with a BurrowError of `code` (and `reason`, if given). */
export async function rejectsWith(promise: Promise<unknown>, code: string, reason?: string): Promise<BurrowError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof BurrowError, `expected a BurrowError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (reason !== undefined) assert.equal(caught.reason, reason, caught.message);
  return caught;
}

/** Sends `EXPOSE`, makes a visitor arrive and returns the id of its CONNECTION line. */
export async function exposeAndVisit(control: Raw): Promise<{ id: string; publicPort: number; visitor: net.Socket }> {
  control.send('EXPOSE 1\n');
  const ok = await control.reader.line();
  const match = /^OK ([0-9]+) [A-Za-z0-9_-]+$/.exec(ok);
  assert.ok(match, `expected OK <port>, got ${ok}`);
  const publicPort = Number(match[1]);
  const visitor = await connectVisitor(publicPort);
  visitor.on('error', () => {});
  const connection = await control.reader.line();
  const fields = connection.split(' ');
  assert.equal(fields.length, 5, connection);
  assert.equal(fields[0], 'CONNECTION');
  assert.equal(fields[2], String(publicPort));
  assert.equal(fields[3], `127.0.0.1:${visitor.localPort}`, 'the server names the visitor by its address and port');
  assert.equal(fields[4], `127.0.0.1:${publicPort}`, 'and the address and port it connected to');
  return { id: fields[1] ?? '', publicPort, visitor };
}

/** Sends `EXPOSE <localPort>` on a raw control connection and returns the public port of
 * the `OK <port>` reply. */
export async function expose(control: Raw, localPort: number): Promise<number> {
  control.send(`EXPOSE ${localPort}\n`);
  const reply = await control.reader.line();
  const match = /^OK ([1-9][0-9]*) [A-Za-z0-9_-]+$/.exec(reply);
  assert.ok(match, `EXPOSE answered ${JSON.stringify(reply)}`);
  return Number(match[1]);
}

/** A CONNECTION line as the server sends it: `CONNECTION <id> <publicPort> <visitor>
 * <destination>`, the destination being the server's address and that same public port. */
export const CONNECTION_LINE =
  /^CONNECTION ([A-Za-z0-9_-]{1,64}) ([0-9]+) (127\.0\.0\.1|\[::1\]):([0-9]+) (?:127\.0\.0\.1|\[::1\]):\2$/;

/** Reads the `CONNECTION <id> <publicPort> <visitor> <destination>` line for a visitor on `publicPort`
 * and returns its id. */
export async function connectionId(control: Raw, publicPort: number): Promise<string> {
  const line = await control.reader.line();
  const match = CONNECTION_LINE.exec(line);
  assert.ok(match, `expected a CONNECTION line, got ${JSON.stringify(line)}`);
  assert.equal(Number(match[2]), publicPort, line);
  return match[1] ?? '';
}

/** Dials the data port by hand for `id` and asserts the `OK`; the connection goes into
 * `sockets` (for the test to destroy) and is returned as an Inbox for the bytes after OK. */
export async function dialBack(dataPort: number, id: string, sockets: net.Socket[]): Promise<Inbox> {
  const data = await openInbox(dataPort);
  sockets.push(data.socket);
  data.socket.write(`ID ${id}\n`);
  assert.equal(await data.line(), 'OK', `dial-back for ${id}`);
  return data;
}
