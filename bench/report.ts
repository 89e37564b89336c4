// The results on stdout: the table (header, direct/tunnel rows, memory, ratios) or,
// with --json, one JSON object.
import os from 'node:os';
import { describeProcessLayout, type Config } from './config.ts';
import { fmt, mibOf, round } from './format.ts';
import { HOST } from './io.ts';
import { describeRatio, ratiosOf } from './ratios.ts';
import { DIRECTIONS, type MemoryResults, type Results, type Side } from './results.ts';
import { forceGc, type GcStats, type MemorySnapshot } from './stats.ts';

export function writeReport(config: Config, results: Results): void {
  // undefined (a figure that could not be taken) becomes null rather than vanishing.
  if (config.json) process.stdout.write(`${JSON.stringify(toJson(config, results), (_, value: unknown) => value ?? null, 2)}\n`);
  else process.stdout.write(`${tableLines(config, results).join('\n')}\n`);
}

function headerLines(config: Config, r: Results): string[] {
  const m = r.machine;
  const steal = m.stolenCpus === undefined ? '' : `, hypervisor steal ${fmt(m.stolenCpus, 2)} CPUs`;
  const disturbed = m.otherProcessesCpus + (m.stolenCpus ?? 0) > 0.2;
  return [
    `burrow bench: Node ${process.version}, ${process.platform}/${process.arch}, ${m.cpus} CPUs, all on ${HOST}`,
    `  ${describeProcessLayout(config)}`,
    `  throughput and concurrency: median of ${config.repeat} run(s) per side; GC before each run: ${forceGc ? 'yes' : 'no (unavailable)'}`,
    `  machine over the ${fmt(m.wallSeconds, 1)} s run: other processes busy ${fmt(m.otherProcessesCpus, 2)} CPUs${steal} on average; load average ${fmt(m.loadAverageAtStart, 2)} at start` +
      (disturbed ? '\n  (the machine was not quiet: numbers are disturbed, rerun when it is)' : ''),
  ];
}

/** The direct/tunnel table: one row a figure, the label and unit left, the numbers right. */
function sideBySideLines(config: Config, r: Results): string[] {
  const rows: [string, string, string, string][] = [];
  const row = (label: string, unit: string, direct: string, tunnel: string): void => {
    rows.push([label, unit, direct, tunnel]);
  };
  const t = r.throughput;
  const gcCell = (gc: GcStats): string => `${gc.count} / ${fmt(gc.pauseMs, 1)}`;
  for (const kind of DIRECTIONS) {
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
  return [line(['', '', 'direct', 'tunnel']), ...rows.map(line)];
}

function memoryLines(memory: MemoryResults): string[] {
  const out = ['memory during the throughput runs (MiB)   before   peak direct   peak tunnel'];
  const mem = (label: string, before: MemorySnapshot, peak: Record<Side, MemorySnapshot>, live: Record<Side, number | undefined>): void => {
    const cell = (bytes: number | undefined, width: number): string => (bytes === undefined ? 'n/a' : fmt(mibOf(bytes), 1)).padStart(width);
    const cols = (a: number | undefined, b: number | undefined, c: number | undefined): string => `${cell(a, 8)}  ${cell(b, 12)}  ${cell(c, 12)}`;
    out.push(`${`${label} RSS`.padEnd(41)}${cols(before.rss, peak.direct.rss, peak.tunnel.rss)}`);
    out.push(`${`${label} arrayBuffers`.padEnd(41)}${cols(before.arrayBuffers, peak.direct.arrayBuffers, peak.tunnel.arrayBuffers)}`);
    out.push(`${'  live after a GC mid-run'.padEnd(41)}${cols(before.arrayBuffers, live.direct, live.tunnel)}`);
  };
  mem('this process', memory.before, memory.peak, memory.liveArrayBuffers);
  const relayMem = memory.relayProcess;
  if (relayMem) mem('relay process', relayMem.before, relayMem.peak, relayMem.liveArrayBuffers);
  return out;
}

function ratioLines(r: Results): string[] {
  const ratios = ratiosOf(r);
  const nameWidth = Math.max(...ratios.map((x) => x.name.length));
  return ['tunnel / direct:', ...ratios.map((ratio) => `  ${ratio.name.padEnd(nameWidth)}  ${fmt(ratio.value, 2).padStart(6)}   ${describeRatio(ratio)}`)];
}

function tableLines(config: Config, r: Results): string[] {
  return [...headerLines(config, r), '', ...sideBySideLines(config, r), '', ...memoryLines(r.memory), '', ...ratioLines(r)];
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
      note: describeProcessLayout(config),
      gcBetweenRuns: forceGc !== undefined,
      units: { throughput: 'MiB/s', latency: 'µs', concurrency: 'ms', memory: 'bytes', cpu: 'µs per MiB' },
    },
    config,
    results: r,
    ratios: Object.fromEntries(ratiosOf(r).map((x) => [x.name, round(x.value, 4)])),
  };
}
