// Small pure formatters for what the commands print: sizes, durations, the time of day,
// addresses, and whether a stream gets colours.

import type { Env } from './args.ts';

/** Colour only for a terminal, and not when NO_COLOR is set (no-color.org) or TERM=dumb. */
export function useColour(isTTY: boolean | undefined, env: Env): boolean {
  return isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '') && env.TERM !== 'dumb';
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB'] as const;

/** `78 B`, `4.9 KiB`, `1.0 MiB`: one decimal above bytes. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = 0;
  while (unit < UNITS.length - 1 && Number(value.toFixed(1)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** `12 ms` under a second, else `1.5 s`. */
export const formatDuration = (ms: number): string =>
  ms < 999.5 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;

/** `03:31:05`, local time. */
export const clock = (at: Date): string =>
  [at.getHours(), at.getMinutes(), at.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');

/** `1.2 s`, as the shutdown and reconnect lines say it. */
export const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;

/** `1 client`, `3 clients`: a count with its noun, singular or plural. */
export const count = (n: number, noun: string, plural = `${noun}s`): string => `${n} ${n === 1 ? noun : plural}`;
