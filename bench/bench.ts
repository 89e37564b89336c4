// `npm run bench [-- options]`: burrow side by side with a direct connection, in one run,
// on 127.0.0.1. See bench/README.md for what each number means.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startClient, startServer, type BurrowClient, type BurrowServer } from '../index.ts';
import { destroyOpenConnections, HOST, nowNs } from './io.ts';
import { isFromRelay, type FromRelay, type RelayReport, type ToRelay } from './relay-messages.ts';
import { echo, listenService, sink, source, type Service } from './services.ts';
import { forceGc, GcLog, mean, median, MemoryPeak, memoryNow, percentile, settleMemory, type GcStats, type MemorySnapshot } from './stats.ts';
import { concurrentEcho, connectionSetup, download, PingPong, upload } from './workloads.ts';

const MiB = 1024 * 1024;
const KiB = 1024;

// ---------------------------------------------------------------- options

const USAGE = `usage: npm run bench -- [options]
  --quick            small sizes, for a smoke run (a few seconds)
  --json             print one JSON object instead of the table
  --relay-process    run the relay server in a child process (reports its RSS/CPU apart)
  --mib N            throughput transfer size per run, MiB (default 256; quick 16)
  --repeat N         throughput and concurrency runs per side (default 5; quick 1)
  --rounds N         ping-pong round trips (default 5000; quick 500)
  --setups N         sequential connections for the setup test (default 500; quick 50)
  --conns N          concurrent connections (default 100; quick 20)
  --conn-kib N       bytes echoed per concurrent connection, KiB (default 1024; quick 256)
  --help`;

interface Config {
  quick: boolean;
  json: boolean;
  relayProcess: boolean;
  throughputMiB: number;
  repeat: number;
  pingPongRounds: number;
  pingPongBytes: number;
  setups: number;
  setupBytes: number;
  connections: number;
  connectionKiB: number;
}

function parseConfig(argv: string[]): Config | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'relay-process': { type: 'boolean', default: false },
      mib: { type: 'string' },
      repeat: { type: 'string' },
      rounds: { type: 'string' },
      setups: { type: 'string' },
      conns: { type: 'string' },
      'conn-kib': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick;
  const count = (name: string, text: string | undefined, full: number, small: number): number => {
    if (text === undefined) return quick ? small : full;
    const n = Number(text);
    if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(n)) throw new Error(`--${name} wants a positive integer, got '${text}'`);
    return n;
  };
  return {
    quick,
    json: values.json,
    relayProcess: values['relay-process'],
    throughputMiB: count('mib', values.mib, 256, 16),
    repeat: count('repeat', values.repeat, 5, 1),
    pingPongRounds: count('rounds', values.rounds, 5000, 500),
    pingPongBytes: 64,
    setups: count('setups', values.setups, 500, 50),
    setupBytes: 64,
    connections: count('conns', values.conns, 100, 20),
    connectionKiB: count('conn-kib', values['conn-kib'], 1024, 256),
  };
}

// ---------------------------------------------------------------- the relay

interface Relay {
  readonly where: 'in-process' | 'child-process';
  readonly controlPort: number;
  readonly dataPort: number;
  /** Starts a measurement window in the relay process (no-op in process). */
  reset(): Promise<void>;
  /** Ends it: the relay process's numbers, or undefined in process. */
  report(): Promise<RelayReport | undefined>;
  close(): Promise<void>;
}

async function inProcessRelay(): Promise<Relay> {
  const server: BurrowServer = await startServer({ controlPort: 0, dataPort: 0, bind: HOST });
  return {
    where: 'in-process',
    controlPort: server.controlPort,
    dataPort: server.dataPort,
    reset: () => Promise.resolve(),
    report: () => Promise.resolve(undefined),
    close: () => server.close(),
  };
}

