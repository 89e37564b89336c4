// Concurrency: many connections echoing at once, per side; the total wall time of each batch.
import type { Config } from './config.ts';
import { KiB, MiB, progress, round } from './format.ts';
import { SIDES, sidesInOrder, type ConcurrencySummary, type Ports, type Side } from './results.ts';
import { median, settleMemory } from './stats.ts';
import { concurrentEcho } from './workloads.ts';

export async function measureConcurrency(config: Config, ports: Record<Side, Ports>): Promise<Record<Side, ConcurrencySummary>> {
  const connBytes = config.connectionKiB * KiB;
  const deadlineMs = 60_000 + ((config.connections * connBytes) / MiB) * 100;
  for (const side of SIDES) await concurrentEcho(ports[side].echo, config.connections, Math.min(connBytes, 64 * KiB), deadlineMs);
  const runs: Record<Side, number[]> = { direct: [], tunnel: [] };
  for (let r = 0; r < config.repeat; r++) {
    for (const side of sidesInOrder(r)) {
      await settleMemory();
      const ms = (await concurrentEcho(ports[side].echo, config.connections, connBytes, deadlineMs)) / 1e6;
      runs[side].push(ms);
      progress(config, `${config.connections} × ${config.connectionKiB} KiB echo ${side} [${r + 1}/${config.repeat}]: ${ms.toFixed(1)} ms`);
    }
  }
  const summarize = (list: number[]): ConcurrencySummary => ({ ms: median(list), runsMs: list.map((x) => round(x, 1)) });
  return { direct: summarize(runs.direct), tunnel: summarize(runs.tunnel) };
}
