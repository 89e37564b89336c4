// Turns the flags and BURROW_* variables of `burrow server` into library options, and those
// of both commands' output (cli/client-options.ts does the client's). The fallbacks are the
// library's own defaults, SERVER_DEFAULTS. Pure, so it is tested without processes.
import {
  parseMetricsAddress,
  protocol,
  SERVER_DEFAULTS,
  type Limits,
  type MetricsOptions,
  type ServerOptions,
} from '../index.ts';
import { flagOn, raw, type Env, type RawArgs } from './args.ts';
import { UsageError } from './usage-error.ts';
import { count, host, liveness, portFlag, seconds } from './values.ts';

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

export interface ServerCliOptions {
  server: ServerOptions;
  trace: boolean;
}

export function resolveServerOptions(args: RawArgs, env: Env): ServerCliOptions {
  const range = raw(args, env, 'port-range');
  const portRange = range === undefined ? SERVER_DEFAULTS.portRange : protocol.parsePortRange(range.text);
  if (portRange === undefined) {
    throw new UsageError(`${range?.source}: "${range?.text}" is not a port range like 1024-65535`);
  }
  const bind = host(args, env, 'bind');
  return {
    server: {
      // 0 lets the system pick a free port (printed at start): handy for tests.
      controlPort: portFlag(args, env, 'control-port', SERVER_DEFAULTS.controlPort, true),
      dataPort: portFlag(args, env, 'data-port', SERVER_DEFAULTS.dataPort, true),
      bind: bind === undefined || bind === '' ? undefined : bind,
      portRange,
      visitorTimeoutMs: seconds(args, env, 'visitor-timeout', SERVER_DEFAULTS.visitorTimeoutMs),
      handshakeTimeoutMs: seconds(args, env, 'handshake-timeout', SERVER_DEFAULTS.handshakeTimeoutMs),
      leaseGraceMs: seconds(args, env, 'lease-grace', SERVER_DEFAULTS.leaseGraceMs, true),
      ...liveness(args, env, SERVER_DEFAULTS),
      ...Object.fromEntries(
        Object.entries(LIMIT_FLAGS).map(([flag, key]) => [key, count(args, env, flag, SERVER_DEFAULTS[key])]),
      ),
    },
    trace: flagOn(args, env, 'trace'),
  };
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
