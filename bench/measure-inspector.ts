// Figure 8: what the client's inspector costs per connection while nobody opens it (issue
// 17). One client process takes turns: blocks of connection setups (as in figure 2) with
// its inspector started, and with it closed, the order alternating from block to block.
// Separate runs with and without --inspector differ by more than the inspector costs:
// the machine's speed drifts, and each process compiles and collects at its own moments.
// Turns in one process, a fraction of a second each, share all of that.
import { progress, type Config } from './config.ts';
import type { InspectorFigure, InspectorSide, Interval } from './results.ts';
import type { TunnelProcesses, TunnelStats } from './tunnel.ts';
import { connectionSetup } from './workloads.ts';

/** Connections per block; the turns are short, so a spell of the machine or a burst of
 * the compiler's work lands in a block of each side about as often. */
const BLOCK = 100;
const QUICK_BLOCK = 40;

/** µs per connection of one block, from the stats before and after it (the main thread's:
 * NaN where the client cannot tell it, off Linux). */
function perConnection(before: TunnelStats, after: TunnelStats, count: number): InspectorSide {
  const main = before.client.mainCpuUs < 0 ? Number.NaN : after.client.mainCpuUs - before.client.mainCpuUs;
  return {
    client: (after.client.cpuUs - before.client.cpuUs) / count,
    clientMain: main / count,
    relay: (after.relay.cpuUs - before.relay.cpuUs) / count,
  };
}

/** The mean of `values`, and that ± 2 standard errors (about 95%). */
export function interval(values: readonly number[]): Interval {
  const n = values.length;
  const mean = values.reduce((sum, v) => sum + v, 0) / n;
  const variance = n > 1 ? values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1) : Number.NaN;
  const margin = 2 * Math.sqrt(variance / n);
  return { mean, low: mean - margin, high: mean + margin };
}

type Key = keyof InspectorSide;

/** The sides' means over blocks, and on − off block by block. */
export function inspectorFigure(
  pairs: readonly { on: InspectorSide; off: InspectorSide }[],
  size: number,
): InspectorFigure {
  const mean = (side: 'on' | 'off'): InspectorSide => {
    const of = (key: Key): number => pairs.reduce((sum, p) => sum + p[side][key], 0) / pairs.length;
    return { client: of('client'), clientMain: of('clientMain'), relay: of('relay') };
  };
  const extra = (key: Key): Interval => interval(pairs.map((p) => p.on[key] - p.off[key]));
  return {
    connections: pairs.length * size,
    blocks: pairs.length,
    off: mean('off'),
    on: mean('on'),
    extra: { client: extra('client'), clientMain: extra('clientMain'), relay: extra('relay') },
  };
}

/** Figure 8 through `tunnel` to the echo service at `echoPort` (its public port); leaves
 * the inspector as it found it (`config.inspector`). */
export async function measureInspector(
  config: Config,
  echoPort: number,
  tunnel: TunnelProcesses,
): Promise<InspectorFigure> {
  const size = config.quick ? QUICK_BLOCK : BLOCK;
  const blocks = Math.max(2, Math.round(config.inspectorSetups / size));
  const setups = (count: number): Promise<number[]> => connectionSetup(echoPort, config.setupBytes, count, 10_000);
  progress(`inspector: ${blocks} blocks of ${size} connections each with it and without, in turns`);
  try {
    // Both paths warm before the first block counts.
    for (const on of [true, false]) {
      await tunnel.inspect(on);
      await setups(size * 5);
    }
    const pairs: { on: InspectorSide; off: InspectorSide }[] = [];
    for (let b = 0; b < blocks; b++) {
      const pair: Partial<Record<'on' | 'off', InspectorSide>> = {};
      for (const on of b % 2 === 0 ? [true, false] : [false, true]) {
        await tunnel.inspect(on);
        const before = await tunnel.stats();
        await setups(size);
        pair[on ? 'on' : 'off'] = perConnection(before, await tunnel.stats(), size);
      }
      if (pair.on && pair.off) pairs.push({ on: pair.on, off: pair.off });
    }
    const figure = inspectorFigure(pairs, size);
    const { mean, low, high } = figure.extra.client;
    progress(
      `inspector: client +${mean.toFixed(1)} µs per connection with it (from ${low.toFixed(1)} to ${high.toFixed(1)})`,
    );
    return figure;
  } finally {
    await tunnel.inspect(config.inspector);
  }
}
