// The security flags of the real `burrow` command (child processes, test/child.ts): the
// self-signed certificate of `--tls` and its printed fingerprint, a pinned TLS client with
// a secret, mutual TLS, every refusal as one line and exit 1 (and a `refused` line on the
// server), the open-relay notice and the short-secret warning, usage errors (exit 2), and
// a secret that stays out of `ps` and out of everything printed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fingerprintOf } from '../shared/fingerprint.ts';
import { testCerts } from './certs.ts';
import { FORWARDING, interrupt, killAll, LISTENING, loopbackClientArgs, lines, runCli, startCli, waitForOutput, type Cli, type Exit } from './child.ts';
import { echo, HOST, listenLocal, pseudoRandomBytes, request } from './helpers.ts';
import { assertRefused, freePort } from './raw.ts';

const USAGE_HINT = "Run 'burrow --help' for usage.";
/** What the server prints on stdout after the listening line when it speaks TLS. */
const FINGERPRINT = /^TLS certificate SHA-256 fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$/m;
const NOTICE = /^burrow: notice: no secret is set\b.*$/m;
const shortSecretWarning = (length: number): RegExp =>
  new RegExp(`^burrow: warning: the secret is only ${length} characters\\b.*openssl rand -base64 32.*$`, 'm');
/** The server's line for a connection it turned away, for `reason`. */
const refusedLine = (reason: string): RegExp => new RegExp(`^burrow: refused (?:control|data)#\\d+ from 127\\.0\\.0\\.1:\\d+: .+ \\(${reason}\\)$`, 'm');
const CLIENT_CLOSING = 'burrow: closing; open connections get 10 s to finish (signal again to stop now)';
const serverShuttingDown = (clients: number): string =>
  `burrow: shutting down: told ${clients} client(s) to reconnect later; open connections get 10 s to finish (signal again to stop now)`;

const noStack = (text: string): void => {
  assert.ok(!text.split('\n').some((line) => line.startsWith('    at ')), `no stack trace expected in: ${text}`);
};

/** A secret as the design recommends (43 characters), and one that is not the same. */
const longSecret = (): string => randomBytes(32).toString('base64url');

interface Scope {
  /** A temporary directory, removed afterwards. */
  tmp: string;
  /** Children to SIGKILL afterwards (those still running). */
  live: Set<Cli>;
  /** An echo service on 127.0.0.1:0, closed afterwards. */
  local: { port: number };
}

/** Runs `body` with a temporary directory, a set of children and an echo service, and
 * releases all three whatever happens. */
