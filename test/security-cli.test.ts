// The security flags of the real `burrow` command (child processes, test/child.ts), part
// one: secrets and refusals. A pinned TLS client with a secret; every refusal as one line
// and exit 1 (and a `refused` line on the server); the open-relay notice and the
// short-secret warning; usage errors (exit 2); a secret that stays out of `ps` and out of
// everything printed. Certificates are in tls-cli.test.ts (the two are one file's work,
// split so that each finishes well within the test timeout).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { interrupt, lines, runCli, startCli, waitForOutput } from './child.ts';
import { HOST } from './helpers.ts';
import { assertRefused } from './raw.ts';
import {
  NOTICE,
  shortSecretWarning,
  refusedLine,
  CLIENT_CLOSING,
  SERVER_SHUTTING_DOWN,
  longSecret,
  scoped,
  serverRefuses,
  startServer,
  clientArgs,
  assertForwards,
  assertOneLineFailure,
  assertUsage,
} from './security-cli-rig.ts';

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
    await serverRefuses(server, 'auth-failed', 'the server to report the wrong secret');

    // Reconnecting is on by default: a refusal no retry can fix still ends the client.
    const none = await runCli(clientArgs(server, 3000, []));
    assertOneLineFailure(none, 'requires a secret', '(auth-required');
    await serverRefuses(server, 'auth-required', 'the server to report the missing secret');

    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
    assert.doesNotMatch(server.cli.stderr, NOTICE);
    assert.equal(lines(server.cli.stderr).length, 3, `two refused lines and the shutdown: ${server.cli.stderr}`);
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
    await serverRefuses(server, 'tls-not-enabled', 'the server to report the TLS client');

    const withSecret = await runCli(clientArgs(server, 3000, []), { BURROW_SECRET: longSecret() });
    assertOneLineFailure(withSecret, 'no secret', '(auth-disabled');
    await serverRefuses(server, 'auth-disabled', 'the server to report the client with a secret');

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
