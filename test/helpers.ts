// Shared test fixtures: a relay + client + local service on 127.0.0.1 with ephemeral
// ports, visitors, byte-exact comparison, and event waiting with deadlines (tests never
// sleep).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { EventEmitter } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { startClient, type BurrowClient, type ClientOptions } from '../client/client.ts';
import { startServer, type BurrowServer, type ServerOptions } from '../server/server.ts';

export const HOST = '127.0.0.1';

/** Rejects if `promise` does not settle within `ms`, naming `what`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Waits for one `event` from `emitter`, at most `ms`. */
export function nextEvent<T extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
  ms = 5_000,
): Promise<T> {
  return within(once(emitter, event) as Promise<T>, ms, `'${event}'`);
}

/** Polls `read` until it equals `expected` (deeply), bounded in time and in turns of the
 * event loop (sockets close and timers clear a few turns after the event we awaited);
 * then asserts the last value read equals `expected`. */
export async function untilEqual<T>(read: () => T, expected: T, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last = read();
  for (let turn = 0; turn < 10_000_000 && !isDeepStrictEqual(last, expected) && Date.now() < deadline; turn++) {
    await nextTurn();
    last = read();
  }
  assert.deepEqual(last, expected, what);
}

/** A TCP server on 127.0.0.1:0 whose sockets are tracked and destroyed by close(). */
export async function listenLocal(
  onSocket: (socket: net.Socket) => void,
): Promise<{ port: number; server: net.Server; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // tests assert on what they read, not on resets
    onSocket(socket);
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    server,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A local service that reads until the visitor half-closes, then answers
 * `reply(request)` and closes its side. */
export function replyOnEnd(reply: (request: Buffer) => Buffer | string) {
  return (socket: net.Socket): void => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => socket.end(reply(Buffer.concat(chunks))));
  };
}

/** An echo service: every byte back, half-close carried through. */
export function echo(socket: net.Socket): void {
  socket.pipe(socket);
}

/** Connects a visitor to a port on 127.0.0.1. */
export async function connectVisitor(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: HOST, port, allowHalfOpen: true });
  await within(once(socket, 'connect'), 5_000, `connect to ${port}`);
  return socket;
}

/** Everything the socket sends until it ends or closes. Resolves even on reset (with
 * what arrived), so callers compare bytes. */
export function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Sends `data` from a visitor, half-closes, and returns everything it got back. */
export async function request(port: number, data: Buffer | string, ms = 10_000): Promise<Buffer> {
  const socket = await connectVisitor(port);
  const response = readAll(socket);
  socket.end(data);
  try {
    return await within(response, ms, `a response on port ${port}`);
  } finally {
    socket.destroy();
  }
}

export interface Rig {
  server: BurrowServer;
  client: BurrowClient;
  /** Public port of the first tunnel. */
  publicPort: number;
  local: { port: number; close(): Promise<void> };
  close(): Promise<void>;
}

/** Server, client and one local service on loopback, wired together. */
export async function startRig(
  onLocalSocket: (socket: net.Socket) => void,
  options: { server?: ServerOptions; client?: Partial<ClientOptions> } = {},
): Promise<Rig> {
  const local = await listenLocal(onLocalSocket);
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, ...options.server });
  let client: BurrowClient;
  try {
    client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: HOST,
      localHost: HOST,
      controlPort: server.controlPort,
      dataPort: server.dataPort,
      ...options.client,
    });
  } catch (error) {
    await server.close();
    await local.close();
    throw error;
  }
  const publicPort = client.tunnels[0]?.publicPort ?? 0;
  // The client's start-up check of the data port is a connection the server drops a moment
  // later: tests that compare the server's stats() start from after that.
  const perClient = options.server?.tls ? 2 : 1; // a TLS connection is two sockets
  await untilEqual(() => server.stats().sockets, perClient, 'the start-up check to be over');
  return {
    server,
    client,
    publicPort,
    local,
    close: async () => {
      await client.close();
      await server.close();
      await local.close();
    },
  };
}

/** Deterministic pseudo-random bytes (xorshift), so a failure reproduces. */
export function pseudoRandomBytes(length: number, seed = 1): Buffer {
  const buffer = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buffer[i] = x & 0xff;
  }
  return buffer;
}

/** Offset of the first byte where `a` and `b` differ (the shorter length if one is a
 * prefix of the other), or -1 if they are equal. */
function firstDifference(a: Buffer, b: Buffer): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : length;
}

/** Byte-exact comparison that reports sizes and the first differing offset, not a 10 MB diff. */
export function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.equals(expected)) return;
  const at = firstDifference(actual, expected);
  assert.fail(
    `${what}: got ${actual.length} bytes, expected ${expected.length}; first difference at offset ${at} ` +
      `(got ${actual[at] ?? 'EOF'}, expected ${expected[at] ?? 'EOF'})`,
  );
}
