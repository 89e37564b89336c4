// One visitor, client side: answer a CONNECTION by dialing the data port and the local
// service at the same time (a visitor pays for one dial, not two in a row), then join them.
import type net from 'node:net';
import { BurrowError } from '../shared/errors.ts';
import { readFirstLine } from '../shared/first-line.ts';
import { abortSocket, joinSockets } from '../shared/pipe.ts';
import { formatId, hostPort, MAX_LINE_LENGTH, parseServerDataLine } from '../shared/protocol.ts';
import { describeProxyHeader } from '../shared/proxy-header.ts';
import { dataProof } from '../shared/secret.ts';
import { dial } from './dial.ts';
import type { ClientTls } from './tls.ts';

export interface DialBackOptions {
  /** The id from the CONNECTION line. */
  id: string;
  serverHost: string;
  dataPort: number;
  localHost: string;
  localPort: number;
  /** Written to the local service before any visitor byte (a PROXY protocol header). */
  proxyHeader: Buffer | undefined;
  /** Deadline for the local dial, and for the data dial plus the server's answer to `ID`. */
  timeoutMs: number;
  /** Prove the secret in the ID line. */
  secret: string | undefined;
  /** TLS to the data port, as to the control port. */
  tls: ClientTls | undefined;
  /** The server answers `ID` with `OK` (id-reply): wait for it before piping. */
  idReply: boolean;
  /** With fin-check: decides whether the server's FIN may reach the local service (it is
   * answered true once the server has proved it is alive). */
  confirmEnd: ((answer: (alive: boolean) => void) => void) | undefined;
  /** Registers a socket, as soon as it exists, to be destroyed when the client closes. */
  track: (socket: net.Socket) => void;
  /** Reports a line or moment of this connection's data socket. */
  trace(kind: 'send' | 'recv' | 'event', text: string): void;
  /** Called once both sides are connected and piping starts. */
  onJoined(): void;
}

export interface ConnectionTotals {
  /** Bytes from the local service to the visitor. */
  bytesOut: number;
  /** Bytes from the visitor to the local service. */
  bytesIn: number;
  durationMs: number;
  /** It ended with a reset (one side failed or closed early), not two clean ends. */
  aborted: boolean;
}

/** Resolves when the connection has closed; rejects (with nothing left open) if it could
 * not be set up: `local-unavailable`, `unreachable`, `refused`, `timeout`, ... */
export async function dialBack(options: DialBackOptions): Promise<ConnectionTotals> {
  const { id, timeoutMs, track } = options;
  const started = Date.now();
  const localDial = dial({
    host: options.localHost,
    port: options.localPort,
    timeoutMs,
    code: 'local-unavailable',
    what: 'local service',
    track,
  });
  const dataDial = dial({
    host: options.serverHost,
    port: options.dataPort,
    timeoutMs,
    code: 'unreachable',
    what: 'data port',
    track,
    tls: options.tls,
  }).then(
    // One deadline for connect + answer: the handshake gets what the connect left over.
    (data) => handshake(data, id, Math.max(1, started + timeoutMs - Date.now()), options),
  );
  const [local, data] = await Promise.allSettled([localDial, dataDial]);

  if (local.status === 'rejected' || data.status === 'rejected') {
    // Reset (not FIN) the half that worked: the server then resets the visitor, who sees
    // the same abrupt close it would get from a refused local port.
    if (local.status === 'fulfilled') local.value.destroy();
    if (data.status === 'fulfilled') abortSocket(data.value);
    throw local.status === 'rejected' ? local.reason : (data as PromiseRejectedResult).reason;
  }
  if (local.value.destroyed || data.value.destroyed) {
    // The client was closed while we dialed: nothing to join.
    abortSocket(data.value);
    local.value.destroy();
    throw new BurrowError('closed', `connection ${id} closed before it was joined`);
  }
  if (options.proxyHeader !== undefined) {
    local.value.write(options.proxyHeader);
    options.trace('event', `sent the local service a PROXY header: ${describeProxyHeader(options.proxyHeader)}`);
  }
  options.trace('event', `joined to ${hostPort(options.localHost, options.localPort)}; piping`);
  options.onJoined();
  const { confirmEnd } = options;
  const totals = await joinSockets(local.value, data.value, {
    onHalfClose: (from) =>
      options.trace(
        'event',
        from === 'a'
          ? 'the local service half-closed (FIN); passed on'
          : 'the visitor half-closed (FIN); passed on to the local service',
      ),
    confirmEnd: confirmEnd
      ? (from, proceed) => {
          if (from === 'a') return proceed(true);
          options.trace(
            'event',
            'the server half-closed (FIN); checking that the server is alive before passing it on',
          );
          confirmEnd((alive) => {
            if (!alive)
              options.trace(
                'event',
                'the server is gone: resetting the local connection instead of passing on its FIN',
              );
            proceed(alive);
          });
        }
      : undefined,
  });
  // toA counts only what joinSockets wrote (and the kernel took): the PROXY header, written
  // before the join, is not the visitor's and is not in it.
  return { bytesOut: totals.fromA, bytesIn: totals.toA, durationMs: Date.now() - started, aborted: totals.aborted };
}

/** Sends `ID <id>` and (with id-reply) waits for `OK`; after it, every byte on the socket
 * is the visitor's. */
async function handshake(
  data: net.Socket,
  id: string,
  timeoutMs: number,
  options: DialBackOptions,
): Promise<net.Socket> {
  try {
    const idLine = formatId(id, options.secret === undefined ? undefined : dataProof(options.secret, id));
    options.trace('send', idLine.trimEnd());
    data.write(idLine);
    if (!options.idReply) return data; // a minimal server pipes at once, with no answer
    const line = await readFirstLine(data, { maxLength: MAX_LINE_LENGTH, timeoutMs });
    options.trace('recv', line);
    const parsed = parseServerDataLine(line);
    if (!parsed.ok) throw new BurrowError('protocol', `server sent an invalid reply to ID: ${parsed.detail}`);
    if (parsed.message.verb === 'ERR') {
      const { reason, detail } = parsed.message;
      if (reason === 'wrong-port') {
        const where = hostPort(options.serverHost, options.dataPort);
        throw new BurrowError(
          'refused',
          `${where} is a burrow server's control port, not its data port: are the control and data ports swapped?`,
          { reason },
        );
      }
      throw new BurrowError('refused', `server refused connection ${id}: ${reason}${detail ? ` (${detail})` : ''}`, {
        reason,
      });
    }
    return data;
  } catch (error) {
    data.destroy();
    throw error;
  }
}
