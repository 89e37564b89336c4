// A connection to the data port: the client answering a CONNECTION. It must send
// `ID <id>` first (with a proof when the server has a secret); we then join it to the
// waiting visitor, byte for byte.
import type { Socket } from 'node:net';
import createDebug from 'debug';
import { deadlineIn, msLeft, type Deadline } from '../shared/deadline.ts';
import { BurrowError } from '../shared/errors.ts';
import { joinSockets, readFirstLine } from '../shared/pipe.ts';
import { formatErr, formatOk, MAX_LINE_LENGTH, parseClientDataLine } from '../shared/protocol.ts';
import { admit, peerOf, TLS_HANDSHAKE_RECORD, turnAway, type DoorParts } from './admit.ts';
import { checkDataProof } from './auth.ts';
import type { Departures } from './departures.ts';
import { finNotice, type FinNoticeParts } from './fin-notice.ts';
import type { CountPerKey, Limits } from './limits.ts';
import type { HttpRelay } from './http/relay.ts';
import type { PendingVisitor, PendingVisitors, Tunnel } from './tunnel.ts';

/** What the data port uses of the server. */
export interface DataPortParts extends DoorParts, FinNoticeParts {
  readonly limits: Pick<Limits, 'handshakeTimeoutMs' | 'heartbeatTimeoutMs' | 'maxHandshakesPerIp'>;
  /** The shared secret every ID line must prove; undefined for an open relay. */
  readonly secret: string | undefined;
  readonly pending: PendingVisitors<Tunnel>;
  /** Data connections per source address still in their handshake. */
  readonly handshakesPerAddress: CountPerKey<string>;
  /** Clients that said GOAWAY, kept until their joined connections end. */
  readonly departures: Departures;
  /** HTTP tunnels, whose requests travel over data connections too. */
  readonly http: HttpRelay | undefined;
  /** A fresh label: `data#7`. */
  label(kind: 'data'): string;
}

const debug = createDebug('burrow:server');

export async function acceptDataConnection(raw: Socket, parts: DataPortParts): Promise<void> {
  // Named on first use: a connection that only checks the port answers takes no number.
  let named: string | undefined;
  const label = (): string => (named ??= parts.label('data'));
  // One deadline from accept: the first byte, TLS, and the ID line.
  const deadline = deadlineIn(parts.limits.handshakeTimeoutMs);
  parts.track(raw, 'data');
  raw.on('error', (error) => debug('%s: %s', label(), error.message));
  if (raw.destroyed) return; // the server is closing: track() has destroyed it
  // The deadline bounds how long one handshake lasts; this bounds how many one address
  // holds at once (each costs a socket, a timer and maybe a TLS session).
  const address = raw.remoteAddress ?? 'unknown';
  const { handshakesPerAddress } = parts;
  if (!handshakesPerAddress.tryAdd(address)) {
    const limit = `limit is ${parts.limits.maxHandshakesPerIp} data handshakes per address`;
    return turnAway(raw, parts, label(), formatErr('too-many-connections', limit), `to ${peerOf(raw)}`);
  }
  // Counted from accept until the handshake is over, whatever ends it (pairing, a refusal,
  // a TLS failure, the socket closing, an exception): released exactly once.
  let counted = true;
  const release = (): void => {
    if (!counted) return;
    counted = false;
    raw.off('close', release);
    handshakesPerAddress.remove(address);
  };
  raw.once('close', release);
  let paired: Paired | undefined;
  try {
    paired = await handshake(raw, parts, label, deadline);
  } finally {
    release();
  }
  if (paired) await pipe(paired, parts, label());
}

const HALF_CLOSED = {
  a: 'the visitor half-closed (FIN); passed on to the client',
  b: 'the client half-closed (FIN); passed on to the visitor',
} as const;

/** A data connection and the visitor it asked for (by `id`). */
interface Paired {
  socket: Socket;
  id: string;
  visitor: PendingVisitor<Tunnel>;
}

/** From accept to pairing: admits the connection (TLS), reads its ID line and takes the
 * visitor waiting for that id. Resolves with both, or undefined once the connection has
 * been turned away (or went away). */
