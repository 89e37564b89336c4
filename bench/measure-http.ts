// Figures 5 and 7: HTTP requests/s and latency with wrk against a node:http service,
// directly and through burrow, with keep-alive and with `Connection: close` (a new TCP
// connection per request, and through burrow a new visitor connection at the relay).
// Figure 5 goes through a TCP tunnel's public port; figure 7 through the relay's HTTP port,
// routed by `Host: bench.localhost` to an HTTP tunnel by name (issue 16). Runs alternate
// sides and modes.
import http from 'node:http';
import { progress, sidesInOrder, SIDES, type Config, type Side } from './config.ts';
import { HOST } from './io.ts';
import { REFERENCES, type HttpErrorKinds, type HttpFigure, type HttpSide, type Reference } from './results.ts';
import { HTTP_BODY } from './services.ts';
import { median } from './stats.ts';
import { runWrk, type WrkResult } from './wrk.ts';

const MODES: readonly HttpFigure['mode'][] = ['keep-alive', 'close'];

/** What wrk runs against. */
export interface HttpTarget {
  /** Names the figure in progress lines: `http` or `httpname`. */
  label: string;
  ports: Record<Side, number>;
  /** The Host header of every request, on both sides (the service ignores it; the relay's
   * HTTP port routes by it). Default: wrk's, `127.0.0.1:<port>`. */
  host?: string | undefined;
  /** Figure 7: the ports of one bare node:http proxy to the service and of two chained
   * (services.ts, bareProxy()), measured beside the two sides in every round: what one
   * and two hops of per-request HTTP routing in Node reach. */
  references?: Record<Reference, number> | undefined;
}

const kindsOf = (r: WrkResult): HttpErrorKinds => ({ ...r.socketErrors, non2xx: r.non2xx });
const total = (k: HttpErrorKinds): number => k.connect + k.read + k.write + k.timeout + k.non2xx;
const kindsText = (k: HttpErrorKinds): string =>
  `connect ${k.connect}, read ${k.read}, write ${k.write}, timeout ${k.timeout}, non-2xx/3xx ${k.non2xx}`;

/** One request with `host`: the answer must be the service's own (200 and its body), so
 * that wrk measures the route to it and not, say, the relay's 404 page. */
function checkAnswer(port: number, host: string | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers = host === undefined ? {} : { Host: host };
    const request = http.get({ host: HOST, port, path: '/', headers, agent: false, timeout: 10_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('error', reject);
      response.once('end', () => {
        const body = Buffer.concat(chunks);
        if (response.statusCode === 200 && body.equals(HTTP_BODY)) resolve();
        else
          reject(
            new Error(
              `${what}: GET / with Host ${host ?? '(default)'} on port ${port} answered ${response.statusCode ?? '?'} ${JSON.stringify(body.toString('utf8').slice(0, 200))}, not the service's 200`,
            ),
          );
      });
    });
    request.once('timeout', () => request.destroy(new Error(`${what}: no answer within 10 s`)));
    request.once('error', reject);
  });
}

export async function measureHttp(config: Config, target: HttpTarget): Promise<HttpFigure[]> {
  const { label, ports, host, references } = target;
  /** The sides, and the reference proxies if there are. */
  type Target = Side | Reference;
  const portOf = (side: Target): number =>
    side === 'direct' || side === 'burrow' ? ports[side] : (references?.[side] ?? 0);
  const targetsInOrder = (r: number): Target[] =>
    references === undefined ? sidesInOrder(r) : [...sidesInOrder(r), ...REFERENCES];
  const wrk = (side: Target, mode: HttpFigure['mode'], seconds: number): Promise<WrkResult> =>
    runWrk({
      url: `http://127.0.0.1:${portOf(side)}/`,
      connections: config.wrkConnections,
      seconds,
      close: mode === 'close',
      host,
    });
  for (const side of targetsInOrder(0)) await checkAnswer(portOf(side), host, `${label} ${side}`);
  progress(`${label}: warm-up, 1 s per side and mode${host === undefined ? '' : `, Host: ${host}`}`);
  for (const side of targetsInOrder(0)) for (const mode of MODES) await wrk(side, mode, 1);

  const runs: Record<HttpFigure['mode'], Record<Target, WrkResult[]>> = {
    'keep-alive': { direct: [], burrow: [], 'one hop': [], 'two hops': [] },
    close: { direct: [], burrow: [], 'one hop': [], 'two hops': [] },
  };
  for (let r = 0; r < config.wrkRepeat; r++) {
    for (const mode of MODES) {
      for (const side of targetsInOrder(r)) {
        const result = await wrk(side, mode, config.wrkSeconds);
        runs[mode][side].push(result);
        const errors = total(kindsOf(result));
        progress(
          `${label} ${mode} ${side} [${r + 1}/${config.wrkRepeat}]: ${result.requestsPerSec.toFixed(0)} req/s, p99 ${result.p99Ms.toFixed(2)} ms, ` +
            (errors === 0 ? '0 errors' : `${errors} errors (${kindsText(kindsOf(result))})`),
        );
      }
    }
  }
  const summarize = (list: WrkResult[]): HttpSide => {
    const kinds = list.map(kindsOf);
    const sum = (key: keyof HttpErrorKinds): number => kinds.reduce((n, k) => n + k[key], 0);
    const errorKinds = {
      connect: sum('connect'),
      read: sum('read'),
      write: sum('write'),
      timeout: sum('timeout'),
      non2xx: sum('non2xx'),
    };
    return {
      requestsPerSec: median(list.map((x) => x.requestsPerSec)),
      p50Ms: median(list.map((x) => x.p50Ms)),
      p99Ms: median(list.map((x) => x.p99Ms)),
      errors: total(errorKinds),
      errorKinds,
      fewestRequests: Math.min(...list.map((x) => x.requests)),
      runsRequestsPerSec: list.map((x) => Math.round(x.requestsPerSec)),
    };
  };
  return MODES.map((mode) => ({
    mode,
    sides: { direct: summarize(runs[mode].direct), burrow: summarize(runs[mode].burrow) },
    ...(references === undefined
      ? {}
      : { references: { 'one hop': summarize(runs[mode]['one hop']), 'two hops': summarize(runs[mode]['two hops']) } }),
  }));
}

/** Why `figures` are not a measurement, or undefined if they are: any socket error or
 * non-2xx/3xx answer (a wrong route answers 404s fast), or a run with no request done. */
export function httpProblems(figures: HttpFigure[]): string | undefined {
  const problems: string[] = [];
  for (const figure of figures) {
    for (const side of SIDES) {
      const s = figure.sides[side];
      if (s.errors > 0) problems.push(`${figure.mode} ${side}: ${s.errors} errors (${kindsText(s.errorKinds)})`);
      if (s.fewestRequests === 0) problems.push(`${figure.mode} ${side}: a wrk run completed no request`);
    }
    for (const reference of REFERENCES) {
      const r = figure.references?.[reference];
      if (r && r.errors > 0)
        problems.push(`${figure.mode} reference, ${reference}: ${r.errors} errors (${kindsText(r.errorKinds)})`);
    }
  }
  return problems.length === 0 ? undefined : `wrk: ${problems.join('; ')}`;
}
