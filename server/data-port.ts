// A connection to the data port: the client answering a CONNECTION. It must send
// `ID <id>` first (with a proof when the server has a secret); we then join it to the
// waiting visitor, byte for byte.
import type { Socket } from 'node:net';
import createDebug from 'debug';
import { closeWithLine } from '../shared/control-lines.ts';
import { BurrowError } from '../shared/errors.ts';
import { readFirstLine } from '../shared/first-line.ts';
import { confirmAcrossReconnects, type Voucher } from '../shared/alive-check.ts';
import { joinSockets } from '../shared/pipe.ts';
import { formatErr, formatOk, MAX_LINE_LENGTH, parseClientDataLine, type ErrReason } from '../shared/protocol.ts';
import { admit, peerOf } from './admit.ts';
import { deadlineIn, msLeft, type Deadline } from '../shared/deadline.ts';
import { checkDataProof } from './auth.ts';
import type { ServerContext } from './context.ts';
import type { PendingVisitor } from './pending.ts';
import type { Tunnel } from './tunnel.ts';

const debug = createDebug('burrow:server');

export async function acceptDataConnection(raw: Socket, ctx: ServerContext): Promise<void> {
  // Named on first use: a connection that only checks the port answers takes no number.
  let named: string | undefined;
  const label = (): string => (named ??= ctx.label('data'));
  // One deadline from accept: the first byte, TLS, and the ID line.
  const deadline = deadlineIn(ctx.limits.handshakeTimeoutMs);
  ctx.track(raw);
  raw.on('error', (error) => debug('%s: %s', label(), error.message));
  if (raw.destroyed) return; // the server is closing: track() has destroyed it
  // The deadline bounds how long one handshake lasts; this bounds how many one address
  // holds at once (each costs a socket, a timer and maybe a TLS session).
  const address = raw.remoteAddress ?? 'unknown';
  const { handshakesPerAddress } = ctx;
  if (!handshakesPerAddress.tryAdd(address)) {
    const line = formatErr(
      'too-many-connections',
      `limit is ${ctx.limits.maxHandshakesPerIp} data handshakes per address`,
    );
    ctx.trace(label(), 'send', `${line.trimEnd()} (to ${peerOf(raw)})`);
    closeWithLine(raw, line);
    return;
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
    paired = await handshake(raw, ctx, label, deadline);
  } finally {
    release();
  }
  if (paired) await pipe(paired, ctx, label());
}

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
  ctx: ServerContext,
  label: () => string,
  deadline: Deadline,
): Promise<Paired | undefined> {
  const socket = await admit(raw, ctx, label, deadline, 'data');
  if (!socket) return undefined;
  const conn = label();
  const close = (line: string): undefined => {
    ctx.trace(conn, 'send', line.trimEnd());
    closeWithLine(socket, line);
  };
  const reject = (reason: ErrReason, detail: string): undefined => close(formatErr(reason, detail));

  let line: string;
  try {
    line = await readFirstLine(socket, { maxLength: MAX_LINE_LENGTH, timeoutMs: msLeft(deadline) });
  } catch (error) {
    const code = error instanceof BurrowError ? error.code : undefined;
    debug('%s: no ID line: %s', conn, (error as Error).message);
    if (code === 'timeout') reject('timeout', `no ID line within ${ctx.limits.handshakeTimeoutMs} ms`);
    else if (code === 'line-too-long') reject('line-too-long', `limit is ${MAX_LINE_LENGTH} bytes`);
    else socket.destroy(); // the peer is gone: nobody to answer
    return;
  }
  ctx.trace(conn, 'recv', line);
  const parsed = parseClientDataLine(line);
  if (!parsed.ok) return reject(parsed.reason, parsed.detail);

  const { id, proof } = parsed.message;
  const refusal = checkDataProof(ctx.secret, id, proof);
  if (refusal) {
    ctx.refused(conn, peerOf(socket), refusal.refused.reason, refusal.refused.detail);
    return close(refusal.line);
  }
  const visitor = ctx.pending.take(id);
  if (!visitor) return reject('unknown-id', 'no visitor is waiting for this id');
  return { socket, id, visitor };
}

/** Joins a data connection to the visitor it asked for, until both have closed. */
async function pipe({ socket, id, visitor }: Paired, ctx: ServerContext, conn: string): Promise<void> {
  const visitorLabel = `visitor:${id.slice(0, 6)}`;
  const { session } = visitor.owner;
  // A minimal client pipes the data connection straight to its local service: it gets
  // no OK, or the OK would reach that service as the visitor's first bytes.
  if (session.extensions.has('id-reply')) {
    ctx.trace(conn, 'send', 'OK');
    socket.write(formatOk());
  }
  const waitMs = Math.round(performance.now() - visitor.since);
  ctx.paired(visitor.socket, waitMs);
  // While it is joined, its client's control connection must stay to check its FIN.
  const instance = session.extensions.has('fin-check') ? session.clientInstance : undefined;
  if (instance !== undefined) ctx.departures.started(instance);
  ctx.trace(visitorLabel, 'event', `paired with ${conn} after ${waitMs} ms; piping`);
  const totals = await joinSockets(visitor.socket, socket, {
    onHalfClose: (from) =>
      ctx.trace(
        visitorLabel,
        'event',
        from === 'a'
          ? 'the visitor half-closed (FIN); passed on to the client'
          : 'the client half-closed (FIN); passed on to the visitor',
      ),
    // The client's FIN may be its operating system closing up after a crash: pass it on
    // only once the client has proved it is alive (fin-check); otherwise reset the visitor.
    confirmEnd: session.extensions.has('fin-check')
      ? (from, proceed) => {
          if (from === 'a') return proceed(true);
          ctx.trace(
            visitorLabel,
            'event',
            'the client half-closed (FIN); checking that the client is alive before passing it on',
          );
          const deadline = deadlineIn(ctx.limits.heartbeatTimeoutMs);
          confirmAcrossReconnects(
            () => voucherFor(visitor.owner, ctx),
            ctx.finWaits,
            deadline,
            (alive) => {
              if (!alive)
                ctx.trace(
                  visitorLabel,
                  'event',
                  'the client is gone: resetting the visitor instead of passing on its FIN',
                );
              proceed(alive);
            },
          );
        }
      : undefined,
  });
  ctx.counters.unpaired(visitor.socket);
  if (instance !== undefined) ctx.departures.ended(instance);
  const how = totals.aborted ? 'reset' : 'closed';
  ctx.trace(
    visitorLabel,
    'event',
    `${how}: ${totals.fromA} bytes from the visitor, ${totals.toA} bytes to it, ${Math.round(performance.now() - visitor.since)} ms`,
  );
}

/** Who can vouch that the client process behind `tunnel` is alive: the control
 * connection that holds its tunnel now (by its lease), if it belongs to the same process
 * (`fin-check` instance) — a newer connection after a reconnect, which keeps that role
 * after a GOAWAY too — else the tunnel's own connection while it is open. Another process
 * holding the tunnel now means ours is gone; nobody, that it may still be reconnecting. */
function voucherFor(tunnel: Tunnel, ctx: ServerContext): Voucher | 'gone' | undefined {
  const own = tunnel.session;
  const holder = ctx.leaseHolders.get(tunnel.lease);
  if (holder && holder !== own && holder.open) {
    return own.clientInstance !== undefined && holder.clientInstance === own.clientInstance ? holder : 'gone';
  }
  return own.open ? own : undefined;
}
