// Units, rounding and number formatting, and the progress lines on stderr: shared by
// the measurements and the report.
import type { Config } from './config.ts';
import type { MemorySnapshot } from './stats.ts';

export const MiB = 1024 * 1024;
export const KiB = 1024;

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** `x` with `digits` decimals, or 'n/a' for NaN and infinities. */
export function fmt(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

export const mibOf = (bytes: number): number => bytes / MiB;

export function fmtMemory(m: MemorySnapshot, live: number | undefined): string {
  return `RSS ${fmt(mibOf(m.rss))} MiB, arrayBuffers ${fmt(mibOf(m.arrayBuffers))} MiB (live ${live === undefined ? 'n/a' : fmt(mibOf(live), 1)})`;
}

/** One progress line on stderr (none with --json). */
export function progress(config: Config, text: string): void {
  if (!config.json) process.stderr.write(`  ${text}\n`);
}
