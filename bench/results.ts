// The shape of a bench run's results: the two sides compared, the ports each side
// connects to, and the figures the measurements hand to the report.
import type { GcStats, MemorySnapshot } from './stats.ts';

/** direct: to a service's own port; tunnel: to the public port of its tunnel. */
export type Side = 'direct' | 'tunnel';
export const SIDES: readonly Side[] = ['direct', 'tunnel'];

/** The sides in the order to measure them in round `index`: alternating which goes
 * first, so neither always runs on a warmer heap or in a quieter spell. */
export function sidesInOrder(index: number): Side[] {
  return index % 2 === 0 ? ['direct', 'tunnel'] : ['tunnel', 'direct'];
}

export type Direction = 'upload' | 'download';
export const DIRECTIONS: readonly Direction[] = ['upload', 'download'];

export interface Ports {
  sink: number;
  source: number;
  echo: number;
}

export interface SideSummary {
  mibPerSec: number;
  runsMibPerSec: number[];
  cpuUsPerMiB: number;
  /** CPU time / wall time of this process during the run: 1.0 = one core fully busy. */
  cpuCores: number;
  relayCpuUsPerMiB: number | undefined;
}

export interface Percentiles {
  p50Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
  samples: number;
  /** GCs of this process during the measured rounds (warm-up excluded). */
  gc: GcStats;
}

export interface ConcurrencySummary {
  ms: number;
  runsMs: number[];
}

export interface Machine {
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

export interface MemoryResults {
  before: MemorySnapshot;
  peak: Record<Side, MemorySnapshot>;
  /** Highest arrayBuffers left after a forced GC in the middle of a run. */
  liveArrayBuffers: Record<Side, number | undefined>;
  relayProcess:
    | { before: MemorySnapshot; peak: Record<Side, MemorySnapshot>; liveArrayBuffers: Record<Side, number | undefined> }
    | undefined;
}

export interface Results {
  machine: Machine;
  throughput: Record<Direction, Record<Side, SideSummary>>;
  latency: Record<Side, Percentiles>;
  setup: Record<Side, Percentiles>;
  concurrency: Record<Side, ConcurrencySummary>;
  memory: MemoryResults;
}
