// The client's vocabulary: its options, the tunnels it opens and the events it emits.
import type { BurrowError } from '../shared/errors.ts';
import type { TraceEvent } from '../shared/trace.ts';
import type { ConnectionTotals } from './connection.ts';

/** Deadline for reaching the server and getting every EXPOSE answered. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Visitor connections a client serves at once (each holds two sockets here). */
export const DEFAULT_MAX_CONNECTIONS = 1024;

export interface TunnelRequest {
  /** The local port to expose. */
  localPort: number;
  /** The host the local service listens on. Default: the client's `localHost`. */
  localHost?: string;
  /** A specific public port to ask for; 0 or absent for any. */
  remotePort?: number;
}

export interface ClientOptions {
  /** The local ports to expose, each with its own public port. */
  tunnels: TunnelRequest[];
  /** The server's host name or address. Default `localhost`. */
  server?: string;
  /** Default 7835. */
  controlPort?: number;
  /** Default 7836. */
  dataPort?: number;
  /** Default host of the local services. Default `localhost`. */
  localHost?: string;
  /** Deadline for connecting and for every EXPOSE to be answered. Default 10 s. */
  connectTimeoutMs?: number;
  /** Deadline for each dial-back (data and local connect, `ID` answer). Default 5 s. */
  handshakeTimeoutMs?: number;
  /** Most visitor connections (being dialed or joined) at once; further CONNECTIONs are
   * ignored with a warning. Default 1024. */
  maxConnections?: number;
}

/** A tunnel the server accepted. */
export interface OpenTunnel {
  localHost: string;
  localPort: number;
  publicPort: number;
  /** The address visitors use: `tcp://<server>:<publicPort>`. */
  url: string;
}

export interface ConnectionEvent {
  id: string;
  tunnel: OpenTunnel;
}

export interface BurrowClientEvents {
  trace: [TraceEvent];
  /** A visitor was joined to the local service. */
  connection: [ConnectionEvent];
  /** A joined visitor connection closed. */
  'connection-close': [ConnectionEvent & ConnectionTotals];
  /** A problem with one visitor connection (local service down, visitor gone, ...). The
   * client keeps serving. */
  warning: [BurrowError];
  /** The control connection is gone: `error` is set unless `close()` was called. Joined
   * visitor connections may still be flowing; `close()` ends them. */
  close: [BurrowError | undefined];
}
