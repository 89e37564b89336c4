// The self-signed certificate of `burrow server --tls` across changes of --tls-name
// (server/self-signed-cert.ts): a replacement names every name the kept certificate named
// plus the new ones, so the name set only grows; each replaced pair is kept aside under a
// name of its own, never over an earlier one; and only the newest few are kept. Every test
// works in its own temporary directory and removes it.
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { KEPT_ASIDE } from '../server/cert-aside.ts';
import { DEFAULT_TLS_NAMES, loadOrCreateCertificate, type StoredCertificate } from '../server/self-signed-cert.ts';
import { selfSignedFor } from './named-certs.ts';

const DEFAULTS = [...DEFAULT_TLS_NAMES];
const ASIDE = /^tls-(cert|key)\.pem\.old-(.+)$/;

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'burrow-tls-names-'));
  try {
    await body(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const filesIn = async (dir: string): Promise<string[]> => (await fs.readdir(dir)).sort();

/** The kept-aside pairs in `dir`, by suffix: each must be a certificate and its own key. */
async function keptAside(dir: string): Promise<Map<string, { cert: string; key: string }>> {
  const suffixes = new Set<string>();
  for (const file of await filesIn(dir)) {
    const match = ASIDE.exec(file);
    if (match?.[2] !== undefined) suffixes.add(match[2]);
  }
  const pairs = new Map<string, { cert: string; key: string }>();
  for (const suffix of suffixes) {
    const cert = await fs.readFile(path.join(dir, `tls-cert.pem.old-${suffix}`), 'utf8');
    const key = await fs.readFile(path.join(dir, `tls-key.pem.old-${suffix}`), 'utf8');
    assert.ok(
      new X509Certificate(cert).checkPrivateKey(createPrivateKey(key)),
      `the pair .old-${suffix} belongs together`,
    );
    pairs.set(suffix, { cert, key });
  }
  return pairs;
}

/** Asserts `stored` replaced `old` and says where `old` went: a pair that holds it. */
async function assertKeptAside(stored: StoredCertificate, old: StoredCertificate, missing: string[]): Promise<void> {
  const { replaced } = stored;
  assert.ok(replaced !== undefined, 'the result says the kept certificate was replaced');
  assert.equal(replaced.fingerprint, old.fingerprint);
  assert.deepEqual(replaced.missing, missing);
  assert.match(path.basename(replaced.certFile), ASIDE);
  assert.equal(path.dirname(replaced.certFile), path.dirname(old.certFile));
  assert.equal(
    replaced.keyFile,
    replaced.certFile.replace('tls-cert.pem.old-', 'tls-key.pem.old-'),
    'the pair shares a suffix',
  );
  assert.equal(await fs.readFile(replaced.certFile, 'utf8'), old.cert);
  assert.equal(await fs.readFile(replaced.keyFile, 'utf8'), old.key);
}

test('plain --tls, then --tls-name relay.example.com, then --tls-name 203.0.113.7: the third certificate still names relay.example.com, and both earlier pairs are kept', async () => {
  await withTempDir(async (dir) => {
    const a = await loadOrCreateCertificate(dir);
    assert.deepEqual(a.names, DEFAULTS);

    const b = await loadOrCreateCertificate(dir, ['relay.example.com']);
    assert.equal(b.created, true);
    assert.deepEqual(b.names, ['relay.example.com', ...DEFAULTS]);
    await assertKeptAside(b, a, ['relay.example.com']);

    const c = await loadOrCreateCertificate(dir, ['203.0.113.7']);
    assert.equal(c.created, true);
    assert.deepEqual(
      c.names,
      ['relay.example.com', '203.0.113.7', ...DEFAULTS],
      'the kept names, then the new one, then the defaults',
    );
    const cert = new X509Certificate(c.cert);
    assert.equal(cert.checkHost('relay.example.com'), 'relay.example.com');
    assert.equal(cert.checkIP('203.0.113.7'), '203.0.113.7');
    await assertKeptAside(c, b, ['203.0.113.7']);

    // A is where b said it went, B where c says: c's move did not overwrite b's.
    assert.ok(b.replaced !== undefined && c.replaced !== undefined);
    assert.notEqual(c.replaced.certFile, b.replaced.certFile);
    assert.equal(await fs.readFile(b.replaced.certFile, 'utf8'), a.cert);
    assert.equal(await fs.readFile(b.replaced.keyFile, 'utf8'), a.key);
    const aside = [...(await keptAside(dir)).values()].map((pair) => pair.cert).sort();
    assert.deepEqual(aside, [a.cert, b.cert].sort());
    assert.deepEqual(
      (await filesIn(dir)).filter((file) => !ASIDE.test(file)),
      ['tls-cert.pem', 'tls-key.pem'],
      'no temporary file, no plain .old',
    );

    // Each name asked for before is still covered: C is kept for any of them.
    const { replaced: _c, ...kept } = c;
    for (const names of [['relay.example.com'], ['203.0.113.7'], ['relay.example.com', '203.0.113.7'], []]) {
      assert.deepEqual(await loadOrCreateCertificate(dir, names), { ...kept, created: false }, JSON.stringify(names));
    }
    assert.equal((await keptAside(dir)).size, 2, 'keeping the certificate moves nothing');
  });
});

test('a replacement names the union: names asked in another spelling are not repeated, and the kept ones keep their order', async () => {
  await withTempDir(async (dir) => {
    const first = await loadOrCreateCertificate(dir, ['relay.test', '2001:db8::7']);
    const second = await loadOrCreateCertificate(dir, ['RELAY.test.', '[2001:DB8:0::7]', 'other.test', 'localhost']);
    await assertKeptAside(second, first, ['other.test']);
    assert.deepEqual(second.names, ['relay.test', '2001:db8::7', 'other.test', ...DEFAULTS]);
  });
});

test('a kept certificate someone else made: its names that a certificate can carry are kept, others (a wildcard) dropped', async () => {
  await withTempDir(async (dir) => {
    const theirs = await selfSignedFor(['*.example.com', 'relay.test', '203.0.113.7']);
    await fs.writeFile(path.join(dir, 'tls-cert.pem'), theirs.cert);
    await fs.writeFile(path.join(dir, 'tls-key.pem'), theirs.key, { mode: 0o600 });
    const stored = await loadOrCreateCertificate(dir, ['other.test']);
    assert.equal(stored.replaced?.fingerprint, theirs.fingerprint);
    assert.deepEqual(stored.names, ['relay.test', '203.0.113.7', 'other.test', ...DEFAULTS]);
  });
});

test(`replacements in the same millisecond each keep their own pair; at most ${KEPT_ASIDE} pairs are kept, the newest`, async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() }); // the clock stands still
  await withTempDir(async (dir) => {
    // A pair in the format of earlier versions is not ours to delete.
    await fs.writeFile(path.join(dir, 'tls-cert.pem.old'), 'legacy cert');
    await fs.writeFile(path.join(dir, 'tls-key.pem.old'), 'legacy key');
    const made = [await loadOrCreateCertificate(dir)];
    const rounds = KEPT_ASIDE + 7; // past -9 to -10, which must sort as a number
    for (let round = 1; round <= rounds; round++) {
      const previous = made.at(-1);
      assert.ok(previous !== undefined);
      const stored = await loadOrCreateCertificate(dir, [`name${round}.test`]);
      await assertKeptAside(stored, previous, [`name${round}.test`]);
      made.push(stored);
      const aside = await keptAside(dir);
      assert.equal(aside.size, Math.min(round, KEPT_ASIDE), `after replacement ${round}`);
      // The newest replaced certificates, and no others.
      const expected = made
        .slice(0, -1)
        .slice(-KEPT_ASIDE)
        .map((pair) => pair.cert);
      assert.deepEqual(
        [...aside.values()].map((pair) => pair.cert).sort(),
        expected.sort(),
        `after replacement ${round}`,
      );
    }
    const last = made.at(-1);
    assert.deepEqual(
      last?.names,
      [...Array.from({ length: rounds }, (_, i) => `name${i + 1}.test`), ...DEFAULTS],
      'every name ever asked for',
    );
    assert.equal(await fs.readFile(path.join(dir, 'tls-cert.pem.old'), 'utf8'), 'legacy cert');
    assert.equal(await fs.readFile(path.join(dir, 'tls-key.pem.old'), 'utf8'), 'legacy key');
    const others = (await filesIn(dir)).filter((file) => !ASIDE.test(file));
    assert.deepEqual(
      others,
      ['tls-cert.pem', 'tls-cert.pem.old', 'tls-key.pem', 'tls-key.pem.old'],
      'no temporary file left behind',
    );
  });
});

test('concurrent calls asking for different new names end with one certificate naming all of them', async () => {
  await withTempDir(async (dir) => {
    const old = await loadOrCreateCertificate(dir, ['relay.test']);
    const asked = ['a.test', 'b.test', 'c.test'];
    const results = await Promise.all(asked.map((name) => loadOrCreateCertificate(dir, [name])));
    for (const [i, result] of results.entries())
      assert.ok(
        new X509Certificate(result.cert).checkHost(asked[i] ?? ''),
        `${asked[i]} is named by what its call got`,
      );
    const final = await loadOrCreateCertificate(dir, ['relay.test', ...asked]);
    assert.equal(final.created, false, 'the last certificate made already names every name');
    assert.ok(final.names.includes('relay.test'));
    // Every certificate made on the way is kept aside (at most KEPT_ASIDE), the first among them.
    const aside = [...(await keptAside(dir)).values()].map((pair) => pair.cert);
    assert.ok(aside.includes(old.cert));
    assert.ok(aside.length >= 1 && aside.length <= KEPT_ASIDE);
  });
});
