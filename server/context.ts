// What the parts of the server share: the one object every session, tunnel and data
// connection talks to. BurrowServer implements it.
import type { Socket } from 'node:net';
import type { TraceEvent } from '../shared/trace.ts';
import type { ServerCounters } from './counters.ts';
import type { ServerTls } from './tls-server.ts';
import type { Leases } from './leases.ts';
import type { Limits } from './limits.ts';
import type { PendingVisitors } from './pending.ts';
import type { PortPool } from './ports.ts';
import type { Tunnel } from './tunnel.ts';

/** Why a connection was turned away at the door (TLS) or at authentication. */
export type RefusalReason = 'tls-required' | 'tls-not-enabled' | 'tls-failed' | 'bad-certificate' | 'auth-required' | 'auth-failed' | 'auth-disabled';

export interface ServerContext {
  /** The shared secret clients must prove they know; undefined for an open relay. */
  readonly secret: string | undefined;
  /** TLS for the control and data ports; undefined for plain TCP. */
  readonly tls: ServerTls | undefined;
  readonly ports: PortPool;
  readonly pending: PendingVisitors<Tunnel>;
  readonly limits: Readonly<Limits>;
  /** Ports kept for clients that dropped (see leases.ts). */
  readonly leases: Leases;
  /** Open tunnels by public port. */
  readonly liveTunnels: Map<number, Tunnel>;
  /** True once the server has begun to shut down: tunnels then close without leases. */
  readonly shuttingDown: boolean;
  /** Counts one more tunnel towards `maxTunnels`; false if the server is full. */
  reserveTunnel(): boolean;
  /** Gives a reservation back (the tunnel closed, or was never opened). */
  releaseTunnel(): void;
  /** Registers a socket to be destroyed when the server closes. */
  track(socket: Socket): void;
  /** A fresh label for a connection: `control#1`, `data#7`. */
  label(kind: 'control' | 'data'): string;
  trace(conn: string, kind: TraceEvent['kind'], text: string): void;
  /** Running totals, for monitoring. */
  readonly counters: ServerCounters;
  /** A visitor was joined after waiting `waitMs`. */
  paired(visitor: Socket, waitMs: number): void;
  /** Reports a connection turned away for TLS or authentication (the operator's log). */
  refused(conn: string, peer: string, reason: RefusalReason, message: string): void;
}
