// wrk (the Debian package) as the HTTP load generator: is it installed, run it with a
// deadline, and read its report.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export const WRK_MISSING = 'wrk not found: apt-get install wrk';

export interface WrkOptions {
  url: string;
  connections: number;
  seconds: number;
  /** Send `Connection: close`: one TCP connection (and one burrow rendezvous) per request. */
  close: boolean;
  /** Send this Host header instead of the URL's (`bench.localhost`: the relay routes an
   * HTTP tunnel by name by it). */
  host?: string | undefined;
}

export interface WrkResult {
  requestsPerSec: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** Answers with a status outside 2xx/3xx. */
  non2xx: number;
}

/** Whether `wrk` can be started. */
export function wrkInstalled(): boolean {
  const probe = spawnSync('wrk', ['--version'], { stdio: 'ignore', timeout: 10_000 });
  const error: NodeJS.ErrnoException | undefined = probe.error;
  return error?.code !== 'ENOENT';
}

/** A wrk run in progress, so that SIGINT can end it. */
let running: ChildProcess | undefined;
export function killWrk(): void {
  running?.kill('SIGKILL');
}

/** Runs `wrk -t1 -cN -dSs --latency` (one thread: the bench machine has 2 cores) and parses
 * its report. Rejects if wrk fails, prints no report, or outlives its run by 20 s. */
export function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--timeout', '5s', '--latency'];
  if (options.host !== undefined) args.push('-H', `Host: ${options.host}`);
  if (options.close) args.push('-H', 'Connection: close');
  args.push(options.url);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running = child;
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.seconds + 20) * 1000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`wrk: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running = undefined;
      try {
        if (code !== 0) throw new Error(`exited with ${signal ?? `code ${code}`}`);
        resolve(parseWrk(output));
      } catch (error) {
        reject(new Error(`wrk ${args.join(' ')}: ${(error as Error).message}\n${output.trim()}`));
      }
    });
  });
}

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** A wrk duration (`812.00us`, `1.70ms`, `2.01s`) in ms. */
function durationMs(text: string): number {
  const match = /^([0-9.]+)(us|ms|s|m|h)$/.exec(text);
  const scale = match?.[2] === undefined ? undefined : UNIT_MS[match[2]];
  if (match?.[1] === undefined || scale === undefined) throw new Error(`cannot read the duration '${text}'`);
  return Number(match[1]) * scale;
}

/** Reads wrk's text report (with --latency). */
export function parseWrk(text: string): WrkResult {
  const find = (pattern: RegExp, what: string): RegExpExecArray => {
    const match = pattern.exec(text);
    if (!match) throw new Error(`no ${what} in wrk's report`);
    return match;
  };
  const int = (value: string | undefined): number => Number(value ?? Number.NaN);
  // Both lines are only printed when there were errors.
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requestsPerSec: Number(find(/Requests\/sec:\s+([0-9.]+)/, 'Requests/sec')[1]),
    requests: int(find(/(\d+) requests in /, 'request count')[1]),
    p50Ms: durationMs(find(/^\s+50%\s+(\S+)$/m, '50% latency')[1] ?? ''),
    p99Ms: durationMs(find(/^\s+99%\s+(\S+)$/m, '99% latency')[1] ?? ''),
    socketErrors: {
      connect: errors ? int(errors[1]) : 0,
      read: errors ? int(errors[2]) : 0,
      write: errors ? int(errors[3]) : 0,
      timeout: errors ? int(errors[4]) : 0,
    },
    non2xx: non2xx ? int(non2xx[1]) : 0,
  };
}
