// Turns the flags and BURROW_* variables of `burrow client` (and `burrow local`, with bore's
// names for two of them) into library options; the fallbacks are the client's defaults
// (cli/defaults.ts). Pure, so it is tested without processes.
import path from 'node:path';
import {
  DEFAULT_WEBSOCKET_PING_MS,
  PROXY_PROTOCOL_VERSIONS,
  type ClientOptions,
  type ProxyProtocolVersion,
  type TunnelRequest,
} from '../index.ts';
import { parseServerAddress, type ServerAddress } from './address.ts';
import { flagOn, isFlag, keepFirst, perTunnel, raw, stateDir, type Env, type RawArgs, type Source } from './args.ts';
import { CLIENT_DEFAULTS } from './defaults.ts';
import { httpTunnelOptions, localPorts } from './http-tunnels.ts';
import { UsageError } from './usage-error.ts';
import { count, host, liveness, optionalPort, port, seconds } from './values.ts';

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
  const given = localPorts(
    positional.filter((p) => p !== undefined).map((p) => String(p)),
    args,
    env,
  );
  if (given.length === 0) throw new UsageError('give at least one local port to expose');
  // The TCP tunnels: --remote-port and --proxy-protocol are theirs (an HTTP tunnel shares
  // the relay's HTTP port, and its service reads the visitor's address in X-Forwarded-For).
  const tcp = given.filter((tunnel) => !tunnel.http).length;
  const http = given.length - tcp;
  const unit = http === 0 ? 'local port' : 'TCP port';

  // --remote-port may repeat: the Nth applies to the Nth (TCP) local port (0 = any).
  const remoteList = perTunnel(args, env, 'remote-port', spelling['remote-port']);
  if (remoteList.length > tcp) {
    const why = http === 0 ? '' : ' (an HTTP tunnel has no public port of its own)';
    throw new UsageError(`${remoteList.length} remote ports for ${tcp} ${unit}(s)${why}: give at most one per ${unit}`);
  }
  const remotePorts = remoteList.map((r) => port(r.text, r.source, true));
  const proxyProtocols = proxyProtocolsFor(tcp, perTunnel(args, env, 'proxy-protocol'), unit);
  const httpOptions = httpTunnelOptions(args, env, http);
  const { server, controlPort } = serverAndControlPort(args, env, spelling.server);
  let tcpIndex = 0;

  return {
    client: {
      tunnels: given.map(({ localPort, http: isHttp }): TunnelRequest => {
        if (isHttp) return { localPort, http: httpOptions };
        const i = tcpIndex++;
        const proxyProtocol = proxyProtocols[i];
        return proxyProtocol === undefined
          ? { localPort, remotePort: remotePorts[i] ?? 0 }
          : { localPort, remotePort: remotePorts[i] ?? 0, proxyProtocol };
      }),
      server: server?.host ?? CLIENT_DEFAULTS.server,
      ...webSocketOptions(args, env, server),
      localHost: host(args, env, 'local-host') ?? CLIENT_DEFAULTS.localHost,
      controlPort,
      // Unset unless given: the server names its data port (CLIENT_DEFAULTS.dataPort if it does not).
      dataPort: optionalPort(args, env, 'data-port'),
      reconnect: flagOn(args, env, 'reconnect', true),
      maxConnections: count(args, env, 'max-connections', CLIENT_DEFAULTS.maxConnections),
      leaseFile: stateFile(args, env),
      ...liveness(args, env, CLIENT_DEFAULTS),
    },
    trace: flagOn(args, env, 'trace'),
  };
}

/** A ws:// or wss:// server: the WebSocket transport, with --proxy and --websocket-ping.
 * Those two, and TLS flags with ws://, are usage errors without it. */
function webSocketOptions(
  args: RawArgs,
  env: Env,
  server: ServerAddress | undefined,
): Pick<ClientOptions, 'webSocket'> {
  const noProxy = args.proxy === false; // --no-proxy
  const proxy = noProxy ? undefined : raw(args, env, 'proxy');
  const ping = raw(args, env, 'websocket-ping');
  if (server?.webSocket === undefined) {
    const stray = proxy ?? ping;
    if (stray)
      throw new UsageError(
        `${stray.source} is for a relay reached over WebSocket: give --server wss://HOST (burrow's TCP ports do not go through HTTP proxies)`,
      );
    return {};
  }
  const url = server.webSocket;
  const tlsFlag = flagOn(args, env, 'tls')
    ? 'tls'
    : ['tls-ca', 'tls-fingerprint', 'tls-client-cert'].find((flag) => raw(args, env, flag));
  if (url.startsWith('ws://') && tlsFlag !== undefined)
    throw new UsageError(`--${tlsFlag} with ${url}: TLS over WebSocket is wss://, give --server wss://...`);
  for (const flag of ['control-port', 'data-port']) {
    const stated = raw(args, env, flag);
    if (stated)
      throw new UsageError(
        `${stated.source} has no meaning with ${url}: over WebSocket the relay's HTTP(S) port is all`,
      );
  }
  return {
    webSocket: {
      url,
      proxy: noProxy ? false : proxy === undefined ? undefined : proxyUrl(proxy),
      pingIntervalMs: seconds(args, env, 'websocket-ping', DEFAULT_WEBSOCKET_PING_MS),
    },
  };
}

/** --proxy as a URL: http:// or https://, with a host. */
function proxyUrl({ text, source }: Source): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '')
    throw new UsageError(`${source}: "${text}" is not an HTTP proxy URL: give http://[user:password@]HOST:PORT`);
  return text;
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
  if (stated === undefined) return { server, controlPort: server?.port ?? CLIENT_DEFAULTS.controlPort };
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
  if (value === undefined) {
    // $XDG_STATE_HOME/burrow/leases.json, else ~/.local/state/burrow/leases.json
    const dir = stateDir(env);
    return dir === undefined ? undefined : path.join(dir, 'leases.json');
  }
  if (value.text.trim() === '') throw new UsageError(`${value.source}: "${value.text}" is not a file path`);
  return path.resolve(value.text);
}

/** `--proxy-protocol v1|v2|none`: one value for every TCP tunnel, or exactly one per TCP
 * port (`unit` says which ports count, for messages). HTTP tunnels take none. */
function proxyProtocolsFor(tunnels: number, values: Source[], unit: string): (ProxyProtocolVersion | undefined)[] {
  if (values.length > 1 && values.length !== tunnels) {
    throw new UsageError(
      `${values.length} --proxy-protocol values for ${tunnels} ${unit}(s): give one for all, or one per ${unit}`,
    );
  }
  const versions = values.map(({ text, source }) => {
    const version = text.trim();
    if (version === 'none') return undefined;
    const known = PROXY_PROTOCOL_VERSIONS.find((v) => v === version);
    if (known === undefined) throw new UsageError(`${source}: "${text}" is not v1, v2 or none`);
    if (tunnels === 0)
      throw new UsageError(
        `${source} is for TCP tunnels: the local service of an HTTP tunnel finds the visitor's address in X-Forwarded-For`,
      );
    return known;
  });
  return values.length === 1 ? Array<ProxyProtocolVersion | undefined>(tunnels).fill(versions[0]) : versions;
}