async function scoped(body: (scope: Scope) => Promise<void>): Promise<void> {
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

interface RunningServer {
  cli: Cli;
  controlPort: string;
  dataPort: string;
  /** The one public port of its range. */
  publicPort: number;
  /** The printed fingerprint, if it speaks TLS. */
  fingerprint: string | undefined;
}

/** `burrow server` on loopback, ephemeral control and data ports, a one-port range (a port
 * that was free a moment ago, as test/cli.test.ts picks it), plus `extra`; resolves once it
 * listens (and has printed its fingerprint, with `tls`). */
async function startServer(extra: string[], vars: Record<string, string>, live: Set<Cli>, tls: boolean): Promise<RunningServer> {
  const publicPort = await freePort();
  const cli = startCli(['server', '--bind', HOST, '--control-port', '0', '--data-port', '0', '--port-range', `${publicPort}-${publicPort}`, ...extra], vars, live);
  const [, controlPort = '', dataPort = ''] = await waitForOutput(cli, 'stdout', LISTENING, 'the server to listen');
  const fingerprint = tls ? (await waitForOutput(cli, 'stdout', FINGERPRINT, 'the server to print its fingerprint'))[1] : undefined;
  return { cli, controlPort, dataPort, publicPort, fingerprint };
}

/** `burrow client <localPort>` arguments for `server`, plus `extra`. */
const clientArgs = (server: RunningServer, localPort: number, extra: string[]): string[] => loopbackClientArgs(localPort, server, extra);

/** Waits until the client forwards `server`'s public port, and checks bytes echo through. */
async function assertForwards(client: Cli, server: RunningServer, localPort: number, seed: number): Promise<void> {
  const [, publicPort = '', local = ''] = await waitForOutput(client, 'stdout', FORWARDING, 'the client to forward');
  assert.equal(Number(publicPort), server.publicPort);
  assert.equal(Number(local), localPort);
  const payload = pseudoRandomBytes(100_000, seed);
  assert.ok((await request(server.publicPort, payload)).equals(payload), 'the visitor gets its bytes back through the tunnel');
}

/** A client that failed: exit 1, nothing on stdout, exactly one `burrow: ...` line on
 * stderr containing every one of `parts`, no stack. */
function assertOneLineFailure(result: Exit & { stdout: string; stderr: string }, ...parts: string[]): void {
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
function assertUsage(result: Exit & { stdout: string; stderr: string }, ...parts: string[]): void {
  assert.deepEqual({ code: result.code, signal: result.signal }, { code: 2, signal: null }, result.stderr);
  assert.equal(result.stdout, '');
  const all = lines(result.stderr);
  assert.equal(all.length, 2, `an error line and the hint, got: ${result.stderr}`);
  const [line = '', hint] = all;
  assert.match(line, /^burrow: /);
  for (const part of parts) assert.ok(line.includes(part), `${JSON.stringify(part)} in: ${line}`);
  assert.equal(hint, USAGE_HINT);
  noStack(result.stderr);
}

test('server --tls --tls-dir: creates tls-cert.pem and tls-key.pem there and prints their fingerprint; a second start reuses them, with no "created" line', async () => {
  await scoped(async ({ tmp, live }) => {
    const dir = path.join(tmp, 'config', 'burrow'); // does not exist yet
    const first = await startServer(['--tls', '--tls-dir', dir], {}, live, true);
    const certPem = await fs.readFile(path.join(dir, 'tls-cert.pem'));
    assert.ok((await fs.stat(path.join(dir, 'tls-key.pem'))).isFile(), 'the key is there too');
    assert.equal(first.fingerprint, fingerprintOf(certPem));
    assert.deepEqual(await interrupt(first.cli, 'the first server'), { code: 0, signal: null });
    assert.deepEqual(lines(first.cli.stdout), [
      `burrow server listening on ${HOST} control port ${first.controlPort}, data port ${first.dataPort}; public ports ${first.publicPort}-${first.publicPort}`,
      `TLS certificate SHA-256 fingerprint: ${first.fingerprint}`,
    ]);
    const firstErr = lines(first.cli.stderr);
    assert.equal(firstErr.length, 3, first.cli.stderr);
    assert.equal(firstErr[0], `burrow: created a self-signed TLS certificate in ${dir}`);
    assert.match(firstErr[1] ?? '', NOTICE);
    assert.equal(firstErr[2], serverShuttingDown(0));

    // Again, configured through the variables this time: the same pair, nothing created.
    const second = await startServer([], { BURROW_TLS: '1', BURROW_TLS_DIR: dir }, live, true);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.deepEqual(await fs.readFile(path.join(dir, 'tls-cert.pem')), certPem, 'the certificate file is unchanged');
    assert.deepEqual(await interrupt(second.cli, 'the second server'), { code: 0, signal: null });
    assert.ok(!second.cli.stderr.includes('created'), `no "created" line: ${second.cli.stderr}`);
    const secondErr = lines(second.cli.stderr);
    assert.equal(secondErr.length, 2, second.cli.stderr);
    assert.match(secondErr[0] ?? '', NOTICE);
    assert.equal(secondErr[1], serverShuttingDown(0));
  });
});

test('a pinned TLS client with BURROW_SECRET forwards through a --tls server with --secret-file; no open-relay notice, no warning', async () => {
  await scoped(async ({ tmp, live, local }) => {
    // Exactly 16 characters: long enough for no warning. Written the way `echo` or
    // `openssl rand > file` would, with a newline that is not part of it.
    const secret = randomBytes(12).toString('base64url');
    assert.equal(secret.length, 16);
    const secretFile = path.join(tmp, 'secret');
    await fs.writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
    const tlsDir = path.join(tmp, 'tls');
    const server = await startServer(['--tls', '--tls-dir', tlsDir, '--secret-file', secretFile], {}, live, true);
    assert.ok(server.fingerprint);

    const client = startCli(clientArgs(server, local.port, ['--tls-fingerprint', server.fingerprint]), { BURROW_SECRET: secret }, live);
    await assertForwards(client, server, local.port, 21);

    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.equal(client.stderr, `${CLIENT_CLOSING}\n`);
    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
    assert.doesNotMatch(server.cli.stderr, NOTICE);
    assert.deepEqual(lines(server.cli.stderr), [`burrow: created a self-signed TLS certificate in ${tlsDir}`, serverShuttingDown(0)]);
  });
});

test('a wrong secret (auth-failed) or none (auth-required): the client exits 1 with one line, the server prints a refused line', async () => {
  await scoped(async ({ tmp, live }) => {
    const secretFile = path.join(tmp, 'secret');
    await fs.writeFile(secretFile, longSecret());
    const server = await startServer(['--secret-file', secretFile], {}, live, false);

    const wrong = await runCli(clientArgs(server, 3000, ['--no-reconnect']), { BURROW_SECRET: longSecret() });
    assertOneLineFailure(wrong, 'secret', '(auth-failed: wrong secret)');
    await waitForOutput(server.cli, 'stderr', refusedLine('auth-failed'), 'the server to report the wrong secret');

    // Reconnecting is on by default: a refusal no retry can fix still ends the client.
    const none = await runCli(clientArgs(server, 3000, []));
    assertOneLineFailure(none, 'requires a secret', '(auth-required');
    await waitForOutput(server.cli, 'stderr', refusedLine('auth-required'), 'the server to report the missing secret');

    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
    assert.doesNotMatch(server.cli.stderr, NOTICE);
    assert.equal(lines(server.cli.stderr).length, 3, `two refused lines and the shutdown: ${server.cli.stderr}`);
  });
});

test('against a --tls server: a plain client (tls-required), a wrong pin ("not the pinned"), an unverifiable certificate: each exits 1 with one line', async () => {
  const certs = await testCerts();
  await scoped(async ({ tmp, live }) => {
    const server = await startServer(['--tls', '--tls-dir', tmp], {}, live, true);
    assert.ok(server.fingerprint);

    const plain = await runCli(clientArgs(server, 3000, ['--no-reconnect']));
    assertOneLineFailure(plain, 'TLS', '(tls-required');
    await waitForOutput(server.cli, 'stderr', refusedLine('tls-required'), 'the server to report the plain-text client');

    // Pinned to another certificate's fingerprint (the server cannot tell why it left).
    const pinned = await runCli(clientArgs(server, 3000, ['--tls-fingerprint', certs.server.fingerprint]));
    assertOneLineFailure(pinned, 'not the pinned', certs.server.fingerprint, server.fingerprint);

    // --tls alone trusts the system CAs, which know nothing of a self-signed certificate.
    const unverified = await runCli(clientArgs(server, 3000, ['--tls']));
    assertOneLineFailure(unverified, "cannot verify the server's certificate", '--tls-fingerprint');

    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
  });
});

test('a flood of refused connections: the server prints 10 refused lines, then one "counted, not shown" line, then nothing more', async () => {
  await scoped(async ({ tmp, live }) => {
    const server = await startServer(['--tls', '--tls-dir', tmp], {}, live, true);
    // Plain text to a TLS server, by hand: each is answered ERR tls-required and closed,
    // and the server reports each (before it answers) until its cap of 10 a minute.
    for (let i = 0; i < 14; i++) await assertRefused(Number(server.controlPort), 'EXPOSE 3000\n', 'tls-required', `connection ${i + 1}`);
    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
    const refused = lines(server.cli.stderr).filter((line) => refusedLine('tls-required').test(line));
    assert.equal(refused.length, 10, server.cli.stderr);
    const counted = lines(server.cli.stderr).filter((line) => line.includes('counted, not shown'));
    assert.deepEqual(counted, ['burrow: (more of these in the next 60 s are counted, not shown)']);
    // created, notice, 10 refused, the counted line, shutting down: nothing else.
    assert.equal(lines(server.cli.stderr).length, 14, server.cli.stderr);
  });
});

test('against a plain server: a TLS client is told the server does not speak TLS (tls-not-enabled), a client with a secret is refused (auth-disabled)', async () => {
  await scoped(async ({ live }) => {
    const server = await startServer([], {}, live, false);

    const tls = await runCli(clientArgs(server, 3000, ['--tls', '--no-reconnect']));
    assertOneLineFailure(tls, 'does not speak TLS');
    await waitForOutput(server.cli, 'stderr', refusedLine('tls-not-enabled'), 'the server to report the TLS client');

    const withSecret = await runCli(clientArgs(server, 3000, []), { BURROW_SECRET: longSecret() });
    assertOneLineFailure(withSecret, 'no secret', '(auth-disabled');
    await waitForOutput(server.cli, 'stderr', refusedLine('auth-disabled'), 'the server to report the client with a secret');

    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
  });
});

test('no secret: the server prints the open-relay notice; a short secret: both sides warn (and the tunnel works)', async () => {
  await scoped(async ({ live, local }) => {
    const open = await startServer([], {}, live, false);
    await waitForOutput(open.cli, 'stderr', NOTICE, 'the open-relay notice');
    assert.deepEqual(await interrupt(open.cli, 'the open server'), { code: 0, signal: null });
    assert.doesNotMatch(open.cli.stderr, /warning/);

    const short = 'fifteen-chars!!';
    assert.equal(short.length, 15);
    const server = await startServer(['--secret', short], {}, live, false);
    await waitForOutput(server.cli, 'stderr', shortSecretWarning(15), 'the server to warn of the short secret');
    const client = startCli(clientArgs(server, local.port, ['--secret', short]), {}, live);
    await waitForOutput(client, 'stderr', shortSecretWarning(15), 'the client to warn of the short secret');
    await assertForwards(client, server, local.port, 4);

    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
    assert.doesNotMatch(server.cli.stderr, NOTICE);
    assert.equal(lines(server.cli.stderr).length, 2, `the warning and the shutdown: ${server.cli.stderr}`);
    assert.equal(lines(client.stderr).length, 2, `the warning and the closing line: ${client.stderr}`);
  });
});

test("mutual TLS: a client with a certificate from --tls-client-ca forwards; without one, or with a stranger's, it exits 1 and the server says bad-certificate", async () => {
  const certs = await testCerts();
  await scoped(async ({ tmp, live, local }) => {
    const file = async (name: string, text: string): Promise<string> => {
      const where = path.join(tmp, name);
      await fs.writeFile(where, text);
      return where;
    };
    const serverCert = await file('server.pem', certs.server.cert);
    const serverKey = await file('server.key', certs.server.key);
    const clientCa = await file('client-ca.pem', certs.clientCa.cert);
    const ca = await file('ca.pem', certs.ca.cert);
    const clientCert = await file('client.pem', certs.client.cert);
    const clientKey = await file('client.key', certs.client.key);
    const strangerCert = await file('stranger.pem', certs.strangerClient.cert);
    const strangerKey = await file('stranger.key', certs.strangerClient.key);

    const server = await startServer(['--tls-cert', serverCert, '--tls-key', serverKey, '--tls-client-ca', clientCa], {}, live, true);
    assert.equal(server.fingerprint, certs.server.fingerprint);

    const client = startCli(clientArgs(server, local.port, ['--tls-ca', ca, '--tls-client-cert', clientCert, '--tls-client-key', clientKey]), {}, live);
    await assertForwards(client, server, local.port, 5);
    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.doesNotMatch(server.cli.stderr, /refused/);

    const without = await runCli(clientArgs(server, local.port, ['--tls-ca', ca, '--no-reconnect']));
    assertOneLineFailure(without, 'client certificate');
    await waitForOutput(server.cli, 'stderr', refusedLine('bad-certificate'), 'the server to report the missing client certificate');
    assert.match(server.cli.stderr, /refused .*none presented \(bad-certificate\)$/m);

    const stranger = await runCli(clientArgs(server, local.port, ['--tls-ca', ca, '--tls-client-cert', strangerCert, '--tls-client-key', strangerKey]));
    assertOneLineFailure(stranger, 'client certificate', 'not signed by the client CA');
    await waitForOutput(server.cli, 'stderr', /refused .*not signed by the client CA.* \(bad-certificate\)$/m, 'the server to report the stranger');

    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
  });
});

test('usage errors exit 2 naming the flags: --tls-cert without --tls-key, a bad --tls-fingerprint, --secret with --secret-file, an unreadable --secret-file', async () => {
  // Loopback and ephemeral ports, should a server wrongly start.
  const safe = ['--bind', HOST, '--control-port', '0', '--data-port', '0'];
  assertUsage(await runCli(['server', ...safe, '--tls-cert', 'x']), '--tls-cert', '--tls-key');
  assertUsage(await runCli(['client', '3000', '--server', HOST, '--tls-fingerprint', 'nothex']), '--tls-fingerprint', '"nothex"');
  assertUsage(await runCli(['client', '3000', '--server', HOST, '--secret', 'a', '--secret-file', 'f']), '--secret', '--secret-file');
  assertUsage(await runCli(['server', ...safe, '--secret-file', 'f'], { BURROW_SECRET: 'a' }), 'BURROW_SECRET', '--secret-file');
  await scoped(async ({ tmp }) => {
    const missing = path.join(tmp, 'no-such-secret');
    assertUsage(await runCli(['server', ...safe, '--secret-file', missing]), '--secret-file', missing);
  });
});

const NO_PROC = !existsSync('/proc/self/cmdline');

test('a secret given by file is not on the command line (/proc/<pid>/cmdline), and neither process prints it, even with --trace', { skip: NO_PROC ? 'no /proc/<pid>/cmdline here' : false }, async () => {
  await scoped(async ({ tmp, live, local }) => {
    const secret = longSecret();
    const serverFile = path.join(tmp, 'server-secret');
    const clientFile = path.join(tmp, 'client-secret');
    await fs.writeFile(serverFile, `${secret}\n`);
    await fs.writeFile(clientFile, `${secret}\r\n`);
    const server = await startServer(['--secret-file', serverFile, '--trace'], {}, live, false);
    const client = startCli(clientArgs(server, local.port, ['--secret-file', clientFile, '--trace']), {}, live);
    await assertForwards(client, server, local.port, 7);

    for (const [who, cli, file] of [['server', server.cli, serverFile], ['client', client, clientFile]] as const) {
      assert.ok(cli.child.pid !== undefined, `${who} has a pid`);
      const cmdline = (await fs.readFile(`/proc/${cli.child.pid}/cmdline`, 'utf8')).split('\0');
      assert.ok(cmdline.includes('--secret-file') && cmdline.includes(file), `${who} cmdline names the file: ${cmdline.join(' ')}`);
      assert.ok(!cmdline.some((arg) => arg.includes(secret)), `${who} cmdline does not hold the secret`);
    }

    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
    // The trace did show the handshake (so there was something to look at).
    assert.match(client.stderr, /^\[client\] control\S* +-> PROOF <hidden>$/m);
    assert.match(server.cli.stderr, /^\[server\] data#\d+ +<- ID \S+ <hidden>$/m);
    for (const [who, text] of [['server stdout', server.cli.stdout], ['server stderr', server.cli.stderr], ['client stdout', client.stdout], ['client stderr', client.stderr]] as const) {
      assert.ok(!text.includes(secret), `the secret is not in the ${who}`);
    }
  });
});
