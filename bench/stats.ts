// Percentiles, memory sampling and an optional forced GC, for the measurements and relay-child.ts.
import v8 from 'node:v8';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import vm from 'node:vm';

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export function mean(samples: readonly number[]): number {
  return samples.length === 0 ? Number.NaN : samples.reduce((sum, x) => sum + x, 0) / samples.length;
}

export interface MemorySnapshot {
  rss: number;
  arrayBuffers: number;
}

export function memoryNow(): MemorySnapshot {
  const usage = process.memoryUsage();
  return { rss: usage.rss, arrayBuffers: usage.arrayBuffers };
}

/** The live probe looks for the lowest arrayBuffers figure over at least this many loop
 * turns and this many ms (at most LIVE_PROBE_MAX_TURNS turns). */
const LIVE_PROBE_TURNS = 20;
const LIVE_PROBE_MS = 10;
const LIVE_PROBE_MAX_TURNS = 1000;

/** Samples RSS and arrayBuffers every `intervalMs` between start() and stop() and keeps
 * the highest of each (they need not peak at the same moment).
 *
 * The arrayBuffers peak mostly measures garbage: every socket read allocates a fresh
 * 64 KiB Buffer, and V8 frees them in batches. So once per window, `probeAfterMs` after
 * start() if the window is still open, it forces a GC and records what is still alive:
 * about the memory actually held by the data in flight. */
export class MemoryPeak {
  rss = 0;
  arrayBuffers = 0;
  /** arrayBuffers shortly after a forced GC in the middle of the window, if the probe finished. */
  liveArrayBuffers: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probe: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs = 5,
    private readonly probeAfterMs = 50,
  ) {}

  /** Starts a new window (forgetting the previous one's numbers). */
  start(): void {
    this.stopTimers();
    this.rss = 0;
    this.arrayBuffers = 0;
    this.liveArrayBuffers = undefined;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    if (forceGc !== undefined) {
      const gc = forceGc;
      this.probe = setTimeout(() => {
        this.sample();
        gc();
        // V8 frees ArrayBuffer backing stores on a helper thread and lowers the count when
        // that finishes, while the transfer keeps allocating: take the lowest figure over
        // the next few loop turns (what survived, plus about one turn of fresh reads).
        // A probe cut short by the end of the window reports nothing.
        const since = performance.now();
        let turns = 0;
        let lowest = Number.POSITIVE_INFINITY;
        const look = (): void => {
          if (this.timer === undefined) return; // the window closed first
          lowest = Math.min(lowest, memoryNow().arrayBuffers);
          turns++;
          const more = turns < LIVE_PROBE_TURNS || performance.now() - since < LIVE_PROBE_MS;
          if (more && turns < LIVE_PROBE_MAX_TURNS) setImmediate(look);
          else this.liveArrayBuffers = lowest;
        };
        setImmediate(look);
      }, this.probeAfterMs);
    }
  }

  stop(): MemorySnapshot {
    this.stopTimers();
    this.sample();
    return { rss: this.rss, arrayBuffers: this.arrayBuffers };
  }

  private stopTimers(): void {
    clearInterval(this.timer);
    clearTimeout(this.probe);
    this.timer = undefined;
    this.probe = undefined;
  }

  private sample(): void {
    const now = memoryNow();
    this.rss = Math.max(this.rss, now.rss);
    this.arrayBuffers = Math.max(this.arrayBuffers, now.arrayBuffers);
  }
}

/** A full GC, so "before" and per-run numbers do not carry the previous run's garbage.
 * `npm run bench` cannot pass --expose-gc, so the flag is set at run time; if that ever
 * stops working this is a no-op and the report says so. */
export const forceGc: (() => void) | undefined = (() => {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    if (typeof gc === 'function') return () => void gc();
  } catch {
    // fall through
  }
  return undefined;
})();

/** GC, then give V8 a moment to finish freeing ArrayBuffer backing stores (it sweeps them
 * concurrently and settles the count on a later task), then GC again: afterwards the
 * memory figures no longer include the previous run's garbage. */
export async function settleMemory(): Promise<void> {
  if (forceGc === undefined) return;
  forceGc();
  await delay(10);
  forceGc();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

export interface GcStats {
  /** Garbage collections of this process's main heap that started in the window. */
  count: number;
  /** Their total pause, ms. */
  pauseMs: number;
}

/** Records this process's GC pauses (perf_hooks 'gc' entries) so a measurement window can
 * say how many fell inside it: the usual cause of p99 outliers in a single-threaded relay. */
export class GcLog {
  private readonly entries: { start: number; duration: number }[] = [];
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.entries.push({ start: entry.startTime, duration: entry.duration });
  });

  constructor() {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** A timestamp to pass to `since` later. */
  now(): number {
    return performance.now();
  }

  /** GCs that started between `from` and now. Entries are delivered asynchronously, so
   * this waits one macrotask first. Also forgets older entries. */
  async since(from: number): Promise<GcStats> {
    const to = performance.now();
    await delay(0);
    const inside = this.entries.filter((e) => e.start >= from && e.start <= to);
    this.entries.splice(0, this.entries.length);
    return { count: inside.length, pauseMs: inside.reduce((sum, e) => sum + e.duration, 0) };
  }

  stop(): void {
    this.observer.disconnect();
  }
}
