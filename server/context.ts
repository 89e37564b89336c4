// What the parts of the server share: the one object every session, tunnel and data
// connection talks to. BurrowServer implements it.
import type { Socket } from 'node:net';
import type { TraceEvent } from '../shared/trace.ts';
import type { PendingVisitors } from './pending.ts';
import type { PortPool } from './ports.ts';
import type { Tunnel } from './tunnel.ts';

export interface ServerContext {
  readonly ports: PortPool;
  readonly pending: PendingVisitors<Tunnel>;
  /** Most tunnels one control connection may hold (EXPOSEs beyond it get `ERR too-many-tunnels`). */
  readonly maxTunnelsPerClient: number;
  /** How long a data connection has to send its ID line. */
  readonly handshakeTimeoutMs: number;
  /** Registers a socket to be destroyed when the server closes. */
  track(socket: Socket): void;
  /** A fresh label for a connection: `control#1`, `data#7`. */
  label(kind: 'control' | 'data'): string;
  trace(conn: string, kind: TraceEvent['kind'], text: string): void;
}
