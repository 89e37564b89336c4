// Opening a TCP connection with a deadline, the way every client socket is opened.
import net from 'node:net';
import createDebug from 'debug';
import { BurrowError, describe } from '../shared/errors.ts';
import { KEEPALIVE_DELAY_MS } from '../shared/protocol.ts';

const debug = createDebug('burrow:client');

export interface DialOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** The error code if it fails. */
  code: 'unreachable' | 'local-unavailable';
  /** What we are dialing, for messages: `burrow server`, `local service`, ... */
  what: string;
  /** Receives the socket at once, so that its owner can close it even mid-connect. */
  track(socket: net.Socket): void;
}

/** Connects with `allowHalfOpen` (so FIN is carried through) and Nagle off (we relay bytes
 * that the original sender already batched). Rejects with `code` if it fails or times out. */
export function dial({ host, port, timeoutMs, code, what, track }: DialOptions): Promise<net.Socket> {
  const socket = net.connect({ host, port, allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_DELAY_MS });
  track(socket);
  // A permanent listener: an error between two awaits must never crash the process.
  socket.on('error', (error) => debug('%s %s:%d: %s', what, host, port, error.message));
  return new Promise((resolve, reject) => {
    const fail = (message: string, cause?: unknown): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new BurrowError(code, `cannot connect to ${what} at ${host}:${port}: ${message}`, { cause }));
    };
    const onError = (error: Error): void => fail(describe(error), error);
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    // Closed by its owner before it connected: no 'error' comes, so settle here.
    const onClose = (): void => fail('closed before it connected');
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve(socket);
    });
  });
}
