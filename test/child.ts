// The real `burrow` command as a child process (node --import tsx cli/main.ts), for the tests
// of the CLI: start it with a clean environment, watch what it prints, stop it with SIGINT,
// and SIGKILL whatever is still running when a test ends.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HOST, within } from './helpers.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Generous: a child pays for node + tsx start-up, possibly alongside other test files. */
export const CHILD_MS = 20_000;

/** What `burrow server` prints once it listens: control port, data port, public range. */
export const LISTENING =
  /^burrow server listening on 127\.0\.0\.1 control port (\d+), data port (\d+); public ports (\d+)-(\d+)$/m;
/** What `burrow client` prints per tunnel: public port, local port (and, with
 * --proxy-protocol, which version). */
export const FORWARDING =
  /^Forwarding tcp:\/\/127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:(\d+)(?: \(PROXY protocol v[12]\))?$/m;

/** What a server without a secret prints on stderr when it starts (an open relay). */
export const OPEN_RELAY_NOTICE =
  'burrow: notice: no secret is set, so anyone who can reach this server can expose ports through it. Set one with BURROW_SECRET or --secret-file (docs/SECURITY.md).';

/** `burrow client <localPort>` against a server on 127.0.0.1 with these ports, the local
 * service on 127.0.0.1 too, plus `extra`. */
/** `burrow server` on loopback with ephemeral control and data ports and public ports
 * `range` (`A-B`). */
export const loopbackServerArgs = (range: string, extra: string[] = []): string[] => [
  'server',
  '--bind',
  HOST,
  '--control-port',
  '0',
  '--data-port',
  '0',
  '--port-range',
  range,
  ...extra,
];

export const loopbackClientArgs = (
  localPort: number,
  ports: { controlPort: string; dataPort: string },
  extra: string[] = [],
): string[] => [
  'client',
  String(localPort),
  '--server',
  HOST,
  '--local-host',
  HOST,
  '--control-port',
  ports.controlPort,
  '--data-port',
  ports.dataPort,
  ...extra,
];

/** The non-empty lines of a child's output. */
export const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `burrow` child with everything it printed so far. */
export interface Cli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Settles on 'close' (all output read). */
  closed: Promise<Exit>;
}

/** The parent's environment without any BURROW_*, DEBUG or test-runner variable, plus `vars`.
 * A client's inspector is off (BURROW_INSPECT=0) unless `vars` turns it on: on by default it
 * would take port 4040, and tests use ports the system picks. */
export function cleanEnv(vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('BURROW_') || key === 'DEBUG' || key === 'NODE_TEST_CONTEXT') delete env[key];
  }
  return { ...env, BURROW_INSPECT: '0', ...vars };
}

/** Starts `burrow <args>`; `live` collects it so the test can `killAll` in `finally`. */
export function startCli(args: string[], vars: Record<string, string> = {}, live?: Set<Cli>): Cli {
  return startNode(['--import', 'tsx', 'cli/main.ts', ...args], vars, live);
}

/** Starts `node <nodeArgs>` in the repository with a clean environment plus `vars`,
 * collecting its output; `live` collects it so the test can `killAll` in `finally`. */
export function startNode(nodeArgs: string[], vars: Record<string, string> = {}, live?: Set<Cli>): Cli {
  const child = spawn(process.execPath, nodeArgs, {
    cwd: REPO_ROOT,
    env: cleanEnv(vars),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const cli: Cli = {
    child,
    stdout: '',
    stderr: '',
    closed: new Promise<Exit>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
    }),
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (cli.stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (cli.stderr += chunk));
  if (live) {
    live.add(cli);
    void cli.closed.finally(() => live.delete(cli)).catch(() => {});
  }
  return cli;
}

/** Runs `burrow <args>` to completion. */
export async function runCli(
  args: string[],
  vars: Record<string, string> = {},
): Promise<Exit & { stdout: string; stderr: string }> {
  const cli = startCli(args, vars);
  try {
    const exit = await within(cli.closed, CHILD_MS, `burrow ${args.join(' ')} to exit`);
    return { ...exit, stdout: cli.stdout, stderr: cli.stderr };
  } finally {
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
  }
}

/** Waits until the child's stdout or stderr matches `pattern`; fails early if it exits. */
export function waitForOutput(
  cli: Cli,
  stream: 'stdout' | 'stderr',
  pattern: RegExp,
  what: string,
): Promise<RegExpExecArray> {
  return waitFor(cli, stream, (text) => pattern.exec(text) ?? undefined, what);
}

/** Waits until `find` finds something in all the child has printed on `stream` so far;
 * fails early if the child exits first. */
export function waitFor<T>(
  cli: Cli,
  stream: 'stdout' | 'stderr',
  find: (text: string) => T | undefined,
  what: string,
): Promise<T> {
  const source = stream === 'stdout' ? cli.child.stdout : cli.child.stderr;
  const found = new Promise<T>((resolve, reject) => {
    const check = (): boolean => {
      const hit = find(cli[stream]);
      if (hit !== undefined) {
        source?.off('data', onData);
        resolve(hit);
      }
      return hit !== undefined;
    };
    const onData = (): void => void check();
    if (check()) return;
    source?.on('data', onData);
    void cli.closed.then((exit) => {
      if (!check())
        reject(
          new Error(
            `child exited (${JSON.stringify(exit)}) before ${what}; stdout: ${cli.stdout} stderr: ${cli.stderr}`,
          ),
        );
    });
  });
  // If the wait times out, `found` may still reject later (when the child exits during
  // cleanup): that must not become an unhandled rejection.
  found.catch(() => {});
  return within(found, CHILD_MS, what);
}

/** SIGINT, then the exit. */
export async function interrupt(cli: Cli, what: string): Promise<Exit> {
  cli.child.kill('SIGINT');
  return within(cli.closed, CHILD_MS, `${what} to exit after SIGINT`);
}

/** Resumes (if stopped) and SIGKILLs every child still running, and waits for each. */
export async function killAll(live: Set<Cli>): Promise<void> {
  for (const cli of [...live]) {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGCONT');
      cli.child.kill('SIGKILL');
    }
    await within(cli.closed, CHILD_MS, 'a killed child').catch(() => {});
  }
}

/** Runs a TypeScript file of this repository (`demo/demo.ts`) to completion with tsx. */
export async function runScript(file: string, args: string[] = []): Promise<Exit & { stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const closed = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
  });
  try {
    return { ...(await within(closed, CHILD_MS, `${file} to finish`)), stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** One `--json` output line. */
export type Json = Record<string, unknown>;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The complete lines of `text` as JSON objects; every one must have "event" and an ISO "time". */
export function jsonLines(text: string, who: string): Json[] {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return lines(complete).map((line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      assert.fail(`${who}: not a JSON line: ${line}`);
    }
    assert.ok(
      typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed),
      `${who}: not an object: ${line}`,
    );
    const object = parsed as Json;
    assert.equal(typeof object.event, 'string', `${who}: no "event": ${line}`);
    assert.match(String(object.time), ISO_TIME, `${who}: no ISO "time": ${line}`);
    return object;
  });
}

/** Waits until the child's stdout holds a JSON line that `match`es; fails early if it exits. */
export function untilJson(cli: Cli, match: (event: Json) => boolean, what: string): Promise<Json> {
  return waitFor(cli, 'stdout', (text) => jsonLines(text, what).find(match), what);
}
