// The tunnel / direct ratios the report ends with, and what each one means in words.
import { fmt } from './format.ts';
import type { Results, Side, SideSummary } from './results.ts';

export interface Ratio {
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

export function ratiosOf(r: Results): Ratio[] {
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

export function describeRatio(ratio: Ratio): string {
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
