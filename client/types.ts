// The client's vocabulary: its options and their one table of defaults, the tunnels it
// opens and the events it emits.
import { withDefaults } from '../shared/defaults.ts';
import type { BurrowError } from '../shared/errors.ts';
import {
  DEFAULT_CONTROL_PORT,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  unbracket,
} from '../shared/protocol.ts';
import type { ProxyProtocolVersion } from '../shared/proxy-header.ts';
import type { TraceEvent } from '../shared/trace.ts';
import type { BackoffOptions } from './backoff.ts';
import type { ClientTlsOptions } from './tls.ts';
import type { WebSocketOptions } from './websocket.ts';

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
  /** Send the local service a PROXY protocol header (HAProxy's `v1` text or `v2` binary)
   * with the visitor's address before any of its bytes. Only for services that expect
   * one (nginx `proxy_protocol`, haproxy `accept-proxy`, ...): others would read it as data.
   * TCP tunnels only: an HTTP tunnel's service finds the visitor in X-Forwarded-For. */
  proxyProtocol?: ProxyProtocolVersion;
  /** An HTTP tunnel reached by name (`https://NAME.<relay's domain>`) instead of a public
   * port; the relay needs an HTTP or HTTPS port. `true`: any name, defaults for the rest. */
  http?: HttpTunnelOptions | true;
}

/** What an HTTP tunnel asks for, and how its requests reach the local service. */
export interface HttpTunnelOptions {
  /** The name to ask for (a DNS label). Default: a random, readable one from the relay. */
  name?: string;
  /** `user:password` that visitors must give (HTTP basic auth, checked at the relay).
   * Default: none, the tunnel is open to whoever knows its name. */
  auth?: string;
  /** The Host header the local service sees: `keep` (the tunnel's name, as the visitor
   * sent it), `rewrite` (the local service's own `host:port`, such as `localhost:3000`:
   * what dev servers that check Host expect), or a value to send. Default `keep`. */
  hostHeader?: 'keep' | 'rewrite' | (string & {});
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
  /** Most visitor connections (being dialed or joined) at once; further visitors are
   * turned away at once (REFUSE) with a warning. Default 1024. */
  maxConnections?: number;
  /** A file in which to keep the lease of every tunnel with a `remotePort`, so that a
   * client restarted after a crash reclaims its ports at once instead of meeting
   * `port-in-use` for the server's grace period. Written with mode 0600. Default: none
   * (the CLI keeps one under $XDG_STATE_HOME/burrow). */
  leaseFile?: string;
  /** Reconnect when the server is lost, reclaiming the same public ports. `false` (the
   * library default; the CLI turns it on) makes a lost server end the client. */
  reconnect?: boolean | BackoffOptions;
  /** Send PING this often. Default 10 s. */
  heartbeatIntervalMs?: number;
  /** Declare the server lost after this long without a line from it. Default 30 s. */
  heartbeatTimeoutMs?: number;
  /** How long close() lets joined connections finish. Default 10 s. */
  shutdownTimeoutMs?: number;
  /** The server's shared secret: proved (never sent) on every control and data connection. */
  secret?: string;
  /** Speak TLS to the server: `true` trusts the system's CAs; see ClientTlsOptions for a
   * CA file, a pinned fingerprint and a client certificate. Default: plain TCP. */
  tls?: boolean | ClientTlsOptions;
  /** Reach the relay over WebSocket, on its HTTP or HTTPS port (`wss://relay.example.com`),
   * through an HTTP proxy if one is set: for networks that let only HTTPS out. `server`,
   * `controlPort` and `dataPort` are then ignored; `tls` applies to a wss:// URL. Default:
   * plain TCP to the control and data ports. */
  webSocket?: WebSocketOptions;
}

/** Every client default (an option left out, or undefined, takes its value here). */
export const CLIENT_DEFAULTS = {
  server: 'localhost',
  controlPort: DEFAULT_CONTROL_PORT,
  localHost: 'localhost',
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
  heartbeatTimeoutMs: DEFAULT_HEARTBEAT_TIMEOUT_MS,
  shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
} satisfies Partial<ClientOptions>;

/** The options as the parts of the client read them: every default filled in, and the
 * host names without the brackets an IPv6 address may be written with. */
export type ClientSettings = ClientOptions & typeof CLIENT_DEFAULTS;

export function withClientDefaults(options: ClientOptions): ClientSettings {
  const settings = withDefaults(CLIENT_DEFAULTS, options);
  // Over WebSocket the relay is the URL's host: the tunnels' tcp:// addresses name it.
  const server = options.webSocket ? new URL(options.webSocket.url).hostname : settings.server;
  return { ...settings, server: unbracket(server), localHost: unbracket(settings.localHost) };
}

