// What a server can be told, and the one table of its defaults: the library, the CLI's
// fallbacks and its --help text all read SERVER_DEFAULTS.
import { DEFAULT_CONTROL_PORT, DEFAULT_DATA_PORT, DEFAULT_PORT_RANGE, type PortRange } from '../shared/protocol.ts';
import { withDefaults } from '../shared/defaults.ts';
import { DEFAULT_WEBSOCKET_PING_MS } from '../shared/protocol.ts';
import { DEFAULT_LIMITS, type Limits } from './limits.ts';
import type { ServerTlsOptions } from './tls-server.ts';
import type { HttpOptions } from './http/options.ts';

export interface ServerOptions extends Partial<Limits>, HttpOptions {
  /** Control port; 0 picks a free one. Default 7835. */
  controlPort?: number;
  /** Data port; 0 picks a free one. Default 7836. */
  dataPort?: number;
  /** Address every listener binds to, public ports included. Default: all interfaces. */
  bind?: string;
  /** Public ports the server may hand out. Default 1024-65535. */
  portRange?: PortRange;
  /** Clients must prove they know this secret (docs/SECURITY.md). Default: none, an open
   * relay. */
  secret?: string;
  /** Speak TLS on the control and data ports. Default: plain TCP. */
  tls?: ServerTlsOptions;
  /** With an HTTP or HTTPS port: take clients over WebSocket there too, at
   * `/_burrow/control` and `/_burrow/data` (docs/PROTOCOL.md, "Over WebSocket"). Default
   * true. */
  webSocket?: boolean;
  /** Ping every WebSocket this often; one that answers nothing until the next ping is
   * closed. Default 25 s. */
  webSocketPingMs?: number;
}

/** Every server default (an option left out, or undefined, takes its value here). */
export const SERVER_DEFAULTS = {
  controlPort: DEFAULT_CONTROL_PORT,
  dataPort: DEFAULT_DATA_PORT,
  portRange: DEFAULT_PORT_RANGE,
  webSocket: true,
  webSocketPingMs: DEFAULT_WEBSOCKET_PING_MS,
  ...DEFAULT_LIMITS,
} satisfies Required<Omit<ServerOptions, 'bind' | 'secret' | 'tls' | keyof HttpOptions>>;

/** `options` with every default filled in. */
export const withServerDefaults = (options: ServerOptions): typeof SERVER_DEFAULTS & ServerOptions =>
  withDefaults(SERVER_DEFAULTS, options);

/** What the server holds right now: for monitoring, and for tests that check every
 * resource returns to zero. */
export interface ServerStats {
  /** Open control connections. */
  clients: number;
  /** Distinct source addresses with a control connection. */
  clientAddresses: number;
  /** Open tunnels (public listeners), counting EXPOSEs still binding. */
  tunnels: number;
  /** Public ports kept under lease for clients that dropped (they count towards the
   * tunnel limits too). */
  leasedPorts: number;
  /** Public ports held in the pool. */
  ports: number;
  /** Visitors waiting for their data connection. */
  pendingVisitors: number;
  /** Every socket the server owns: control, data (handshaking or joined), visitors. */
  sockets: number;
  /** With an HTTP port: open HTTP tunnels, names kept under lease, and requests waiting
   * for a dial-back. */
  http?: { tunnels: number; leasedNames: number; waiting: number };
}
