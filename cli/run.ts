// What `burrow server` and `burrow client` do once their options are known: start the
// library, print the few lines a user needs, and stop cleanly on a signal.
import { BurrowClient, type ClientOptions, type OpenTunnel } from '../client/client.ts';
import { BurrowError } from '../shared/errors.ts';
import { formatTrace, type TraceEvent } from '../shared/trace.ts';
import { BurrowServer } from '../server/server.ts';
import { resolveClientOptions, resolveServerOptions, type RawArgs } from './options.ts';
import { loadClientTls, loadSecret, loadServerTls, resolveClientSecurity, resolveServerSecurity, SHORT_SECRET, type LoadedServerTls } from './security.ts';
import { throttled } from './throttle.ts';

type Env = Record<string, string | undefined>;

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`burrow: ${line}\n`);
const printTrace = (event: TraceEvent): void => void process.stderr.write(`${formatTrace(event)}\n`);
/** Repeated warnings: at most 10 a minute. */
const warnings = (): ((line: string) => void) => throttled(err, 10, 60_000);

function warnIfShort(secret: string | undefined): void {
  if (secret !== undefined && secret.length < SHORT_SECRET) {
    err(`warning: the secret is only ${secret.length} characters; without TLS, anyone who records a handshake can try to guess it offline. Use 32 random characters (openssl rand -base64 32).`);
  }
}

/** Expected failures (a BurrowError) are one line on stderr and exit code 1; anything
 * else is a bug, and its stack is worth seeing. */
function failure(error: unknown): number {
  if (error instanceof BurrowError) {
    err(error.message);
    return 1;
  }
  throw error;
}

/** Resolves on the first SIGINT/SIGTERM; a second one exits at once. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(signal);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

export async function runServer(args: RawArgs, env: Env): Promise<number> {
  const { server: options, trace } = resolveServerOptions(args, env);
  const security = resolveServerSecurity(args, env);
  let server: BurrowServer;
  let tls: LoadedServerTls | undefined;
  try {
    const secret = await loadSecret(security.secret);
    tls = await loadServerTls(security.tls);
    warnIfShort(secret);
    server = new BurrowServer({ ...options, secret, tls: tls?.options });
    if (trace) server.on('trace', printTrace);
    await server.listen();
  } catch (error) {
    return failure(error);
  }
  const range = options.portRange ? `${options.portRange.min}-${options.portRange.max}` : '';
  const where = options.bind ? `${options.bind} ` : '';
  out(`burrow server listening on ${where}control port ${server.controlPort}, data port ${server.dataPort}; public ports ${range}`);
  if (tls) {
    if (tls.createdIn !== undefined) err(`created a self-signed TLS certificate in ${tls.createdIn}`);
    out(`TLS certificate SHA-256 fingerprint: ${tls.fingerprint}`);
  }
  if (server.secret === undefined) {
    err('notice: no secret is set, so anyone who can reach this server can expose ports through it. Set one with BURROW_SECRET or --secret-file (docs/SECURITY.md).');
  }
  const refused = warnings();
  server.on('refused', ({ conn, address, reason, message }) => refused(`refused ${conn} from ${address}: ${message} (${reason})`));
  await untilSignal();
  const { clients } = server.stats();
  err(`shutting down: told ${clients} client(s) to reconnect later; open connections get ${seconds(server.limits.shutdownTimeoutMs)} to finish (signal again to stop now)`);
  await server.close();
  return 0;
}

export async function runClient(args: RawArgs, env: Env): Promise<number> {
  const { client: resolved, trace } = resolveClientOptions(args, env);
  const security = resolveClientSecurity(args, env);
  let client: BurrowClient;
  let options: ClientOptions;
  try {
    const secret = await loadSecret(security.secret);
    warnIfShort(secret);
    options = { ...resolved, secret, tls: await loadClientTls(security.tls) };
    client = new BurrowClient(options);
    if (trace) client.on('trace', printTrace);
    await client.start();
  } catch (error) {
    return failure(error);
  }
  const forwarding = (tunnel: OpenTunnel): void => out(`Forwarding ${tunnel.url} -> ${tunnel.localHost}:${tunnel.localPort}`);
  client.tunnels.forEach(forwarding);
  // One line per state change, on stderr; a new public address also goes to stdout.
  const warn = warnings();
  client.on('warning', (warning) => warn(`warning: ${warning.message}`));
  client.on('disconnected', (error) => err(`lost the server: ${error.message}`));
  client.on('reconnecting', ({ attempt, delayMs }) => err(`reconnecting in ${seconds(delayMs)} (attempt ${attempt})`));
  client.on('reconnected', ({ moved }) => {
    err(moved.length === 0 ? 'reconnected; same public address' : 'reconnected; the old public port was taken:');
    for (const { tunnel } of moved) forwarding(tunnel);
  });
  const closed = new Promise<BurrowError | undefined>((resolve) => client.once('close', resolve));
  const ended = await Promise.race([untilSignal(), closed]);
  if (ended instanceof BurrowError) {
    await client.destroy();
    err(ended.message);
    return 1;
  }
  err(`closing; open connections get ${seconds(options.shutdownTimeoutMs ?? 0)} to finish (signal again to stop now)`);
  await client.close();
  return 0;
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;
