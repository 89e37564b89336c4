// The door of the control and data ports: every connection passes here before it speaks
// the protocol. A TLS server wraps it in TLS and turns away one that begins in plain
// text; a plain server turns away one that begins a TLS handshake. Either refusal is one
// plain-text ERR line, which a person with `nc` and our own client can both read.
import { msLeft, type Deadline } from '../shared/deadline.ts';
import type net from 'node:net';
import createDebug from 'debug';
import { closeWithLine } from '../shared/control-lines.ts';
import { rememberTcp } from '../shared/pipe.ts';
import { formatAddress, formatErr } from '../shared/protocol.ts';
import type { Limits } from './limits.ts';
import type { ServerObserver } from './observer.ts';
import type { ServerTls } from './tls-server.ts';

/** What the door uses of the server. */
export interface DoorParts {
  /** TLS for the control and data ports; undefined for plain TCP. */
  readonly tls: ServerTls | undefined;
  readonly observer: ServerObserver;
  readonly limits: Pick<Limits, 'handshakeTimeoutMs'>;
  /** The server owns the socket from now on (a TLS socket too). */
  track(socket: net.Socket, kind: 'control' | 'data'): void;
}

const debug = createDebug('burrow:server');

/** Every TLS connection begins with a handshake record; no protocol line can (it is not
 * printable ASCII). */
export const TLS_HANDSHAKE_RECORD = 0x16;

/** Resolves with the socket to speak the protocol on (`socket` itself, or TLS over it), or
 * undefined if the connection was turned away or went away. `deadline` is the connection's
 * handshake deadline, counted from its accept: the first byte, the TLS handshake and then
 * the first line (or authentication) must all be done by then. `label` names the
 * connection in traces; it is asked only once the connection has said something, so one
 * that closes without a byte (a client checking that the port answers) uses no number. */
export async function admit(
  socket: net.Socket,
  parts: DoorParts,
  label: () => string,
  deadline: Deadline,
  kind: 'control' | 'data',
): Promise<net.Socket | undefined> {
  // A plain server's data connection goes straight to its ID line: readFirstLine (data-port.ts)
  // refuses a TLS handshake by its first byte, without a wait of its own for that byte.
  if (!parts.tls && kind === 'data') return socket;
  const peer = peerOf(socket); // now: a failed TLS handshake can take the address with it
  const first = await firstByte(socket, msLeft(deadline));
  if (first === 'closed') {
    socket.destroy(); // it ended (or failed) before saying anything: it gets no label
    return undefined;
  }
  const conn = label();
  if (first === 'timeout') {
    const line = formatErr('timeout', `nothing received within ${parts.limits.handshakeTimeoutMs} ms`);
    return turnAway(socket, parts, conn, line);
  }
  const speaksTls = first === TLS_HANDSHAKE_RECORD;
  const { tls, observer } = parts;
  if (!tls) {
    if (!speaksTls) return socket;
    observer.refused(conn, peer, 'tls-not-enabled', 'the client began a TLS handshake; this server does not speak TLS');
    // The TLS client cannot read this line, but reports "wrong version number": plain text.
    return turnAway(socket, parts, conn, formatErr('tls-not-enabled', 'this server does not speak TLS'));
  }
  if (!speaksTls) {
    observer.refused(conn, peer, 'tls-required', 'the client spoke plain text; this server speaks TLS only');
    return turnAway(socket, parts, conn, formatErr('tls-required', 'this server speaks TLS only'));
  }
  const result = await tls.handshake(socket, msLeft(deadline));
  if (!result.socket) {
    observer.refused(conn, peer, 'tls-failed', result.failed);
    socket.destroy();
    return undefined;
  }
  const secure = result.socket;
  rememberTcp(secure, socket);
  parts.track(secure, kind);
  secure.once('close', () => socket.destroy());
  // Not only during the handshake: a later TLS error does not always destroy the socket.
  secure.on('error', (error: Error) => {
    debug('%s: TLS: %s', conn, error.message);
    secure.destroy();
  });
  if (result.rejected !== undefined) {
    observer.refused(conn, peer, 'bad-certificate', result.rejected);
    return turnAway(secure, parts, conn, formatErr('bad-certificate', result.rejected));
  }
  const client = tls.requireClientCert
    ? ` (client certificate: ${secure.getPeerX509Certificate()?.subject ?? 'none'})`
    : '';
  observer.event(conn, `TLS ${secure.getProtocol()} established${client}`);
  return secure;
}

/** Waits for the first byte without consuming it (it is put back for whoever reads next).
 * Written out rather than with events.once and an AbortController: every data connection
 * passes here, and those cost a visitor's setup measurably more (bench/README.md). */
function firstByte(socket: net.Socket, timeoutMs: number): Promise<number | 'timeout' | 'closed'> {
  return new Promise((resolve) => {
    const settle = (result: number | 'timeout' | 'closed'): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onClose);
      socket.off('close', onClose);
      resolve(result);
    };
    const onReadable = (): void => {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) return; // end of stream: 'end' follows
      socket.unshift(chunk);
      settle(chunk[0] ?? 0);
    };
    const onClose = (): void => settle('closed');
    const timer = setTimeout(() => settle('timeout'), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onClose);
    socket.once('close', onClose);
  });
}

/** `address:port` of the peer, for the operator's log. */
export const peerOf = (socket: net.Socket): string =>
  formatAddress(socket.remoteAddress, socket.remotePort) ?? 'an unknown address';

/** Sends `line` (an ERR; `note` for the trace) and closes: the connection is turned away. */
export function turnAway(socket: net.Socket, parts: DoorParts, conn: string, line: string, note?: string): undefined {
  parts.observer.sent(conn, line, note);
  closeWithLine(socket, line);
}
