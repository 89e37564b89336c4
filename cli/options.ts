// Turns flags and BURROW_* environment variables into library options. One vocabulary:
// `--control-port` is `BURROW_CONTROL_PORT` is `controlPort`. A flag wins over its
// variable, which wins over the default; of two settings that exclude each other, a flag
// wins over a variable too (see keepFirst). Pure, so it is tested without processes.
import net from 'node:net';
import path from 'node:path';
import createDebug from 'debug';
import type { ClientOptions } from '../client/client.ts';
import { DEFAULT_MAX_CONNECTIONS } from '../client/types.ts';
import {
  DEFAULT_CONTROL_PORT,
  DEFAULT_DATA_PORT,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_PORT_RANGE,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  parsePortRange,
  unbracket,
} from '../shared/protocol.ts';
import { DEFAULT_LIMITS, type Limits } from '../server/limits.ts';
import type { ServerOptions } from '../server/server.ts';
import { parseMetricsAddress, type MetricsOptions } from '../server/metrics.ts';
import { PROXY_PROTOCOL_VERSIONS, type ProxyProtocolVersion } from '../shared/proxy-header.ts';
import { parseServerAddress, type ServerAddress } from './address.ts';

/** A mistake in the command line or environment: printed as one line, exit code 2. */
export class UsageError extends Error {}

/** The environment variable behind a flag: `control-port` → `BURROW_CONTROL_PORT`. */
export const envName = (flag: string): string => `BURROW_${flag.toUpperCase().replace(/-/g, '_')}`;

export type Env = Record<string, string | undefined>;
/** What yargs hands us: strings as typed (we validate them ourselves), unset when absent. */
export type RawArgs = Record<string, unknown>;

/** The flag's value, else its environment variable's, else undefined; with its source.
 * `spelled`: the name the command gives the flag (`burrow local` says --to for --server);
 * the variable keeps the flag's own name. */
export function raw(
  args: RawArgs,
  env: Env,
  flag: string,
  spelled = flag,
): { text: string; source: string } | undefined {
  const value = args[spelled];
  if (value !== undefined && value !== null) {
    const last: unknown = Array.isArray(value) ? value[value.length - 1] : value; // a repeated flag: the last wins
    return { text: String(last), source: `--${spelled}` };
  }
  const fromEnv = env[envName(flag)];
  if (fromEnv !== undefined && fromEnv !== '') return { text: fromEnv, source: envName(flag) };
  return undefined;
}

/** A flag, not a variable: raw() names a flag's source `--flag`, a variable's `BURROW_X`. */
export const isFlag = (source: string): boolean => source.startsWith('--');

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

/** A host name or address. burrow prints IPv6 as `[::1]:41234`, so a user may type `[::1]`
 * back: the brackets come off. Any other bracket is a mistake (ports have their own flags). */
function host(args: RawArgs, env: Env, flag: string): string | undefined {
  const value = raw(args, env, flag);
  if (value === undefined) return undefined;
  const host = unbracket(value.text);
  if (!/[[\]]/.test(host) && (host === value.text || net.isIPv6(host))) return host;
  throw new UsageError(
    `${value.source}: "${value.text}" is not a host name or address (an IPv6 address may be written ::1 or [::1]; ports have their own flags)`,
  );
}

function port(text: string, source: string, allowZero = false): number {
  const value = /^[0-9]{1,5}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(value <= 65535) || (value === 0 && !allowZero)) {
    throw new UsageError(`${source}: "${text}" is not a port number (${allowZero ? 0 : 1}-65535)`);
  }
  return value;
}

function optionalPort(args: RawArgs, env: Env, flag: string): number | undefined {
  const value = raw(args, env, flag);
  return value === undefined ? undefined : port(value.text, value.source);
}

function portFlag(args: RawArgs, env: Env, flag: string, fallback: number, allowZero = false): number {
  const value = raw(args, env, flag);
  return value === undefined ? fallback : port(value.text, value.source, allowZero);
}

