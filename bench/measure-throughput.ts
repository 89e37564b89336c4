// Figure 1 and 6: one connection uploading to the sink or downloading from the source,
// direct and through burrow (and with --websocket, burrow over WebSocket) in turns; the
// relay's and client's CPU time during each burrow run gives the tunnel's CPU seconds per GiB.
import { progress, type Config } from './config.ts';
import { lanesInOrder, lanesOf, onLane, type Lane, type LaneTunnels, type PerLane } from './lanes.ts';
import { DIRECTIONS, type Direction, type ThroughputFigure, type TunnelCpu } from './results.ts';
import { collectGarbage, median } from './stats.ts';
import type { TunnelProcesses } from './tunnel.ts';
import { download, upload } from './workloads.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

export interface ThroughputPorts {
  sink: PerLane<number>;
  source: PerLane<number>;
}

interface Run {
  mbPerSec: number;
  /** CPU µs of the relay and the client during the run (burrow lanes only). */
  relayCpuUs: number;
  clientCpuUs: number;
}

async function run(
  tunnel: TunnelProcesses | undefined,
  port: number,
  direction: Direction,
  bytes: number,
): Promise<Run> {
  const deadlineMs = 30_000 + (bytes / MiB) * 100; // fails below ~10 MiB/s
  await collectGarbage();
  const before = await tunnel?.stats();
  const ns = direction === 'upload' ? await upload(port, bytes, deadlineMs) : await download(port, bytes, deadlineMs);
  const after = before === undefined ? undefined : await tunnel?.stats();
  return {
    mbPerSec: bytes / 1e6 / (ns / 1e9),
    relayCpuUs: before && after ? after.relay.cpuUs - before.relay.cpuUs : 0,
    clientCpuUs: before && after ? after.client.cpuUs - before.client.cpuUs : 0,
  };
}

export async function measureThroughput(
  config: Config,
  tunnels: LaneTunnels,
  ports: ThroughputPorts,
): Promise<Record<Direction, ThroughputFigure>> {
  const bytes = config.throughputMiB * MiB;
  const lanes = lanesOf(ports.sink);
  const once = (lane: Lane, direction: Direction, size: number): Promise<Run> =>
    run(
      lane === 'direct' ? undefined : onLane(tunnels, lane),
      onLane(direction === 'upload' ? ports.sink : ports.source, lane),
      direction,
      size,
    );
  const warmBytes = Math.min(bytes, 64 * MiB);
  progress(`throughput: warm-up, ${warmBytes / MiB} MiB each way on each side`);
  for (const lane of lanes) for (const direction of DIRECTIONS) await once(lane, direction, warmBytes);

  const runs: Record<Direction, Record<Lane, Run[]>> = {
    upload: { direct: [], burrow: [], ws: [] },
    download: { direct: [], burrow: [], ws: [] },
  };
  for (let r = 0; r < config.repeat; r++) {
    for (const direction of DIRECTIONS) {
      for (const lane of lanesInOrder(r, lanes)) {
        const result = await once(lane, direction, bytes);
        runs[direction][lane].push(result);
        const cpu =
          lane === 'direct'
            ? ''
            : `, tunnel CPU ${((result.relayCpuUs + result.clientCpuUs) / 1e6 / (bytes / GiB)).toFixed(2)} s/GiB`;
        progress(
          `throughput ${direction} ${lane} [${r + 1}/${config.repeat}]: ${result.mbPerSec.toFixed(0)} MB/s${cpu}`,
        );
      }
    }
  }
  const perGiB = (us: number): number => us / 1e6 / (bytes / GiB);
  const cpuOf = (lane: Run[]): TunnelCpu => ({
    relay: median(lane.map((x) => perGiB(x.relayCpuUs))),
    client: median(lane.map((x) => perGiB(x.clientCpuUs))),
    tunnel: median(lane.map((x) => perGiB(x.relayCpuUs + x.clientCpuUs))),
  });
  const rates = (lane: Run[]): number[] => lane.map((x) => x.mbPerSec);
  const figure = (direction: Direction): ThroughputFigure => {
    const { direct, burrow, ws } = runs[direction];
    return {
      bytes,
      mbPerSec: { direct: median(rates(direct)), burrow: median(rates(burrow)) },
      runsMbPerSec: { direct: rates(direct).map(Math.round), burrow: rates(burrow).map(Math.round) },
      cpuSecPerGiB: cpuOf(burrow),
      webSocket: lanes.includes('ws')
        ? { mbPerSec: median(rates(ws)), runsMbPerSec: rates(ws).map(Math.round), cpuSecPerGiB: cpuOf(ws) }
        : undefined,
    };
  };
  return { upload: figure('upload'), download: figure('download') };
}
