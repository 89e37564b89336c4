// What `burrow server` and `burrow client` do once their options are known: start the
// library, report what happens (cli/output.ts: as text or JSON lines), and stop cleanly on
// a signal.
import {
  BurrowClient,
  BurrowError,
  BurrowServer,
  startInspector,
  startMetrics,
  type ClientOptions,
  type Inspector,
  type MetricsEndpoint,
  type TraceEvent,
} from '../index.ts';
import { resolveClientOptions, type Spelling } from './client-options.ts';
import type { Env, RawArgs } from './args.ts';
import { inFlags, type Side } from './flag-names.ts';
import { loadAcmeCa, loadHttps, resolveHttpServer, type HttpServerPlan } from './http-options.ts';
import { LETS_ENCRYPT, pageEntry, requestEntry, type HttpListening } from './http-output.ts';
import { resolveInspect } from './inspect.ts';
import { resolveMetricsAddress, resolveOutputOptions, resolveServerOptions, type OutputCliOptions } from './options.ts';
import { useColour } from './format.ts';
import { connectionEntry, lostServer, openRelay, problem, shortSecret, tunnelEvent } from './output.ts';
import { createReporter, type Reporter } from './reporter.ts';
import {
  loadClientTls,
  loadSecret,
  loadServerTls,
  resolveClientSecurity,
  resolveServerSecurity,
  SHORT_SECRET,
  type LoadedServerTls,
} from './security.ts';

/** Writes to stdout until its reader goes away (`burrow client 3000 | head -1`): then the
 * tunnel keeps serving, and its connection log goes nowhere instead of crashing it (EPIPE). */
function stdoutWriter(): (text: string) => void {
  let open = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    open = false;
  });
  return (text) => void (open && process.stdout.write(text));
}

/** Prints `side`'s events. The library's errors and warnings name its options (`tls.ca`):
 * here every message names the flags instead (cli/flag-names.ts). */
function reporter({ json }: OutputCliOptions, env: Env, side: Side): Reporter {
  const out = createReporter({
    json,
    colour: useColour(process.stderr.isTTY, env), // traces go to stderr
    stdout: stdoutWriter(),
    stderr: (text) => void process.stderr.write(text),
  });
  return { print: (event) => out.print(inFlags(event, side)), started: () => out.started() };
}

const traceTo =
  (out: Reporter) =>
  (event: TraceEvent): void =>
    out.print({ event: 'trace', ...event });

function warnIfShort(out: Reporter, secret: string | undefined): void {
  if (secret !== undefined && secret.length < SHORT_SECRET) out.print(shortSecret(secret.length));
}

/** Expected failures (a BurrowError) are one line on stderr (an "error" event with --json)
 * and exit code 1; anything else is a bug, and its stack is worth seeing. */
