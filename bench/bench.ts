// `npm run bench [-- options]`: burrow beside a direct connection, in one run, on
// 127.0.0.1 (issue 8). See bench/README.md for what each number means. This file is the
// entry point: options, the processes under test, each figure in turn, the report.
import path from 'node:path';
import { BenchChild, killChildren } from './children.ts';
import { HTTP_NAME, parseConfig, progress, USAGE, type Config, type Phase, type Side } from './config.ts';
import { raiseFdLimit } from './fd-limit.ts';
import { destroyOpenConnections } from './io.ts';
import { LANED, webSocketMasking, type LaneTunnels, type PerLane } from './lanes.ts';
import { machineInfo, watchMachine } from './machine.ts';
import { measureConcurrency } from './measure-concurrency.ts';
import { measureInspector } from './measure-inspector.ts';
import { httpProblems, measureHttp } from './measure-http.ts';
import { measureRoundTrips, measureSetup } from './measure-latency.ts';
import { measureThroughput } from './measure-throughput.ts';
import { jsonOf, tableText, writeJson } from './report.ts';
import type { Results } from './results.ts';
import { rowsOf } from './rows.ts';
import { SERVICES, type ServiceName } from './messages.ts';
import { ServicesProcess } from './services-process.ts';
import { TunnelProcesses } from './tunnel.ts';
import { killWrk, WRK_MISSING, wrkInstalled } from './wrk.ts';

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Runs one figure if it was asked for; a failure is recorded and the next figure runs. */
async function phase(config: Config, results: Results, name: Phase, run: () => Promise<void>): Promise<void> {
  if (!config.phases.has(name) || results.failures[name] !== undefined) return;
  progress(`— ${name}`);
  try {
    await run();
  } catch (error) {
    results.failures[name] = message(error);
    progress(`FAILED ${name}: ${message(error)}`);
    destroyOpenConnections();
  }
}

/** Figures 1, 2, 3, 5, 6, 7 and 8: the services process, and one relay and one client process
 * with a tunnel to each service (and, for figure 7 only, an HTTP tunnel by name to the
 * http service on the relay's HTTP port); with --websocket and figure 1, 2, 3 or 6, a
 * second relay and client joined over WebSocket, the `ws` lane (issue 18). */
async function sharedFigures(config: Config, results: Results, cpuProfDir: string | undefined): Promise<void> {
  const shared: Phase[] = ['throughput', 'setup', 'inspector', 'rtt', 'http', 'httpname'];
  if (!shared.some((p) => config.phases.has(p))) return;
  const laned = config.webSocket && LANED.some((p) => config.phases.has(p));
  let services: ServicesProcess | undefined;
  let tunnel: TunnelProcesses | undefined;
  let wsTunnel: TunnelProcesses | undefined;
  try {
    services = await ServicesProcess.start();
    const local = services.ports;
    const localPorts = SERVICES.map((name) => local[name]);
    const named = config.phases.has('httpname') ? { localPort: local.http, name: HTTP_NAME } : undefined;
    tunnel = await TunnelProcesses.start(localPorts, { cpuProfDir, httpTunnel: named, inspector: config.inspector });
    if (laned) {
      progress('a second relay and client, joined over WebSocket (--websocket): the ws lane');
      wsTunnel = await TunnelProcesses.start(localPorts, { cpuProfDir, inspector: config.inspector, transport: 'ws' });
    }
    const publicPorts = tunnel.publicPorts;
    const wsPorts = wsTunnel?.publicPorts;
    const both = (name: ServiceName): Record<Side, number> => ({
      direct: local[name],
      burrow: publicPorts[SERVICES.indexOf(name)] ?? 0,
    });
    const lanes = (name: ServiceName): PerLane<number> => ({
      ...both(name),
      ws: wsPorts && (wsPorts[SERVICES.indexOf(name)] ?? 0),
    });
    const tunnels: LaneTunnels = { direct: undefined, burrow: tunnel, ws: wsTunnel };
    const t = tunnel;
    const s = services;
    await phase(config, results, 'throughput', async () => {
      results.throughput = await measureThroughput(config, tunnels, { sink: lanes('sink'), source: lanes('source') });
    });
    await phase(config, results, 'setup', async () => {
      results.setup = await measureSetup(config, lanes('echo'), { services: s, tunnels });
    });
    await phase(config, results, 'inspector', async () => {
      results.inspector = await measureInspector(config, both('echo').burrow, t);
    });
    await phase(config, results, 'rtt', async () => {
      results.rtt = await measureRoundTrips(config, lanes('echo'));
    });
    if ((config.phases.has('http') || config.phases.has('httpname')) && !wrkInstalled()) {
      if (config.phases.has('http')) results.http = WRK_MISSING;
      if (config.phases.has('httpname')) results.httpName = WRK_MISSING;
      progress(WRK_MISSING);
    }
    await phase(config, results, 'http', async () => {
      if (results.http === undefined) results.http = await measureHttp(config, { label: 'http', ports: both('http') });
    });
    await phase(config, results, 'httpname', async () => {
      if (results.httpName !== undefined) return;
      const route = t.httpRoute;
      if (route === undefined) throw new Error('the relay has no HTTP tunnel by name');
      const ports = { direct: local.http, burrow: route.port };
      // What one and two hops of per-request HTTP routing in Node reach: bare node:http
      // proxies, each in a process of its own (an HTTP tunnel by name is two hops).
      const proxies: BenchChild[] = [];
      try {
        proxies.push(await BenchChild.start({ role: 'proxy', target: local.http }, cpuProfDir));
        proxies.push(await BenchChild.start({ role: 'proxy', target: proxies[0]?.ports[0] ?? 0 }, cpuProfDir));
        const [one = 0, two = 0] = proxies.map((proxy) => proxy.ports[0] ?? 0);
        const target = { label: 'httpname', ports, host: route.host, references: { 'one hop': one, 'two hops': two } };
        results.httpName = await measureHttp(config, target);
      } finally {
        for (const proxy of proxies) await proxy.close();
      }
      // Errors void the figure: a wrong route answers 404s, fast.
      const problem = httpProblems(results.httpName);
      if (problem !== undefined) throw new Error(problem);
    });
  } catch (error) {
    // Starting the services or the tunnel failed: none of these figures can be measured.
    for (const p of shared) if (config.phases.has(p)) results.failures[p] ??= message(error);
  } finally {
    destroyOpenConnections();
    await wsTunnel?.close();
    await tunnel?.close();
    await services?.close();
  }
}