function seconds(args: RawArgs, env: Env, flag: string, fallbackMs: number, allowZero = false): number {
  const value = raw(args, env, flag);
  if (value === undefined) return fallbackMs;
  const number = value.text.trim() === '' ? NaN : Number(value.text);
  if (!Number.isFinite(number) || number < 0 || (number === 0 && !allowZero) || number > 86_400) {
    const range = allowZero ? '0 to 86400' : 'over 0, at most 86400';
    throw new UsageError(`${value.source}: "${value.text}" is not a number of seconds (${range})`);
  }
  return Math.round(number * 1000);
}

function count(args: RawArgs, env: Env, flag: string, fallback: number): number {
  const value = raw(args, env, flag);
  if (value === undefined) return fallback;
  const number = /^[0-9]{1,9}$/.test(value.text.trim()) ? Number(value.text.trim()) : NaN;
  if (!(number >= 1)) throw new UsageError(`${value.source}: "${value.text}" is not a whole number of at least 1`);
  return number;
}

/** Server limits settable from the command line: flag name → Limits key. */
export const LIMIT_FLAGS = {
  'max-tunnels-per-client': 'maxTunnelsPerClient',
  'max-tunnels': 'maxTunnels',
  'max-tunnels-per-ip': 'maxTunnelsPerIp',
  'max-pending-per-tunnel': 'maxPendingPerTunnel',
  'max-pending': 'maxPending',
  'max-connections-per-tunnel': 'maxConnectionsPerTunnel',
  'max-clients-per-ip': 'maxClientsPerIp',
  'max-handshakes-per-ip': 'maxHandshakesPerIp',
} as const satisfies Record<string, keyof Limits>;

