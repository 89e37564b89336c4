// Percentiles and medians, and a forced GC for the bench process itself.
import v8 from 'node:v8';
import { setTimeout as delay } from 'node:timers/promises';
import vm from 'node:vm';

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** The middle sample (the mean of the two middle ones for an even count); NaN for none. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return Number.isInteger(mid)
    ? ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2
    : (sorted[Math.floor(mid)] ?? Number.NaN);
}

/** A full GC of this process. `npm run bench` cannot pass --expose-gc, so the flag is set
 * at run time; if that ever stops working this is a no-op. (The child processes get
 * --expose-gc on their command line.) */
const forceGc: (() => void) | undefined = (() => {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    if (typeof gc === 'function') return () => void (gc as () => void)();
  } catch {
    // fall through
  }
  return undefined;
})();

/** GC before a timed run, so it does not pay for the previous run's garbage. */
export async function collectGarbage(): Promise<void> {
  if (forceGc === undefined) return;
  forceGc();
  await delay(5);
}
