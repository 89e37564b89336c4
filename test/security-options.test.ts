// The security flags as pure functions (cli/security.ts): which secret and which TLS files a
// command line and environment ask for, reading those files, and the cap on repeated log
// lines (cli/throttle.ts). No processes; files live in temporary directories.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { envName, type Env, type RawArgs } from '../cli/args.ts';
import { UsageError } from '../cli/usage-error.ts';
import {
  loadClientTls,
  loadSecret,
  loadServerTls,
  resolveClientSecurity,
  resolveServerSecurity,
  SHORT_SECRET,
} from '../cli/security.ts';
import { throttled } from '../cli/throttle.ts';
import { defaultTlsDir } from '../server/self-signed-cert.ts';
import { fingerprintOf } from '../shared/fingerprint.ts';
import { testCerts } from './certs.ts';

/** Asserts `fn` throws a one-line UsageError whose message contains every one of `parts`. */
function assertUsageError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (error: unknown) => checkUsageError(error, parts));
}

/** The same, for a promise. */
async function rejectsUsage(promise: Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(promise, (error: unknown) => checkUsageError(error, parts));
}

function checkUsageError(error: unknown, parts: string[]): true {
  assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
  for (const part of parts)
    assert.ok(
      error.message.includes(part),
      `message ${JSON.stringify(error.message)} should mention ${JSON.stringify(part)}`,
    );
  assert.ok(!error.message.includes('\n'), 'a usage error is one line');
  return true;
}

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'burrow-security-'));
  try {
    await body(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const XDG = path.join(os.tmpdir(), 'burrow-xdg-not-used');
/** An environment with a config home, so that no default depends on the real $HOME. */
const BASE_ENV: Env = { XDG_CONFIG_HOME: XDG };

const server = (args: RawArgs, env: Env = {}) => resolveServerSecurity(args, { ...BASE_ENV, ...env });
const client = (args: RawArgs, env: Env = {}) => resolveClientSecurity(args, { ...BASE_ENV, ...env });

// A fingerprint (not of any certificate here) in every spelling a user might paste.
const CANONICAL = Array.from({ length: 32 }, (_, i) =>
  ((i * 53 + 7) % 256).toString(16).padStart(2, '0').toUpperCase(),
).join(':');
const BARE = CANONICAL.replaceAll(':', '');

// ---- resolveServerSecurity / resolveClientSecurity: the secret ----

test('nothing given: no secret and no TLS, on either side', () => {
  assert.deepEqual(server({}), { secret: undefined, tls: undefined });
  assert.deepEqual(client({}), { secret: undefined, tls: undefined });
  // Unrelated variables change nothing; an empty variable counts as unset.
  assert.deepEqual(server({}, { BURROW_SECRET: '', BURROW_SECRET_FILE: '', BURROW_TLS: '', BURROW_TLS_DIR: '' }), {
    secret: undefined,
    tls: undefined,
  });
  assert.deepEqual(client({}, { BURROW_SECRET: '', BURROW_TLS: '', BURROW_TLS_CA: '' }), {
    secret: undefined,
    tls: undefined,
  });
});

test('the secret comes from --secret, BURROW_SECRET, --secret-file or BURROW_SECRET_FILE, with its source (both commands)', () => {
  for (const resolve of [server, client]) {
    assert.deepEqual(resolve({ secret: 's3cret' }).secret, { value: { text: 's3cret', source: '--secret' } });
    assert.deepEqual(resolve({}, { BURROW_SECRET: 'from-env' }).secret, {
      value: { text: 'from-env', source: 'BURROW_SECRET' },
    });
    assert.deepEqual(resolve({ 'secret-file': '/etc/burrow/secret' }).secret, {
      file: { text: '/etc/burrow/secret', source: '--secret-file' },
    });
    assert.deepEqual(resolve({}, { BURROW_SECRET_FILE: '/run/secret' }).secret, {
      file: { text: '/run/secret', source: 'BURROW_SECRET_FILE' },
    });
  }
  assert.equal(envName('secret-file'), 'BURROW_SECRET_FILE');
});

test('a flag wins over its own variable: --secret over BURROW_SECRET, --secret-file over BURROW_SECRET_FILE', () => {
  for (const resolve of [server, client]) {
    assert.deepEqual(resolve({ secret: 'flag' }, { BURROW_SECRET: 'env' }).secret, {
      value: { text: 'flag', source: '--secret' },
    });
    assert.deepEqual(resolve({ 'secret-file': '/flag' }, { BURROW_SECRET_FILE: '/env' }).secret, {
      file: { text: '/flag', source: '--secret-file' },
    });
  }
});

test('a secret and a secret file as two flags, or as two variables: a usage error naming both', () => {
  const mixes: { args: RawArgs; env: Env; names: [string, string] }[] = [
    { args: { secret: 'a', 'secret-file': '/f' }, env: {}, names: ['--secret', '--secret-file'] },
    { args: {}, env: { BURROW_SECRET: 'a', BURROW_SECRET_FILE: '/f' }, names: ['BURROW_SECRET', 'BURROW_SECRET_FILE'] },
  ];
  for (const { args, env, names } of mixes) {
    assertUsageError(() => server(args, env), ...names);
    assertUsageError(() => client(args, env), ...names);
  }
});

test('a secret and a secret file, one a flag and one a variable: the flag wins, the variable is ignored', () => {
  for (const resolve of [server, client]) {
    assert.deepEqual(resolve({ secret: 'a' }, { BURROW_SECRET_FILE: '/f' }).secret, {
      value: { text: 'a', source: '--secret' },
    });
    assert.deepEqual(resolve({ 'secret-file': '/f' }, { BURROW_SECRET: 'a' }).secret, {
      file: { text: '/f', source: '--secret-file' },
    });
    // An empty flag is still an error, not a fall back to the variable.
    assertUsageError(() => resolve({ secret: '' }, { BURROW_SECRET_FILE: '/f' }), '--secret', 'empty');
  }
});

test('an empty --secret or --secret-file is a usage error, not an open relay', () => {
  for (const resolve of [server, client]) {
    assertUsageError(() => resolve({ secret: '' }), '--secret', 'empty');
    assertUsageError(() => resolve({ 'secret-file': '' }), '--secret-file', 'empty');
  }
});

// ---- the server's TLS ----

test('server --tls alone: a self-signed certificate in defaultTlsDir(env)', () => {
  const expected = path.join(XDG, 'burrow');
  assert.equal(defaultTlsDir(BASE_ENV), expected);
  assert.deepEqual(server({ tls: true }), { secret: undefined, tls: { selfSignedDir: expected } });
  // Another config home, another directory: the env given is the one used.
  const other = path.join(os.tmpdir(), 'burrow-xdg-other');
  assert.deepEqual(resolveServerSecurity({ tls: true }, { XDG_CONFIG_HOME: other }).tls, {
    selfSignedDir: path.join(other, 'burrow'),
  });
  // --no-tls (false) is no TLS, even with BURROW_TLS on: the flag wins.
  assert.deepEqual(server({ tls: false }, { BURROW_TLS: '1' }).tls, undefined);
});

test('server BURROW_TLS=1 (or true/yes/on) turns TLS on; 0/false/no/off leave it off; anything else is a usage error', () => {
  for (const on of ['1', 'true', 'yes', 'on', 'TRUE']) {
    assert.deepEqual(server({}, { BURROW_TLS: on }).tls, { selfSignedDir: path.join(XDG, 'burrow') }, on);
  }
  for (const off of ['0', 'false', 'no', 'off']) assert.equal(server({}, { BURROW_TLS: off }).tls, undefined, off);
  assertUsageError(() => server({}, { BURROW_TLS: 'maybe' }), 'BURROW_TLS', '"maybe"');
});

test('server --tls-dir (or BURROW_TLS_DIR) implies TLS with that directory; the flag wins over the variable', () => {
  assert.deepEqual(server({ 'tls-dir': '/srv/burrow' }).tls, { selfSignedDir: '/srv/burrow' });
  assert.deepEqual(server({ tls: true, 'tls-dir': '/srv/burrow' }).tls, { selfSignedDir: '/srv/burrow' });
  assert.deepEqual(server({}, { BURROW_TLS_DIR: '/var/lib/burrow' }).tls, { selfSignedDir: '/var/lib/burrow' });
  assert.deepEqual(server({ 'tls-dir': '/flag' }, { BURROW_TLS_DIR: '/env' }).tls, { selfSignedDir: '/flag' });
});

test('server --tls-cert and --tls-key: both files, as given', () => {
  const expected = { cert: { text: '/c.pem', source: '--tls-cert' }, key: { text: '/k.pem', source: '--tls-key' } };
  assert.deepEqual(server({ 'tls-cert': '/c.pem', 'tls-key': '/k.pem' }).tls, expected);
  // --tls with files is the same thing: the files are used, nothing is self-signed.
  assert.deepEqual(server({ tls: true, 'tls-cert': '/c.pem', 'tls-key': '/k.pem' }).tls, expected);
  assert.deepEqual(server({}, { BURROW_TLS_CERT: '/c.pem', BURROW_TLS_KEY: '/k.pem' }).tls, {
    cert: { text: '/c.pem', source: 'BURROW_TLS_CERT' },
    key: { text: '/k.pem', source: 'BURROW_TLS_KEY' },
  });
});

test('server --tls-cert without --tls-key, or the reverse: a usage error naming both', () => {
  for (const args of [{ 'tls-cert': '/c.pem' }, { 'tls-key': '/k.pem' }, { tls: true, 'tls-cert': '/c.pem' }]) {
    assertUsageError(() => server(args), '--tls-cert', '--tls-key');
  }
  assertUsageError(() => server({}, { BURROW_TLS_KEY: '/k.pem' }), '--tls-cert', '--tls-key');
});

test('server --tls-cert + --tls-key + --tls-dir as flags, or all as variables: a usage error (the directory would be ignored)', () => {
  assertUsageError(
    () => server({ 'tls-cert': '/c.pem', 'tls-key': '/k.pem', 'tls-dir': '/d' }),
    '--tls-dir',
    '--tls-cert',
    '--tls-key',
  );
  assertUsageError(
    () => server({}, { BURROW_TLS_CERT: '/c.pem', BURROW_TLS_KEY: '/k.pem', BURROW_TLS_DIR: '/d' }),
    'BURROW_TLS_DIR',
    'BURROW_TLS_CERT',
    'BURROW_TLS_KEY',
  );
  // One file as a flag makes the pair a flag: a --tls-dir beside it is two flags.
  assertUsageError(
    () => server({ 'tls-cert': '/c.pem', 'tls-dir': '/d' }, { BURROW_TLS_KEY: '/k.pem' }),
    '--tls-dir',
    '--tls-cert',
    'BURROW_TLS_KEY',
  );
});

test('server --tls-cert/--tls-key and --tls-dir, one side flags and the other variables: the flags win', () => {
  const files = { cert: { text: '/c.pem', source: '--tls-cert' }, key: { text: '/k.pem', source: '--tls-key' } };
  assert.deepEqual(server({ 'tls-cert': '/c.pem', 'tls-key': '/k.pem' }, { BURROW_TLS_DIR: '/d' }).tls, files);
  assert.deepEqual(server({ 'tls-cert': '/c.pem' }, { BURROW_TLS_KEY: '/k.pem', BURROW_TLS_DIR: '/d' }).tls, {
    cert: files.cert,
    key: { text: '/k.pem', source: 'BURROW_TLS_KEY' },
  });
  assert.deepEqual(server({ 'tls-dir': '/d' }, { BURROW_TLS_CERT: '/c.pem', BURROW_TLS_KEY: '/k.pem' }).tls, {
    selfSignedDir: '/d',
  });
});

test('server --tls-client-ca needs TLS: alone it is a usage error; with --tls, --tls-dir or the files it is kept', () => {
  assertUsageError(() => server({ 'tls-client-ca': '/ca.pem' }), '--tls-client-ca', '--tls');
  assertUsageError(() => server({}, { BURROW_TLS_CLIENT_CA: '/ca.pem' }), '--tls-client-ca');
  assertUsageError(() => server({ 'tls-client-ca': '/ca.pem' }, { BURROW_TLS: '0' }), '--tls-client-ca');
  const clientCa = { text: '/ca.pem', source: '--tls-client-ca' };
  assert.deepEqual(server({ tls: true, 'tls-client-ca': '/ca.pem' }).tls, {
    selfSignedDir: path.join(XDG, 'burrow'),
    clientCa,
  });
  assert.deepEqual(server({ 'tls-dir': '/d', 'tls-client-ca': '/ca.pem' }).tls, { selfSignedDir: '/d', clientCa });
  assert.deepEqual(server({ 'tls-cert': '/c', 'tls-key': '/k', 'tls-client-ca': '/ca.pem' }).tls, {
    cert: { text: '/c', source: '--tls-cert' },
    key: { text: '/k', source: '--tls-key' },
    clientCa,
  });
});

test('server: the secret and TLS are resolved together', () => {
  assert.deepEqual(server({ tls: true }, { BURROW_SECRET_FILE: '/s' }), {
    secret: { file: { text: '/s', source: 'BURROW_SECRET_FILE' } },
    tls: { selfSignedDir: path.join(XDG, 'burrow') },
  });
});

// ---- the client's TLS ----

test('client --tls alone: TLS with the system CAs ({}); BURROW_TLS=1 too', () => {
  assert.deepEqual(client({ tls: true }), { secret: undefined, tls: {} });
  assert.deepEqual(client({}, { BURROW_TLS: '1' }).tls, {});
  assert.equal(client({ tls: false }, { BURROW_TLS: '1' }).tls, undefined);
});

test('client --tls-ca, --tls-fingerprint, --tls-client-cert + --tls-client-key each imply TLS', () => {
  assert.deepEqual(client({ 'tls-ca': '/ca.pem' }).tls, { ca: { text: '/ca.pem', source: '--tls-ca' } });
  assert.deepEqual(client({}, { BURROW_TLS_CA: '/ca.pem' }).tls, { ca: { text: '/ca.pem', source: 'BURROW_TLS_CA' } });
  assert.deepEqual(client({ 'tls-fingerprint': CANONICAL }).tls, { fingerprint: CANONICAL });
  assert.deepEqual(client({}, { BURROW_TLS_FINGERPRINT: CANONICAL }).tls, { fingerprint: CANONICAL });
  assert.deepEqual(client({ 'tls-client-cert': '/me.pem', 'tls-client-key': '/me.key' }).tls, {
    cert: { text: '/me.pem', source: '--tls-client-cert' },
    key: { text: '/me.key', source: '--tls-client-key' },
  });
  // All of them at once, with --tls too.
  assert.deepEqual(
    client({
      tls: true,
      'tls-ca': '/ca.pem',
      'tls-fingerprint': BARE,
      'tls-client-cert': '/me.pem',
      'tls-client-key': '/me.key',
    }).tls,
    {
      ca: { text: '/ca.pem', source: '--tls-ca' },
      fingerprint: CANONICAL,
      cert: { text: '/me.pem', source: '--tls-client-cert' },
      key: { text: '/me.key', source: '--tls-client-key' },
    },
  );
});

test('client --tls-fingerprint in any accepted form is normalised to AB:CD:...', () => {
  const forms = [
    CANONICAL,
    CANONICAL.toLowerCase(),
    BARE,
    BARE.toLowerCase(),
    `sha256:${CANONICAL}`,
    `SHA256:${BARE.toLowerCase()}`,
    `  ${CANONICAL}\n`,
  ];
  for (const form of forms) {
    assert.deepEqual(client({ 'tls-fingerprint': form }).tls, { fingerprint: CANONICAL }, JSON.stringify(form));
  }
});

test('client: a bad fingerprint is a usage error naming its source and quoting it', () => {
  for (const bad of ['nothex', BARE.slice(2), `${BARE}00`, `G${CANONICAL.slice(1)}`, 'sha1:AB:CD', '']) {
    assertUsageError(() => client({ 'tls-fingerprint': bad }), '--tls-fingerprint', `"${bad}"`);
  }
  assertUsageError(() => client({}, { BURROW_TLS_FINGERPRINT: 'zz' }), 'BURROW_TLS_FINGERPRINT', '"zz"');
});

test('client --tls-client-cert without --tls-client-key, or the reverse: a usage error naming both', () => {
  for (const args of [
    { 'tls-client-cert': '/me.pem' },
    { 'tls-client-key': '/me.key' },
    { tls: true, 'tls-ca': '/ca.pem', 'tls-client-cert': '/me.pem' },
  ]) {
    assertUsageError(() => client(args), '--tls-client-cert', '--tls-client-key');
  }
});

// ---- loadSecret ----

test('loadSecret: nothing → undefined; a value as is, whitespace and all', async () => {
  assert.equal(await loadSecret(undefined), undefined);
  for (const text of ['s3cret', ' padded \n', 'two\nlines\n']) {
    assert.equal(await loadSecret({ value: { text, source: '--secret' } }), text);
  }
});

test("loadSecret: a file's one trailing newline (LF or CRLF) is dropped; leading, inner and other trailing whitespace is kept", async () => {
  await withTempDir(async (dir) => {
    const cases: [string, string][] = [
      ['no-newline', 'no-newline'],
      ['lf\n', 'lf'],
      ['crlf\r\n', 'crlf'],
      ['  leading and inner  spaces\n', '  leading and inner  spaces'],
      ['\ttab first', '\ttab first'],
      ['trailing space \n', 'trailing space '],
      ['two\nlines\n', 'two\nlines'],
      ['only one newline goes\n\n', 'only one newline goes\n'],
      ['lone cr\r', 'lone cr\r'],
      ['ünïcödé 🔑\n', 'ünïcödé 🔑'],
    ];
    for (const [i, [content, expected]] of cases.entries()) {
      const file = path.join(dir, `secret-${i}`);
      await fs.writeFile(file, content);
      assert.equal(
        await loadSecret({ file: { text: file, source: '--secret-file' } }),
        expected,
        JSON.stringify(content),
      );
    }
  });
});

test('loadSecret: an empty file (or one with just a newline) is a usage error naming the source and the path', async () => {
  await withTempDir(async (dir) => {
    for (const [name, content] of [
      ['empty', ''],
      ['newline', '\n'],
      ['crlf', '\r\n'],
    ] as const) {
      const file = path.join(dir, name);
      await fs.writeFile(file, content);
      await rejectsUsage(loadSecret({ file: { text: file, source: '--secret-file' } }), '--secret-file', file, 'empty');
      await rejectsUsage(
        loadSecret({ file: { text: file, source: 'BURROW_SECRET_FILE' } }),
        'BURROW_SECRET_FILE',
        file,
      );
    }
  });
});

test('loadSecret: a missing file (or a directory) is a usage error naming the flag and the path', async () => {
  await withTempDir(async (dir) => {
    const missing = path.join(dir, 'no-such-secret');
    await rejectsUsage(loadSecret({ file: { text: missing, source: '--secret-file' } }), '--secret-file', missing);
    await rejectsUsage(
      loadSecret({ file: { text: missing, source: 'BURROW_SECRET_FILE' } }),
      'BURROW_SECRET_FILE',
      missing,
    );
    await rejectsUsage(loadSecret({ file: { text: dir, source: '--secret-file' } }), '--secret-file', dir);
  });
});

test('SHORT_SECRET is 16: the design warns below 16 characters', () => {
  assert.equal(SHORT_SECRET, 16);
});

// ---- loadServerTls / loadClientTls ----

test("loadServerTls: nothing → undefined; --tls-cert/--tls-key files are read, the fingerprint is the certificate's", async () => {
  assert.equal(await loadServerTls(undefined), undefined);
  const certs = await testCerts();
  await withTempDir(async (dir) => {
    const [cert, key, ca] = [
      path.join(dir, 'server.pem'),
      path.join(dir, 'server.key'),
      path.join(dir, 'client-ca.pem'),
    ];
    await fs.writeFile(cert, certs.server.cert);
    await fs.writeFile(key, certs.server.key);
    await fs.writeFile(ca, certs.clientCa.cert);
    const loaded = await loadServerTls({
      cert: { text: cert, source: '--tls-cert' },
      key: { text: key, source: '--tls-key' },
    });
    assert.ok(loaded);
    assert.equal(loaded.fingerprint, certs.server.fingerprint);
    assert.equal(loaded.fingerprint, fingerprintOf(certs.server.cert));
    assert.equal(loaded.createdIn, undefined);
    assert.equal(loaded.options.cert.toString(), certs.server.cert);
    assert.equal(loaded.options.key.toString(), certs.server.key);
    assert.equal(loaded.options.clientCa, undefined);

    const mutual = await loadServerTls({
      cert: { text: cert, source: '--tls-cert' },
      key: { text: key, source: '--tls-key' },
      clientCa: { text: ca, source: '--tls-client-ca' },
    });
    assert.equal(mutual?.options.clientCa?.toString(), certs.clientCa.cert);
  });
});

test('loadServerTls: a certificate file that is not PEM, or a missing file, is a usage error naming the flag and the path', async () => {
  const certs = await testCerts();
  await withTempDir(async (dir) => {
    const [junk, key, missing] = [
      path.join(dir, 'junk.pem'),
      path.join(dir, 'server.key'),
      path.join(dir, 'missing.pem'),
    ];
    await fs.writeFile(junk, 'this is not a certificate\n');
    await fs.writeFile(key, certs.server.key);
    await rejectsUsage(
      loadServerTls({ cert: { text: junk, source: '--tls-cert' }, key: { text: key, source: '--tls-key' } }),
      '--tls-cert',
      junk,
      'not a PEM certificate',
    );
    // The key in place of the certificate is not a certificate either.
    await rejectsUsage(
      loadServerTls({ cert: { text: key, source: 'BURROW_TLS_CERT' }, key: { text: key, source: 'BURROW_TLS_KEY' } }),
      'BURROW_TLS_CERT',
      key,
    );
    await rejectsUsage(
      loadServerTls({ cert: { text: missing, source: '--tls-cert' }, key: { text: key, source: '--tls-key' } }),
      '--tls-cert',
      missing,
    );
    await rejectsUsage(
      loadServerTls({ cert: { text: junk, source: '--tls-cert' }, key: { text: missing, source: '--tls-key' } }),
      '--tls-key',
      missing,
    );
    await rejectsUsage(
      loadServerTls({ selfSignedDir: dir, clientCa: { text: missing, source: '--tls-client-ca' } }),
      '--tls-client-ca',
      missing,
    );
  });
});

test('loadServerTls: a self-signed directory is created on the first load (createdIn) and reused on the next', async () => {
  await withTempDir(async (dir) => {
    const tlsDir = path.join(dir, 'burrow');
    const first = await loadServerTls({ selfSignedDir: tlsDir });
    assert.ok(first);
    assert.equal(first.createdIn, tlsDir);
    const onDisk = await fs.readFile(path.join(tlsDir, 'tls-cert.pem'));
    assert.equal(first.fingerprint, fingerprintOf(onDisk));
    const second = await loadServerTls({ selfSignedDir: tlsDir });
    assert.ok(second);
    assert.equal(second.createdIn, undefined);
    assert.equal(second.fingerprint, first.fingerprint);
  });
});

test('loadClientTls: nothing → undefined; {} → system CAs; the CA and our certificate files are read, the pin passed on', async () => {
  assert.equal(await loadClientTls(undefined), undefined);
  assert.deepEqual(await loadClientTls({}), { ca: undefined, cert: undefined, key: undefined, fingerprint: undefined });
  const certs = await testCerts();
  await withTempDir(async (dir) => {
    const [ca, cert, key, missing] = ['ca.pem', 'client.pem', 'client.key', 'missing.pem'].map((name) =>
      path.join(dir, name),
    ) as [string, string, string, string];
    await fs.writeFile(ca, certs.ca.cert);
    await fs.writeFile(cert, certs.client.cert);
    await fs.writeFile(key, certs.client.key);
    const loaded = await loadClientTls({
      ca: { text: ca, source: '--tls-ca' },
      fingerprint: certs.server.fingerprint,
      cert: { text: cert, source: '--tls-client-cert' },
      key: { text: key, source: '--tls-client-key' },
    });
    assert.equal(loaded?.ca?.toString(), certs.ca.cert);
    assert.equal(loaded?.cert?.toString(), certs.client.cert);
    assert.equal(loaded?.key?.toString(), certs.client.key);
    assert.equal(loaded?.fingerprint, certs.server.fingerprint);
    await rejectsUsage(loadClientTls({ ca: { text: missing, source: '--tls-ca' } }), '--tls-ca', missing);
    await rejectsUsage(
      loadClientTls({
        cert: { text: cert, source: '--tls-client-cert' },
        key: { text: missing, source: 'BURROW_TLS_CLIENT_KEY' },
      }),
      'BURROW_TLS_CLIENT_KEY',
      missing,
    );
  });
});

// ---- throttled ----

/** A throttled printer with a clock the test moves, and everything it printed. */
function throttleRig(
  limit: number,
  windowMs: number,
): { say(line: string): void; printed: string[]; setTime(ms: number): void } {
  let time = 1_000_000;
  const printed: string[] = [];
  const say = throttled(
    (line) => printed.push(line),
    limit,
    windowMs,
    () => time,
  );
  return { say, printed, setTime: (ms) => void (time = 1_000_000 + ms) };
}

test('throttled: the first `limit` lines of a window go out, then one "counted, not shown" line, then nothing', () => {
  const rig = throttleRig(3, 60_000);
  for (let i = 1; i <= 10; i++) {
    rig.setTime(i * 1_000); // all within the first minute
    rig.say(`line ${i}`);
  }
  assert.deepEqual(rig.printed, [
    'line 1',
    'line 2',
    'line 3',
    '(more of these in the next 60 s are counted, not shown)',
  ]);
});

test('throttled: the next window opens with "(N similar lines not shown)" and prints again', () => {
  const rig = throttleRig(2, 10_000);
  for (let i = 1; i <= 6; i++) rig.say(`a${i}`); // time 0: a1 a2 shown, a3..a6 held
  rig.setTime(9_999); // still the first window
  rig.say('a7');
  assert.deepEqual(rig.printed, ['a1', 'a2', '(more of these in the next 10 s are counted, not shown)']);

  rig.setTime(10_000); // the window opened at 0 is over
  rig.say('b1');
  rig.say('b2');
  rig.say('b3');
  assert.deepEqual(rig.printed.slice(3), [
    '(5 similar lines not shown)',
    'b1',
    'b2',
    '(more of these in the next 10 s are counted, not shown)',
  ]);

  // One held line is singular; a window with nothing held says nothing extra.
  rig.setTime(25_000);
  rig.say('c1');
  rig.setTime(40_000);
  rig.say('d1');
  assert.deepEqual(rig.printed.slice(7), ['(1 similar line not shown)', 'c1', 'd1']);
});

test('throttled: the window starts at the first line it sees, not at a fixed clock boundary', () => {
  const rig = throttleRig(1, 1_000);
  rig.setTime(500);
  rig.say('x1');
  rig.setTime(1_200); // 700 ms after x1: same window
  rig.say('x2');
  rig.setTime(1_499);
  rig.say('x3');
  rig.setTime(1_500); // 1000 ms after x1: a new window
  rig.say('y1');
  assert.deepEqual(rig.printed, [
    'x1',
    '(more of these in the next 1 s are counted, not shown)',
    '(2 similar lines not shown)',
    'y1',
  ]);
});
