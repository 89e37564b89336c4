// Messages between relay.ts and relay-child.ts (over the fork() IPC channel).

/** Parent → child. `reset` starts a measurement window (GC, CPU and memory baselines);
 * `report` ends it and asks for the numbers; `close` shuts the relay down. */
export type ToRelay = { type: 'reset' } | { type: 'report' } | { type: 'close' };

export interface RelayReport {
  type: 'report';
  /** Right now. */
  rss: number;
  arrayBuffers: number;
  /** Highest seen since the last `reset`. */
  peakRss: number;
  peakArrayBuffers: number;
  /** arrayBuffers after a forced GC 50 ms into the window (null if it ended sooner). */
  liveArrayBuffers: number | null;
  /** CPU time used by the relay process since the last `reset`, in µs. */
  cpuUs: number;
  /** CPU time used by the relay process since it started, in µs. */
  totalCpuUs: number;
}

/** Child → parent. */
export type FromRelay = { type: 'ready'; controlPort: number; dataPort: number } | { type: 'reset-done' } | RelayReport;

export function isFromRelay(value: unknown): value is FromRelay {
  if (typeof value !== 'object' || value === null || !('type' in value)) return false;
  return value.type === 'ready' || value.type === 'reset-done' || value.type === 'report';
}

export function isToRelay(value: unknown): value is ToRelay {
  if (typeof value !== 'object' || value === null || !('type' in value)) return false;
  return value.type === 'reset' || value.type === 'report' || value.type === 'close';
}
