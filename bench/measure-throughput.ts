// Throughput: one connection uploads to the sink or downloads from the source, per side,
// with this process's CPU time and memory (and the relay process's) sampled during each run.
import type { Config } from './config.ts';
import { fmtMemory, MiB, progress, round } from './format.ts';
import type { Relay } from './relay.ts';
import { DIRECTIONS, SIDES, sidesInOrder, type Direction, type MemoryResults, type Ports, type Results, type Side, type SideSummary } from './results.ts';
import { median, MemoryPeak, memoryNow, settleMemory, type MemorySnapshot } from './stats.ts';
import { download, upload } from './workloads.ts';

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

type ThroughputRuns = Record<Direction, Record<Side, ThroughputRun[]>>;

/** One transfer of `size` bytes, after a GC, with CPU and memory measured around it. */
async function throughputRun(relay: Relay, port: number, direction: Direction, size: number, deadlineMs: number): Promise<ThroughputRun> {
  await settleMemory();
  await relay.reset();
  const before = memoryNow();
  const peak = new MemoryPeak();
  peak.start();
  const cpuStart = process.cpuUsage();
  const ns = direction === 'upload' ? await upload(port, size, deadlineMs) : await download(port, size, deadlineMs);
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
}

/** Warms every path up, then runs each transfer `config.repeat` times per side. Returns
 * the medians and the memory figures of those runs. */
export async function measureThroughput(
  config: Config,
  relay: Relay,
  ports: Record<Side, Ports>,
): Promise<{ throughput: Results['throughput']; memory: MemoryResults }> {
  const bytes = config.throughputMiB * MiB;
  const deadlineMs = 30_000 + config.throughputMiB * 100; // fails below ~10 MiB/s
  const portOf = (direction: Direction, side: Side): number => (direction === 'upload' ? ports[side].sink : ports[side].source);
  const runs: ThroughputRuns = {
    upload: { direct: [], tunnel: [] },
    download: { direct: [], tunnel: [] },
  };

  // Warm-up: every path once (JIT, socket buffers, the tunnel's first dial-backs).
  const warmBytes = Math.max(MiB, Math.min(32 * MiB, Math.floor(bytes / 4)));
  progress(config, `warm-up (${warmBytes / MiB} MiB each way, each side)`);
  for (const side of SIDES) {
    for (const direction of DIRECTIONS) await throughputRun(relay, portOf(direction, side), direction, warmBytes, deadlineMs);
  }

  await settleMemory();
  await relay.reset(); // GCs the relay process too
  const before = memoryNow();
  const relayBefore = await relay.report();

  for (let r = 0; r < config.repeat; r++) {
    for (const direction of DIRECTIONS) {
      for (const side of sidesInOrder(r)) {
        const result = await throughputRun(relay, portOf(direction, side), direction, bytes, deadlineMs);
        runs[direction][side].push(result);
        const relayPeak = result.relayPeak ? `; relay ${fmtMemory(result.relayPeak, result.relayLive)}` : '';
        progress(
          config,
          `${direction} ${config.throughputMiB} MiB ${side} [${r + 1}/${config.repeat}]: ${result.mibPerSec.toFixed(0)} MiB/s; peak ${fmtMemory(result.peak, result.live)}${relayPeak}`,
        );
      }
    }
  }

  const liveOf = (side: Side, pick: (x: ThroughputRun) => number | undefined): number | undefined => {
    const all = [...runs.upload[side], ...runs.download[side]].map(pick).filter((x): x is number => x !== undefined);
    return all.length > 0 ? Math.max(...all) : undefined;
  };
  const peakOf = (side: Side, pick: (x: ThroughputRun) => MemorySnapshot | undefined): MemorySnapshot => {
    const all = [...runs.upload[side], ...runs.download[side]].map(pick).filter((x): x is MemorySnapshot => x !== undefined);
    return { rss: Math.max(...all.map((x) => x.rss)), arrayBuffers: Math.max(...all.map((x) => x.arrayBuffers)) };
  };
  return {
    throughput: {
      upload: { direct: summarize(runs.upload.direct), tunnel: summarize(runs.upload.tunnel) },
      download: { direct: summarize(runs.download.direct), tunnel: summarize(runs.download.tunnel) },
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

/** The medians of one side's runs of one direction. */
function summarize(list: ThroughputRun[]): SideSummary {
  const relayCpu = list.map((x) => x.relayCpuUsPerMiB).filter((x): x is number => x !== undefined);
  return {
    mibPerSec: median(list.map((x) => x.mibPerSec)),
    runsMibPerSec: list.map((x) => round(x.mibPerSec, 1)),
    cpuUsPerMiB: median(list.map((x) => x.cpuUsPerMiB)),
    cpuCores: round(median(list.map((x) => (x.cpuUsPerMiB * x.mibPerSec) / 1e6)), 2),
    relayCpuUsPerMiB: relayCpu.length > 0 ? median(relayCpu) : undefined,
  };
}
