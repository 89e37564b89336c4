// The shape of a bench run's results, as the measurements hand them to the report (and
// as they appear in the JSON).
import type { Phase, Side } from './config.ts';

export type Direction = 'upload' | 'download';
export const DIRECTIONS: readonly Direction[] = ['upload', 'download'];

/** CPU seconds (user + system) of the relay and client processes per GiB moved through
 * the tunnel: medians of the runs. */
export interface TunnelCpu {
  relay: number;
  client: number;
  tunnel: number;
}

/** One connection moving `bytes` one way, `runs` times per side. */
export interface ThroughputFigure {
  bytes: number;
  /** Decimal MB (10^6 bytes) per second: the median of the runs. */
  mbPerSec: Record<Side, number>;
  runsMbPerSec: Record<Side, number[]>;
  cpuSecPerGiB: TunnelCpu;
  /** With --websocket: the same through burrow over WebSocket (issue 18). */
  webSocket?: { mbPerSec: number; runsMbPerSec: number[]; cpuSecPerGiB: TunnelCpu } | undefined;
}

/** Percentiles of one side's samples. */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  samples: number;
}

/** Percentiles per side; `unit` is 'ms' (setup) or 'µs' (round trips). */
export interface LatencyFigure {
  unit: 'ms' | 'µs';
  bytes: number;
  sides: Record<Side, Percentiles>;
  /** Setup only: CPU µs per connection of the echo service (direct) and of the relay
   * and the client (burrow; `webSocket`: over WebSocket). */
  cpuUsPerConn?: { service: number; relay: number; client: number; webSocket?: { relay: number; client: number } };
  /** With --websocket: burrow over WebSocket (issue 18). */
  webSocket?: Percentiles | undefined;
}

/** Figure 8, one side (the client's inspector started, or closed): CPU µs per connection
 * of the client (all threads), of its main thread alone, and of the relay (a control: the
 * inspector is not in it). */
export interface InspectorSide {
  client: number;
  clientMain: number;
  relay: number;
}

/** A mean and its ± 2 standard errors. */
export interface Interval {
  mean: number;
  low: number;
  high: number;
}

/** Figure 8: blocks of connection setups taking turns with the inspector on and off in
 * one client process; `extra` is on − off, block pair by block pair (issue 17). */
export interface InspectorFigure {
  /** Connections measured on each side. */
  connections: number;
  blocks: number;
  off: InspectorSide;
  on: InspectorSide;
  extra: Record<keyof InspectorSide, Interval>;
}

/** One side of holding `count` connections open at once: medians over the runs, and
 * the failures of every run added up. RSS figures are bytes after two full GCs. */
export interface ConnsSide {
  failures: number;
  errors: Record<string, number>;
  /** Time to open and verify all of them, ms. */
  openMs: number;
  /** (RSS with the connections held − idle RSS) / count, KiB, of the measured processes:
   * the echo service (direct) or relay + client (burrow). */
  rssPerConnKiB: number;
  /** Per process: idle RSS and RSS while holding, and the same of the JS heap in use
   * (what is live, where RSS also counts what V8 and malloc keep), bytes (medians). */
  processes: Record<string, { idleRss: number; heldRss: number; heldFds: number; idleHeap: number; heldHeap: number }>;
}

export interface ConnsFigure {
  /** Connections held (may be fewer than asked: see `note`). */
  count: number;
  requested: number;
  runs: number;
  note: string | undefined;
  sides: Record<Side, ConnsSide>;
}

/** wrk's socket errors by kind, and its answers with a status outside 2xx/3xx. */
export interface HttpErrorKinds {
  connect: number;
  read: number;
  write: number;
  timeout: number;
  non2xx: number;
}

/** One wrk mode: requests/s and latency per side, medians over runs. */
export interface HttpSide {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** wrk socket errors (connect, read, write, timeout) plus non-2xx/3xx answers, all runs. */
  errors: number;
  errorKinds: HttpErrorKinds;
  /** Requests completed by the run that completed fewest. */
  fewestRequests: number;
  runsRequestsPerSec: number[];
}

export interface HttpFigure {
  mode: 'keep-alive' | 'close';
  sides: Record<Side, HttpSide>;
  /** Figure 7 only: wrk through one bare node:http proxy, and two chained (services.ts,
   * bareProxy()). */
  references?: Record<Reference, HttpSide>;
}

/** Figure 7's references, which are not burrow: bare node:http proxies to the service. */
export const REFERENCES = ['one hop', 'two hops'] as const;
export type Reference = (typeof REFERENCES)[number];

export interface MachineInfo {
  date: string;
  cpuModel: string;
  cores: number;
  node: string;
  kernel: string;
  commit: string;
}

export interface Quietness {
  wallSeconds: number;
  /** CPUs kept busy, on average, by processes other than the bench and its children. */
  otherProcessesCpus: number;
  /** CPUs the hypervisor took for other guests (steal), on average; undefined off Linux. */
  stolenCpus: number | undefined;
  loadAverageAtStart: number;
}

export interface Results {
  machine: MachineInfo;
  quietness: Quietness | undefined;
  mode: 'quick' | 'full';
  throughput: Record<Direction, ThroughputFigure> | undefined;
  setup: LatencyFigure | undefined;
  inspector: InspectorFigure | undefined;
  rtt: LatencyFigure | undefined;
  conns: ConnsFigure[];
  /** A string when HTTP could not be measured (wrk missing). */
  http: HttpFigure[] | string | undefined;
  /** The same through the relay's HTTP port, to an HTTP tunnel by name (issue 16). */
  httpName: HttpFigure[] | string | undefined;
  /** With --websocket: how ws masks frames (lanes.ts, webSocketMasking). */
  webSocketMasking: 'bufferutil' | 'JavaScript' | undefined;
  /** Figures that could not be measured, and why. */
  failures: Partial<Record<Phase, string>>;
}
