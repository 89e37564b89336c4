// Figures 2 and 3: connection setup (connect, echo a small message, close; sequential)
// and round trips on an established connection. Samples are taken in blocks that
// alternate between the sides, so a slow spell of the machine lands on both.
import { progress, sidesInOrder, SIDES, type Config, type Side } from './config.ts';
import type { LatencyFigure, Percentiles } from './results.ts';
import { collectGarbage, percentile } from './stats.ts';
import type { ServicesProcess } from './services-process.ts';
import type { TunnelProcesses } from './tunnel.ts';
import { connectionSetup, PingPong } from './workloads.ts';

/** Samples are taken in this many alternating blocks per side. */
const BLOCKS = 10;

function percentiles(samples: number[], scale: number): Percentiles {
  const at = (p: number): number => percentile(samples, p) * scale;
  return { p50: at(50), p90: at(90), p99: at(99), samples: samples.length };
}

/** `total` split into at most BLOCKS blocks (the last one may be smaller). */
function blocksOf(total: number): number[] {
  const size = Math.ceil(total / BLOCKS);
  return Array.from({ length: BLOCKS }, (_, i) => Math.max(0, Math.min(size, total - i * size))).filter((n) => n > 0);
}

/** `total` samples (µs) per side, in alternating blocks. */
async function interleave(
  total: number,
  measure: (side: Side, count: number) => Promise<number[]>,
): Promise<Record<Side, number[]>> {
  const samples: Record<Side, number[]> = { direct: [], burrow: [] };
  await collectGarbage();
  for (const [b, count] of blocksOf(total).entries()) {
    for (const side of sidesInOrder(b)) samples[side].push(...(await measure(side, count)));
  }
  return samples;
}

function report(what: string, figure: LatencyFigure): void {
  for (const side of SIDES) {
    const p = figure.sides[side];
    const digits = figure.unit === 'ms' ? 3 : 0;
    progress(
      `${what} ${side}: p50 ${p.p50.toFixed(digits)} ${figure.unit}, p90 ${p.p90.toFixed(digits)}, p99 ${p.p99.toFixed(digits)}`,
    );
  }
}

/** Connection setup through the echo service, in ms; and the CPU each connection costs
 * the echo service (direct) or the relay and the client (burrow): the cost that bounds
 * connections per second. */
export async function measureSetup(
  config: Config,
  echoPort: Record<Side, number>,
  processes: { services: ServicesProcess; tunnel: TunnelProcesses },
): Promise<LatencyFigure> {
  const warmup = Math.max(20, Math.floor(config.setups / 10));
  for (const side of SIDES) await connectionSetup(echoPort[side], config.setupBytes, warmup, 10_000);
  const cpuUs = { service: 0, relay: 0, client: 0 };
  const samples = await interleave(config.setups, async (side, count) => {
    const before = side === 'direct' ? await processes.services.stats() : await processes.tunnel.stats();
    const block = await connectionSetup(echoPort[side], config.setupBytes, count, 10_000);
    if ('relay' in before) {
      const after = await processes.tunnel.stats();
      cpuUs.relay += after.relay.cpuUs - before.relay.cpuUs;
      cpuUs.client += after.client.cpuUs - before.client.cpuUs;
    } else {
      cpuUs.service += (await processes.services.stats()).cpuUs - before.cpuUs;
    }
    return block;
  });
  const figure: LatencyFigure = {
    unit: 'ms',
    bytes: config.setupBytes,
    sides: { direct: percentiles(samples.direct, 1e-3), burrow: percentiles(samples.burrow, 1e-3) },
    cpuUsPerConn: {
      service: cpuUs.service / samples.direct.length,
      relay: cpuUs.relay / samples.burrow.length,
      client: cpuUs.client / samples.burrow.length,
    },
  };
  report('connection setup', figure);
  return figure;
}

/** Round trips on one long-lived echo connection per side, in µs. */
export async function measureRoundTrips(config: Config, echoPort: Record<Side, number>): Promise<LatencyFigure> {
  const warmup = Math.min(1000, Math.max(100, Math.floor(config.rounds / 10)));
  const deadlineMs = 60_000 + config.rounds * 20;
  const sessions: PingPong[] = [];
  try {
    const session: Partial<Record<Side, PingPong>> = {};
    for (const side of SIDES) {
      const opened = await PingPong.open(echoPort[side], config.roundBytes, deadlineMs);
      sessions.push(opened);
      session[side] = opened;
      await opened.run(warmup);
    }
    const samples = await interleave(
      config.rounds,
      (side, count) => session[side]?.run(count) ?? Promise.reject(new Error(`no ${side} connection`)),
    );
    const figure: LatencyFigure = {
      unit: 'µs',
      bytes: config.roundBytes,
      sides: { direct: percentiles(samples.direct, 1), burrow: percentiles(samples.burrow, 1) },
    };
    report('round trip', figure);
    return figure;
  } finally {
    for (const session of sessions) await session.close();
  }
}
