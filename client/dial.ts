// Opening a connection, the way every client socket is opened: plain TCP, or TLS over it
// for the server's ports; one deadline covers both, and the client's signal cuts it.
import net from 'node:net';
import tls from 'node:tls';
import createDebug from 'debug';
import { BurrowError, describe } from '../shared/errors.ts';
import { connectWithOwnReads } from '../shared/own-reads.ts';
import { rememberTcp } from '../shared/pipe.ts';
import { hostPort } from '../shared/protocol.ts';
import { connectOptions } from '../shared/socket-options.ts';
import { deadlineIn, msLeft } from '../shared/deadline.ts';
import { CLOSED, TIMED_OUT, waitFor } from './cancel.ts';
import { checkPin, tlsFailure, type ClientTls } from './tls.ts';
import type { WebSocketDialer } from './websocket.ts';

const debug = createDebug('burrow:client');

/** What we dial, as messages name it. */
export type Target = 'burrow server' | 'data port' | "server's data port" | 'local service';

export interface DialOptions {
  timeoutMs: number;
  /** The client's: aborted when it stops, and the dial fails with its reason. */
  signal: AbortSignal;
  /** Receives each socket at once, so that its owner can close it even mid-connect. */
  track: (socket: net.Socket) => void;
  /** Speak TLS over the connection (to the server's control and data ports). */
  tls?: ClientTls | undefined;
  /** Reach the server's control and data ports over WebSocket instead (host and port are
   * then the relay URL's). */
  webSocket?: WebSocketDialer | undefined;
}

/** Connects with the shared socket options (half-open, no Nagle, keep-alive), then does
 * the TLS handshake if asked. Rejects with `local-unavailable` (the local service) or
 * `unreachable` (the server) if it fails or times out, with a `tls` error that says what
 * to do, or with the signal's reason. */
export async function dial(what: Target, host: string, port: number, options: DialOptions): Promise<net.Socket> {
  const { timeoutMs, track } = options;
  options.signal.throwIfAborted();
  if (options.webSocket && what !== 'local service')
    return options.webSocket.dial(what === 'burrow server' ? 'control' : 'data', options);
  const where = `${what} at ${hostPort(host, port)}`;
  const code = what === 'local service' ? 'local-unavailable' : 'unreachable';
  const failure = (message: string, cause?: unknown): BurrowError =>
    new BurrowError(code, `cannot connect to ${where}: ${message}`, { cause });
  const deadline = deadlineIn(timeoutMs);

  /** Waits for `ready`; on an error, the deadline or the client's stop, destroys `socket`. */
  const settle = async (socket: net.Socket, ready: 'connect' | 'secureConnect'): Promise<void> => {
    try {
      await waitFor(socket, ready, options.signal, msLeft(deadline));
    } catch (error) {
      socket.destroy();
      if (error === TIMED_OUT) throw failure(`no answer within ${timeoutMs} ms`);
      if (error === CLOSED)
        throw failure(ready === 'connect' ? 'closed before it connected' : 'closed during the TLS handshake');
      throw (options.tls && tlsFailure(error, `cannot connect to ${where}`)) || failure(describe(error), error);
    }
  };

  // Plain TCP reads into a buffer of our own (own-reads.ts); under TLS, TLS reads it.
  const target = connectOptions(host, port);
  const tcp = options.tls ? net.connect(target) : connectWithOwnReads(target);
  track(tcp);
  // A permanent listener: an error between two awaits must never crash the process.
  tcp.on('error', (error) => debug('%s: %s', where, error.message));
  await settle(tcp, 'connect');
  if (!options.tls) return tcp;

  // allowHalfOpen is honoured by tls.connect(), though @types/node does not list it.
  const secureOptions = { socket: tcp, allowHalfOpen: true, ...options.tls.connect };
  const secure = tls.connect(secureOptions);
  rememberTcp(secure, tcp);
  track(secure);
  secure.once('close', () => tcp.destroy()); // closing a TLS socket leaves its TCP socket open
  secure.on('error', (error: Error) => {
    debug('%s: TLS: %s', where, error.message);
    secure.destroy(); // a TLS error after the handshake does not always destroy the socket
  });
  await settle(secure, 'secureConnect');
  const pinError = checkPin(secure, options.tls.pin, `the ${where}`);
  if (pinError) {
    secure.destroy();
    throw pinError;
  }
  return secure;
}
