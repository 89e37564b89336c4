// Turns flags and BURROW_* environment variables into library options. One vocabulary:
// `--control-port` is `BURROW_CONTROL_PORT` is `controlPort`. A flag wins over its
// variable, which wins over the default. Pure, so it is tested without processes.
import net from 'node:net';
import path from 'node:path';
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
export function raw(args: RawArgs, env: Env, flag: string, spelled = flag): { text: string; source: string } | undefined {
  const value = args[spelled];
  if (value !== undefined && value !== null) {
    const last = Array.isArray(value) ? value[value.length - 1] : value; // a repeated flag: the last wins
    return { text: String(last), source: `--${spelled}` };
  }
  const fromEnv = env[envName(flag)];
  if (fromEnv !== undefined && fromEnv !== '') return { text: fromEnv, source: envName(flag) };
  return undefined;
}

/** A host name or address. burrow prints IPv6 as `[::1]:41234`, so a user may type `[::1]`
 * back: the brackets come off. Any other bracket is a mistake (ports have their own flags). */
function host(args: RawArgs, env: Env, flag: string): string | undefined {
  const value = raw(args, env, flag);
  if (value === undefined) return undefined;
  const host = unbracket(value.text);
  if (!/[[\]]/.test(host) && (host === value.text || net.isIPv6(host))) return host;
  throw new UsageError(`${value.source}: "${value.text}" is not a host name or address (an IPv6 address may be written ::1 or [::1]; ports have their own flags)`);
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
    throw new UsageError(`${remoteList.length} remote ports for ${localPorts.length} local port(s): give at most one per local port`);
  }
  const remotePorts = remoteList.map((r) => port(r.text, r.source, true));
  const proxyProtocols = proxyProtocolsFor(localPorts.length, perTunnel(args, env, 'proxy-protocol'));
  const { server, controlPort } = serverAndControlPort(args, env, spelling.server);

  return {
    client: {
      tunnels: localPorts.map((localPort, i) => {
        const proxyProtocol = proxyProtocols[i];
        return proxyProtocol === undefined ? { localPort, remotePort: remotePorts[i] ?? 0 } : { localPort, remotePort: remotePorts[i] ?? 0, proxyProtocol };
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

/** The accepted forms of a server address, for messages and --help. */
export const SERVER_FORMS = 'HOST, HOST:PORT, [IPv6]:PORT or tcp://HOST[:PORT]';

export interface ServerAddress {
  host: string;
  /** The control port, when the address names one. */
  port?: number;
}

/** Host names as DNS has them (letters, digits, `-`, `.`, and `_` as some networks use). */
const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** A server address the way people type it: `relay`, `relay:7835`, `[2001:db8::1]:7835`,
 * `::1`, `[::1]`, `tcp://relay:7835`, `tcp://[::1]:7835`. A port in it is the control port.
 * Anything else (another scheme, a path, no host, a bad port) is a usage error that shows
 * the forms: a typo must not become a DNS lookup of "[relay:7835]". */
export function parseServerAddress(text: string, source = '--server'): ServerAddress {
  const fail = (why: string): never => {
    throw new UsageError(`${source}: "${text}" is not a server address (${why}); give ${SERVER_FORMS}, where PORT is the control port`);
  };
  let rest = text.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  if (scheme) {
    const name = scheme[1] ?? '';
    if (name.toLowerCase() !== 'tcp') fail(`${name}:// is not burrow's protocol; only tcp:// is`);
    rest = rest.slice(scheme[0].length);
    if (rest.endsWith('/')) rest = rest.slice(0, -1); // a URL copied with its slash: no path yet
    if (!rest.startsWith('[') && net.isIPv6(rest)) fail('in a URL an IPv6 address goes in brackets, like tcp://[::1]:7835');
  }
  if (rest.includes('/')) fail('a path has no meaning here');
  if (rest === '') fail('no host');
  if (net.isIPv6(rest)) return { host: rest }; // bare: every colon is the address's
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^[\]]*)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
    if (host === '') fail('no host');
    if (!net.isIPv6(host)) fail('only an IPv6 address goes in brackets');
  } else {
    if (/[[\]]/.test(rest)) fail('unbalanced brackets');
    const colons = rest.split(':').length - 1;
    if (colons > 1) fail('an IPv6 address with a port goes in brackets, like [::1]:7835');
    const colon = rest.indexOf(':');
    host = colon === -1 ? rest : rest.slice(0, colon);
    portText = colon === -1 ? undefined : rest.slice(colon + 1);
    if (host === '') fail('no host');
    // Digits and dots must make an IPv4 address, not a "host name" such as 300.1.1.1.
    const valid = /^[0-9.]+$/.test(host) ? net.isIPv4(host) : HOST_NAME.test(host);
    if (!valid) fail(`${host} is not a host name or address`);
  }
  if (portText === undefined) return { host };
  if (portText === '') fail('no port after the colon');
  if (!/^[0-9]+$/.test(portText)) fail(`${portText} is not a port number`);
  const port = Number(portText);
  if (!(port >= 1 && port <= 65535)) fail(`port ${portText} is not in 1-65535`);
  return { host, port };
}

/** --server (or BURROW_SERVER) and the control port. A port in the address is the control
 * port; --control-port (or BURROW_CONTROL_PORT) may say it too, but not differently. */
function serverAndControlPort(args: RawArgs, env: Env, spelled = 'server'): { server: ServerAddress | undefined; controlPort: number } {
  const given = raw(args, env, 'server', spelled);
  const server = given === undefined ? undefined : parseServerAddress(given.text, given.source);
  const flag = raw(args, env, 'control-port');
  const controlPort = flag === undefined ? (server?.port ?? DEFAULT_CONTROL_PORT) : port(flag.text, flag.source);
  if (given !== undefined && server?.port !== undefined && server.port !== controlPort) {
    throw new UsageError(`${given.source} "${given.text}" says control port ${server.port}, ${flag?.source} says ${controlPort}: give the port once`);
  }
  return { server, controlPort };
}

/** Where the client keeps its lease tokens: --state-file, else BURROW_STATE_FILE (a
 * relative path from the working directory), else the default; `--no-state-file` (yargs
 * hands us false) keeps none. An empty variable counts as unset, as everywhere. */
function stateFile(args: RawArgs, env: Env): string | undefined {
  const flag = args['state-file'];
  const last = Array.isArray(flag) ? flag[flag.length - 1] : flag; // a repeated flag: the last wins
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
  if (value !== undefined && value !== null) return (Array.isArray(value) ? value : [value]).map((v) => ({ text: String(v), source: `--${spelled}` }));
  const fromEnv = env[envName(flag)];
  return fromEnv ? fromEnv.split(',').map((text) => ({ text, source: envName(flag) })) : [];
}

/** `--proxy-protocol v1|v2|none`: one value for every tunnel, or exactly one per local port. */
function proxyProtocolsFor(tunnels: number, values: { text: string; source: string }[]): (ProxyProtocolVersion | undefined)[] {
  if (values.length > 1 && values.length !== tunnels) {
    throw new UsageError(`${values.length} --proxy-protocol values for ${tunnels} local port(s): give one for all, or one per local port`);
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
  if (address === undefined) throw new UsageError(`${value.source}: "${value.text}" is not PORT, HOST:PORT or [IPv6]:PORT`);
  return address;
}

/** The commands, as the usage hint names them. */
export type CommandName = 'server' | 'client' | 'local';
export const COMMANDS: readonly CommandName[] = ['server', 'client', 'local'];

/** Edit distance where swapping two neighbours counts once (optimal string alignment):
 * `--remote-prot` is one slip from `--remote-port`, not two. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [];
    for (let j = 0; j <= b.length; j++) {
      if (i === 0 || j === 0) row.push(i + j);
      else {
        const diagonal = (rows[i - 1]?.[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
        let best = Math.min((rows[i - 1]?.[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, diagonal);
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (rows[i - 2]?.[j - 2] ?? 0) + 1);
        row.push(best);
      }
    }
    rows.push(row);
  }
  return rows[a.length]?.[b.length] ?? 0;
}

/** The known name `word` was probably meant to be: the nearest within a slip per three
 * letters, else the only one that ends in `-word` (`--fingerprint` → `--tls-fingerprint`).
 * Undefined when nothing is close, or two are equally close: a wrong guess is worse. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  if (word.startsWith('no-')) {
    const meant = suggest(word.slice(3), known); // --no-recconect → --no-reconnect
    return meant === undefined ? undefined : `no-${meant}`;
  }
  const candidates = known.filter((name) => name.length > 1 && name !== word);
  const limit = Math.max(1, Math.floor(word.length / 3));
  const scored = candidates.map((name) => ({ name, distance: editDistance(word, name) })).filter(({ distance }) => distance <= limit);
  const best = Math.min(...scored.map(({ distance }) => distance));
  const nearest = scored.filter(({ distance }) => distance === best);
  if (word.length >= 3 && nearest.length === 1) return nearest[0]?.name;
  const tails = candidates.filter((name) => name.endsWith(`-${word}`));
  return tails.length === 1 ? tails[0] : undefined;
}

/** `controlPort` → `control-port`: yargs takes either spelling of a flag. */
const kebab = (name: string): string => name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);

/** The flags in `tokens` (the command line as typed) that are not in `known`, as typed
 * (`--sever`, `-x`), each once. A known flag may also come as `--no-flag`, `--flag=value`
 * or in camelCase; everything after `--` is an argument. */
export function unknownFlags(tokens: readonly string[], known: readonly string[]): string[] {
  const names = new Set(known);
  const isKnown = (name: string): boolean => names.has(kebab(name)) || (name.startsWith('no-') && names.has(kebab(name.slice(3))));
  const unknown = new Set<string>();
  for (const token of tokens) {
    if (token === '--') break;
    const long = /^--([^=]+)/.exec(token);
    const short = /^-([A-Za-z]+)/.exec(token); // -p3000 is -p with a value, as yargs reads it
    if (long) {
      if (!isKnown(long[1] ?? '')) unknown.add(`--${long[1]}`);
    } else if (short) {
      for (const letter of short[1] ?? '') if (!names.has(letter)) unknown.add(`-${letter}`);
    }
  }
  return [...unknown];
}

/** Flags of other tools, as the commands know them: bore's --to is our --server (and
 * the other way round in `burrow local`). */
const HABITS: Record<CommandName, Record<string, string>> = {
  server: {},
  client: { to: 'server' },
  local: { server: 'to', 'remote-port': 'port' },
};

/** `--sever (did you mean --server?)`, or just `--bogus`. */
function withSuggestion(flag: string, command: CommandName | undefined, known: readonly string[]): string {
  const name = flag.replace(/^--?/, '');
  const meant = (command === undefined ? undefined : HABITS[command][kebab(name)]) ?? (flag.startsWith('--') ? suggest(kebab(name), known) : undefined);
  return meant === undefined ? flag : `${flag} (did you mean --${meant}?)`;
}

export interface UsageContext {
  /** The command yargs was running, if it got that far. */
  command: CommandName | undefined;
  /** The command line as typed (without `node burrow`). */
  tokens: readonly string[];
  /** Every flag (and single-letter alias) the command, or the top level, knows. */
  known: readonly string[];
}

/** What to say for a mistake yargs found (`message`, in its words): the same, but in ours
 * where we can say more. An unknown flag gets its likely meaning; `burrow client --port
 * 3000` (localtunnel's habit) is told how ports are given; a missing local port gets an
 * example; an unknown command gets the nearest one. */
export function explainUsage(message: string, { command, tokens, known }: UsageContext): string {
  const unknown = unknownFlags(tokens, known);
  if (command === 'client') {
    const portFlag = unknown.find((flag) => flag === '--port' || flag === '-p' || flag.startsWith('--port='));
    if (portFlag !== undefined) {
      const others = unknown.filter((flag) => flag !== portFlag).map((flag) => withSuggestion(flag, command, known));
      const rest = others.length === 0 ? '' : `; unknown ${others.length === 1 ? 'option' : 'options'} ${others.join(', ')}`;
      return `give the local port as an argument: burrow client 3000 (${portFlag} is not a flag of burrow client; --remote-port asks for a public port)${rest}`;
    }
  }
  if (unknown.length > 0) return `unknown ${unknown.length === 1 ? 'option' : 'options'} ${unknown.map((flag) => withSuggestion(flag, command, known)).join(', ')}`;
  if (command === undefined) {
    const word = tokens.find((token) => !token.startsWith('-'));
    if (word !== undefined && !(COMMANDS as readonly string[]).includes(word)) {
      const meant = suggest(word, COMMANDS);
      return `unknown command ${word} (${meant === undefined ? `give ${COMMANDS.slice(0, -1).join(', ')} or ${COMMANDS.at(-1)}` : `did you mean ${meant}?`})`;
    }
  }
  if (message.startsWith('Not enough non-option arguments')) {
    if (command === 'client') return 'give the local port(s) to expose as arguments: burrow client 3000 [5432 ...]';
    if (command === 'local') return 'give the local port as an argument: burrow local 3000 --to relay.example.com';
  }
  // Arguments beyond the command's own (no unknown flag: those were answered above).
  const extra = /^Unknown arguments?: (.*)$/.exec(message)?.[1];
  if (extra !== undefined) {
    const what = `unexpected ${extra.includes(',') ? 'arguments' : 'argument'} ${extra}`;
    if (command === 'server') return `${what}: burrow server takes none (its ports are flags: --control-port, --data-port)`;
    if (command === 'local') return `${what}: burrow local exposes one port (burrow client 3000 4000 exposes several)`;
  }
  return message;
}
