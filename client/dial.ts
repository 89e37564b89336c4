// Opening a connection with a deadline, the way every client socket is opened: plain TCP,
// or TLS over it for the server's ports.
import net from 'node:net';
import tls from 'node:tls';
import createDebug from 'debug';
import { BurrowError, describe } from '../shared/errors.ts';
import { rememberTcp } from '../shared/pipe.ts';
import { hostPort } from '../shared/protocol.ts';
import { deadlineIn, msLeft } from '../shared/deadline.ts';
import { SOCKET_OPTIONS } from '../shared/socket-options.ts';
import { checkPin, tlsFailure, type ClientTls } from './tls.ts';

const debug = createDebug('burrow:client');

export interface DialOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** The error code if it fails. */
  code: 'unreachable' | 'local-unavailable';
  /** What we are dialing, for messages: `burrow server`, `local service`, ... */
  what: string;
  /** Receives each socket at once, so that its owner can close it even mid-connect. */
  track: (socket: net.Socket) => void;
  /** Speak TLS over the connection (to the server's control and data ports). */
  tls?: ClientTls;
}

/** Connects with `allowHalfOpen` (so FIN is carried through) and Nagle off (we relay bytes
 * that the original sender already batched), then does the TLS handshake if asked; one
 * deadline covers both. Rejects with `code` if it fails or times out, or with a `tls`
 * error that says what to do. */
export async function dial(options: DialOptions): Promise<net.Socket> {
  const { host, port, timeoutMs, track } = options;
  const deadline = deadlineIn(timeoutMs);
  const tcp = net.connect({ ...SOCKET_OPTIONS, host, port });
  track(tcp);
  // A permanent listener: an error between two awaits must never crash the process.
  tcp.on('error', (error) => debug('%s %s:%d: %s', options.what, host, port, error.message));
  await settle(tcp, 'connect', timeoutMs, options);
  if (!options.tls) return tcp;

  // allowHalfOpen is honoured by tls.connect(), though @types/node does not list it.
  const connectOptions: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    socket: tcp,
    allowHalfOpen: true,
    ...options.tls.connect,
  };
  const secure = tls.connect(connectOptions);
  rememberTcp(secure, tcp);
  track(secure);
  secure.once('close', () => tcp.destroy()); // closing a TLS socket leaves its TCP socket open
  secure.on('error', (error: Error) => {
    debug('%s %s:%d: TLS: %s', options.what, host, port, error.message);
    secure.destroy(); // a TLS error after the handshake does not always destroy the socket
  });
  await settle(secure, 'secureConnect', msLeft(deadline), options);
  const pinError = checkPin(secure, options.tls.pin, `the ${options.what} at ${hostPort(host, port)}`);
  if (pinError) {
    secure.destroy();
    throw pinError;
  }
  return secure;
}

/** Resolves when `socket` emits `ready`; rejects (destroying it) on error, close or timeout. */
function settle(
  socket: net.Socket,
  ready: 'connect' | 'secureConnect',
  timeoutMs: number,
  options: DialOptions,
): Promise<void> {
  const where = `${options.what} at ${hostPort(options.host, options.port)}`;
  return new Promise((resolve, reject) => {
    const done = (error?: BurrowError): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off(ready, onReady);
      if (!error) return resolve();
      socket.destroy();
      reject(error);
    };
    const fail = (message: string, cause?: unknown): void =>
      done(new BurrowError(options.code, `cannot connect to ${where}: ${message}`, { cause }));
    const onError = (error: Error): void => {
      const tlsError = options.tls && tlsFailure(error, `cannot connect to ${where}`);
      if (tlsError) done(tlsError);
      else fail(describe(error), error);
    };
    // Closed by its owner before it connected: no 'error' comes, so settle here.
    const onClose = (): void =>
      fail(ready === 'connect' ? 'closed before it connected' : 'closed during the TLS handshake');
    const onReady = (): void => done();
    const timer = setTimeout(() => fail(`no answer within ${options.timeoutMs} ms`), timeoutMs);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once(ready, onReady);
  });
}
