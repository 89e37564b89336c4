// Restarting and freezing, with real `burrow` processes: a client killed with SIGKILL and run
// again with the same command gets its --remote-port back at once from its lease file
// (while a client without the file meets port-in-use for the grace period); a client that
// leaves with SIGINT (GOAWAY) frees its port and drops its lease from the file; and a
// server frozen with SIGSTOP for longer than the client's connect timeout (so that a
// reconnect attempt is abandoned and then answered late) does not cost the client its
// public address.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  CHILD_MS,
  FORWARDING,
  killAll,
  LISTENING,
  lines,
  loopbackClientArgs,
  startCli,
  waitForOutput,
  type Cli,
  loopbackServerArgs,
} from './child.ts';
import { assertEchoes } from './healthy-tunnel.ts';
import { echo, HOST, listenLocal, within } from './helpers.ts';
import { freeRangeStart } from './raw.ts';

// ---------------------------------------------------------------------------------------
// Local helpers

/** Public ports of a test server: a range starting at a port found free. */
const RANGE_SIZE = 20;

interface ServerCli {
  cli: Cli;
  /** As `loopbackClientArgs` wants them. */
  ports: { controlPort: string; dataPort: string };
  /** The lease file's key for this server: `host:controlPort`. */
  key: string;
  /** First port of the public range. */
  rangeStart: number;
}

/** `burrow server` on ephemeral control and data ports, public ports from a free one. */
async function startServerCli(live: Set<Cli>, extra: string[] = []): Promise<ServerCli> {
  const rangeStart = await freeRangeStart();
  const cli = startCli(loopbackServerArgs(`${rangeStart}-${rangeStart + RANGE_SIZE}`, extra), {}, live);
  const [, controlPort = '', dataPort = ''] = await waitForOutput(cli, 'stdout', LISTENING, 'the server to listen');
  return { cli, ports: { controlPort, dataPort }, key: `${HOST}:${controlPort}`, rangeStart };
}

/** A temporary directory for lease files, removed by `body`'s end. */
async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'burrow-restart-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The lease file's entries, `server key → port → lease`, checked for the shape the client
 * writes (version 1, each entry a lease token and when it was saved). */
