// `burrow server --tls-name` as pure functions (cli/security.ts): which names the
// self-signed certificate must carry, from the flag (repeated, comma-separated) or
// BURROW_TLS_NAME, what is a usage error, and what loadServerTls hands the start line: the
// certificate's names, and whether a kept certificate was replaced. No processes; files
// live in temporary directories.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { format } from 'node:util';
import createDebug from 'debug';
import type { Env, RawArgs } from '../cli/args.ts';
import { UsageError } from '../cli/usage-error.ts';
import { loadServerTls, resolveServerSecurity, TLS_NAME_FLAG, TLS_NAME_HELP } from '../cli/security.ts';
import { testCerts } from './certs.ts';
import { selfSignedFor } from './named-certs.ts';

const XDG = path.join(os.tmpdir(), 'burrow-xdg-not-used');
const DIR = path.join(XDG, 'burrow');
/** An environment with a config home, so that no default depends on the real $HOME. */
const server = (args: RawArgs, env: Env = {}) => resolveServerSecurity(args, { XDG_CONFIG_HOME: XDG, ...env });

function assertUsageError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    for (const part of parts) assert.ok(error.message.includes(part), `${JSON.stringify(part)} in: ${error.message}`);
    assert.ok(!error.message.includes('\n'), 'a usage error is one line');
    return true;
  });
}

