// fin-notice on the server: a FIN from the client on a joined data connection is passed on
// to the visitor only once the client has sent `FIN <id>` for it, so that the FIN its
// operating system sends for it as it dies is not taken for a complete stream; and our
// own FIN towards the client (the visitor's, passed on) is followed by our notice (see
// `fin-notice` in docs/PROTOCOL.md and shared/fin-notices.ts). A layer on the pipe.
import type { Socket } from 'node:net';
import type { FinNotices, Reach } from '../shared/fin-notices.ts';
import type { PipeObserver } from '../shared/pipe.ts';
import type { Limits } from './limits.ts';
import type { ServerObserver } from './observer.ts';
import type { PortHolder } from './public-ports.ts';
import type { Tunnel } from './tunnel.ts';

export interface FinNoticeParts {
  readonly observer: ServerObserver;
  /** For each lease, the control session that holds its tunnel now. */
  readonly holders: ReadonlyMap<string, PortHolder>;
  /** FIN notices, both ways, for every client. */
  readonly finNotices: FinNotices;
  readonly limits: Pick<Limits, 'heartbeatTimeoutMs'>;
}

/** The pipe hooks of fin-notice for data connection `id` (`socket`), joined to a visitor
 * of `tunnel`, if its client agreed to fin-notice; `done()` once the pair has closed. */
export function finNotice(
  tunnel: Tunnel,
  id: string,
  socket: Socket,
  visitor: string,
  parts: FinNoticeParts,
): (Required<PipeObserver> & { done: () => void }) | undefined {
  const { session } = tunnel;
  if (!session.extensions.has('fin-notice') || session.clientInstance === undefined) return undefined;
  const { observer } = parts;
  const hooks = parts.finNotices.track(id, session.clientInstance, () => reachClient(tunnel, parts.holders));
  return {
    // Our FIN (the visitor's, passed on): noticed once it is in the operating system's hands.
    onHalfClose: (from) => {
      if (from === 'a') socket.once('finish', hooks.sent);
    },
    confirmEnd: (from, proceed) => {
      if (from === 'a') return proceed(true); // the visitor's FIN: nobody died for it
      observer.event(visitor, 'the client half-closed (FIN); waiting for its FIN notice before passing it on');
      hooks.confirm((chosen) => {
        if (!chosen) observer.event(visitor, 'no FIN notice from the client: resetting the visitor instead');
        proceed(chosen);
      });
    },
    done: hooks.done,
  };
}

/** Where a notice to the client process behind `tunnel` goes: the control connection that
 * holds its tunnel now (by its lease), if it belongs to the same process (`fin-notice`
 * instance) — a newer connection after a reconnect, which keeps that role after a GOAWAY
 * too — else the tunnel's own connection while it is open. Another process holding the
 * tunnel now means ours is gone; nobody, that it may still be reconnecting. */
function reachClient(tunnel: Tunnel, holders: ReadonlyMap<string, PortHolder>): Reach {
  const own = tunnel.session;
  const holder = holders.get(tunnel.lease);
  if (holder && holder !== own && holder.open) {
    return own.clientInstance !== undefined && holder.clientInstance === own.clientInstance ? holder : 'gone';
  }
  return own.open ? own : undefined;
}