/** A tunnel the server accepted. */
export interface OpenTunnel {
  localHost: string;
  localPort: number;
  publicPort: number;
  /** The address visitors use: `tcp://<server>:<publicPort>`. */
  url: string;
  /** The PROXY protocol header this tunnel sends its local service, if any. */
  proxyProtocol?: ProxyProtocolVersion;
  /** An HTTP tunnel's name (its `url` is `http(s)://NAME.<domain>`); its publicPort is
   * the relay's HTTP(S) port, which every HTTP tunnel shares. */
  name?: string;
  /** An HTTP tunnel: how its requests reach the local service. */
  http?: HttpTunnelOptions;
}

/** One request through an HTTP tunnel, once its response has ended (or failed). */
export interface RequestEvent {
  tunnel: OpenTunnel;
  method: string;
  /** The path and query, as the visitor sent them. */
  path: string;
  /** The status sent to the visitor; 502 if the local service could not be reached. */
  status: number;
  durationMs: number;
  /** Body bytes from the visitor, and to it. */
  bytesIn: number;
  bytesOut: number;
  /** The visitor's address, as the relay saw it (the last X-Forwarded-For entry). */
  visitor?: string;
  /** The response did not end cleanly (the visitor or the service went away). */
  aborted: boolean;
  /** Headers and bodies, while someone captures them (BurrowClient.captureRequests). */
  exchange?: CapturedExchange;
}

/** What a request and its response said, bodies cut at the capture's limit. */
export interface CapturedExchange {
  /** When the request arrived (ms since the epoch). */
  startedAt: number;
  httpVersion: string;
  /** As they came, names in their case, in order. */
  requestHeaders: [string, string][];
  responseHeaders: [string, string][];
  requestBody: Buffer;
  responseBody: Buffer;
  /** The body was longer than the limit: only its start is kept. */
  requestTruncated: boolean;
  responseTruncated: boolean;
}

/** One moment of a visitor's connection on the client, for a timeline of the rendezvous.
 * Emitted only while someone listens. */
export interface PhaseEvent {
  /** The connection id of its CONNECTION line. */
  id: string;
  phase:
    | 'announced' // the relay's CONNECTION arrived (the relay has parked the visitor); detail: the tunnel's URL
    | 'dialed' // the data connection to the relay is open
    | 'id-sent' // `ID <id>` went out on it
    | 'paired' // the relay answered OK: its end is joined to the visitor
    | 'joined' // our end is joined to the local service (detail: its host:port): bytes flow
    | 'visitor-fin' // the visitor half-closed
    | 'local-fin' // the local service half-closed
    | 'closed'
    | 'failed';
  /** When (ms since the epoch). */
  at: number;
  detail?: string;
}

export interface ConnectionEvent {
  id: string;
  tunnel: OpenTunnel;
  /** The visitor's address and port (`203.0.113.9:51234`, `[::1]:51234`), as the server
   * saw it; absent if the server did not say. */
  visitor?: string;
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

/** A visitor connection that has ended, with its totals. */
export type ConnectionClosed = ConnectionEvent &
  ConnectionTotals & {
    /** The local service could not be reached: the visitor was reset at once. */
    localUnavailable?: boolean;
  };

/** A change of public address after a reconnect. */
export interface TunnelMove {
  tunnel: OpenTunnel;
  previousPort: number;
  /** The URL it had (an HTTP tunnel whose random name was taken while it was away). */
  previousUrl?: string;
}

/** Takes each moment of a visitor connection as it happens, with no event object made
 * (BurrowClient.tapPhases): what the inspector records while nobody watches. */
export type PhaseTap = (id: string, phase: PhaseEvent['phase'], at: number, detail: string | undefined) => void;

export interface BurrowClientEvents {
  /** The control connection was lost; with `reconnect` on, a retry follows. */
  disconnected: [BurrowError];
  /** The next retry starts in `delayMs` (attempt counts from 1). */
  reconnecting: [{ attempt: number; delayMs: number }];
  /** Every tunnel is open again; `moved` lists those whose public port changed. */
  reconnected: [{ moved: TunnelMove[] }];
  trace: [TraceEvent];
  /** A visitor was joined to the local service (TCP tunnels). */
  connection: [ConnectionEvent];
  /** A request through an HTTP tunnel has been answered. */
  request: [RequestEvent];
  /** A moment of a visitor's connection (only while someone listens). */
  phase: [PhaseEvent];
  /** A visitor connection closed: a joined one, or one the local service refused. */
  'connection-close': [ConnectionClosed];
  /** A problem with one visitor connection (local service down, visitor gone, ...). The
   * client keeps serving. */
  warning: [BurrowError];
  /** The client has stopped serving: `error` is set unless `close()` was called (the
   * server was lost with `reconnect` off, or a retry met a permanent refusal). Joined
   * visitor connections may still be flowing; `close()` or `destroy()` ends them. */
  close: [BurrowError | undefined];
}
