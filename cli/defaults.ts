// The client's defaults as the CLI falls back on them and --help shows them: the library's
// one table (CLIENT_DEFAULTS, as SERVER_DEFAULTS for the server), and the data port to show
// for a server that does not name its own (the library has no fixed default for it).
import { CLIENT_DEFAULTS as LIBRARY_CLIENT_DEFAULTS, protocol } from '../index.ts';

export const CLIENT_DEFAULTS = { ...LIBRARY_CLIENT_DEFAULTS, dataPort: protocol.DEFAULT_DATA_PORT };

/** The settings both commands have, with their defaults: each command reads its own side's. */
export interface LivenessDefaults {
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  shutdownTimeoutMs: number;
}