async function handshake(
  raw: Socket,
  parts: DataPortParts,
  label: () => string,
  deadline: Deadline,
): Promise<Paired | undefined> {
  const socket = await admit(raw, parts, label, deadline, 'data');
  if (!socket) return undefined;

  let line: string;
  try {
    const refuseFirstByte = parts.tls ? undefined : TLS_HANDSHAKE_RECORD;
    line = await readFirstLine(socket, { maxLength: MAX_LINE_LENGTH, timeoutMs: msLeft(deadline), refuseFirstByte });
  } catch (error) {
    const code = error instanceof BurrowError ? error.code : undefined;
    // A connection that only checks the port answers closes without a byte: no label.
    if (code === 'closed') return void socket.destroy();
    const conn = label();
    debug('%s: no ID line: %s', conn, (error as Error).message);
    if (code === 'tls') {
      const why = 'the client began a TLS handshake; this server does not speak TLS';
      parts.observer.refused(conn, peerOf(socket), 'tls-not-enabled', why);
      turnAway(socket, parts, conn, formatErr('tls-not-enabled', 'this server does not speak TLS'));
    } else if (code === 'timeout') {
      turnAway(socket, parts, conn, formatErr('timeout', `no ID line within ${parts.limits.handshakeTimeoutMs} ms`));
    } else if (code === 'line-too-long') {
      turnAway(socket, parts, conn, formatErr('line-too-long', `limit is ${MAX_LINE_LENGTH} bytes`));
    } else socket.destroy(); // the peer is gone: nobody to answer
    return;
  }
  const conn = label();
  parts.observer.received(conn, line);
  const parsed = parseClientDataLine(line);
  if (!parsed.ok) return turnAway(socket, parts, conn, formatErr(parsed.reason, parsed.detail));

  const { id, proof } = parsed.message;
  const refusal = checkDataProof(parts.secret, id, proof);
  if (refusal) {
    parts.observer.refused(conn, peerOf(socket), refusal.refused.reason, refusal.refused.detail);
    return turnAway(socket, parts, conn, refusal.line);
  }
  const visitor = parts.pending.take(id);
  if (!visitor && parts.http?.claim(id, socket, conn)) return undefined; // it carries HTTP requests now
  if (!visitor) return turnAway(socket, parts, conn, formatErr('unknown-id', 'no visitor is waiting for this id'));
  return { socket, id, visitor };
}

/** Joins a data connection to the visitor it asked for, until both have closed. */
async function pipe({ socket, id, visitor }: Paired, parts: DataPortParts, conn: string): Promise<void> {
  const { observer, departures } = parts;
  const label = `visitor:${id.slice(0, 6)}`;
  const { session } = visitor.owner;
  // Before the OK: once the client has it, its FIN notice may come.
  const notice = finNotice(visitor.owner, id, socket, label, parts);
  // A minimal client pipes the data connection straight to its local service: it gets
  // no OK, or the OK would reach that service as the visitor's first bytes.
  if (session.extensions.has('id-reply')) {
    observer.sent(conn, 'OK');
    socket.write(formatOk());
  }
  const waitMs = Math.round(performance.now() - visitor.since);
  observer.paired(visitor.socket, waitMs);
  // While it is joined, its client's control connection must stay to carry its FIN notices.
  const instance = notice ? session.clientInstance : undefined;
  if (instance !== undefined) departures.started(instance);
  if (observer.tracing) observer.event(label, `paired with ${conn} after ${waitMs} ms; piping`);
  const totals = await joinSockets(visitor.socket, socket, {
    onHalfClose: (from) => {
      observer.event(label, HALF_CLOSED[from]);
      notice?.onHalfClose(from);
    },
    confirmEnd: notice?.confirmEnd,
  });
  notice?.done();
  observer.counters.unpaired(visitor.socket);
  if (instance !== undefined) departures.ended(instance);
  if (observer.tracing) {
    const { fromA, toA, aborted } = totals;
    const ms = Math.round(performance.now() - visitor.since);
    const text = `${aborted ? 'reset' : 'closed'}: ${fromA} bytes from the visitor, ${toA} bytes to it, ${ms} ms`;
    observer.event(label, text);
  }
}
