// Reading flags and BURROW_* variables. One vocabulary: `--control-port` is
// `BURROW_CONTROL_PORT` is `controlPort`. A flag wins over its variable, which wins over the
// default; of two settings that exclude each other, a flag wins over a variable too (see
// keepFirst). Pure, so it is tested without processes.
import path from 'node:path';
import createDebug from 'debug';
import { UsageError } from './usage-error.ts';

/** The environment variable behind a flag: `control-port` → `BURROW_CONTROL_PORT`. */
export const envName = (flag: string): string => `BURROW_${flag.toUpperCase().replace(/-/g, '_')}`;

export type Env = Record<string, string | undefined>;
/** What yargs hands us: strings as typed (we validate them ourselves), unset when absent. */
export type RawArgs = Record<string, unknown>;

/** A setting as given: its text, and where it came from (`--flag` or `BURROW_FLAG`). */
export type Source = { text: string; source: string };

/** The flag's value, else its environment variable's, else undefined; with its source.
 * `spelled`: the name the command gives the flag (`burrow local` says --to for --server);
 * the variable keeps the flag's own name. */
export function raw(args: RawArgs, env: Env, flag: string, spelled = flag): Source | undefined {
  const value = args[spelled];
  if (value !== undefined && value !== null) {
    const last: unknown = Array.isArray(value) ? value[value.length - 1] : value; // a repeated flag: the last wins
    return { text: String(last), source: `--${spelled}` };
  }
  const fromEnv = env[envName(flag)];
  if (fromEnv !== undefined && fromEnv !== '') return { text: fromEnv, source: envName(flag) };
  return undefined;
}

/** A flag that may repeat, one value per tunnel (its variable: comma-separated values). */
export function perTunnel(args: RawArgs, env: Env, flag: string, spelled = flag): Source[] {
  const value = args[spelled];
  if (value !== undefined && value !== null)
    return (Array.isArray(value) ? value : [value]).map((v) => ({ text: String(v), source: `--${spelled}` }));
  const fromEnv = env[envName(flag)];
  return fromEnv ? fromEnv.split(',').map((text) => ({ text, source: envName(flag) })) : [];
}

/** A flag, not a variable: raw() names a flag's source `--flag`, a variable's `BURROW_X`. */
export const isFlag = (source: string): boolean => source.startsWith('--');

export function flagOn(args: RawArgs, env: Env, flag: string, fallback = false): boolean {
  if (args[flag] !== undefined) return args[flag] === true;
  const text = env[envName(flag)];
  const value = text?.toLowerCase();
  if (value === undefined || value === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new UsageError(`${envName(flag)}: "${text}" is not one of 1/0, true/false, yes/no, on/off`);
}

/** What a setting's choices are logged on: the command's own namespace. */
const debug = { server: createDebug('burrow:server'), client: createDebug('burrow:client') } as const;

/** One of two settings that exclude each other: its source, and how a debug line names it
 * (its source unless given; never a secret's value). */
export interface Setting {
  source: string;
  label?: string;
}

/** Two settings that exclude each other (or disagree). Both flags, or both variables: the
 * user said both in one place, so it is a usage error (`conflict`). A flag and a variable:
 * the flag wins, as over its own variable (the variable may come from a shared .env or a
 * unit's Environment=); the variable is ignored, with a debug line. True: keep `first`. */
export function keepFirst(
  first: Setting,
  second: Setting,
  conflict: () => string,
  command: 'server' | 'client',
): boolean {
  const firstIsFlag = isFlag(first.source);
  if (firstIsFlag === isFlag(second.source)) throw new UsageError(conflict());
  const [kept, ignored] = firstIsFlag ? [first, second] : [second, first];
  debug[command](
    'ignoring %s, given with %s: a flag wins over a variable',
    ignored.label ?? ignored.source,
    kept.label ?? kept.source,
  );
  return firstIsFlag;
}

/** burrow's own state directory: `$XDG_STATE_HOME/burrow`, else `$HOME/.local/state/burrow`;
 * undefined when neither is an absolute path (XDG: a relative one is to be ignored). */
export function stateDir(env: Env): string | undefined {
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'burrow');
  const home = env.HOME;
  if (home !== undefined && path.isAbsolute(home)) return path.join(home, '.local', 'state', 'burrow');
  return undefined;
}
