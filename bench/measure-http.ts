// Figure 5: HTTP requests/s and latency with wrk against a node:http service, directly
// and through burrow, with keep-alive and with `Connection: close` (a new TCP connection,
// and so a burrow rendezvous, per request). Runs alternate sides and modes.
import { progress, sidesInOrder, SIDES, type Config, type Side } from './config.ts';
import type { HttpFigure, HttpSide } from './results.ts';
import { median } from './stats.ts';
import { runWrk, type WrkResult } from './wrk.ts';

const MODES: readonly HttpFigure['mode'][] = ['keep-alive', 'close'];

const errorsOf = (r: WrkResult): number =>
  r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout + r.non2xx;

export async function measureHttp(config: Config, httpPort: Record<Side, number>): Promise<HttpFigure[]> {
  const wrk = (side: Side, mode: HttpFigure['mode'], seconds: number): Promise<WrkResult> =>
    runWrk({
      url: `http://127.0.0.1:${httpPort[side]}/`,
      connections: config.wrkConnections,
      seconds,
      close: mode === 'close',
    });
  progress('http: warm-up, 1 s per side and mode');
  for (const side of SIDES) for (const mode of MODES) await wrk(side, mode, 1);

  const runs: Record<HttpFigure['mode'], Record<Side, WrkResult[]>> = {
    'keep-alive': { direct: [], burrow: [] },
    close: { direct: [], burrow: [] },
  };
  for (let r = 0; r < config.wrkRepeat; r++) {
    for (const mode of MODES) {
      for (const side of sidesInOrder(r)) {
        const result = await wrk(side, mode, config.wrkSeconds);
        runs[mode][side].push(result);
        progress(
          `http ${mode} ${side} [${r + 1}/${config.wrkRepeat}]: ${result.requestsPerSec.toFixed(0)} req/s, p99 ${result.p99Ms.toFixed(2)} ms, ${errorsOf(result)} errors`,
        );
      }
    }
  }
  const summarize = (list: WrkResult[]): HttpSide => ({
    requestsPerSec: median(list.map((x) => x.requestsPerSec)),
    p50Ms: median(list.map((x) => x.p50Ms)),
    p99Ms: median(list.map((x) => x.p99Ms)),
    errors: list.reduce((sum, x) => sum + errorsOf(x), 0),
    runsRequestsPerSec: list.map((x) => Math.round(x.requestsPerSec)),
  });
  return MODES.map((mode) => ({
    mode,
    sides: { direct: summarize(runs[mode].direct), burrow: summarize(runs[mode].burrow) },
  }));
}
