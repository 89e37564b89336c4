// The security flags of the real `burrow` command (child processes, test/child.ts), part
// two: certificates. The self-signed certificate of `--tls` and its printed fingerprint,
// a TLS client against it (plain, pinned, unverifiable), mutual TLS, and the names a
// certificate covers (`--tls-name`, BURROW_TLS_NAME). Secrets and refusals are in
// security-cli.test.ts.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fingerprintOf } from '../shared/fingerprint.ts';
import { testCerts } from './certs.ts';
import { selfSignedFor } from './named-certs.ts';
import { interrupt, lines, runCli, startCli, waitForOutput } from './child.ts';
import { HOST } from './helpers.ts';
import {
  DEFAULT_NAMES,
  assertFingerprintLine,
  NOTICE,
  SERVER_SHUTTING_DOWN,
  scoped,
  serverRefuses,
  startServer,
  clientArgs,
  assertForwards,
  assertOneLineFailure,
  assertUsage,
} from './security-cli-rig.ts';

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

test('against a --tls server: a plain client (tls-required), a wrong pin ("not the pinned"), an unverifiable certificate: each exits 1 with one line', async () => {
  const certs = await testCerts();
  await scoped(async ({ tmp, live }) => {
    const server = await startServer(['--tls', '--tls-dir', tmp], {}, live, true);
    assert.ok(server.fingerprint);

    const plain = await runCli(clientArgs(server, 3000, ['--no-reconnect']));
    assertOneLineFailure(plain, 'TLS', '(tls-required');
    await serverRefuses(server, 'tls-required', 'the server to report the plain-text client');

    // Pinned to another certificate's fingerprint (the server cannot tell why it left).
    const pinned = await runCli(clientArgs(server, 3000, ['--tls-fingerprint', certs.server.fingerprint]));
    assertOneLineFailure(pinned, 'not the pinned', certs.server.fingerprint, server.fingerprint);

    // --tls alone trusts the system CAs, which know nothing of a self-signed certificate.
    const unverified = await runCli(clientArgs(server, 3000, ['--tls']));
    assertOneLineFailure(unverified, "cannot verify the server's certificate", '--tls-fingerprint');

    assert.deepEqual(await interrupt(server.cli, 'the server'), { code: 0, signal: null });
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
    await serverRefuses(server, 'bad-certificate', 'the server to report the missing client certificate');
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
