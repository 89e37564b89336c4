// What the CLI tests of the security flags share (security-cli.test.ts: secrets and
// refusals; tls-cli.test.ts: certificates): a scope that cleans up after itself, a real
// `burrow server` on loopback, and the assertions on what the commands print.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  FORWARDING,
  killAll,
  LISTENING,
  loopbackClientArgs,
  lines,
  startCli,
  waitForOutput,
  type Cli,
  type Exit,
  loopbackServerArgs,
} from './child.ts';
import { echo, listenLocal, pseudoRandomBytes, request } from './helpers.ts';
import { freePublicPort } from './raw.ts';
/** The hint after a usage error (naming the command, when there is one). */
export const USAGE_HINT = /^Run 'burrow (?:(?:server|client) )?--help' for usage\.$/;
/** What the server prints on stdout after the listening line when it speaks TLS: the
 * fingerprint, and (where the start line shows them) the names the certificate covers. */
export const FINGERPRINT =
  /^TLS certificate SHA-256 fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})(?: \(names: (.+)\))?$/m;
/** The names of the self-signed certificate when no --tls-name is given. */
export const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1'];

/** Asserts `line` is the fingerprint line for `fingerprint`, naming exactly `names` if it
 * names any. */
export function assertFingerprintLine(
  line: string | undefined,
  fingerprint: string | undefined,
  names: string[],
): void {
  const plain = `TLS certificate SHA-256 fingerprint: ${fingerprint}`;
  if (line !== plain) assert.equal(line, `${plain} (names: ${names.join(', ')})`);
}
export const NOTICE = /^burrow: notice: no secret is set\b.*$/m;
export const shortSecretWarning = (length: number): RegExp =>
  new RegExp(`^burrow: warning: the secret is only ${length} characters\\b.*openssl rand -base64 32.*$`, 'm');
/** The server's line for a connection it turned away, for `reason`. */
export const refusedLine = (reason: string): RegExp =>
  new RegExp(`^burrow: refused (?:control|data)#\\d+ from 127\\.0\\.0\\.1:\\d+: .+ \\(${reason}\\)$`, 'm');
export const CLIENT_CLOSING = 'burrow: closing; open connections get 10 s to finish (signal again to stop now)';
/** The server's line on SIGINT with no client connected (cli/output.ts). */
export const SERVER_SHUTTING_DOWN =
  'burrow: shutting down; open connections get 10 s to finish (signal again to stop now)';

export const noStack = (text: string): void => {
  assert.ok(!text.split('\n').some((line) => line.startsWith('    at ')), `no stack trace expected in: ${text}`);
};

/** A secret as the design recommends (43 characters), and one that is not the same. */
export const longSecret = (): string => randomBytes(32).toString('base64url');

export interface Scope {
  /** A temporary directory, removed afterwards. */
  tmp: string;
  /** Children to SIGKILL afterwards (those still running). */
  live: Set<Cli>;
  /** An echo service on 127.0.0.1:0, closed afterwards. */
  local: { port: number };
}

/** Runs `body` with a temporary directory, a set of children and an echo service, and
 * releases all three whatever happens. */
export async function scoped(body: (scope: Scope) => Promise<void>): Promise<void> {
  const live = new Set<Cli>();
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'burrow-security-cli-'));
  try {
    const local = await listenLocal(echo);
    try {
      await body({ tmp, live, local });
    } finally {
      await killAll(live);
      await local.close();
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

export interface RunningServer {
  cli: Cli;
  controlPort: string;
  dataPort: string;
  /** The one public port of its range. */
  publicPort: number;
  /** The printed fingerprint, if it speaks TLS. */
  fingerprint: string | undefined;
  /** The names printed with it, if the start line shows them. */
  names: string[] | undefined;
}

/** `burrow server` on loopback, ephemeral control and data ports, a one-port range (a port
 * that was free a moment ago, as test/cli.test.ts picks it), plus `extra`; resolves once it
 * listens (and has printed its fingerprint, with `tls`). */
export async function startServer(
  extra: string[],
  vars: Record<string, string>,
  live: Set<Cli>,
  tls: boolean,
): Promise<RunningServer> {
  const publicPort = await freePublicPort();
  const cli = startCli(loopbackServerArgs(`${publicPort}-${publicPort}`, extra), vars, live);
  const [, controlPort = '', dataPort = ''] = await waitForOutput(cli, 'stdout', LISTENING, 'the server to listen');
  const [, fingerprint, names] = tls
    ? await waitForOutput(cli, 'stdout', FINGERPRINT, 'the server to print its fingerprint')
    : [];
  return { cli, controlPort, dataPort, publicPort, fingerprint, names: names?.split(', ') };
}

/** `burrow client <localPort>` arguments for `server`, plus `extra`. */
export const clientArgs = (server: RunningServer, localPort: number, extra: string[]): string[] =>
  loopbackClientArgs(localPort, server, extra);

/** Waits until the client forwards `server`'s public port, and checks bytes echo through. */
export async function assertForwards(
  client: Cli,
  server: RunningServer,
  localPort: number,
  seed: number,
): Promise<void> {
  const [, publicPort = '', local = ''] = await waitForOutput(client, 'stdout', FORWARDING, 'the client to forward');
  assert.equal(Number(publicPort), server.publicPort);
  assert.equal(Number(local), localPort);
  const payload = pseudoRandomBytes(100_000, seed);
  assert.ok(
    (await request(server.publicPort, payload)).equals(payload),
    'the visitor gets its bytes back through the tunnel',
  );
}

/** Waits until `server` prints its refused line for `reason` (what: for the timeout's message). */
export async function serverRefuses(server: RunningServer, reason: string, what: string): Promise<void> {
  await waitForOutput(server.cli, 'stderr', refusedLine(reason), what);
}

/** A client that failed: exit 1, nothing on stdout, exactly one `burrow: ...` line on
 * stderr containing every one of `parts`, no stack. */
export function assertOneLineFailure(result: Exit & { stdout: string; stderr: string }, ...parts: string[]): void {
  assert.deepEqual({ code: result.code, signal: result.signal }, { code: 1, signal: null }, result.stderr);
  assert.equal(result.stdout, '');
  const all = lines(result.stderr);
  assert.equal(all.length, 1, `exactly one line on stderr, got: ${result.stderr}`);
  const [line = ''] = all;
  assert.match(line, /^burrow: /);
  for (const part of parts) assert.ok(line.includes(part), `${JSON.stringify(part)} in: ${line}`);
  noStack(result.stderr);
}

/** A usage error: exit 2, nothing on stdout, the error line (naming every one of `parts`)
 * and the usage hint. */
export function assertUsage(result: Exit & { stdout: string; stderr: string }, ...parts: string[]): void {
  assert.deepEqual({ code: result.code, signal: result.signal }, { code: 2, signal: null }, result.stderr);
  assert.equal(result.stdout, '');
  const all = lines(result.stderr);
  assert.equal(all.length, 2, `an error line and the hint, got: ${result.stderr}`);
  const [line = '', hint] = all;
  assert.match(line, /^burrow: /);
  for (const part of parts) assert.ok(line.includes(part), `${JSON.stringify(part)} in: ${line}`);
  assert.match(hint ?? '', USAGE_HINT);
  noStack(result.stderr);
}
