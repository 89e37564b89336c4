// Shared machinery of the interop suite (`npm run test:interop`): real programs (sshd,
// redis, curl, iperf3, nc, nginx, haproxy) talk through a real `burrow server` and
// `burrow client` (the CLI, as child processes), all on loopback with ephemeral ports.
//
// Every test is one `scoped(async (use) => ...)`: whatever it opens goes through `use(...)`
// and is closed (in reverse order) when the body ends, whether it passed or threw. Nothing
// here sleeps, except the one allowed retry loop: polling a daemon's port until it
// accepts connections, bounded in attempts and in time.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { cleanEnv, FORWARDING, killAll, loopbackClientArgs, startCli, waitForOutput, type Cli } from '../child.ts';
import { within } from '../helpers.ts';

export const LOOPBACK = '127.0.0.1';

/** Something a test opened and must close. */
export interface Closable {
  close(): Promise<void>;
}

/** Runs `body` with `use`, which registers a resource to close; all are closed in reverse
 * order when `body` settles. A cleanup failure never hides the body's own failure. */
export async function scoped<T>(body: (use: <R extends Closable>(resource: R) => R) => Promise<T>): Promise<T> {
  const resources: Closable[] = [];
  try {
    return await body((resource) => (resources.push(resource), resource));
  } finally {
    for (const resource of resources.reverse()) await resource.close().catch(() => {});
  }
}

/** The absolute path of `program` (a name looked up in PATH, or an absolute path); fails
 * with a clear message naming the Debian package when it is missing. Never skips. */
export function requireProgram(program: string, debianPackage: string): string {
  const candidates = path.isAbsolute(program)
    ? [program]
    : (process.env.PATH ?? '')
        .split(':')
        .filter(Boolean)
        .map((dir) => path.join(dir, program));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here: try the next directory
    }
  }
  throw new Error(`${program} not found: install ${debianPackage} (.ci/run does)`);
}

/** A fresh directory under the system temp dir, removed (recursively) on close. */
export async function tempDir(): Promise<Closable & { path: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'burrow-interop-'));
  return { path: dir, close: () => rm(dir, { recursive: true, force: true }) };
}

/** A port that was free a moment ago on 127.0.0.1, for daemons that need one in their
 * config (listen on 0, read the port, close). */
export async function freePort(host = LOOPBACK): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await within(
    new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject)),
    5_000,
    'a free port',
  );
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface ToolOptions {
  /** Hard deadline: the program is SIGKILLed and the call fails after this long. */
  timeoutMs: number;
  /** Written to the program's stdin, which is then closed (default: empty stdin). */
  input?: Buffer | string;
  cwd?: string;
  /** Resolve with a nonzero exit instead of failing (the caller checks `code`). */
  allowFailure?: boolean;
}

/** Runs `program args` to completion. Fails (with its stderr) on timeout, on a signal, or
 * on a nonzero exit unless `allowFailure`. */
