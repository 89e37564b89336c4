// The client's defaults as the CLI falls back on them and --help shows them. The server's
// are the library's one table, SERVER_DEFAULTS; the client has none yet, so its defaults
// are gathered here from what index.ts exports: named once, stated nowhere in cli/.
import { DEFAULT_MAX_CONNECTIONS, protocol, type ClientOptions } from '../index.ts';

export const CLIENT_DEFAULTS = {
  controlPort: protocol.DEFAULT_CONTROL_PORT,
  /** Unless the server names its own. */
  dataPort: protocol.DEFAULT_DATA_PORT,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  heartbeatIntervalMs: protocol.DEFAULT_HEARTBEAT_INTERVAL_MS,
  heartbeatTimeoutMs: protocol.DEFAULT_HEARTBEAT_TIMEOUT_MS,
  shutdownTimeoutMs: protocol.DEFAULT_SHUTDOWN_TIMEOUT_MS,
} as const satisfies Partial<Record<keyof ClientOptions, number>>;

/** The settings both commands have, with their defaults: each command reads its own side's. */
export interface LivenessDefaults {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  shutdownTimeoutMs: number;
}
