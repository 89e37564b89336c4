// fin-check on the server: a FIN from the client on a joined data connection is passed on
// to the visitor only once the client process has proved it is alive, so that the FIN its
// operating system sends for it as it dies is not taken for a complete stream (see
// `fin-check` in docs/PROTOCOL.md). A layer on the pipe: joinSockets() asks confirmEnd.
import type { WaitsForVoucher, Voucher } from '../shared/alive-check.ts';
import { confirmAcrossReconnects } from '../shared/alive-check.ts';
import { deadlineIn } from '../shared/deadline.ts';
import type { PipeObserver } from '../shared/pipe.ts';
import type { Limits } from './limits.ts';
import type { ServerObserver } from './observer.ts';
import type { PortHolder } from './public-ports.ts';
import type { Tunnel } from './tunnel.ts';

export interface FinCheckParts {
  readonly observer: ServerObserver;
  /** For each lease, the control session that holds its tunnel now. */
  readonly holders: ReadonlyMap<string, PortHolder>;
  /** FINs waiting for their client's control connection to come back. */
  readonly finWaits: WaitsForVoucher;
  readonly limits: Pick<Limits, 'heartbeatTimeoutMs'>;
}

/** The confirmEnd hook for a visitor of `tunnel`, if its client agreed to fin-check. */
export function finCheck(tunnel: Tunnel, visitor: string, parts: FinCheckParts): PipeObserver['confirmEnd'] {
  if (!tunnel.session.extensions.has('fin-check')) return undefined;
  const { observer } = parts;
  return (from, proceed) => {
    if (from === 'a') return proceed(true); // the visitor's FIN: nobody died for it
    observer.event(visitor, 'the client half-closed (FIN); checking that the client is alive before passing it on');
    const deadline = deadlineIn(parts.limits.heartbeatTimeoutMs);
    confirmAcrossReconnects(
      () => voucherFor(tunnel, parts.holders),
      parts.finWaits,
      deadline,
      (alive) => {
        if (!alive) observer.event(visitor, 'the client is gone: resetting the visitor instead of passing on its FIN');
        proceed(alive);
      },
    );
  };
}

/** Who can vouch that the client process behind `tunnel` is alive: the control
 * connection that holds its tunnel now (by its lease), if it belongs to the same process
 * (`fin-check` instance) — a newer connection after a reconnect, which keeps that role
 * after a GOAWAY too — else the tunnel's own connection while it is open. Another process
 * holding the tunnel now means ours is gone; nobody, that it may still be reconnecting. */
function voucherFor(tunnel: Tunnel, holders: ReadonlyMap<string, PortHolder>): Voucher | 'gone' | undefined {
  const own = tunnel.session;
  const holder = holders.get(tunnel.lease);
  if (holder && holder !== own && holder.open) {
    return own.clientInstance !== undefined && holder.clientInstance === own.clientInstance ? holder : 'gone';
  }
  return own.open ? own : undefined;
}