export async function spawnTool(program: string, args: string[], options: ToolOptions): Promise<ToolResult> {
  const child = spawn(program, args, { cwd: options.cwd, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => {}); // a program may exit without reading all its input
  child.stdin.end(options.input ?? '');
  const closed = new Promise<Pick<ToolResult, 'code' | 'signal'>>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
  });
  const what = `${path.basename(program)} ${args.join(' ')}`;
  try {
    const exit = await within(closed, options.timeoutMs, `${what} to finish`).catch((error: Error) => {
      throw new Error(`${error.message}; stderr: ${stderr}`);
    });
    const result = { ...exit, stdout: Buffer.concat(stdout), stderr };
    if (exit.code !== 0 && !options.allowFailure) {
      throw new Error(
        `${what} exited with ${exit.code ?? exit.signal}; stderr: ${stderr}; stdout: ${result.stdout.toString().slice(0, 2000)}`,
      );
    }
    return result;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** A program running in the foreground as our child, with everything it printed. */
export interface Daemon extends Closable {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Waits (event-driven, bounded) until the output matches `pattern`. */
  waitForOutput(pattern: RegExp, what: string, ms?: number): Promise<RegExpExecArray>;
}

/** Starts a daemon and waits until `host:port` accepts TCP connections: connect attempts
 * 50 ms apart, at most `timeoutMs` in all (the only retry loop of the suite). Fails early,
 * with its output, if the daemon exits first. close(): SIGTERM, then SIGKILL if it lingers. */
export async function startDaemon(
  program: string,
  args: string[],
  port: number,
  options: { cwd?: string; timeoutMs?: number; host?: string } = {},
): Promise<Daemon> {
  const child = spawn(program, args, { cwd: options.cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`failed to start: ${error.message}`));
    child.once('close', (code, signal) => resolve(`exited with ${code ?? signal}`));
  });
  const onData = (chunk: string): void => void (output += chunk);
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  const name = path.basename(program);
  const daemon: Daemon = {
    child,
    output: () => output,
    waitForOutput: (pattern, what, ms = 10_000) => {
      const found = new Promise<RegExpExecArray>((resolve, reject) => {
        const check = (): void => {
          const hit = pattern.exec(output);
          if (hit === null) return;
          child.stdout.off('data', check);
          child.stderr.off('data', check);
          resolve(hit);
        };
        child.stdout.on('data', check);
        child.stderr.on('data', check);
        check();
        void exited.then((how) => reject(new Error(`${name} ${how} before ${what}; output: ${output}`)));
      });
      found.catch(() => {});
      return within(found, ms, `${what}; ${name} printed: ${output}`);
    },
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await within(exited, 5_000, `${name} to exit after SIGTERM`).catch(() => child.kill('SIGKILL'));
      await within(exited, 5_000, `${name} to exit after SIGKILL`).catch(() => {});
    },
  };
  const host = options.host ?? LOOPBACK;
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let exitedEarly: string | undefined;
  void exited.then((how) => (exitedEarly = how));
  for (let attempt = 0; attempt < 1_000; attempt++) {
    if (exitedEarly !== undefined) break;
    if (await accepts(host, port)) return daemon;
    if (Date.now() > deadline) break;
    await delay(50);
  }
  await daemon.close();
  throw new Error(
    `${name} never accepted connections on ${host}:${port} (${exitedEarly ?? 'still running'}); output: ${output}`,
  );
}

/** One connect attempt: true if `host:port` accepts. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Any address the server may print ("listening on 127.0.0.1 control port", or without
 * `--bind` "listening on control port"): test/child.ts LISTENING expects 127.0.0.1. */
const LISTENING_ANY = /^burrow server listening on (?:\S+ )?control port (\d+), data port (\d+);/m;

export interface Tunnel extends Closable {
  publicPort: number;
  server: Cli;
  client: Cli;
}

/** `burrow server` + `burrow client <localPort>` as children, on loopback. `bind: false`
 * starts the server without `--bind` (dual-stack: public ports answer on ::1 too);
 * `clientArgs` are added to the client's (e.g. `--proxy-protocol v1`), `serverArgs` to the
 * server's. close() SIGKILLs both. */
export async function startTunnel(
  localPort: number,
  options: { clientArgs?: string[]; serverArgs?: string[]; bind?: false } = {},
): Promise<Tunnel> {
  const live = new Set<Cli>();
  const close = (): Promise<void> => killAll(live);
  try {
    const bind = options.bind === false ? [] : ['--bind', LOOPBACK];
    const server = startCli(
      ['server', ...bind, '--control-port', '0', '--data-port', '0', ...(options.serverArgs ?? [])],
      {},
      live,
    );
    const [, controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING_ANY,
      'burrow server to listen',
    );
    const client = startCli(
      loopbackClientArgs(localPort, { controlPort, dataPort }, ['--quiet', ...(options.clientArgs ?? [])]),
      {},
      live,
    );
    const [, publicPort = '', shownLocal = ''] = await waitForOutput(
      client,
      'stdout',
      FORWARDING,
      'burrow client to forward',
    );
    if (Number(shownLocal) !== localPort) throw new Error(`burrow client forwards to ${shownLocal}, not ${localPort}`);
    return { publicPort: Number(publicPort), server, client, close };
  } catch (error) {
    await close();
    throw error;
  }
}
