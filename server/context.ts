// What the parts of the server share: the one object every session, tunnel and data
// connection talks to. BurrowServer implements it.
import type { Socket } from 'node:net';
import type { WaitsForVoucher } from '../shared/alive-check.ts';
import type { TraceEvent } from '../shared/trace.ts';
import type { ClientEvent } from './client-events.ts';
import type { ServerCounters } from './counters.ts';
import type { Departures } from './departures.ts';
import type { ServerTls } from './tls-server.ts';
import type { Leases } from './leases.ts';
import type { CountPerKey, Limits } from './limits.ts';
import type { PendingVisitors } from './pending.ts';
import type { PortPool } from './ports.ts';
import type { TunnelQuota } from './quota.ts';
import type { Tunnel, TunnelSession } from './tunnel.ts';

/** Why a connection was turned away at the door (TLS) or at authentication. */
export type RefusalReason =
  | 'tls-required'
  | 'tls-not-enabled'
  | 'tls-failed'
  | 'bad-certificate'
  | 'auth-required'
  | 'auth-failed'
  | 'auth-disabled';

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
  /** For each lease, the control session that holds its tunnel now (fin-check asks it). */
  readonly leaseHolders: Map<string, TunnelSession>;
  /** Open tunnels by public port. */
  readonly liveTunnels: Map<number, Tunnel>;
  /** True once the server has begun to shut down: tunnels then close without leases. */
  readonly shuttingDown: boolean;
  /** Ports held per address and in all: tunnels, tunnels binding, leases. */
  readonly quota: TunnelQuota;
  /** Data connections per source address still in their handshake, under
   * `maxHandshakesPerIp` (see data-port.ts). */
  readonly handshakesPerAddress: CountPerKey<string>;
  /** Registers a socket to be destroyed when the server closes: a control connection
   * stays until the rest (data connections, visitors) has drained. */
  track(socket: Socket, kind?: 'control' | 'data'): void;
  /** The data port actually listened on (`data-port`). */
  readonly dataPort: number;
  /** This server process's id for `fin-check` (see BurrowServer.instance). */
  readonly instance: string;
  /** FINs waiting for their client's control connection to come back. */
  readonly finWaits: WaitsForVoucher;
  /** Clients that said GOAWAY, kept until their joined connections end. */
  readonly departures: Departures;
  /** A fresh label for a connection: `control#1`, `data#7`. */
  label(kind: 'control' | 'data'): string;
  trace(conn: string, kind: TraceEvent['kind'], text: string): void;
  /** Running totals, for monitoring. */
  readonly counters: ServerCounters;
  /** A visitor was joined after waiting `waitMs`. */
  paired(visitor: Socket, waitMs: number): void;
  /** Reports what a client did (the operator's log: see client-events.ts). */
  clientEvent(event: ClientEvent): void;
  /** Reports a connection turned away for TLS or authentication (the operator's log). */
  refused(conn: string, peer: string, reason: RefusalReason, message: string): void;
}