/** Figure 4, last: it starts fresh processes for every run. */
async function concurrencyFigure(config: Config, results: Results): Promise<void> {
  await phase(config, results, 'conns', async () => {
    const fd = raiseFdLimit(Math.max(...config.conns));
    if (fd.note) progress(fd.note);
    for (const requested of config.conns) {
      const count = Math.min(requested, fd.maxConnections);
      results.conns.push(await measureConcurrency(config, count, requested, count < requested ? fd.note : undefined));
    }
  });
}

/** The exit code: 0 when every figure was measured (targets may be missed: the table
 * says which), 1 if a measurement failed, 2 for bad options. */
async function main(): Promise<number> {
  let config: Config | undefined;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${message(error)}\n${USAGE}\n`);
    return 2;
  }
  if (config === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const watch = watchMachine();
  const results: Results = {
    machine: machineInfo(),
    quietness: undefined,
    mode: config.quick ? 'quick' : 'full',
    throughput: undefined,
    setup: undefined,
    inspector: undefined,
    rtt: undefined,
    conns: [],
    http: undefined,
    httpName: undefined,
    webSocketMasking: config.webSocket ? webSocketMasking() : undefined,
    failures: {},
  };
  progress(`burrow bench (${results.mode}) at ${results.machine.commit}; progress on stderr, the table on stdout`);
  const cpuProfDir = config.cpuProf
    ? path.resolve('bench/results/profiles', results.machine.date.replace(/[:.]/g, '-'))
    : undefined;
  if (cpuProfDir) progress(`CPU profiles of the relay and client processes go to ${cpuProfDir}`);
  if (config.inspector) progress('the client runs its inspector (--inspector); nobody opens it');
  if (config.webSocket && !LANED.some((p) => config.phases.has(p)))
    progress(`--websocket adds rows to ${LANED.join(', ')} only, and none of them runs`);

  await sharedFigures(config, results, cpuProfDir);
  await concurrencyFigure(config, results);

  results.quietness = watch.stop(); // every child has exited: their CPU time is ours
  const rows = rowsOf(results, { setups: config.setups, rounds: config.rounds }, config.phases);
  const json = jsonOf(config, results, rows);
  writeJson(config.jsonOut, json);
  progress(`JSON written to ${config.jsonOut}`);
  process.stdout.write(`${config.json ? json : tableText(config, results, rows)}\n`);
  return Object.keys(results.failures).length > 0 ? 1 : 0;
}

// Whatever happens, no child process outlives the bench.
const cleanUp = (): void => {
  killWrk();
  killChildren();
};
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping\n`);
    cleanUp();
    destroyOpenConnections();
    process.exit(130);
  });
}

process.exitCode = await main();