/** Waits for the child's next message of `type`, at most `ms`. */
function nextMessage<T extends FromRelay['type']>(child: ChildProcess, type: T, ms: number): Promise<Extract<FromRelay, { type: T }>> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: unknown): void => {
      if (!isFromRelay(message) || message.type !== type) return;
      cleanup();
      resolve(message as Extract<FromRelay, { type: T }>);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`relay process exited (code ${code}) while waiting for '${type}'`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`relay process sent no '${type}' within ${ms} ms`));
    }, ms);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function childProcessRelay(): Promise<Relay> {
  const script = fileURLToPath(new URL('./relay-child.ts', import.meta.url));
  const child = fork(script, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  };
  child.on('error', (error) => process.stderr.write(`relay process: ${error.message}\n`));
  /** Sends a request and waits for its answer; rejects if the relay process is gone. */
  const ask = <T extends FromRelay['type']>(message: ToRelay, reply: T): Promise<Extract<FromRelay, { type: T }>> => {
    if (!child.connected) return Promise.reject(new Error('the relay process is gone'));
    const answer = nextMessage(child, reply, 10_000);
    child.send(message, () => {}); // a failed send surfaces as 'exit' or the deadline
    return answer;
  };
  let ready;
  try {
    ready = await nextMessage(child, 'ready', 20_000);
  } catch (error) {
    kill();
    throw error;
  }
  return {
    where: 'child-process',
    controlPort: ready.controlPort,
    dataPort: ready.dataPort,
    reset: async () => {
      await ask({ type: 'reset' }, 'reset-done');
    },
    report: () => ask({ type: 'report' }, 'report'),
    close: async () => {
      if (child.connected) child.send({ type: 'close' }, () => {});
      const timer = setTimeout(kill, 10_000); // it closes itself; this is only the backstop
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------- measurement

type Side = 'direct' | 'tunnel';
const SIDES: readonly Side[] = ['direct', 'tunnel'];
/** Latency and setup samples are taken in this many alternating blocks per side. */
const BLOCKS = 10;

interface Ports {
  sink: number;
  source: number;
  echo: number;
}

interface ThroughputRun {
  mibPerSec: number;
  ms: number;
  /** CPU time of this process per MiB moved, µs (user + system, all threads). */
  cpuUsPerMiB: number;
  /** Same for the relay process (child-process mode only). */
  relayCpuUsPerMiB: number | undefined;
  before: MemorySnapshot;
  peak: MemorySnapshot;
  /** arrayBuffers after a forced GC mid-run (undefined if the run was too short). */
  live: number | undefined;
  relayPeak: MemorySnapshot | undefined;
  relayLive: number | undefined;
}

interface SideSummary {
  mibPerSec: number;
  runsMibPerSec: number[];
  cpuUsPerMiB: number;
  /** CPU time / wall time of this process during the run: 1.0 = one core fully busy. */
  cpuCores: number;
  relayCpuUsPerMiB: number | undefined;
}

interface Percentiles {
  p50Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
  samples: number;
  /** GCs of this process during the measured rounds (warm-up excluded). */
  gc: GcStats;
}

interface Machine {
  cpus: number;
  /** 1-minute load average when the run started (includes earlier activity). */
  loadAverageAtStart: number;
  /** Average number of CPUs kept busy by other processes during the run (all CPU time
   * on the machine minus this process's and the relay process's). Near 0 on a quiet box. */
  otherProcessesCpus: number;
  /** Average number of CPUs the hypervisor gave to other guests while ours wanted them
   * (steal time, from /proc/stat; undefined where unavailable). */
  stolenCpus: number | undefined;
  wallSeconds: number;
}

interface Results {
  machine: Machine;
  throughput: Record<'upload' | 'download', Record<Side, SideSummary>>;
  latency: Record<Side, Percentiles>;
  setup: Record<Side, Percentiles>;
  concurrency: Record<Side, { ms: number; runsMs: number[] }>;
  memory: {
    before: MemorySnapshot;
    peak: Record<Side, MemorySnapshot>;
    /** Highest arrayBuffers left after a forced GC in the middle of a run. */
    liveArrayBuffers: Record<Side, number | undefined>;
    relayProcess:
      | { before: MemorySnapshot; peak: Record<Side, MemorySnapshot>; liveArrayBuffers: Record<Side, number | undefined> }
      | undefined;
  };
}

function progress(config: Config, text: string): void {
  if (!config.json) process.stderr.write(`  ${text}\n`);
}

function summarizeTimes(samples: number[], gc: GcStats): Percentiles {
  return {
    p50Us: percentile(samples, 50),
    p99Us: percentile(samples, 99),
    meanUs: mean(samples),
    maxUs: percentile(samples, 100),
    samples: samples.length,
    gc: { count: gc.count, pauseMs: round(gc.pauseMs, 2) },
  };
}

/** CPU time of the whole machine so far (all CPUs, every process), in µs. */
function machineBusyUs(): number {
  return os.cpus().reduce((sum, cpu) => sum + (cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq) * 1000, 0);
}

/** Steal and total ticks of all CPUs so far (Linux /proc/stat), or undefined. */
function stealTicks(): { steal: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (line.startsWith('cpu ') && fields.length === 8 && fields.every(Number.isFinite)) {
      return { steal: fields[7] ?? 0, total: fields.reduce((sum, x) => sum + x, 0) };
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/** CPU time of this process plus the relay process so far, in µs. */
async function ownCpuUs(relay: Relay): Promise<number> {
  const self = process.cpuUsage();
  const child = await relay.report();
  return self.user + self.system + (child?.totalCpuUs ?? 0);
}

async function run(config: Config, relay: Relay, ports: Record<Side, Ports>, gcLog: GcLog): Promise<Results> {
  const loadAverageAtStart = os.loadavg()[0] ?? Number.NaN;
  const wallStart = nowNs();
  const machineStart = machineBusyUs();
  const stealStart = stealTicks();
  const ownStart = await ownCpuUs(relay);
  const bytes = config.throughputMiB * MiB;
  const throughputDeadline = 30_000 + config.throughputMiB * 100; // fails below ~10 MiB/s
  const runs: Record<'upload' | 'download', Record<Side, ThroughputRun[]>> = {
    upload: { direct: [], tunnel: [] },
    download: { direct: [], tunnel: [] },
  };

  const throughputRun = async (kind: 'upload' | 'download', side: Side, size: number): Promise<ThroughputRun> => {
    await settleMemory();
    await relay.reset();
    const before = memoryNow();
    const peak = new MemoryPeak();
    peak.start();
    const cpuStart = process.cpuUsage();
    const port = kind === 'upload' ? ports[side].sink : ports[side].source;
    const ns = kind === 'upload' ? await upload(port, size, throughputDeadline) : await download(port, size, throughputDeadline);
    const cpu = process.cpuUsage(cpuStart);
    const top = peak.stop();
    const relayReport = await relay.report();
    const mib = size / MiB;
    return {
      mibPerSec: mib / (ns / 1e9),
      ms: ns / 1e6,
      cpuUsPerMiB: (cpu.user + cpu.system) / mib,
      relayCpuUsPerMiB: relayReport === undefined ? undefined : relayReport.cpuUs / mib,
      before,
      peak: top,
      live: peak.liveArrayBuffers,
      relayPeak: relayReport === undefined ? undefined : { rss: relayReport.peakRss, arrayBuffers: relayReport.peakArrayBuffers },
      relayLive: relayReport?.liveArrayBuffers ?? undefined,
    };
  };

  // Warm-up: every path once (JIT, socket buffers, the tunnel's first dial-backs).
  const warmBytes = Math.max(MiB, Math.min(32 * MiB, Math.floor(bytes / 4)));
  progress(config, `warm-up (${warmBytes / MiB} MiB each way, each side)`);
  for (const side of SIDES) {
    for (const kind of ['upload', 'download'] as const) await throughputRun(kind, side, warmBytes);
  }

  await settleMemory();
  await relay.reset(); // GCs the relay process too
  const before = memoryNow();
  const relayBefore = await relay.report();

  // Throughput: alternate which side goes first, so neither always runs on a warmer heap.
  for (let r = 0; r < config.repeat; r++) {
    const order: Side[] = r % 2 === 0 ? ['direct', 'tunnel'] : ['tunnel', 'direct'];
    for (const kind of ['upload', 'download'] as const) {
      for (const side of order) {
        const result = await throughputRun(kind, side, bytes);
        runs[kind][side].push(result);
        const relayPeak = result.relayPeak ? `; relay ${fmtMemory(result.relayPeak, result.relayLive)}` : '';
        progress(
          config,
          `${kind} ${config.throughputMiB} MiB ${side} [${r + 1}/${config.repeat}]: ${result.mibPerSec.toFixed(0)} MiB/s; peak ${fmtMemory(result.peak, result.live)}${relayPeak}`,
        );
      }
    }
  }

  // Latency and connection setup are measured in BLOCKS blocks per side, alternating
  // sides, so a slow spell of the machine lands on both sides rather than on one.
  const blocksOf = (total: number): number[] => {
    const size = Math.ceil(total / BLOCKS);
    return Array.from({ length: BLOCKS }, (_, i) => Math.max(0, Math.min(size, total - i * size))).filter((n) => n > 0);
  };
  const interleave = async (measure: (side: Side, count: number) => Promise<number[]>, total: number): Promise<Record<Side, Percentiles>> => {
    const samples: Record<Side, number[]> = { direct: [], tunnel: [] };
    const gc: Record<Side, GcStats> = { direct: { count: 0, pauseMs: 0 }, tunnel: { count: 0, pauseMs: 0 } };
    await settleMemory();
    for (const [b, count] of blocksOf(total).entries()) {
      for (const side of b % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const from = gcLog.now();
        samples[side].push(...(await measure(side, count)));
        const during = await gcLog.since(from);
        gc[side].count += during.count;
        gc[side].pauseMs += during.pauseMs;
      }
    }
    return { direct: summarizeTimes(samples.direct, gc.direct), tunnel: summarizeTimes(samples.tunnel, gc.tunnel) };
  };

  // Latency: one long-lived echo connection per side.
  const latencyWarmup = Math.min(1000, Math.max(100, Math.floor(config.pingPongRounds / 10)));
  const latencyDeadline = 60_000 + config.pingPongRounds * 20;
  const sessions: Partial<Record<Side, PingPong>> = {};
  let latency: Record<Side, Percentiles>;
  try {
    for (const side of SIDES) {
      const session = await PingPong.open(ports[side].echo, config.pingPongBytes, latencyDeadline);
      sessions[side] = session;
      await session.run(latencyWarmup);
    }
    latency = await interleave((side, count) => {
      const session = sessions[side];
      return session ? session.run(count) : Promise.reject(new Error(`no ping-pong connection for ${side}`));
    }, config.pingPongRounds);
  } finally {
    for (const session of Object.values(sessions)) await session.close();
  }
  for (const side of SIDES) {
    progress(config, `ping-pong ${side}: p50 ${latency[side].p50Us.toFixed(0)} µs, p99 ${latency[side].p99Us.toFixed(0)} µs`);
  }

  // Connection setup: sequential connect + one round trip + close.
  const setupWarmup = Math.max(10, Math.floor(config.setups / 10));
  for (const side of SIDES) await connectionSetup(ports[side].echo, config.setupBytes, setupWarmup, 10_000);
  const setup = await interleave((side, count) => connectionSetup(ports[side].echo, config.setupBytes, count, 10_000), config.setups);
  for (const side of SIDES) {
    progress(config, `connection setup ${side}: p50 ${setup[side].p50Us.toFixed(0)} µs, p99 ${setup[side].p99Us.toFixed(0)} µs`);
  }

  // Concurrency: many connections echoing at once; total wall time.
  const connBytes = config.connectionKiB * KiB;
  const concurrencyDeadline = 60_000 + ((config.connections * connBytes) / MiB) * 100;
  for (const side of SIDES) await concurrentEcho(ports[side].echo, config.connections, Math.min(connBytes, 64 * KiB), concurrencyDeadline);
  const concurrencyRuns: Record<Side, number[]> = { direct: [], tunnel: [] };
  for (let r = 0; r < config.repeat; r++) {
    const order: Side[] = r % 2 === 0 ? ['direct', 'tunnel'] : ['tunnel', 'direct'];
    for (const side of order) {
      await settleMemory();
      const ms = (await concurrentEcho(ports[side].echo, config.connections, connBytes, concurrencyDeadline)) / 1e6;
      concurrencyRuns[side].push(ms);
      progress(config, `${config.connections} × ${config.connectionKiB} KiB echo ${side} [${r + 1}/${config.repeat}]: ${ms.toFixed(1)} ms`);
    }
  }

  const wallUs = (nowNs() - wallStart) / 1_000;
  const otherUs = machineBusyUs() - machineStart - ((await ownCpuUs(relay)) - ownStart);
  const stealEnd = stealTicks();
  const stolenCpus =
    stealStart && stealEnd && stealEnd.total > stealStart.total
      ? round(((stealEnd.steal - stealStart.steal) / (stealEnd.total - stealStart.total)) * os.availableParallelism(), 2)
      : undefined;
  const machine: Machine = {
    cpus: os.availableParallelism(),
    loadAverageAtStart: round(loadAverageAtStart, 2),
    otherProcessesCpus: round(Math.max(0, otherUs / wallUs), 2),
    stolenCpus,
    wallSeconds: round(wallUs / 1e6, 1),
  };

  const summarize = (list: ThroughputRun[]): SideSummary => {
    const relayCpu = list.map((x) => x.relayCpuUsPerMiB).filter((x): x is number => x !== undefined);
    return {
      mibPerSec: median(list.map((x) => x.mibPerSec)),
      runsMibPerSec: list.map((x) => round(x.mibPerSec, 1)),
      cpuUsPerMiB: median(list.map((x) => x.cpuUsPerMiB)),
      cpuCores: round(median(list.map((x) => (x.cpuUsPerMiB * x.mibPerSec) / 1e6)), 2),
      relayCpuUsPerMiB: relayCpu.length > 0 ? median(relayCpu) : undefined,
    };
  };
  const liveOf = (side: Side, pick: (x: ThroughputRun) => number | undefined): number | undefined => {
    const all = [...runs.upload[side], ...runs.download[side]].map(pick).filter((x): x is number => x !== undefined);
    return all.length > 0 ? Math.max(...all) : undefined;
  };
  const peakOf = (side: Side, pick: (x: ThroughputRun) => MemorySnapshot | undefined): MemorySnapshot => {
    const all = [...runs.upload[side], ...runs.download[side]].map(pick).filter((x): x is MemorySnapshot => x !== undefined);
    return { rss: Math.max(...all.map((x) => x.rss)), arrayBuffers: Math.max(...all.map((x) => x.arrayBuffers)) };
  };
  return {
    machine,
    throughput: {
      upload: { direct: summarize(runs.upload.direct), tunnel: summarize(runs.upload.tunnel) },
      download: { direct: summarize(runs.download.direct), tunnel: summarize(runs.download.tunnel) },
    },
    latency,
    setup,
    concurrency: {
      direct: { ms: median(concurrencyRuns.direct), runsMs: concurrencyRuns.direct.map((x) => round(x, 1)) },
      tunnel: { ms: median(concurrencyRuns.tunnel), runsMs: concurrencyRuns.tunnel.map((x) => round(x, 1)) },
    },
    memory: {
      before,
      peak: { direct: peakOf('direct', (x) => x.peak), tunnel: peakOf('tunnel', (x) => x.peak) },
      liveArrayBuffers: { direct: liveOf('direct', (x) => x.live), tunnel: liveOf('tunnel', (x) => x.live) },
      relayProcess:
        relayBefore === undefined
          ? undefined
          : {
              before: { rss: relayBefore.rss, arrayBuffers: relayBefore.arrayBuffers },
              peak: { direct: peakOf('direct', (x) => x.relayPeak), tunnel: peakOf('tunnel', (x) => x.relayPeak) },
              liveArrayBuffers: { direct: liveOf('direct', (x) => x.relayLive), tunnel: liveOf('tunnel', (x) => x.relayLive) },
            },
    },
  };
}

// ---------------------------------------------------------------- output

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function fmt(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

const mibOf = (bytes: number): number => bytes / MiB;

function fmtMemory(m: MemorySnapshot, live: number | undefined): string {
  return `RSS ${fmt(mibOf(m.rss))} MiB, arrayBuffers ${fmt(mibOf(m.arrayBuffers))} MiB (live ${live === undefined ? 'n/a' : fmt(mibOf(live), 1)})`;
}

interface Ratio {
  name: string;
  value: number;
  /** rate: higher is better (throughput); time and memory: lower is better. */
  kind: 'rate' | 'time' | 'memory' | 'cpu';
}

/** CPU per MiB of every process that carried the bytes (the relay process only counts
 * on the tunnel side: on the direct side it is idle). */
function cpuPerMiB(summary: SideSummary, side: Side): number {
  return summary.cpuUsPerMiB + (side === 'tunnel' ? (summary.relayCpuUsPerMiB ?? 0) : 0);
}

function ratiosOf(r: Results): Ratio[] {
  const t = r.throughput;
  return [
    { name: 'upload throughput', value: t.upload.tunnel.mibPerSec / t.upload.direct.mibPerSec, kind: 'rate' },
    { name: 'download throughput', value: t.download.tunnel.mibPerSec / t.download.direct.mibPerSec, kind: 'rate' },
    { name: 'upload CPU per MiB', value: cpuPerMiB(t.upload.tunnel, 'tunnel') / cpuPerMiB(t.upload.direct, 'direct'), kind: 'cpu' },
    { name: 'download CPU per MiB', value: cpuPerMiB(t.download.tunnel, 'tunnel') / cpuPerMiB(t.download.direct, 'direct'), kind: 'cpu' },
    { name: 'latency p50', value: r.latency.tunnel.p50Us / r.latency.direct.p50Us, kind: 'time' },
    { name: 'latency p99', value: r.latency.tunnel.p99Us / r.latency.direct.p99Us, kind: 'time' },
    { name: 'connection setup p50', value: r.setup.tunnel.p50Us / r.setup.direct.p50Us, kind: 'time' },
    { name: 'connection setup p99', value: r.setup.tunnel.p99Us / r.setup.direct.p99Us, kind: 'time' },
    { name: 'concurrency total time', value: r.concurrency.tunnel.ms / r.concurrency.direct.ms, kind: 'time' },
    { name: 'peak RSS (this process)', value: r.memory.peak.tunnel.rss / r.memory.peak.direct.rss, kind: 'memory' },
    {
      name: 'peak arrayBuffers (this process)',
      value: r.memory.peak.tunnel.arrayBuffers / r.memory.peak.direct.arrayBuffers,
      kind: 'memory',
    },
  ];
}

function describeRatio(ratio: Ratio): string {
  if (!Number.isFinite(ratio.value) || ratio.value <= 0) return 'n/a';
  switch (ratio.kind) {
    case 'rate':
      return `the tunnel moves ${fmt(ratio.value * 100)}% of the direct rate (1/${fmt(1 / ratio.value, 1)})`;
    case 'time':
      return `the tunnel takes ${fmt(ratio.value, 2)}× as long`;
    case 'memory':
      return `the tunnel run peaks at ${fmt(ratio.value, 2)}× the direct run's`;
    case 'cpu':
      return `the tunnel costs ${fmt(ratio.value, 2)}× the CPU time per byte`;
  }
}

function where(config: Config): string {
  return config.relayProcess
    ? 'relay server in a child process (bench/relay-child.ts); burrow client, local services and load generator in this process'
    : 'relay server, burrow client (library startServer/startClient), local services and load generator all in this one process';
}

function printTable(config: Config, r: Results): void {
  const out: string[] = [];
  const m = r.machine;
  out.push(`burrow bench: Node ${process.version}, ${process.platform}/${process.arch}, ${m.cpus} CPUs, all on ${HOST}`);
  out.push(`  ${where(config)}`);
  out.push(`  throughput and concurrency: median of ${config.repeat} run(s) per side; GC before each run: ${forceGc ? 'yes' : 'no (unavailable)'}`);
  const steal = m.stolenCpus === undefined ? '' : `, hypervisor steal ${fmt(m.stolenCpus, 2)} CPUs`;
  const disturbed = m.otherProcessesCpus + (m.stolenCpus ?? 0) > 0.2;
  out.push(
    `  machine over the ${fmt(m.wallSeconds, 1)} s run: other processes busy ${fmt(m.otherProcessesCpus, 2)} CPUs${steal} on average; load average ${fmt(m.loadAverageAtStart, 2)} at start` +
      (disturbed ? '\n  (the machine was not quiet: numbers are disturbed, rerun when it is)' : ''),
  );
  out.push('');
  const rows: [string, string, string, string][] = [];
  const row = (label: string, unit: string, direct: string, tunnel: string): void => {
    rows.push([label, unit, direct, tunnel]);
  };
  const t = r.throughput;
  const gcCell = (gc: GcStats): string => `${gc.count} / ${fmt(gc.pauseMs, 1)}`;
  for (const kind of ['upload', 'download'] as const) {
    row(`${kind} ${config.throughputMiB} MiB, 1 conn`, 'MiB/s', fmt(t[kind].direct.mibPerSec), fmt(t[kind].tunnel.mibPerSec));
    row('  CPU per MiB, this process', 'µs', fmt(t[kind].direct.cpuUsPerMiB), fmt(t[kind].tunnel.cpuUsPerMiB));
    row('  CPU busy, this process', 'cores', fmt(t[kind].direct.cpuCores, 2), fmt(t[kind].tunnel.cpuCores, 2));
    const relayCpu = t[kind].tunnel.relayCpuUsPerMiB;
    // The relay carries nothing on the direct side: its CPU there is idle noise (GC probes).
    if (relayCpu !== undefined) row('  CPU per MiB, relay process', 'µs', '-', fmt(relayCpu));
  }
  row(`ping-pong ${config.pingPongBytes} B ×${config.pingPongRounds}, p50`, 'µs', fmt(r.latency.direct.p50Us), fmt(r.latency.tunnel.p50Us));
  row(`ping-pong ${config.pingPongBytes} B ×${config.pingPongRounds}, p99`, 'µs', fmt(r.latency.direct.p99Us), fmt(r.latency.tunnel.p99Us));
  row('  GCs in this process / pause', 'ms', gcCell(r.latency.direct.gc), gcCell(r.latency.tunnel.gc));
  row(`connect+echo+close ×${config.setups}, p50`, 'µs', fmt(r.setup.direct.p50Us), fmt(r.setup.tunnel.p50Us));
  row(`connect+echo+close ×${config.setups}, p99`, 'µs', fmt(r.setup.direct.p99Us), fmt(r.setup.tunnel.p99Us));
  row('  GCs in this process / pause', 'ms', gcCell(r.setup.direct.gc), gcCell(r.setup.tunnel.gc));
  row(`${config.connections} conns × ${config.connectionKiB} KiB echo`, 'ms', fmt(r.concurrency.direct.ms, 1), fmt(r.concurrency.tunnel.ms, 1));
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((x) => x[i]?.length ?? 0), ['', '', 'direct', 'tunnel'][i]?.length ?? 0));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(Math.max(widths[i] ?? 0, 10))))
      .join('  ')
      .trimEnd();
  out.push(line(['', '', 'direct', 'tunnel']));
  for (const cells of rows) out.push(line(cells));

  out.push('');
  out.push('memory during the throughput runs (MiB)   before   peak direct   peak tunnel');
  const mem = (
    label: string,
    before: MemorySnapshot,
    peak: Record<Side, MemorySnapshot>,
    live: Record<Side, number | undefined>,
  ): void => {
    const cell = (bytes: number | undefined, width: number): string => (bytes === undefined ? 'n/a' : fmt(mibOf(bytes), 1)).padStart(width);
    const cols = (a: number | undefined, b: number | undefined, c: number | undefined): string => `${cell(a, 8)}  ${cell(b, 12)}  ${cell(c, 12)}`;
    out.push(`${`${label} RSS`.padEnd(41)}${cols(before.rss, peak.direct.rss, peak.tunnel.rss)}`);
    out.push(`${`${label} arrayBuffers`.padEnd(41)}${cols(before.arrayBuffers, peak.direct.arrayBuffers, peak.tunnel.arrayBuffers)}`);
    out.push(`${'  live after a GC mid-run'.padEnd(41)}${cols(before.arrayBuffers, live.direct, live.tunnel)}`);
  };
  mem('this process', r.memory.before, r.memory.peak, r.memory.liveArrayBuffers);
  const relayMem = r.memory.relayProcess;
  if (relayMem) mem('relay process', relayMem.before, relayMem.peak, relayMem.liveArrayBuffers);

  out.push('');
  out.push('tunnel / direct:');
  const ratios = ratiosOf(r);
  const nameWidth = Math.max(...ratios.map((x) => x.name.length));
  for (const ratio of ratios) out.push(`  ${ratio.name.padEnd(nameWidth)}  ${fmt(ratio.value, 2).padStart(6)}   ${describeRatio(ratio)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

function toJson(config: Config, r: Results): unknown {
  return {
    meta: {
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      cpus: os.availableParallelism(),
      host: HOST,
      relay: config.relayProcess ? 'child-process' : 'in-process',
      note: where(config),
      gcBetweenRuns: forceGc !== undefined,
      units: { throughput: 'MiB/s', latency: 'µs', concurrency: 'ms', memory: 'bytes', cpu: 'µs per MiB' },
    },
    config,
    results: r,
    ratios: Object.fromEntries(ratiosOf(r).map((x) => [x.name, round(x.value, 4)])),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  let config: Config | undefined;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (config === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const services: Service[] = [];
  const gcLog = new GcLog();
  let relay: Relay | undefined;
  let client: BurrowClient | undefined;
  try {
    const sinkService = await listenService('sink', sink);
    services.push(sinkService);
    const sourceService = await listenService('source', source);
    services.push(sourceService);
    const echoService = await listenService('echo', echo);
    services.push(echoService);
    relay = config.relayProcess ? await childProcessRelay() : await inProcessRelay();
    client = await startClient({
      tunnels: [{ localPort: sinkService.port }, { localPort: sourceService.port }, { localPort: echoService.port }],
      server: HOST,
      localHost: HOST,
      controlPort: relay.controlPort,
      dataPort: relay.dataPort,
    });
    const [sinkTunnel, sourceTunnel, echoTunnel] = client.tunnels;
    if (!sinkTunnel || !sourceTunnel || !echoTunnel) throw new Error('the server did not open three tunnels');
    client.on('warning', (warning) => process.stderr.write(`burrow client warning: ${warning.message}\n`));
    const ports: Record<Side, Ports> = {
      direct: { sink: sinkService.port, source: sourceService.port, echo: echoService.port },
      tunnel: { sink: sinkTunnel.publicPort, source: sourceTunnel.publicPort, echo: echoTunnel.publicPort },
    };
    progress(config, `burrow bench (${config.quick ? 'quick' : 'full'}): ${where(config)}`);
    const results = await run(config, relay, ports, gcLog);
    // undefined (a figure that could not be taken) becomes null rather than vanishing.
    if (config.json) process.stdout.write(`${JSON.stringify(toJson(config, results), (_, value: unknown) => value ?? null, 2)}\n`);
    else printTable(config, results);
    return 0;
  } catch (error) {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  } finally {
    gcLog.stop();
    destroyOpenConnections();
    await client?.close();
    await relay?.close();
    for (const service of services) await service.close();
  }
}

process.exitCode = await main();