export function flagOn(args: RawArgs, env: Env, flag: string, fallback = false): boolean {
  if (args[flag] !== undefined) return args[flag] === true;
  const text = env[envName(flag)];
  const value = text?.toLowerCase();
  if (value === undefined || value === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new UsageError(`${envName(flag)}: "${text}" is not one of 1/0, true/false, yes/no, on/off`);
}

/** Heartbeat and shutdown settings, shared by both commands. */
function liveness(args: RawArgs, env: Env) {
  return {
    heartbeatIntervalMs: seconds(args, env, 'heartbeat-interval', DEFAULT_HEARTBEAT_INTERVAL_MS),
    heartbeatTimeoutMs: seconds(args, env, 'heartbeat-timeout', DEFAULT_HEARTBEAT_TIMEOUT_MS),
    shutdownTimeoutMs: seconds(args, env, 'shutdown-timeout', DEFAULT_SHUTDOWN_TIMEOUT_MS, true),
  };
}

export interface ServerCliOptions {
  server: ServerOptions;
  trace: boolean;
}

export function resolveServerOptions(args: RawArgs, env: Env): ServerCliOptions {
  const range = raw(args, env, 'port-range');
  const portRange = range === undefined ? DEFAULT_PORT_RANGE : parsePortRange(range.text);
  if (portRange === undefined) {
    throw new UsageError(`${range?.source}: "${range?.text}" is not a port range like 1024-65535`);
  }
  const bind = host(args, env, 'bind');
  return {
    server: {
      // 0 lets the system pick a free port (printed at start): handy for tests.
      controlPort: portFlag(args, env, 'control-port', DEFAULT_CONTROL_PORT, true),
      dataPort: portFlag(args, env, 'data-port', DEFAULT_DATA_PORT, true),
      bind: bind === undefined || bind === '' ? undefined : bind,
      portRange,
      visitorTimeoutMs: seconds(args, env, 'visitor-timeout', DEFAULT_LIMITS.visitorTimeoutMs),
      handshakeTimeoutMs: seconds(args, env, 'handshake-timeout', DEFAULT_LIMITS.handshakeTimeoutMs),
      leaseGraceMs: seconds(args, env, 'lease-grace', DEFAULT_LIMITS.leaseGraceMs, true),
      ...liveness(args, env),
      ...Object.fromEntries(
        Object.entries(LIMIT_FLAGS).map(([flag, key]) => [key, count(args, env, flag, DEFAULT_LIMITS[key])]),
      ),
    },
    trace: flagOn(args, env, 'trace'),
  };
}

export interface ClientCliOptions {
  client: ClientOptions;
  trace: boolean;
}

/** How a command names the client's flags: `burrow local` (bore's words) says --to for
 * --server and --port for --remote-port. Errors name the flag as the user typed it. */
export type Spelling = Partial<Record<'server' | 'remote-port', string>>;
export const LOCAL_SPELLING = { server: 'to', 'remote-port': 'port' } as const satisfies Spelling;

export function resolveClientOptions(args: RawArgs, env: Env, spelling: Spelling = {}): ClientCliOptions {
  const positional = Array.isArray(args['local-port']) ? args['local-port'] : [args['local-port']];
  const localPorts = positional.filter((p) => p !== undefined).map((p) => port(String(p), 'local port'));
  if (localPorts.length === 0) throw new UsageError('give at least one local port to expose');

  // --remote-port may repeat: the Nth applies to the Nth local port (0 = any).
  const remoteList = perTunnel(args, env, 'remote-port', spelling['remote-port']);
  if (remoteList.length > localPorts.length) {
    throw new UsageError(
      `${remoteList.length} remote ports for ${localPorts.length} local port(s): give at most one per local port`,
    );
  }
  const remotePorts = remoteList.map((r) => port(r.text, r.source, true));
  const proxyProtocols = proxyProtocolsFor(localPorts.length, perTunnel(args, env, 'proxy-protocol'));
  const { server, controlPort } = serverAndControlPort(args, env, spelling.server);

  return {
    client: {
      tunnels: localPorts.map((localPort, i) => {
        const proxyProtocol = proxyProtocols[i];
        return proxyProtocol === undefined
          ? { localPort, remotePort: remotePorts[i] ?? 0 }
          : { localPort, remotePort: remotePorts[i] ?? 0, proxyProtocol };
      }),
      server: server?.host ?? 'localhost',
      localHost: host(args, env, 'local-host') ?? 'localhost',
      controlPort,
      // Unset unless given: the server names its data port (7836 if it does not).
      dataPort: optionalPort(args, env, 'data-port'),
      reconnect: flagOn(args, env, 'reconnect', true),
      maxConnections: count(args, env, 'max-connections', DEFAULT_MAX_CONNECTIONS),
      leaseFile: stateFile(args, env),
      ...liveness(args, env),
    },
    trace: flagOn(args, env, 'trace'),
  };
}

/** --server (or BURROW_SERVER) and the control port. A port in the address is the control
 * port; --control-port (or BURROW_CONTROL_PORT) may say it too. Two different ports are
 * settled by keepFirst: a usage error from the same kind of source, else the flag's. */
function serverAndControlPort(
  args: RawArgs,
  env: Env,
  spelled = 'server',
): { server: ServerAddress | undefined; controlPort: number } {
  const given = raw(args, env, 'server', spelled);
  const server = given === undefined ? undefined : parseServerAddress(given.text, given.source);
  const stated = raw(args, env, 'control-port');
  if (stated === undefined) return { server, controlPort: server?.port ?? DEFAULT_CONTROL_PORT };
  const inAddress = server?.port;
  if (given === undefined || inAddress === undefined) return { server, controlPort: port(stated.text, stated.source) };
  // The same port twice is no conflict. Compared as text first: a variable that loses to a
  // flag is ignored, so it need not be a valid port.
  const sameKind = isFlag(given.source) === isFlag(stated.source);
  if (stated.text.trim() === String(inAddress) || (sameKind && port(stated.text, stated.source) === inAddress))
    return { server, controlPort: inAddress };
  const addressKept = keepFirst(
    { source: given.source, label: `the port in ${given.source} "${given.text}"` },
    { source: stated.source, label: `${stated.source} "${stated.text}"` },
    () =>
      `${given.source} "${given.text}" says control port ${inAddress}, ${stated.source} says ${port(stated.text, stated.source)}: give the port once`,
    'client',
  );
  return { server, controlPort: addressKept ? inAddress : port(stated.text, stated.source) };
}

/** Where the client keeps its lease tokens: --state-file, else BURROW_STATE_FILE (a
 * relative path from the working directory), else the default; `--no-state-file` (yargs
 * hands us false) keeps none. An empty variable counts as unset, as everywhere. */
function stateFile(args: RawArgs, env: Env): string | undefined {
  const flag = args['state-file'];
  const last: unknown = Array.isArray(flag) ? flag[flag.length - 1] : flag; // a repeated flag: the last wins
  if (last === false) return undefined;
  const value = raw(args, env, 'state-file');
  if (value === undefined) return defaultStateFile(env);
  if (value.text.trim() === '') throw new UsageError(`${value.source}: "${value.text}" is not a file path`);
  return path.resolve(value.text);
}

/** `$XDG_STATE_HOME/burrow/leases.json`, else `$HOME/.local/state/burrow/leases.json`;
 * undefined when neither is an absolute path (XDG: a relative one is to be ignored). */
function defaultStateFile(env: Env): string | undefined {
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'burrow', 'leases.json');
  const home = env.HOME;
  if (home !== undefined && path.isAbsolute(home)) return path.join(home, '.local', 'state', 'burrow', 'leases.json');
  return undefined;
}