async function readLeases(file: string): Promise<Record<string, Record<string, string>>> {
  const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
  assert.ok(isObject(parsed), `the lease file is a JSON object: ${JSON.stringify(parsed)}`);
  assert.equal(parsed.version, 1, 'version 1');
  const leases = parsed.leases;
  assert.ok(isObject(leases), 'leases is an object');
  const result: Record<string, Record<string, string>> = {};
  for (const [server, ports] of Object.entries(leases)) {
    assert.ok(isObject(ports), `the ports of ${server} are an object`);
    result[server] = {};
    for (const [port, entry] of Object.entries(ports)) {
      assert.ok(
        isObject(entry) && typeof entry.lease === 'string' && typeof entry.saved === 'number',
        `entry ${server} ${port}: ${JSON.stringify(entry)}`,
      );
      assert.match(entry.lease, /^[A-Za-z0-9_-]{1,64}$/, 'a lease token');
      result[server][port] = entry.lease;
    }
  }
  return result;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The lease kept for `port` of server `key`; fails if there is none. */
async function keptLease(file: string, key: string, port: number): Promise<string> {
  const leases = await readLeases(file);
  const lease = leases[key]?.[String(port)];
  assert.ok(lease !== undefined, `a lease for ${key} port ${port} in ${JSON.stringify(Object.keys(leases))}`);
  return lease;
}

/** Waits for the client's (only) Forwarding line and returns its public port. */
async function forwardedPort(cli: Cli, localPort: number, what: string): Promise<number> {
  const [, publicPort = '', local = ''] = await waitForOutput(cli, 'stdout', FORWARDING, what);
  assert.equal(Number(local), localPort, 'the Forwarding line names the local port');
  return Number(publicPort);
}

/** All the Forwarding lines the client printed. */
const forwardingLines = (cli: Cli): string[] => lines(cli.stdout).filter((line) => line.startsWith('Forwarding '));

// ---------------------------------------------------------------------------------------
// A crashed client and its lease file

test('a client killed with SIGKILL and run again with the same command gets its --remote-port back at once (lease file); without the file: port-in-use', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(echo);
  try {
    await withTempDir(async (dir) => {
      // The default lease grace (60 s): nothing in this test waits for it to run out.
      const server = await startServerCli(live);
      const asked = server.rangeStart + 1;
      // In a directory that does not exist yet: the client makes it (mode 0700).
      const file = path.join(dir, 'state', 'leases.json');
      const command = loopbackClientArgs(local.port, server.ports, [
        '--remote-port',
        String(asked),
        '--state-file',
        file,
      ]);

      // A opens the port and keeps its lease in the file.
      const a = startCli(command, {}, live);
      assert.equal(await forwardedPort(a, local.port, 'client A to forward'), asked);
      assert.equal((await stat(file)).mode & 0o777, 0o600, 'the lease file has mode 0600');
      assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700, 'its directory has mode 0700');
      const lease = await keptLease(file, server.key, asked);
      assert.deepEqual(
        await readLeases(file),
        { [server.key]: { [String(asked)]: lease } },
        'the file holds only that lease',
      );
      await assertEchoes(asked, 10_000, 1, 'through client A');
      assert.ok(!a.stdout.includes(lease) && !a.stderr.includes(lease), 'client A never prints its lease');

      // A crashes: no GOAWAY, so the server keeps the port under lease for the grace period.
      a.child.kill('SIGKILL');
      assert.deepEqual(await within(a.closed, CHILD_MS, 'client A to die'), { code: null, signal: 'SIGKILL' });

      // The contrast: the same request without the lease is refused, port-in-use (the
      // server keeps the port for A's lease; a live A would be refused the same way).
      const stranger = startCli(
        loopbackClientArgs(local.port, server.ports, ['--remote-port', String(asked), '--no-state-file']),
        {},
        live,
      );
      assert.deepEqual(await within(stranger.closed, CHILD_MS, 'the client without the lease file to exit'), {
        code: 1,
        signal: null,
      });
      assert.equal(stranger.stdout, '', 'no Forwarding line');
      assert.match(
        stranger.stderr,
        new RegExp(`\\bport ${asked}\\b.*\\(port-in-use\\)`),
        'refused: port-in-use, naming the port',
      );
      assert.deepEqual(
        await readLeases(file),
        { [server.key]: { [String(asked)]: lease } },
        'a client with --no-state-file leaves the file alone',
      );

      // B: A's command again. Its lease from the file reclaims the port, well within the
      // grace (the refusal just above proves the lease had not run out).
      const b = startCli(command, {}, live);
      assert.equal(await forwardedPort(b, local.port, 'client B to forward'), asked);
      assert.equal(await keptLease(file, server.key, asked), lease, 'a reclaimed port keeps its lease');
      await assertEchoes(asked, 20_000, 2, 'through client B, on the same port');
      assert.ok(!b.stdout.includes(lease) && !b.stderr.includes(lease), 'client B never prints the lease');
      assert.equal(b.stderr, '', 'client B warns of nothing');
    });
  } finally {
    await killAll(live);
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// A clean exit

test('a client that exits on SIGINT (GOAWAY) frees its port at once and drops its lease from the file', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(echo);
  try {
    await withTempDir(async (dir) => {
      const server = await startServerCli(live);
      const asked = server.rangeStart + 2;
      const file = path.join(dir, 'leases.json');

      const first = startCli(
        loopbackClientArgs(local.port, server.ports, ['--remote-port', String(asked), '--state-file', file]),
        {},
        live,
      );
      assert.equal(await forwardedPort(first, local.port, 'the first client to forward'), asked);
      await keptLease(file, server.key, asked);
      await assertEchoes(asked, 10_000, 3, 'through the first client');

      first.child.kill('SIGINT');
      assert.deepEqual(await within(first.closed, CHILD_MS, 'the first client to exit after SIGINT'), {
        code: 0,
        signal: null,
      });
      const leases = await readLeases(file);
      assert.equal(
        leases[server.key]?.[String(asked)],
        undefined,
        `no lease left for port ${asked}: ${JSON.stringify(leases)}`,
      );
      assert.equal((await stat(file)).mode & 0o777, 0o600, 'the rewritten file keeps mode 0600');

      // Freed, not leased: a client without the file (and so without the lease) gets it.
      const second = startCli(
        loopbackClientArgs(local.port, server.ports, ['--remote-port', String(asked), '--no-state-file']),
        {},
        live,
      );
      assert.equal(await forwardedPort(second, local.port, 'a client without the lease to forward'), asked);
      await assertEchoes(asked, 10_000, 4, 'through the second client');
      assert.equal(second.stderr, '', 'the second client warns of nothing');
    });
  } finally {
    await killAll(live);
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// A frozen server

// About 15 s: the server stays stopped until the client has abandoned its first reconnect
// attempt, which takes the client's connect timeout (10 s, not settable from the command
// line) after its heartbeat timeout (2 s) and first backoff (0.5-1 s).
test("a server frozen with SIGSTOP past the client's connect timeout: after SIGCONT the client is back on its original public port (an abandoned attempt answered late does not spoil its lease)", async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(echo);
  const heartbeats = ['--heartbeat-interval', '0.5', '--heartbeat-timeout', '2'];
  try {
    const server = await startServerCli(live, heartbeats);
    const client = startCli(loopbackClientArgs(local.port, server.ports, ['--no-state-file', ...heartbeats]), {}, live);
    const publicPort = await forwardedPort(client, local.port, 'the client to forward');
    await assertEchoes(publicPort, 10_000, 5, 'before the freeze');

    // Freeze the server: its sockets stay open and the kernel still accepts connections on
    // its control port, but nothing answers.
    assert.ok(server.cli.child.kill('SIGSTOP'), 'SIGSTOP sent');
    await waitForOutput(
      client,
      'stderr',
      /^burrow: lost the server: .*$/m,
      'the client to notice the silence (heartbeat timeout)',
    );
    await waitForOutput(
      client,
      'stderr',
      /^burrow: lost the server: .*\n(?:burrow: .*\n)*?burrow: reconnecting in [0-9.]+ s \(attempt 1\)$/m,
      'the first reconnect attempt',
    );
    // Attempt 1 connects (the kernel accepts for the stopped server), sends HELLO and its
    // EXPOSE with the lease, and hears nothing: after the connect timeout it is abandoned.
    await waitForOutput(
      client,
      'stderr',
      /^burrow: warning: the server did not answer within 10000 ms$/m,
      'the first attempt to be abandoned',
    );
    await waitForOutput(
      client,
      'stderr',
      /^burrow: reconnecting in [0-9.]+ s \(attempt 2\)$/m,
      'the second reconnect attempt',
    );

    // Wake the server while attempt 2 waits out its backoff (1-2 s): the server first reads
    // what the abandoned attempt sent (HELLO, EXPOSE <port> <lease>, then its close) and
    // reclaims the port for it; attempt 2 then comes with the same lease.
    assert.ok(server.cli.child.kill('SIGCONT'), 'SIGCONT sent');
    await waitForOutput(client, 'stderr', /^burrow: reconnected; .*$/m, 'the client to reconnect');
    assert.match(
      client.stderr,
      /^burrow: reconnected; same public address$/m,
      `the same public address; stderr: ${client.stderr}`,
    );
    assert.deepEqual(
      forwardingLines(client),
      [`Forwarding tcp://${HOST}:${publicPort} -> ${HOST}:${local.port}`],
      'no new Forwarding line',
    );
    await assertEchoes(publicPort, 20_000, 6, 'through the original public port after the freeze');

    const err = lines(client.stderr);
    for (const line of err) {
      assert.match(
        line,
        /^burrow: (lost the server: .*|reconnecting in [0-9.]+ s \(attempt \d+\)|warning: .*|reconnected; same public address)$/,
        `an expected line: ${line}`,
      );
    }
    assert.ok(!err.some((line) => line.includes('taken')), 'the old port was never reported taken');
    assert.ok(client.child.exitCode === null && client.child.signalCode === null, 'the client is still running');
  } finally {
    await killAll(live); // resumes a server still stopped, then kills it
    await local.close();
  }
});
