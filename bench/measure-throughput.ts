// Figure 1 and 6: one connection uploading to the sink or downloading from the source,
// direct and through burrow in alternating order; the relay's and client's CPU time
// during each burrow run gives the tunnel's CPU seconds per GiB.
import { progress, sidesInOrder, SIDES, type Config, type Side } from './config.ts';
import { DIRECTIONS, type Direction, type ThroughputFigure } from './results.ts';
import { collectGarbage, median } from './stats.ts';
import type { TunnelProcesses } from './tunnel.ts';
import { download, upload } from './workloads.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

export interface ThroughputPorts {
  sink: Record<Side, number>;
  source: Record<Side, number>;
}

interface Run {
  mbPerSec: number;
  /** CPU µs of the relay and the client during the run (burrow side only). */
  relayCpuUs: number;
  clientCpuUs: number;
}

async function run(
  tunnel: TunnelProcesses,
  ports: ThroughputPorts,
  side: Side,
  direction: Direction,
  bytes: number,
): Promise<Run> {
  const port = direction === 'upload' ? ports.sink[side] : ports.source[side];
  const deadlineMs = 30_000 + (bytes / MiB) * 100; // fails below ~10 MiB/s
  await collectGarbage();
  const before = side === 'burrow' ? await tunnel.stats() : undefined;
  const ns = direction === 'upload' ? await upload(port, bytes, deadlineMs) : await download(port, bytes, deadlineMs);
  const after = before === undefined ? undefined : await tunnel.stats();
  return {
    mbPerSec: bytes / 1e6 / (ns / 1e9),
    relayCpuUs: before && after ? after.relay.cpuUs - before.relay.cpuUs : 0,
    clientCpuUs: before && after ? after.client.cpuUs - before.client.cpuUs : 0,
  };
}

export async function measureThroughput(
  config: Config,
  tunnel: TunnelProcesses,
  ports: ThroughputPorts,
): Promise<Record<Direction, ThroughputFigure>> {
  const bytes = config.throughputMiB * MiB;
  const warmBytes = Math.min(bytes, 64 * MiB);
  progress(`throughput: warm-up, ${warmBytes / MiB} MiB each way on each side`);
  for (const side of SIDES) for (const direction of DIRECTIONS) await run(tunnel, ports, side, direction, warmBytes);

  const runs: Record<Direction, Record<Side, Run[]>> = {
    upload: { direct: [], burrow: [] },
    download: { direct: [], burrow: [] },
  };
  for (let r = 0; r < config.repeat; r++) {
    for (const direction of DIRECTIONS) {
      for (const side of sidesInOrder(r)) {
        const result = await run(tunnel, ports, side, direction, bytes);
        runs[direction][side].push(result);
        const cpu =
          side === 'burrow'
            ? `, tunnel CPU ${((result.relayCpuUs + result.clientCpuUs) / 1e6 / (bytes / GiB)).toFixed(2)} s/GiB`
            : '';
        progress(
          `throughput ${direction} ${side} [${r + 1}/${config.repeat}]: ${result.mbPerSec.toFixed(0)} MB/s${cpu}`,
        );
      }
    }
  }
  const figure = (direction: Direction): ThroughputFigure => {
    const perGiB = (us: number): number => us / 1e6 / (bytes / GiB);
    const burrow = runs[direction].burrow;
    return {
      bytes,
      mbPerSec: {
        direct: median(runs[direction].direct.map((x) => x.mbPerSec)),
        burrow: median(burrow.map((x) => x.mbPerSec)),
      },
      runsMbPerSec: {
        direct: runs[direction].direct.map((x) => Math.round(x.mbPerSec)),
        burrow: burrow.map((x) => Math.round(x.mbPerSec)),
      },
      cpuSecPerGiB: {
        relay: median(burrow.map((x) => perGiB(x.relayCpuUs))),
        client: median(burrow.map((x) => perGiB(x.clientCpuUs))),
        tunnel: median(burrow.map((x) => perGiB(x.relayCpuUs + x.clientCpuUs))),
      },
    };
  };
  return { upload: figure('upload'), download: figure('download') };
}
