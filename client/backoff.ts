// When to try again after losing the server, and when not to.
import type { BurrowError } from '../shared/errors.ts';

export interface BackoffOptions {
  /** Delay before the first retry. Default 1 s. */
  initialDelayMs?: number;
  /** Longest delay between retries. Default 30 s. */
  maxDelayMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialDelayMs: 1_000, maxDelayMs: 30_000 };

/**
 * The wait before retry number `attempt` (0-based): doubling from `initialDelayMs`, capped
 * at `maxDelayMs`, with "equal jitter" (half fixed, half random) so that many clients that
 * lost the same server do not all come back in the same instant.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const { initialDelayMs, maxDelayMs } = { ...DEFAULT_BACKOFF, ...options };
  const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Refusals that the same request would meet again, however long we wait. */
const PERMANENT_REASONS = new Set([
  'port-out-of-range',
  'wrong-port',
  'bad-arguments',
  'unknown-verb',
  'bad-line',
  'line-too-long',
  'too-many-tunnels',
  'auth-required',
  'auth-failed',
  'auth-disabled',
  'tls-required',
  'bad-certificate',
  'http-not-enabled',
  'name-reserved',
]);

/** Whether retrying can fix `error` (a lost connection can; a port out of range, a wrong
 * secret or a certificate that fails its check cannot). */
export function isPermanent(error: BurrowError): boolean {
  if (error.code === 'tls') return true;
  return error.code === 'refused' && error.reason !== undefined && PERMANENT_REASONS.has(error.reason);
}
