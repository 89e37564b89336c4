// The security flags of the real `burrow` command (child processes, test/child.ts): the
// self-signed certificate of `--tls` and its printed fingerprint, a pinned TLS client with
// a secret, mutual TLS, every refusal as one line and exit 1 (and a `refused` line on the
// server), the open-relay notice and the short-secret warning, usage errors (exit 2), and
// a secret that stays out of `ps` and out of everything printed.
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fingerprintOf } from '../shared/fingerprint.ts';
import { testCerts } from './certs.ts';
import { selfSignedFor } from './named-certs.ts';
import {
  FORWARDING,
  interrupt,
  killAll,
  LISTENING,
  loopbackClientArgs,
  lines,
  runCli,
  startCli,
  waitForOutput,
  type Cli,
  type Exit,
  loopbackServerArgs,
} from './child.ts';
import { echo, HOST, listenLocal, pseudoRandomBytes, request } from './helpers.ts';
import { assertRefused, freePublicPort } from './raw.ts';

/** The hint after a usage error (naming the command, when there is one). */
const USAGE_HINT = /^Run 'burrow (?:(?:server|client) )?--help' for usage\.$/;
/** What the server prints on stdout after the listening line when it speaks TLS: the
 * fingerprint, and (where the start line shows them) the names the certificate covers. */
const FINGERPRINT = /^TLS certificate SHA-256 fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})(?: \(names: (.+)\))?$/m;
/** The names of the self-signed certificate when no --tls-name is given. */
const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1'];

/** Asserts `line` is the fingerprint line for `fingerprint`, naming exactly `names` if it
 * names any. */
function assertFingerprintLine(line: string | undefined, fingerprint: string | undefined, names: string[]): void {
  const plain = `TLS certificate SHA-256 fingerprint: ${fingerprint}`;
  if (line !== plain) assert.equal(line, `${plain} (names: ${names.join(', ')})`);
}
const NOTICE = /^burrow: notice: no secret is set\b.*$/m;
const shortSecretWarning = (length: number): RegExp =>
  new RegExp(`^burrow: warning: the secret is only ${length} characters\\b.*openssl rand -base64 32.*$`, 'm');
/** The server's line for a connection it turned away, for `reason`. */
const refusedLine = (reason: string): RegExp =>
  new RegExp(`^burrow: refused (?:control|data)#\\d+ from 127\\.0\\.0\\.1:\\d+: .+ \\(${reason}\\)$`, 'm');
const CLIENT_CLOSING = 'burrow: closing; open connections get 10 s to finish (signal again to stop now)';
/** The server's line on SIGINT with no client connected (cli/output.ts). */
const SERVER_SHUTTING_DOWN = 'burrow: shutting down; open connections get 10 s to finish (signal again to stop now)';

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
  /** The names printed with it, if the start line shows them. */
  names: string[] | undefined;
}

/** `burrow server` on loopback, ephemeral control and data ports, a one-port range (a port
 * that was free a moment ago, as test/cli.test.ts picks it), plus `extra`; resolves once it
 * listens (and has printed its fingerprint, with `tls`). */
