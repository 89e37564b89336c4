// Latency (ping-pong on one long-lived connection) and connection setup (connect, one
// echo, close): per-sample timings taken in alternating blocks per side, as percentiles.
import type { Config } from './config.ts';
import { progress, round } from './format.ts';
import { SIDES, sidesInOrder, type Percentiles, type Ports, type Side } from './results.ts';
import { mean, percentile, settleMemory, type GcLog, type GcStats } from './stats.ts';
import { connectionSetup, PingPong } from './workloads.ts';

/** Latency and setup samples are taken in this many alternating blocks per side. */
const BLOCKS = 10;

function summarizeTimes(samples: number[], gc: GcStats): Percentiles {
  return {
    p50Us: percentile(samples, 50),
    p99Us: percentile(samples, 99),
    meanUs: mean(samples),
    maxUs: percentile(samples, 100),
    samples: samples.length,
    gc: { count: gc.count, pauseMs: round(gc.pauseMs, 2) },
  };
}

/** `total` split into at most BLOCKS blocks of equal size (the last one may be smaller). */
function blocksOf(total: number): number[] {
  const size = Math.ceil(total / BLOCKS);
  return Array.from({ length: BLOCKS }, (_, i) => Math.max(0, Math.min(size, total - i * size))).filter((n) => n > 0);
}

/** Takes `total` samples per side in BLOCKS blocks, alternating sides, so a slow spell
 * of the machine lands on both sides rather than on one; counts the GCs during each. */
async function interleave(gcLog: GcLog, measure: (side: Side, count: number) => Promise<number[]>, total: number): Promise<Record<Side, Percentiles>> {
  const samples: Record<Side, number[]> = { direct: [], tunnel: [] };
  const gc: Record<Side, GcStats> = { direct: { count: 0, pauseMs: 0 }, tunnel: { count: 0, pauseMs: 0 } };
  await settleMemory();
  for (const [b, count] of blocksOf(total).entries()) {
    for (const side of sidesInOrder(b)) {
      const from = gcLog.now();
      samples[side].push(...(await measure(side, count)));
      const during = await gcLog.since(from);
      gc[side].count += during.count;
      gc[side].pauseMs += during.pauseMs;
    }
  }
  return { direct: summarizeTimes(samples.direct, gc.direct), tunnel: summarizeTimes(samples.tunnel, gc.tunnel) };
}

function reportPercentiles(config: Config, what: string, result: Record<Side, Percentiles>): void {
  for (const side of SIDES) {
    progress(config, `${what} ${side}: p50 ${result[side].p50Us.toFixed(0)} µs, p99 ${result[side].p99Us.toFixed(0)} µs`);
  }
}

/** Latency: one long-lived echo connection per side. */
export async function measureLatency(config: Config, ports: Record<Side, Ports>, gcLog: GcLog): Promise<Record<Side, Percentiles>> {
  const warmup = Math.min(1000, Math.max(100, Math.floor(config.pingPongRounds / 10)));
  const deadlineMs = 60_000 + config.pingPongRounds * 20;
  const sessions: Partial<Record<Side, PingPong>> = {};
  let latency: Record<Side, Percentiles>;
  try {
    for (const side of SIDES) {
      const session = await PingPong.open(ports[side].echo, config.pingPongBytes, deadlineMs);
      sessions[side] = session;
      await session.run(warmup);
    }
    latency = await interleave(
      gcLog,
      (side, count) => {
        const session = sessions[side];
        return session ? session.run(count) : Promise.reject(new Error(`no ping-pong connection for ${side}`));
      },
      config.pingPongRounds,
    );
  } finally {
    for (const session of Object.values(sessions)) await session.close();
  }
  reportPercentiles(config, 'ping-pong', latency);
  return latency;
}

/** Connection setup: sequential connect + one round trip + close. */
export async function measureSetup(config: Config, ports: Record<Side, Ports>, gcLog: GcLog): Promise<Record<Side, Percentiles>> {
  const warmup = Math.max(10, Math.floor(config.setups / 10));
  for (const side of SIDES) await connectionSetup(ports[side].echo, config.setupBytes, warmup, 10_000);
  const setup = await interleave(gcLog, (side, count) => connectionSetup(ports[side].echo, config.setupBytes, count, 10_000), config.setups);
  reportPercentiles(config, 'connection setup', setup);
  return setup;
}
