// The defaults as the CLI falls back on them and --help shows them: the library's tables
// (CLIENT_DEFAULTS, SERVER_DEFAULTS for the server, DEFAULT_HTTP_LIMITS for a relay's HTTP
// tunnels), and the data port to show for a server that does not name its own (the library
// has no fixed default for it).
import { CLIENT_DEFAULTS as LIBRARY_CLIENT_DEFAULTS, DEFAULT_HTTP_LIMITS, protocol } from '../index.ts';

export const CLIENT_DEFAULTS = { ...LIBRARY_CLIENT_DEFAULTS, dataPort: protocol.DEFAULT_DATA_PORT };

/** The relay's HTTP defaults: the domain tunnels are named under, the reserved names, the
 * limits of the HTTP port. */
export const HTTP_DEFAULTS = DEFAULT_HTTP_LIMITS;

/** The settings both commands have, with their defaults: each command reads its own side's. */
export interface LivenessDefaults {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  shutdownTimeoutMs: number;
}