async function startServer(
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
const clientArgs = (server: RunningServer, localPort: number, extra: string[]): string[] =>
  loopbackClientArgs(localPort, server, extra);

/** Waits until the client forwards `server`'s public port, and checks bytes echo through. */
async function assertForwards(client: Cli, server: RunningServer, localPort: number, seed: number): Promise<void> {
  const [, publicPort = '', local = ''] = await waitForOutput(client, 'stdout', FORWARDING, 'the client to forward');
  assert.equal(Number(publicPort), server.publicPort);
  assert.equal(Number(local), localPort);
  const payload = pseudoRandomBytes(100_000, seed);
  assert.ok(
    (await request(server.publicPort, payload)).equals(payload),
    'the visitor gets its bytes back through the tunnel',
  );
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
  assert.match(hint ?? '', USAGE_HINT);
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
    const stdout = lines(first.cli.stdout);
    assert.equal(stdout.length, 2, first.cli.stdout);
    assert.equal(
      stdout[0],
      `burrow server listening on ${HOST} control port ${first.controlPort}, data port ${first.dataPort}; public ports ${first.publicPort}-${first.publicPort}`,
    );
    assertFingerprintLine(stdout[1], first.fingerprint, DEFAULT_NAMES);
    const firstErr = lines(first.cli.stderr);
    assert.equal(firstErr.length, 3, first.cli.stderr);
    assert.equal(firstErr[0], `burrow: created a self-signed TLS certificate in ${dir}`);
    assert.match(firstErr[1] ?? '', NOTICE);
    assert.equal(firstErr[2], SERVER_SHUTTING_DOWN);

    // Again, configured through the variables this time: the same pair, nothing created.
    const second = await startServer([], { BURROW_TLS: '1', BURROW_TLS_DIR: dir }, live, true);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.deepEqual(await fs.readFile(path.join(dir, 'tls-cert.pem')), certPem, 'the certificate file is unchanged');
    assert.deepEqual(await interrupt(second.cli, 'the second server'), { code: 0, signal: null });
    assert.ok(!second.cli.stderr.includes('created'), `no "created" line: ${second.cli.stderr}`);
    const secondErr = lines(second.cli.stderr);
    assert.equal(secondErr.length, 2, second.cli.stderr);
    assert.match(secondErr[0] ?? '', NOTICE);
    assert.equal(secondErr[1], SERVER_SHUTTING_DOWN);
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

    const client = startCli(
      clientArgs(server, local.port, ['--tls-fingerprint', server.fingerprint]),
      { BURROW_SECRET: secret },
      live,
    );
    await assertForwards(client, server, local.port, 21);

    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.equal(client.stderr, `${CLIENT_CLOSING}\n`);
    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
    assert.doesNotMatch(server.cli.stderr, NOTICE);
    assert.deepEqual(lines(server.cli.stderr), [
      `burrow: created a self-signed TLS certificate in ${tlsDir}`,
      SERVER_SHUTTING_DOWN,
    ]);
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
    await waitForOutput(
      server.cli,
      'stderr',
      refusedLine('tls-required'),
      'the server to report the plain-text client',
    );

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
    for (let i = 0; i < 14; i++)
      await assertRefused(Number(server.controlPort), 'EXPOSE 3000\n', 'tls-required', `connection ${i + 1}`);
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
    await waitForOutput(
      server.cli,
      'stderr',
      refusedLine('auth-disabled'),
      'the server to report the client with a secret',
    );

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

    const server = await startServer(
      ['--tls-cert', serverCert, '--tls-key', serverKey, '--tls-client-ca', clientCa],
      {},
      live,
      true,
    );
    assert.equal(server.fingerprint, certs.server.fingerprint);

    const client = startCli(
      clientArgs(server, local.port, ['--tls-ca', ca, '--tls-client-cert', clientCert, '--tls-client-key', clientKey]),
      {},
      live,
    );
    await assertForwards(client, server, local.port, 5);
    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.doesNotMatch(server.cli.stderr, /refused/);

    const without = await runCli(clientArgs(server, local.port, ['--tls-ca', ca, '--no-reconnect']));
    assertOneLineFailure(without, 'client certificate');
    await waitForOutput(
      server.cli,
      'stderr',
      refusedLine('bad-certificate'),
      'the server to report the missing client certificate',
    );
    assert.match(server.cli.stderr, /refused .*none presented \(bad-certificate\)$/m);

    const stranger = await runCli(
      clientArgs(server, local.port, [
        '--tls-ca',
        ca,
        '--tls-client-cert',
        strangerCert,
        '--tls-client-key',
        strangerKey,
      ]),
    );
    assertOneLineFailure(stranger, 'client certificate', 'not signed by the client CA');
    await waitForOutput(
      server.cli,
      'stderr',
      /refused .*not signed by the client CA.* \(bad-certificate\)$/m,
      'the server to report the stranger',
    );

    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
  });
});