/** A flag that may repeat, one value per tunnel (its variable: comma-separated values). */
function perTunnel(args: RawArgs, env: Env, flag: string, spelled = flag): { text: string; source: string }[] {
  const value = args[spelled];
  if (value !== undefined && value !== null)
    return (Array.isArray(value) ? value : [value]).map((v) => ({ text: String(v), source: `--${spelled}` }));
  const fromEnv = env[envName(flag)];
  return fromEnv ? fromEnv.split(',').map((text) => ({ text, source: envName(flag) })) : [];
}

/** `--proxy-protocol v1|v2|none`: one value for every tunnel, or exactly one per local port. */
function proxyProtocolsFor(
  tunnels: number,
  values: { text: string; source: string }[],
): (ProxyProtocolVersion | undefined)[] {
  if (values.length > 1 && values.length !== tunnels) {
    throw new UsageError(
      `${values.length} --proxy-protocol values for ${tunnels} local port(s): give one for all, or one per local port`,
    );
  }
  const versions = values.map(({ text, source }) => {
    const version = text.trim();
    if (version === 'none') return undefined;
    const known = PROXY_PROTOCOL_VERSIONS.find((v) => v === version);
    if (known === undefined) throw new UsageError(`${source}: "${text}" is not v1, v2 or none`);
    return known;
  });
  return values.length === 1 ? Array<ProxyProtocolVersion | undefined>(tunnels).fill(versions[0]) : versions;
}

export interface OutputCliOptions {
  /** --json: every event as a JSON line on stdout. */
  json: boolean;
  /** --quiet (client): no connection log. */
  quiet: boolean;
}

/** How the command prints (kept apart from the library options above). `--quiet` is the
 * client's: the server has no connection log, and ignores BURROW_QUIET. */
export function resolveOutputOptions(args: RawArgs, env: Env, command: 'server' | 'client'): OutputCliOptions {
  return { json: flagOn(args, env, 'json'), quiet: command === 'client' && flagOn(args, env, 'quiet') };
}

/** `--metrics ADDR:PORT` (a bare port means 127.0.0.1: metrics stay off public interfaces
 * unless asked); undefined when not given. */
export function resolveMetricsAddress(args: RawArgs, env: Env): MetricsOptions | undefined {
  const value = raw(args, env, 'metrics');
  if (value === undefined) return undefined;
  const address = parseMetricsAddress(value.text);
  if (address === undefined)
    throw new UsageError(`${value.source}: "${value.text}" is not PORT, HOST:PORT or [IPv6]:PORT`);
  return address;
}
