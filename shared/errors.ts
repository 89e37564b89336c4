// One error class for everything burrow reports, with a stable `code` to switch on
// (like undici's errors): callers never parse messages.

export type BurrowErrorCode =
  | 'unreachable' // could not connect to the server (refused, unknown host, timeout)
  | 'refused' // the server answered ERR; `reason` holds its reason word
  | 'protocol' // the peer sent something the protocol does not allow
  | 'closed' // the connection closed before the exchange completed
  | 'timeout' // the peer did not answer within its deadline
  | 'line-too-long' // the peer sent a line over MAX_LINE_LENGTH
  | 'listen-failed' // the server could not open one of its own ports
  | 'local-unavailable' // the client could not connect to the local service
  | 'over-limit' // visitors turned away: the client already serves its most connections
  | 'lease-file' // the client could not read or write its lease file (it goes on without)
  | 'tls'; // TLS failed for a reason retrying cannot fix: certificate, pin, or a peer without TLS

export class BurrowError extends Error {
  override readonly name = 'BurrowError';
  /** For `refused`: the reason word of the server's ERR reply. */
  readonly reason: string | undefined;

  constructor(
    readonly code: BurrowErrorCode,
    message: string,
    options: { reason?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.reason = options.reason;
  }
}

/** The errno-style code of a Node system error (`ECONNREFUSED`, ...), if it has one. */
export function systemCode(error: unknown): string | undefined {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

/** A short human description of a system error, without a stack. */
export function describe(error: unknown): string {
  const code = systemCode(error);
  const friendly: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EADDRINUSE: 'address already in use',
    EACCES: 'permission denied',
    EADDRNOTAVAIL: 'address not available',
    ENOTFOUND: 'host not found',
    ETIMEDOUT: 'timed out',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    EPIPE: 'connection closed',
  };
  if (code !== undefined && friendly[code] !== undefined) return friendly[code];
  return error instanceof Error ? error.message : String(error);
}