test('usage errors exit 2 naming the flags: --tls-cert without --tls-key, a bad --tls-fingerprint, --secret with --secret-file (or both variables), an unreadable --secret-file', async () => {
  // Loopback and ephemeral ports, should a server wrongly start.
  const safe = ['--bind', HOST, '--control-port', '0', '--data-port', '0'];
  assertUsage(await runCli(['server', ...safe, '--tls-cert', 'x']), '--tls-cert', '--tls-key');
  assertUsage(
    await runCli(['client', '3000', '--server', HOST, '--tls-fingerprint', 'nothex']),
    '--tls-fingerprint',
    '"nothex"',
  );
  assertUsage(
    await runCli(['client', '3000', '--server', HOST, '--secret', 'a', '--secret-file', 'f']),
    '--secret',
    '--secret-file',
  );
  assertUsage(
    await runCli(['server', ...safe], { BURROW_SECRET: 'a', BURROW_SECRET_FILE: 'f' }),
    'BURROW_SECRET',
    'BURROW_SECRET_FILE',
  );
  await scoped(async ({ tmp }) => {
    const missing = path.join(tmp, 'no-such-secret');
    assertUsage(await runCli(['server', ...safe, '--secret-file', missing]), '--secret-file', missing);
    // A flag and a variable: the flag wins, so the file is what fails here, not the pair.
    assertUsage(
      await runCli(['server', ...safe, '--secret-file', missing], { BURROW_SECRET: 'a' }),
      '--secret-file',
      missing,
    );
  });
});

const NO_PROC = !existsSync('/proc/self/cmdline');

