// Figures 2 and 3: connection setup (connect, echo a small message, close; sequential)
// and round trips on an established connection. Samples are taken in blocks that
// alternate between the sides (and with --websocket the ws lane: lanes.ts), so a slow
// spell of the machine lands on all of them.
import { progress, SIDES, type Config } from './config.ts';
import { lanesInOrder, lanesOf, onLane, type Lane, type LaneTunnels, type PerLane } from './lanes.ts';
import type { LatencyFigure, Percentiles } from './results.ts';
import { collectGarbage, percentile } from './stats.ts';
import type { ServicesProcess } from './services-process.ts';
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

/** `total` samples (µs) per lane, in blocks taking turns. */
async function interleave(
  total: number,
  lanes: readonly Lane[],
  measure: (lane: Lane, count: number) => Promise<number[]>,
): Promise<Record<Lane, number[]>> {
  const samples: Record<Lane, number[]> = { direct: [], burrow: [], ws: [] };
  await collectGarbage();
  for (const [b, count] of blocksOf(total).entries()) {
    for (const lane of lanesInOrder(b, lanes)) samples[lane].push(...(await measure(lane, count)));
  }
  return samples;
}

/** The figure of `samples`, with the ws lane's if it was measured. */
function figureOf(unit: LatencyFigure['unit'], bytes: number, samples: Record<Lane, number[]>): LatencyFigure {
  const scale = unit === 'ms' ? 1e-3 : 1;
  return {
    unit,
    bytes,
    sides: { direct: percentiles(samples.direct, scale), burrow: percentiles(samples.burrow, scale) },
    webSocket: samples.ws.length > 0 ? percentiles(samples.ws, scale) : undefined,
  };
}

function report(what: string, figure: LatencyFigure): void {
  const digits = figure.unit === 'ms' ? 3 : 0;
  const line = (lane: Lane, p: Percentiles): void =>
    progress(
      `${what} ${lane}: p50 ${p.p50.toFixed(digits)} ${figure.unit}, p90 ${p.p90.toFixed(digits)}, p99 ${p.p99.toFixed(digits)}`,
    );
  for (const side of SIDES) line(side, figure.sides[side]);
  if (figure.webSocket) line('ws', figure.webSocket);
}

/** Connection setup through the echo service, in ms; and the CPU each connection costs
 * the echo service (direct) or the relay and the client (burrow, and ws): the cost that
 * bounds connections per second. */
export async function measureSetup(
  config: Config,
  echoPort: PerLane<number>,
  processes: { services: ServicesProcess; tunnels: LaneTunnels },
): Promise<LatencyFigure> {
  const lanes = lanesOf(echoPort);
  const setups = (lane: Lane, count: number): Promise<number[]> =>
    connectionSetup(onLane(echoPort, lane), config.setupBytes, count, 10_000);
  const warmup = Math.max(20, Math.floor(config.setups / 10));
  for (const lane of lanes) await setups(lane, warmup);
  let serviceUs = 0;
  const tunnelUs = { burrow: { relay: 0, client: 0 }, ws: { relay: 0, client: 0 } };
  const samples = await interleave(config.setups, lanes, async (lane, count) => {
    if (lane === 'direct') {
      const before = await processes.services.stats();
      const block = await setups(lane, count);
      serviceUs += (await processes.services.stats()).cpuUs - before.cpuUs;
      return block;
    }
    const tunnel = onLane(processes.tunnels, lane);
    const before = await tunnel.stats();
    const block = await setups(lane, count);
    const after = await tunnel.stats();
    tunnelUs[lane].relay += after.relay.cpuUs - before.relay.cpuUs;
    tunnelUs[lane].client += after.client.cpuUs - before.client.cpuUs;
    return block;
  });
  const perConn = (cpu: { relay: number; client: number }, n: number): { relay: number; client: number } => ({
    relay: cpu.relay / n,
    client: cpu.client / n,
  });
  const figure: LatencyFigure = {
    ...figureOf('ms', config.setupBytes, samples),
    cpuUsPerConn: {
      service: serviceUs / samples.direct.length,
      ...perConn(tunnelUs.burrow, samples.burrow.length),
      webSocket: samples.ws.length > 0 ? perConn(tunnelUs.ws, samples.ws.length) : undefined,
    },
  };
  report('connection setup', figure);
  return figure;
}

/** Round trips on one long-lived echo connection per lane, in µs. */
export async function measureRoundTrips(config: Config, echoPort: PerLane<number>): Promise<LatencyFigure> {
  const warmup = Math.min(1000, Math.max(100, Math.floor(config.rounds / 10)));
  const deadlineMs = 60_000 + config.rounds * 20;
  const lanes = lanesOf(echoPort);
  const sessions: PingPong[] = [];
  try {
    const session: Partial<Record<Lane, PingPong>> = {};
    for (const lane of lanes) {
      const opened = await PingPong.open(onLane(echoPort, lane), config.roundBytes, deadlineMs);
      sessions.push(opened);
      session[lane] = opened;
      await opened.run(warmup);
    }
    const samples = await interleave(
      config.rounds,
      lanes,
      (lane, count) => session[lane]?.run(count) ?? Promise.reject(new Error(`no ${lane} connection`)),
    );
    const figure = figureOf('µs', config.roundBytes, samples);
    report('round trip', figure);
    return figure;
  } finally {
    for (const session of sessions) await session.close();
  }
}
