// The reconnect schedule (client/backoff.ts) as a pure function: exponential backoff from
// `initialDelayMs`, capped at `maxDelayMs`, with equal jitter (half fixed, half random),
// driven by a fake random so every value is exact; and which refusals stop retrying.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, DEFAULT_BACKOFF, isPermanent } from '../client/backoff.ts';
import { BurrowError, type BurrowErrorCode } from '../shared/errors.ts';
import { ERR_REASONS } from '../shared/protocol.ts';

const LOW = (): number => 0;
const HIGH = (): number => 1;
const MIDDLE = (): number => 0.5;

test('defaults: 1 s doubling to at most 30 s (README: Staying up)', () => {
  assert.deepEqual(DEFAULT_BACKOFF, { initialDelayMs: 1_000, maxDelayMs: 30_000 });
  // random = 1: the whole ceiling, attempt by attempt.
  const ceilings = [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffDelay(attempt, {}, HIGH));
  assert.deepEqual(ceilings, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
});

test('the ceiling doubles from initialDelayMs and stops at maxDelayMs', () => {
  const options = { initialDelayMs: 50, maxDelayMs: 200 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10].map((attempt) => backoffDelay(attempt, options, HIGH)),
    [50, 100, 200, 200, 200, 200],
  );
  // A cap that is not a power-of-two multiple of the start is reached exactly.
  assert.deepEqual(
    [0, 1, 2, 3].map((attempt) => backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 300 }, HIGH)),
    [100, 200, 300, 300],
  );
  // Only one option given: the other keeps its default.
  assert.equal(backoffDelay(0, { initialDelayMs: 10 }, HIGH), 10);
  assert.equal(backoffDelay(20, { initialDelayMs: 10 }, HIGH), 30_000);
  assert.equal(backoffDelay(0, { maxDelayMs: 500 }, HIGH), 500);
});

test('equal jitter: random 0 gives half the ceiling, 1 all of it, 0.5 three quarters', () => {
  const options = { initialDelayMs: 100, maxDelayMs: 1_600 };
  for (const [attempt, ceiling] of [
    [0, 100],
    [1, 200],
    [2, 400],
    [3, 800],
    [4, 1_600],
    [9, 1_600],
  ] as const) {
    assert.equal(backoffDelay(attempt, options, LOW), ceiling / 2, `attempt ${attempt}, random 0`);
    assert.equal(backoffDelay(attempt, options, HIGH), ceiling, `attempt ${attempt}, random 1`);
    assert.equal(backoffDelay(attempt, options, MIDDLE), (ceiling * 3) / 4, `attempt ${attempt}, random 0.5`);
  }
});

test('jitter always stays between half and all of the ceiling, in whole milliseconds', () => {
  const options = { initialDelayMs: 75, maxDelayMs: 2_345 };
  // A deterministic spread of "random" values over [0, 1), edges included.
  const randoms = [0, 1e-9, 0.1, 0.25, 0.333, 0.5, 0.75, 0.9, 0.999999, 1 - Number.EPSILON];
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** attempt);
    for (const value of randoms) {
      const delay = backoffDelay(attempt, options, () => value);
      assert.ok(Number.isInteger(delay), `attempt ${attempt}, random ${value}: ${delay} is a whole number`);
      assert.ok(
        delay >= Math.floor(ceiling / 2) && delay <= ceiling,
        `attempt ${attempt}, random ${value}: ${delay} not in [${ceiling / 2}, ${ceiling}]`,
      );
    }
  }
});

test('the default random (Math.random) stays within the bounds too', () => {
  for (let attempt = 0; attempt < 40; attempt++) {
    const delay = backoffDelay(attempt);
    const ceiling = Math.min(30_000, 1_000 * 2 ** attempt);
    assert.ok(delay >= ceiling / 2 && delay <= ceiling, `attempt ${attempt}: ${delay}`);
  }
});

test('huge attempt numbers do not overflow: the delay stays the cap', () => {
  for (const attempt of [31, 64, 1_024, 1e6, 2 ** 31, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY]) {
    assert.equal(backoffDelay(attempt, {}, HIGH), 30_000, `attempt ${attempt}, random 1`);
    assert.equal(backoffDelay(attempt, {}, LOW), 15_000, `attempt ${attempt}, random 0`);
    assert.equal(
      backoffDelay(attempt, { initialDelayMs: 50, maxDelayMs: 200 }, MIDDLE),
      150,
      `attempt ${attempt}, random 0.5`,
    );
  }
  // Even a large cap is reached exactly, not through Infinity or NaN.
  const bigCap = { initialDelayMs: 1_000, maxDelayMs: 3_600_000 };
  assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, bigCap, HIGH), 3_600_000);
});

test('isPermanent: refusals the same request meets again stop retrying; the rest retry', () => {
  // Retrying cannot change these: the request itself is wrong for this server, or this
  // client lacks the secret, TLS or the certificate the server asks for.
  const permanent = new Set([
    'port-out-of-range',
    'wrong-port',
    'bad-arguments',
    'unknown-verb',
    'bad-line',
    'line-too-long',
    'too-many-tunnels',
    'auth-required',
    'auth-failed',
    'auth-disabled',
    'tls-required',
    'bad-certificate',
    // A relay without an HTTP port, or a name it keeps for itself, stays so.
    'http-not-enabled',
    'name-reserved',
  ]);
  const expected: Record<string, boolean> = {};
  const actual: Record<string, boolean> = {};
  for (const reason of ERR_REASONS) {
    expected[reason] = permanent.has(reason);
    actual[reason] = isPermanent(new BurrowError('refused', `refused: ${reason}`, { reason }));
  }
  assert.deepEqual(actual, expected);
  // Spelled out, the ones that must keep a client retrying: a port still leased or held, a
  // full server, a crowded address, a timeout.
  for (const reason of [
    'port-in-use',
    'name-in-use',
    'no-free-port',
    'server-full',
    'too-many-connections',
    'timeout',
  ]) {
    assert.equal(isPermanent(new BurrowError('refused', reason, { reason })), false, reason);
  }
});

test('isPermanent: unknown reasons, refusals without a reason and every non-refusal retry', () => {
  assert.equal(
    isPermanent(new BurrowError('refused', 'a reason from a newer server', { reason: 'shiny-new-reason' })),
    false,
  );
  assert.equal(isPermanent(new BurrowError('refused', 'no reason given')), false);
  const codes: BurrowErrorCode[] = [
    'unreachable',
    'protocol',
    'closed',
    'timeout',
    'line-too-long',
    'listen-failed',
    'local-unavailable',
  ];
  for (const code of codes) {
    assert.equal(isPermanent(new BurrowError(code, code)), false, code);
    // Only a refusal's reason counts: the same word on another code is not a refusal.
    assert.equal(
      isPermanent(new BurrowError(code, code, { reason: 'port-out-of-range' })),
      false,
      `${code} with a reason`,
    );
  }
});

test('isPermanent: a TLS failure (certificate, pin, a server without TLS) stops retrying', () => {
  assert.equal(isPermanent(new BurrowError('tls', 'the pinned fingerprint does not match')), true);
});