test(
  'a secret given by file is not on the command line (/proc/<pid>/cmdline), and neither process prints it, even with --trace',
  { skip: NO_PROC ? 'no /proc/<pid>/cmdline here' : false },
  async () => {
    await scoped(async ({ tmp, live, local }) => {
      const secret = longSecret();
      const serverFile = path.join(tmp, 'server-secret');
      const clientFile = path.join(tmp, 'client-secret');
      await fs.writeFile(serverFile, `${secret}\n`);
      await fs.writeFile(clientFile, `${secret}\r\n`);
      const server = await startServer(['--secret-file', serverFile, '--trace'], {}, live, false);
      const client = startCli(clientArgs(server, local.port, ['--secret-file', clientFile, '--trace']), {}, live);
      await assertForwards(client, server, local.port, 7);

      for (const [who, cli, file] of [
        ['server', server.cli, serverFile],
        ['client', client, clientFile],
      ] as const) {
        assert.ok(cli.child.pid !== undefined, `${who} has a pid`);
        const cmdline = (await fs.readFile(`/proc/${cli.child.pid}/cmdline`, 'utf8')).split('\0');
        assert.ok(
          cmdline.includes('--secret-file') && cmdline.includes(file),
          `${who} cmdline names the file: ${cmdline.join(' ')}`,
        );
        assert.ok(!cmdline.some((arg) => arg.includes(secret)), `${who} cmdline does not hold the secret`);
      }

      assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
      assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
      // The trace did show the handshake (so there was something to look at).
      assert.match(client.stderr, /^\[client\] control\S* +-> PROOF <hidden>$/m);
      assert.match(server.cli.stderr, /^\[server\] data#\d+ +<- ID \S+ <hidden>$/m);
      for (const [who, text] of [
        ['server stdout', server.cli.stdout],
        ['server stderr', server.cli.stderr],
        ['client stdout', client.stdout],
        ['client stderr', client.stderr],
      ] as const) {
        assert.ok(!text.includes(secret), `the secret is not in the ${who}`);
      }
    });
  },
);

// ---------------------------------------------------------------------------------------
// --tls-name (here through BURROW_TLS_NAME, the same code path as the flag past yargs).

test('server --tls with BURROW_TLS_NAME: the certificate names relay.test and 203.0.113.7 besides the defaults; kept while it names them, replaced (and said) when asked for another', async () => {
  await scoped(async ({ tmp, live, local }) => {
    const dir = path.join(tmp, 'tls');
    const certFile = path.join(dir, 'tls-cert.pem');
    const created = `burrow: created a self-signed TLS certificate in ${dir}`;

    const first = await startServer(
      ['--tls-dir', dir],
      { BURROW_TLS: '1', BURROW_TLS_NAME: 'relay.test,203.0.113.7' },
      live,
      true,
    );
    const firstPem = await fs.readFile(certFile, 'utf8');
    const cert = new X509Certificate(firstPem);
    assert.equal(first.fingerprint, cert.fingerprint256);
    assert.equal(
      cert.subjectAltName,
      'DNS:relay.test, IP Address:203.0.113.7, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    if (first.names !== undefined) assert.deepEqual(first.names, ['relay.test', '203.0.113.7', ...DEFAULT_NAMES]);
    await waitForOutput(
      first.cli,
      'stderr',
      /^burrow: created a self-signed TLS certificate in /m,
      'the "created" line',
    );
    // 127.0.0.1 is still named, so a client trusting the file connects by it.
    const client = startCli(clientArgs(first, local.port, ['--tls-ca', certFile]), {}, live);
    await assertForwards(client, first, local.port, 31);
    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(first.cli, 'the first server'), { code: 0, signal: null });
    assert.equal(lines(first.cli.stderr)[0], created);

    // Fewer names than it has: the same certificate, nothing created.
    const second = await startServer(['--tls', '--tls-dir', dir], { BURROW_TLS_NAME: 'relay.test' }, live, true);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.deepEqual(await interrupt(second.cli, 'the second server'), { code: 0, signal: null });
    assert.ok(!second.cli.stderr.includes('created'), second.cli.stderr);
    assert.equal(await fs.readFile(certFile, 'utf8'), firstPem);

    // A name it lacks: a new certificate naming the old names too, said so; the old pair
    // kept beside it under a name of its own, which the notice gives.
    const third = await startServer(['--tls', '--tls-dir', dir], { BURROW_TLS_NAME: 'other.test' }, live, true);
    assert.notEqual(third.fingerprint, first.fingerprint);
    if (third.names !== undefined)
      assert.deepEqual(third.names, ['relay.test', '203.0.113.7', 'other.test', ...DEFAULT_NAMES]);
    const thirdCert = new X509Certificate(await fs.readFile(certFile));
    assert.equal(thirdCert.fingerprint256, third.fingerprint);
    assert.equal(thirdCert.checkHost('other.test'), 'other.test');
    assert.equal(thirdCert.checkHost('relay.test'), 'relay.test');
    assert.equal(thirdCert.checkIP('203.0.113.7'), '203.0.113.7');
    const files = (await fs.readdir(dir)).sort();
    const suffix = files
      .map((file) => /^tls-cert\.pem\.old-(.+)$/.exec(file)?.[1])
      .find((found) => found !== undefined);
    assert.ok(suffix !== undefined, files.join(' '));
    assert.deepEqual(files, ['tls-cert.pem', `tls-cert.pem.old-${suffix}`, 'tls-key.pem', `tls-key.pem.old-${suffix}`]);
    assert.equal(await fs.readFile(`${certFile}.old-${suffix}`, 'utf8'), firstPem);
    assert.deepEqual(await interrupt(third.cli, 'the third server'), { code: 0, signal: null });
    const notice = lines(third.cli.stderr)[0] ?? '';
    assert.ok(notice.startsWith(created), third.cli.stderr);
    assert.ok(notice.includes(`${certFile}.old-${suffix}`) && notice.includes(first.fingerprint), notice);
  });
});

test('a client whose --server the certificate does not name: one line with its names and --tls-name or a pin, no --tls-ca; a pin then forwards', async () => {
  const relay = await selfSignedFor(['relay.test']);
  await scoped(async ({ tmp, live, local }) => {
    const certFile = path.join(tmp, 'relay.pem');
    const keyFile = path.join(tmp, 'relay.key');
    await fs.writeFile(certFile, relay.cert);
    await fs.writeFile(keyFile, relay.key);
    const server = await startServer(['--tls-cert', certFile, '--tls-key', keyFile], {}, live, true);
    assert.equal(server.fingerprint, relay.fingerprint);
    if (server.names !== undefined) assert.deepEqual(server.names, ['relay.test']);

    const mismatch = await runCli(clientArgs(server, local.port, ['--tls-ca', certFile]));
    assertOneLineFailure(
      mismatch,
      `the server's certificate does not name ${HOST} (it names relay.test)`,
      'connect to one of those names (--server)',
      `restart the server with --tls-name ${HOST}`,
      '--tls-fingerprint',
    );
    assert.doesNotMatch(mismatch.stderr, /--tls-ca/);

    const pinned = startCli(clientArgs(server, local.port, ['--tls-fingerprint', relay.fingerprint]), {}, live);
    await assertForwards(pinned, server, local.port, 32);
    assert.deepEqual(await interrupt(pinned, 'the pinned client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
  });
});

test('usage errors exit 2: a BURROW_TLS_NAME that is no host name or address, and one given with BURROW_TLS_CERT/KEY; beside --tls-cert it is ignored', async () => {
  const safe = ['--bind', HOST, '--control-port', '0', '--data-port', '0'];
  await scoped(async ({ tmp }) => {
    const dir = path.join(tmp, 'tls');
    assertUsage(
      await runCli(['server', ...safe, '--tls', '--tls-dir', dir], { BURROW_TLS_NAME: 'relay.test,*.example.com' }),
      'BURROW_TLS_NAME',
      '"*.example.com"',
      'not a host name',
    );
    assertUsage(
      await runCli(['server', ...safe, '--tls', '--tls-dir', dir], { BURROW_TLS_NAME: 'relay.example.com:7835' }),
      'BURROW_TLS_NAME',
      '"relay.example.com:7835"',
    );
    assertUsage(
      await runCli(['server', ...safe], {
        BURROW_TLS_CERT: 'c.pem',
        BURROW_TLS_KEY: 'k.pem',
        BURROW_TLS_NAME: 'relay.test',
      }),
      'BURROW_TLS_NAME',
      'BURROW_TLS_CERT',
    );
    // The flags win over the variable: the missing file is the error, not BURROW_TLS_NAME.
    const ignored = await runCli(['server', ...safe, '--tls-cert', 'c.pem', '--tls-key', 'k.pem'], {
      BURROW_TLS_NAME: 'relay.test',
    });
    assertUsage(ignored, '--tls-cert', 'cannot read c.pem');
    assert.ok(!ignored.stderr.includes('BURROW_TLS_NAME'), ignored.stderr);
    assert.ok(!existsSync(dir), 'no certificate was made');
  });
});

/** Whether `burrow server --help` lists --tls-name (cli/server-flags.ts declares the flag). */
async function serverHasTlsNameFlag(): Promise<boolean> {
  const help = await runCli(['server', '--help']);
  return help.stdout.includes('--tls-name');
}

test(
  'server --tls-name, repeated and comma-separated: the certificate names them; a bad name, or one with --tls-cert, exits 2',
  { skip: !(await serverHasTlsNameFlag()) && 'cli/server-flags.ts does not declare --tls-name yet' },
  async () => {
    const safe = ['--bind', HOST, '--control-port', '0', '--data-port', '0'];
    await scoped(async ({ tmp, live }) => {
      const dir = path.join(tmp, 'tls');
      const server = await startServer(
        ['--tls', '--tls-dir', dir, '--tls-name', 'Relay.Test', '--tls-name', '203.0.113.7,2001:db8::7'],
        {},
        live,
        true,
      );
      const cert = new X509Certificate(await fs.readFile(path.join(dir, 'tls-cert.pem')));
      assert.equal(server.fingerprint, cert.fingerprint256);
      assert.equal(
        cert.subjectAltName,
        'DNS:relay.test, IP Address:203.0.113.7, IP Address:2001:DB8:0:0:0:0:0:7, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
      );
      if (server.names !== undefined)
        assert.deepEqual(server.names, ['relay.test', '203.0.113.7', '2001:db8::7', ...DEFAULT_NAMES]);
      assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });

      assertUsage(
        await runCli(['server', ...safe, '--tls', '--tls-dir', dir, '--tls-name', 'relay_1.test']),
        '--tls-name',
        '"relay_1.test"',
        'not a host name',
      );
      assertUsage(
        await runCli(['server', ...safe, '--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--tls-name', 'relay.test']),
        '--tls-name',
        '--tls-cert',
      );
    });
  },
);
