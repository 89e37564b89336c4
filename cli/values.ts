// The kinds of value a flag takes (hosts, ports, seconds, counts), each validated into what
// the library wants, with a usage error that names the flag as the user gave it. Pure.
import net from 'node:net';
import { protocol } from '../index.ts';
import { raw, type Env, type RawArgs } from './args.ts';
import type { LivenessDefaults } from './defaults.ts';
import { UsageError } from './usage-error.ts';

/** A host name or address. burrow prints IPv6 as `[::1]:41234`, so a user may type `[::1]`
 * back: the brackets come off. Any other bracket is a mistake (ports have their own flags). */
export function host(args: RawArgs, env: Env, flag: string): string | undefined {
  const value = raw(args, env, flag);
  if (value === undefined) return undefined;
  const host = protocol.unbracket(value.text);
  if (!/[[\]]/.test(host) && (host === value.text || net.isIPv6(host))) return host;
  throw new UsageError(
    `${value.source}: "${value.text}" is not a host name or address (an IPv6 address may be written ::1 or [::1]; ports have their own flags)`,
  );
}

export function port(text: string, source: string, allowZero = false): number {
  const value = /^[0-9]{1,5}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(value <= 65535) || (value === 0 && !allowZero)) {
    throw new UsageError(`${source}: "${text}" is not a port number (${allowZero ? 0 : 1}-65535)`);
  }
  return value;
}

export function optionalPort(args: RawArgs, env: Env, flag: string): number | undefined {
  const value = raw(args, env, flag);
  return value === undefined ? undefined : port(value.text, value.source);
}

export function portFlag(args: RawArgs, env: Env, flag: string, fallback: number, allowZero = false): number {
  const value = raw(args, env, flag);
  return value === undefined ? fallback : port(value.text, value.source, allowZero);
}

export function seconds(args: RawArgs, env: Env, flag: string, fallbackMs: number, allowZero = false): number {
  const value = raw(args, env, flag);
  if (value === undefined) return fallbackMs;
  const number = value.text.trim() === '' ? NaN : Number(value.text);
  if (!Number.isFinite(number) || number < 0 || (number === 0 && !allowZero) || number > 86_400) {
    const range = allowZero ? '0 to 86400' : 'over 0, at most 86400';
    throw new UsageError(`${value.source}: "${value.text}" is not a number of seconds (${range})`);
  }
  return Math.round(number * 1000);
}

export function count(args: RawArgs, env: Env, flag: string, fallback: number): number {
  const value = raw(args, env, flag);
  if (value === undefined) return fallback;
  const number = /^[0-9]{1,9}$/.test(value.text.trim()) ? Number(value.text.trim()) : NaN;
  if (!(number >= 1)) throw new UsageError(`${value.source}: "${value.text}" is not a whole number of at least 1`);
  return number;
}

/** Heartbeat and shutdown settings, which both commands have (each with its side's defaults). */
export function liveness(args: RawArgs, env: Env, defaults: LivenessDefaults): LivenessDefaults {
  return {
    heartbeatIntervalMs: seconds(args, env, 'heartbeat-interval', defaults.heartbeatIntervalMs),
    heartbeatTimeoutMs: seconds(args, env, 'heartbeat-timeout', defaults.heartbeatTimeoutMs),
    shutdownTimeoutMs: seconds(args, env, 'shutdown-timeout', defaults.shutdownTimeoutMs, true),
  };
}