function failure(out: Reporter, error: unknown): number {
  if (error instanceof BurrowError) {
    out.print(problem('error', error));
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
  const out = reporter(resolveOutputOptions(args, env, 'server'), env, 'server');
  const security = resolveServerSecurity(args, env);
  const metricsAt = resolveMetricsAddress(args, env);
  const http = resolveHttpServer(args, env);
  let server: BurrowServer | undefined;
  let tls: LoadedServerTls | undefined;
  let metrics: MetricsEndpoint | undefined;
  try {
    const secret = await loadSecret(security.secret);
    tls = await loadServerTls(security.tls);
    warnIfShort(out, secret);
    const https = await loadHttps(http?.https);
    const acme = await loadAcmeCa(http);
    server = new BurrowServer({
      ...options,
      ...http?.options,
      ...https,
      ...(acme && { acme }),
      secret,
      tls: tls?.options,
    });
    if (trace) server.on('trace', traceTo(out));
    server.on('client', (event) => out.print({ event: 'client', ...event }));
    server.on('page', (page) => out.print(pageEntry(page)));
    server.on('certificate', (event) => out.print({ event: 'certificate', ...event }));
    await server.listen();
    if (metricsAt) metrics = await startMetrics(server, metricsAt);
  } catch (error) {
    await server?.destroy(); // it may be listening already: nothing must stay open
    return failure(out, error);
  }
  // Listen for signals before saying we are ready: whoever reads that line may signal at once.
  const signalled = untilSignal();
  const range = options.portRange ?? { min: 0, max: 0 }; // always set by resolveServerOptions
  out.print({
    event: 'listening',
    controlPort: server.controlPort,
    dataPort: server.dataPort,
    bind: options.bind ?? null,
    publicPorts: { min: range.min, max: range.max },
    tls: tls !== undefined,
    ...(tls ? { fingerprint: tls.fingerprint, names: tls.names } : {}),
    secret: server.secret !== undefined,
    ...(metrics ? { metrics: metrics.url } : {}),
    ...(http ? { http: httpListening(server, http.options) } : {}),
  });
  if (tls?.createdIn !== undefined)
    out.print({
      event: 'certificate-created',
      dir: tls.createdIn,
      ...(tls.replaced ? { replaced: tls.replaced } : {}),
    });
  if (server.secret === undefined) out.print(openRelay());
  out.started();
  server.on('refused', ({ conn, address, reason, message }) =>
    out.print({ event: 'refused', conn, address, reason, message }),
  );
  await signalled;
  out.print({ event: 'shutdown', clients: server.stats().clients, timeoutMs: server.limits.shutdownTimeoutMs });
  await server.close();
  await metrics?.close();
  return 0;
}

/** Where `server` serves HTTP tunnels: the ports it listens on (with port 0: the ones the
 * system picked). */
function httpListening(server: BurrowServer, { domain, acme, webSocket }: HttpServerPlan['options']): HttpListening {
  const { http, https } = server.httpPorts;
  return {
    domain,
    webSocket: webSocket !== false,
    ...(acme && { acme: { directory: acme.directoryUrl ?? LETS_ENCRYPT, cache: acme.cacheDir } }),
    ...(http === undefined ? {} : { httpPort: http }),
    ...(https === undefined ? {} : { httpsPort: https }),
  };
}

/** `spelling`: how the command names the client's flags (`burrow local`: bore's). */
export async function runClient(args: RawArgs, env: Env, spelling?: Spelling): Promise<number> {
  const { client: resolved, trace } = resolveClientOptions(args, env, spelling);
  const output = resolveOutputOptions(args, env, 'client');
  const out = reporter(output, env, 'client');
  const security = resolveClientSecurity(args, env);
  const inspect = resolveInspect(args, env);
  let client: BurrowClient;
  let options: ClientOptions;
  try {
    const secret = await loadSecret(security.secret);
    warnIfShort(out, secret);
    options = { ...resolved, secret, tls: await loadClientTls(security.tls) };
    client = new BurrowClient(options);
    if (trace) client.on('trace', traceTo(out));
    // Before start(): with several tunnels, a visitor of the first may come and go while
    // the last EXPOSE is still unanswered.
    if (!output.quiet) {
      client.on('connection-close', (closed) => out.print(connectionEntry(closed)));
      client.on('request', (request) => out.print(requestEntry(request)));
    }
    client.on('warning', (warning) => out.print(problem('warning', warning)));
    await client.start();
  } catch (error) {
    return failure(out, error);
  }
  const signalled = untilSignal(); // before the tunnel lines, as in runServer
  for (const tunnel of client.tunnels) out.print(tunnelEvent(tunnel));
  const inspector = await openInspector(client, inspect, out);
  out.started();
  // Without reconnecting, losing the server ends the client: that is said once, as the
  // error below, not also as a 'disconnected' line just before it.
  let lost: BurrowError | undefined;
  client.on('disconnected', (error) => {
    lost = error;
    if (options.reconnect !== false) out.print(problem('disconnected', error));
  });
  client.on('reconnecting', ({ attempt, delayMs }) => out.print({ event: 'reconnecting', attempt, delayMs }));
  client.on('reconnected', ({ moved }) => {
    const names = moved.some((move) => move.previousUrl !== undefined);
    out.print({ event: 'reconnected', moved: moved.length, ...(names && { names }) });
    for (const { tunnel, previousPort } of moved) out.print(tunnelEvent(tunnel, previousPort));
  });
  const closed = new Promise<BurrowError | undefined>((resolve) => client.once('close', resolve));
  const ended = await Promise.race([signalled, closed]);
  if (ended instanceof BurrowError) {
    await client.destroy();
    if (ended === lost) {
      out.print(lostServer(ended));
      return 1;
    }
    return failure(out, ended);
  }
  out.print({ event: 'shutdown', timeoutMs: options.shutdownTimeoutMs ?? 0 });
  await inspector?.close();
  await client.close();
  return 0;
}

/** The inspector, if asked for; one that cannot listen is a warning, not the end. */
async function openInspector(
  client: BurrowClient,
  at: ReturnType<typeof resolveInspect>,
  out: Reporter,
): Promise<Inspector | undefined> {
  if (!at) return undefined;
  try {
    const inspector = await startInspector(client, at);
    const moved = at.port !== undefined && at.port !== 0 && inspector.port !== at.port;
    out.print({ event: 'inspector', url: inspector.url, ...(moved && { busy: at.port }) });
    return inspector;
  } catch (error) {
    out.print(
      problem('warning', error instanceof BurrowError ? error : new BurrowError('listen-failed', String(error))),
    );
    return undefined;
  }
}
