// The client's lease file: what it keeps, where, with which permissions, and how it
// survives damage and failures (it only saves time, so it never stops the client).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LEASE_FILE_MAX_ENTRIES, LeaseFile } from '../client/lease-file.ts';
import type { BurrowError } from '../shared/errors.ts';

const LEASE = 'V1StGXR8_Z5jdHi6B-myT';

/** A lease file in a fresh temporary directory (a subdirectory that does not exist yet),
 * its warnings, and a clock the test moves. */
function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'burrow-leases-'));
  const path = join(dir, 'state', 'burrow', 'leases.json');
  const warnings: BurrowError[] = [];
  let now = 1_800_000_000_000;
  const file = new LeaseFile(
    path,
    (warning) => warnings.push(warning),
    () => now,
  );
  return {
    dir,
    path,
    file,
    warnings,
    tick: (ms: number) => (now += ms),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

test('a lease is kept per server and port, read back by a new reader, and forgotten on request', () => {
  const f = fixture();
  try {
    assert.equal(f.file.get('relay:7835', 8080), undefined);
    f.file.set('relay:7835', 8080, LEASE);
    f.file.set('relay:7835', 8081, 'other');
    f.file.set('[::1]:7835', 8080, 'ipv6');
    const again = new LeaseFile(f.path, () => {});
    assert.equal(again.get('relay:7835', 8080), LEASE);
    assert.equal(again.get('relay:7835', 8081), 'other');
    assert.equal(again.get('[::1]:7835', 8080), 'ipv6');
    assert.equal(again.get('relay:9999', 8080), undefined);
    f.file.set('relay:7835', 8080, undefined);
    assert.equal(again.get('relay:7835', 8080), undefined);
    assert.equal(again.get('relay:7835', 8081), 'other');
    assert.deepEqual(f.warnings, []);
  } finally {
    f.cleanup();
  }
});

test('the file is mode 0600 in a directory of mode 0700, and holds nothing but the leases', () => {
  const f = fixture();
  try {
    f.file.set('relay:7835', 8080, LEASE);
    assert.equal(statSync(f.path).mode & 0o777, 0o600);
    assert.equal(statSync(join(f.dir, 'state', 'burrow')).mode & 0o777, 0o700);
    // A file someone made readable is tightened on the next write.
    chmodSync(f.path, 0o644);
    f.file.set('relay:7835', 8081, LEASE);
    assert.equal(statSync(f.path).mode & 0o777, 0o600);
    const json = JSON.parse(readFileSync(f.path, 'utf8')) as unknown;
    assert.deepEqual(json, {
      version: 1,
      leases: {
        'relay:7835': {
          8080: { lease: LEASE, saved: 1_800_000_000_000 },
          8081: { lease: LEASE, saved: 1_800_000_000_000 },
        },
      },
    });
  } finally {
    f.cleanup();
  }
});

test('entries keep however long their client runs; the oldest beyond the limit go', () => {
  const f = fixture();
  try {
    f.file.set('relay:7835', 8080, LEASE);
    f.tick(30 * 24 * 60 * 60 * 1000);
    assert.equal(f.file.get('relay:7835', 8080), LEASE, 'a client that ran for a month still has its lease');
    f.file.set('relay:7835', 8080, undefined);
    for (let i = 0; i <= LEASE_FILE_MAX_ENTRIES; i++) {
      f.tick(1);
      f.file.set('relay:7835', 10_000 + i, LEASE);
    }
    assert.equal(f.file.get('relay:7835', 10_000), undefined, 'the oldest went');
    assert.equal(f.file.get('relay:7835', 10_001), LEASE);
    assert.equal(f.file.get('relay:7835', 10_000 + LEASE_FILE_MAX_ENTRIES), LEASE);
  } finally {
    f.cleanup();
  }
});

test('a damaged or foreign file is ignored and replaced; bad entries are skipped', () => {
  const f = fixture();
  try {
    f.file.set('relay:7835', 8080, LEASE); // creates the directory
    for (const text of ['', '{', 'null', '[]', '{"version":2,"leases":{}}', '{"version":1,"leases":[]}']) {
      writeFileSync(f.path, text);
      assert.equal(f.file.get('relay:7835', 8080), undefined, text);
    }
    writeFileSync(
      f.path,
      JSON.stringify({
        version: 1,
        leases: {
          'relay:7835': {
            8080: { lease: 'bad token!', saved: 1_800_000_000_000 },
            8081: { lease: LEASE, saved: 1_800_000_000_000 },
          },
        },
      }),
    );
    assert.equal(f.file.get('relay:7835', 8080), undefined, 'a token that could not have come from a server');
    assert.equal(f.file.get('relay:7835', 8081), LEASE);
    f.file.set('relay:7835', 8082, LEASE);
    assert.equal(f.file.get('relay:7835', 8081), LEASE, 'a rewrite keeps the good entries');
    assert.deepEqual(f.warnings, []);
  } finally {
    f.cleanup();
  }
});

test('a file that cannot be written is a warning, never an error', () => {
  const f = fixture();
  try {
    writeFileSync(join(f.dir, 'state'), 'a file where the directory should be');
    f.file.set('relay:7835', 8080, LEASE);
    assert.equal(f.warnings.length, 1);
    assert.equal(f.warnings[0]?.code, 'lease-file');
    assert.match(f.warnings[0]?.message ?? '', /^cannot write the lease file .*leases\.json: /);
    assert.ok(!(f.warnings[0]?.message ?? '').includes(LEASE), 'the message never shows a lease');
    assert.equal(f.file.get('relay:7835', 8080), undefined);
  } finally {
    f.cleanup();
  }
});