/** What `fn` returns, and the lines it logs on the debug namespace `namespace`. */
function withDebug<T>(namespace: string, fn: () => T): { value: T; lines: string[] } {
  const lines: string[] = [];
  const log = createDebug.log;
  const before = createDebug.disable();
  createDebug.log = (...args: unknown[]) => void lines.push(format(...args));
  createDebug.enable(namespace);
  try {
    return { value: fn(), lines };
  } finally {
    createDebug.log = log;
    createDebug.enable(before);
  }
}

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'burrow-tls-name-'));
  try {
    await body(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test('the flag is --tls-name, and its help says what it is for', () => {
  assert.equal(TLS_NAME_FLAG, 'tls-name');
  assert.match(TLS_NAME_HELP, /self-signed certificate of --tls/);
  assert.match(TLS_NAME_HELP, /replaced/);
});

test('--tls --tls-name: the names go to the self-signed certificate, normalised, in order, once each', () => {
  assert.deepEqual(server({ tls: true, 'tls-name': 'relay.example.com' }).tls, {
    selfSignedDir: DIR,
    names: ['relay.example.com'],
  });
  // Repeated (yargs: an array), with commas, spaces, case, a trailing dot, brackets, duplicates.
  assert.deepEqual(
    server({ tls: true, 'tls-name': ['Relay.Example.com.', '203.0.113.7, [2001:DB8::7]', 'relay.example.com'] }).tls,
    {
      selfSignedDir: DIR,
      names: ['relay.example.com', '203.0.113.7', '2001:db8::7'],
    },
  );
  // With --tls-dir and --tls-client-ca, as before.
  const withAll = server({ 'tls-dir': '/srv/burrow', 'tls-name': ['relay.test'], 'tls-client-ca': '/ca.pem' }).tls;
  assert.deepEqual(withAll, {
    selfSignedDir: '/srv/burrow',
    names: ['relay.test'],
    clientCa: { text: '/ca.pem', source: '--tls-client-ca' },
  });
  // No name: no names key at all (the plan is what it always was).
  assert.deepEqual(server({ tls: true }).tls, { selfSignedDir: DIR });
});

test('BURROW_TLS_NAME: comma-separated; the flag wins over it; empty is unset', () => {
  assert.deepEqual(server({ tls: true }, { BURROW_TLS_NAME: 'relay.example.com,203.0.113.7' }).tls, {
    selfSignedDir: DIR,
    names: ['relay.example.com', '203.0.113.7'],
  });
  assert.deepEqual(server({ tls: true }, { BURROW_TLS_NAME: ' relay.test , ::1 ,' }).tls, {
    selfSignedDir: DIR,
    names: ['relay.test', '::1'],
  });
  assert.deepEqual(server({ tls: true, 'tls-name': ['flag.test'] }, { BURROW_TLS_NAME: 'env.test' }).tls, {
    selfSignedDir: DIR,
    names: ['flag.test'],
  });
  assert.deepEqual(server({ tls: true }, { BURROW_TLS_NAME: '' }).tls, { selfSignedDir: DIR });
});

test('--tls-name alone implies --tls (as --tls-dir does); --no-tls with no name stays plain', () => {
  assert.deepEqual(server({ 'tls-name': ['relay.test'] }).tls, { selfSignedDir: DIR, names: ['relay.test'] });
  assert.deepEqual(server({}, { BURROW_TLS_NAME: 'relay.test' }).tls, { selfSignedDir: DIR, names: ['relay.test'] });
  assert.equal(server({ tls: false }).tls, undefined);
});

test('a --tls-name that is not a host name or an IP address is a usage error naming its source and the value', () => {
  for (const bad of [
    '*.example.com',
    'relay.example.com:7835',
    'https://relay.example.com',
    'relay_1.example.com',
    '256.1.1.1',
    '[203.0.113.7]',
  ]) {
    assertUsageError(
      () => server({ tls: true, 'tls-name': ['relay.test', bad] }),
      '--tls-name',
      `"${bad}"`,
      'not a host name',
    );
    assertUsageError(
      () => server({ tls: true }, { BURROW_TLS_NAME: `relay.test,${bad}` }),
      'BURROW_TLS_NAME',
      `"${bad}"`,
    );
  }
  // Given but empty: the flag with no value (yargs: []), or nothing but commas.
  assertUsageError(() => server({ tls: true, 'tls-name': [] }), '--tls-name', 'give a host name or an IP address');
  assertUsageError(() => server({ tls: true, 'tls-name': [''] }), '--tls-name', 'give a host name or an IP address');
  assertUsageError(
    () => server({ tls: true }, { BURROW_TLS_NAME: ' , ' }),
    'BURROW_TLS_NAME',
    'give a host name or an IP address',
  );
});

test("--tls-name with --tls-cert and --tls-key, all flags or all variables, is a usage error: the operator's certificate has its own names", () => {
  assertUsageError(
    () => server({ 'tls-cert': '/c.pem', 'tls-key': '/k.pem', 'tls-name': ['relay.test'] }),
    '--tls-name',
    '--tls-cert',
    'drop --tls-name',
  );
  assertUsageError(
    () => server({}, { BURROW_TLS_CERT: '/c.pem', BURROW_TLS_KEY: '/k.pem', BURROW_TLS_NAME: 'relay.test' }),
    'BURROW_TLS_NAME',
    'BURROW_TLS_CERT and BURROW_TLS_KEY',
    'drop BURROW_TLS_NAME',
  );
});

test('--tls-name and the files, one side flags and the other variables: the flags win, the variables are ignored', () => {
  const files = { 'tls-cert': '/c.pem', 'tls-key': '/k.pem' };
  const fileTls = { cert: { text: '/c.pem', source: '--tls-cert' }, key: { text: '/k.pem', source: '--tls-key' } };
  // BURROW_TLS_NAME from a shared .env does not stop --tls-cert; even a bad one, since it is ignored.
  const logged = withDebug('burrow:server', () => server(files, { BURROW_TLS_NAME: 'relay.test' }).tls);
  assert.deepEqual(logged.value, fileTls);
  assert.equal(logged.lines.length, 1);
  assert.match(
    logged.lines[0] ?? '',
    /ignoring BURROW_TLS_NAME, given with --tls-cert and --tls-key: a flag wins over a variable/,
  );
  assert.deepEqual(server(files, { BURROW_TLS_NAME: 'not a name!' }).tls, fileTls);
  assert.deepEqual(server(files, { BURROW_TLS_NAME: 'relay.test', BURROW_TLS_DIR: '/d' }).tls, fileTls);
  // --tls-name wins over BURROW_TLS_CERT/KEY; a BURROW_TLS_DIR agrees with it and is kept.
  assert.deepEqual(
    server({ 'tls-name': ['relay.test'] }, { BURROW_TLS_CERT: '/c.pem', BURROW_TLS_KEY: '/k.pem' }).tls,
    { selfSignedDir: DIR, names: ['relay.test'] },
  );
  assert.deepEqual(
    server(
      { 'tls-name': ['relay.test'] },
      { BURROW_TLS_CERT: '/c.pem', BURROW_TLS_KEY: '/k.pem', BURROW_TLS_DIR: '/d' },
    ).tls,
    { selfSignedDir: '/d', names: ['relay.test'] },
  );
});

test('loadServerTls: the names of the self-signed certificate; a kept one lacking a --tls-name is replaced, and that is reported', async () => {
  await withTempDir(async (dir) => {
    const first = await loadServerTls({ selfSignedDir: dir });
    assert.ok(first);
    assert.deepEqual(first.names, ['localhost', '127.0.0.1', '::1']);
    assert.equal(first.createdIn, dir);
    assert.equal(first.replaced, undefined);

    const named = await loadServerTls({ selfSignedDir: dir, names: ['relay.test', '203.0.113.7'] });
    assert.ok(named);
    assert.equal(named.createdIn, dir, 'a new certificate: the "created" line is printed');
    assert.notEqual(named.fingerprint, first.fingerprint);
    assert.deepEqual(named.names, ['relay.test', '203.0.113.7', 'localhost', '127.0.0.1', '::1']);
    const suffix = /^tls-cert\.pem\.old-(.+)$/.exec(path.basename(named.replaced?.certFile ?? ''))?.[1];
    assert.ok(suffix !== undefined, 'the old pair is set aside under a name of its own');
    assert.deepEqual(named.replaced, {
      fingerprint: first.fingerprint,
      missing: ['relay.test', '203.0.113.7'],
      certFile: path.join(dir, `tls-cert.pem.old-${suffix}`),
      keyFile: path.join(dir, `tls-key.pem.old-${suffix}`),
    });
    assert.equal(await fs.readFile(path.join(dir, `tls-cert.pem.old-${suffix}`), 'utf8'), first.options.cert);
    const served = new X509Certificate(named.options.cert);
    assert.equal(served.fingerprint256, named.fingerprint);
    assert.equal(served.checkHost('relay.test'), 'relay.test');

    const again = await loadServerTls({ selfSignedDir: dir, names: ['relay.test'] });
    assert.ok(again);
    assert.equal(again.fingerprint, named.fingerprint);
    assert.equal(again.createdIn, undefined);
    assert.equal(again.replaced, undefined);
    assert.deepEqual(again.names, named.names);
  });
});

test("loadServerTls: with --tls-cert, the names are those of the operator's certificate (the first of the chain)", async () => {
  const certs = await testCerts();
  const relay = await selfSignedFor(['relay.example.com', '203.0.113.7']);
  await withTempDir(async (dir) => {
    const file = async (name: string, text: string): Promise<{ text: string; source: string }> => {
      await fs.writeFile(path.join(dir, name), text);
      return { text: path.join(dir, name), source: `--${name.startsWith('key') ? 'tls-key' : 'tls-cert'}` };
    };
    const chain = await loadServerTls({
      cert: await file('cert-chain.pem', certs.server.cert + certs.ca.cert),
      key: await file('key-chain.pem', certs.server.key),
    });
    assert.deepEqual(chain?.names, ['localhost', '127.0.0.1', '::1']);
    assert.equal(chain?.fingerprint, certs.server.fingerprint);
    const own = await loadServerTls({
      cert: await file('cert-relay.pem', relay.cert),
      key: await file('key-relay.pem', relay.key),
    });
    assert.deepEqual(own?.names, ['relay.example.com', '203.0.113.7']);
    assert.equal(own?.fingerprint, relay.fingerprint);
    assert.equal(own?.createdIn, undefined);
    assert.equal(own?.replaced, undefined);
  });
});
