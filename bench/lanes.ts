// The lanes of figures 1, 2, 3 and 6: the two sides, and with --websocket a third, `ws`:
// burrow with the client reaching the relay over WebSocket (issue 18). They are measured in
// turns like the sides, so a slow spell of the machine lands on all of them.
import { createRequire } from 'node:module';
import { sidesInOrder, type Phase, type Side } from './config.ts';
import type { TunnelProcesses } from './tunnel.ts';

export type Lane = Side | 'ws';

/** The figures (--only names) that measure the ws lane; figure 6 comes with throughput. */
export const LANED: readonly Phase[] = ['throughput', 'setup', 'rtt'];

/** A value per lane: always direct and burrow, ws only when it is measured. */
export type PerLane<T> = Record<Side, T> & { ws?: T | undefined };

/** The relay and client processes behind each lane (none for direct). */
export type LaneTunnels = PerLane<TunnelProcesses | undefined>;

/** The lanes `perLane` has. */
export function lanesOf(perLane: PerLane<unknown>): Lane[] {
  return perLane.ws === undefined ? ['direct', 'burrow'] : ['direct', 'burrow', 'ws'];
}

/** `perLane`'s value for `lane`; throws if it has none. */
export function onLane<T>(perLane: PerLane<T>, lane: Lane): NonNullable<T> {
  const value = perLane[lane];
  if (value === undefined || value === null) throw new Error(`nothing measures the ${lane} lane`);
  return value;
}

/** The lanes in the order to measure them in round `index`. Two: as sidesInOrder. Three:
 * a rotation, forward in even rounds and backward in odd ones, so that over six rounds
 * each lane goes first, second and last twice. */
export function lanesInOrder(index: number, lanes: readonly Lane[]): Lane[] {
  if (lanes.length <= 2) return sidesInOrder(index);
  const rotation = Math.floor(index / 2) % lanes.length;
  const order = [...lanes.slice(rotation), ...lanes.slice(0, rotation)];
  return index % 2 === 0 ? order : order.reverse();
}

/** How the `ws` package masks and unmasks frames in this tree, found as ws finds it: with
 * the native `bufferutil` if it loads (and WS_NO_BUFFER_UTIL is unset), else in a
 * JavaScript loop, which costs the masked direction (client to relay: download) dearly.
 * The relay and client processes inherit the bench's environment, so theirs is the same. */
export function webSocketMasking(): 'bufferutil' | 'JavaScript' {
  if (process.env.WS_NO_BUFFER_UTIL) return 'JavaScript';
  try {
    const ws = createRequire(import.meta.url).resolve('ws');
    createRequire(ws)('bufferutil');
    return 'bufferutil';
  } catch {
    return 'JavaScript';
  }
}
