// Figure 4: hold `count` connections open at once, each verified with an echo, and
// measure what holding them costs in RSS. Every run starts fresh processes, so the
// "idle" RSS it subtracts is not inflated by an earlier run:
// - direct: the bench process → the services process's echo;
// - burrow: the bench process → relay → client → the services process's echo.
// So direct's RSS per connection is what one accepted socket costs a Node process (the
// yardstick), and burrow's is what the relay and client together hold per connection
// (four sockets: visitor and data at the relay, data and local at the client).
import { progress, sidesInOrder, type Config, type Side } from './config.ts';
import type { ProcessStats } from './messages.ts';
import type { ConnsFigure, ConnsSide } from './results.ts';
import { ServicesProcess } from './services-process.ts';
import { median } from './stats.ts';
import { TunnelProcesses } from './tunnel.ts';
import { holdConnections, releaseConnections, type Held } from './workloads.ts';

/** Time one connection gets to be accepted, joined and echo its 16 bytes. */
const OPEN_MS = 15_000;
/** Life of each held connection: far more than a run takes; only a backstop. */
const LIFE_MS = 600_000;
const CLOSE_MS = 60_000;
const WARMUP_CONNECTIONS = 200;

interface Run {
  held: Held;
  /** Measured processes: idle (before) and holding (after), after full GCs. */
  idle: Record<string, ProcessStats>;
  holding: Record<string, ProcessStats>;
}

/** Warms the path up, then holds `count` connections and measures `stats` before and while. */
async function holdAndMeasure(
  config: Config,
  port: number,
  count: number,
  stats: () => Promise<Record<string, ProcessStats>>,
): Promise<Run> {
  await releaseConnections(
    await holdConnections(port, Math.min(count, WARMUP_CONNECTIONS), config.connBatch, OPEN_MS, LIFE_MS),
    CLOSE_MS,
  );
  const idle = await stats();
  const held = await holdConnections(port, count, config.connBatch, OPEN_MS, LIFE_MS);
  try {
    return { held, idle, holding: await stats() };
  } finally {
    await releaseConnections(held, CLOSE_MS);
  }
}

async function run(config: Config, side: Side, count: number): Promise<Run> {
  const services = await ServicesProcess.start();
  try {
    const echoPort = services.ports.echo;
    if (side === 'direct')
      return await holdAndMeasure(config, echoPort, count, async () => ({ services: await services.stats(true) }));
    const tunnel = await TunnelProcesses.start([echoPort], { inspector: config.inspector });
    try {
      const [publicPort] = tunnel.publicPorts;
      if (publicPort === undefined) throw new Error('the client opened no tunnel');
      return await holdAndMeasure(config, publicPort, count, async () => {
        const { relay, client } = await tunnel.stats(true);
        return { relay, client };
      });
    } finally {
      await tunnel.close();
    }
  } finally {
    await services.close();
  }
}

function summarize(runs: Run[]): ConnsSide {
  const errors: Record<string, number> = {};
  for (const r of runs)
    for (const [message, n] of Object.entries(r.held.errors)) errors[message] = (errors[message] ?? 0) + n;
  const names = Object.keys(runs[0]?.idle ?? {});
  const perConn = (r: Run): number =>
    names.reduce((sum, name) => sum + (r.holding[name]?.rss ?? 0) - (r.idle[name]?.rss ?? 0), 0) /
    r.held.conns.length /
    1024;
  return {
    failures: runs.reduce((sum, r) => sum + r.held.failures, 0),
    errors,
    openMs: median(runs.map((r) => r.held.openMs)),
    rssPerConnKiB: median(runs.map(perConn)),
    processes: Object.fromEntries(
      names.map((name) => [
        name,
        {
          idleRss: median(runs.map((r) => r.idle[name]?.rss ?? Number.NaN)),
          heldRss: median(runs.map((r) => r.holding[name]?.rss ?? Number.NaN)),
          heldFds: median(runs.map((r) => r.holding[name]?.fds ?? Number.NaN)),
          idleHeap: median(runs.map((r) => r.idle[name]?.heapUsed ?? Number.NaN)),
          heldHeap: median(runs.map((r) => r.holding[name]?.heapUsed ?? Number.NaN)),
        },
      ]),
    ),
  };
}

/** `count` is what fits the open-files limit; `requested` what was asked (see `note`). */
export async function measureConcurrency(
  config: Config,
  count: number,
  requested: number,
  note: string | undefined,
): Promise<ConnsFigure> {
  const runs: Record<Side, Run[]> = { direct: [], burrow: [] };
  for (let r = 0; r < config.connRepeat; r++) {
    for (const side of sidesInOrder(r)) {
      const result = await run(config, side, count);
      runs[side].push(result);
      const rss = Object.entries(result.holding)
        .map(
          ([name, s]) =>
            `${name} ${(s.rss / 2 ** 20).toFixed(1)} MiB (idle ${((result.idle[name]?.rss ?? 0) / 2 ** 20).toFixed(1)}; heap ${(s.heapUsed / 2 ** 20).toFixed(1)}), ${s.fds} fds`,
        )
        .join('; ');
      progress(
        `${count} conns ${side} [${r + 1}/${config.connRepeat}]: ${result.held.conns.length} held, ${result.held.failures} failed, opened in ${result.held.openMs.toFixed(0)} ms; ${rss}`,
      );
    }
  }
  return {
    count,
    requested,
    runs: config.connRepeat,
    note,
    sides: { direct: summarize(runs.direct), burrow: summarize(runs.burrow) },
  };
}
