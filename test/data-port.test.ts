// The data port under bad input, with a healthy tunnel on the same server: every test
// starts a real client exposing a local echo service and checks, before, during and after
// the bad inputs, that 64 KiB seeded payloads still come back byte-exact (on fresh visitor
// connections, and on one long-lived visitor connection opened before anything bad).
// Documented reactions: garbage → ERR unknown-verb, bad bytes → ERR bad-line, bad id →
// ERR bad-arguments, over-long → ERR line-too-long, unknown / expired / used id →
// ERR unknown-id, each followed by the server closing; silence → ERR timeout after
// handshakeTimeoutMs; a data socket that resets after its ID line → its visitor is reset;
// more handshakes at once from one address than maxHandshakesPerIp → ERR
// too-many-connections, until one of them is over (however it ends).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import tls from 'node:tls';
import { parseServerDataLine } from '../shared/protocol.ts';
import { testCerts } from './certs.ts';
import { assertSameBytes, HOST, pseudoRandomBytes, within } from './helpers.ts';
import { withHealthy, type Healthy } from './healthy-tunnel.ts';
import { endingOf, openInbox, type Ending } from './inbox.ts';
import {
  assertClosedByServer,
  assertRefused,
  dialBack,
  errReason,
  exposeAndVisit,
  LineReader,
  openControl,
  openRaw,
  withServer,
  type Raw,
} from './raw.ts';

const KiB = 1024;

// ---------------------------------------------------------------------------------------
// Local helpers

/** Sends `bytes` on a fresh data connection; asserts the exact reason word of the ERR reply
 * (a well-formed ERR line) and that the server then closes the connection. */
async function expectRefusal(dataPort: number, bytes: Buffer | string, reason: string, what: string): Promise<void> {
  const line = await assertRefused(dataPort, bytes, reason, what);
  assert.equal(
    parseServerDataLine(line).ok,
    true,
    `${what}: the ERR line is not a valid line: ${JSON.stringify(line)}`,
  );
}

/** A raw control connection exposing a tunnel, and a visitor on it waiting for its
 * dial-back (`id`), with `ending` attached before any byte can arrive. */
async function waitingVisitor(
  healthy: Healthy,
  sockets: net.Socket[],
): Promise<{ control: Raw; id: string; visitor: net.Socket; ending: Promise<Ending> }> {
  const control = await openControl(healthy.server.controlPort);
  sockets.push(control.socket);
  const { id, visitor } = await exposeAndVisit(control);
  sockets.push(visitor);
  return { control, id, visitor, ending: endingOf(visitor) };
}

/** Inputs the server must refuse on its data port, with the reason word it must answer. */
const LONG = 'X'.repeat(300);
const REFUSALS: Array<[string, Buffer | string, string]> = [
  ['garbage text', 'hello there\n', 'unknown-verb'],
  ['an HTTP request line (CRLF)', 'GET / HTTP/1.1\r\n', 'unknown-verb'],
  ['a control verb on the data port', 'EXPOSE 3000\n', 'wrong-port'],
  ['a lower-case verb', 'id abcdef\n', 'unknown-verb'],
  ['a server verb', 'OK\n', 'unknown-verb'],
  ['a 256-byte line (the longest allowed) with an unknown verb', `${'V'.repeat(256)}\n`, 'unknown-verb'],
  ['a 256-byte line plus CR', `${'V'.repeat(256)}\r\n`, 'unknown-verb'],
  [
    'binary bytes (a TLS ClientHello start, to a server without TLS)',
    Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x0a]),
    'tls-not-enabled',
  ],
  ['other binary bytes', Buffer.from([0x80, 0x03, 0x01, 0x02, 0x00, 0x0a]), 'bad-line'],
  ['a NUL inside the id', Buffer.from('ID abc\x00def\n', 'latin1'), 'bad-line'],
  ['a lone NUL', Buffer.from([0x00, 0x0a]), 'bad-line'],
  ['non-ASCII (UTF-8) in the id', Buffer.from('ID café\n', 'utf8'), 'bad-line'],
  ['a DEL byte', Buffer.from('ID abc\x7f\n', 'latin1'), 'bad-line'],
  ['a tab between fields', 'ID\tabc\n', 'bad-line'],
  ['an empty line', '\n', 'bad-line'],
  ['an empty line with CR', '\r\n', 'bad-line'],
  ['two spaces between fields', 'ID  abc\n', 'bad-line'],
  ['a trailing space', 'ID abc \n', 'bad-line'],
  ['a 257-byte line with a newline', `${'V'.repeat(257)}\n`, 'line-too-long'],
  ['a 300-byte ID line with a newline', `ID ${LONG}\n`, 'line-too-long'],
  ['300 bytes and no newline', LONG, 'line-too-long'],
  ['258 bytes and no newline (just past the limit)', 'V'.repeat(258), 'line-too-long'],
  ['64 KiB of binary and no newline', Buffer.alloc(64 * KiB, 0xab), 'line-too-long'],
];

// ---------------------------------------------------------------------------------------
// Tests

test('data port: garbage, binary bytes, NUL, empty and over-long lines each get their ERR and are closed; a healthy tunnel keeps echoing', async () => {
  await withHealthy({}, async (healthy) => {
    for (const [what, bytes, reason] of REFUSALS) {
      // "During": a pulse on the long-lived connection runs while the bad line is refused.
      await Promise.all([
        expectRefusal(healthy.server.dataPort, bytes, reason, what),
        healthy.pulse(`during: ${what}`),
      ]);
    }
    await healthy.check('after the refusals');
    assert.equal(healthy.server.stats().pendingVisitors, 0);
  });
});

test('data port: ID with a malformed id gets ERR bad-arguments and is closed; a 64-character id is well-formed', async () => {
  await withHealthy({}, async (healthy) => {
    const malformed: Array<[string, string]> = [
      ['ID with no id', 'ID\n'],
      ['ID with no id, CRLF', 'ID\r\n'],
      ['three fields', 'ID a b c\n'],
      ['a proof outside the alphabet', 'ID abc pr/of\n'],
      ['characters outside the id alphabet', 'ID !!!\n'],
      ['a slash in the id', 'ID abc/def\n'],
      ['a 65-character id', `ID ${'a'.repeat(65)}\n`],
    ];
    for (const [what, line] of malformed) {
      await Promise.all([
        expectRefusal(healthy.server.dataPort, line, 'bad-arguments', what),
        healthy.pulse(`during: ${what}`),
      ]);
    }
    // The boundary: 64 characters pass the parser; nobody issued it, so it is unknown.
    await expectRefusal(healthy.server.dataPort, `ID ${'a'.repeat(64)}\n`, 'unknown-id', 'a 64-character id');
    await expectRefusal(healthy.server.dataPort, 'ID a\n', 'unknown-id', 'a 1-character id');
  });
});

test('data port: an unknown id and an already used id get ERR unknown-id and are closed; the pair that used it keeps flowing', async () => {
  await withHealthy({}, async (healthy, sockets) => {
    await expectRefusal(healthy.server.dataPort, 'ID V1StGXR8_Z5jdHi6B-myT\n', 'unknown-id', 'an id nobody issued');
    await healthy.pulse('after an unknown id');

    const { id, visitor, ending: visitorEnding } = await waitingVisitor(healthy, sockets);
    const first = await dialBack(healthy.server.dataPort, id, sockets);
    const toVisitor = pseudoRandomBytes(16 * KiB, 31);
    first.socket.write(toVisitor);
    const fromVisitor = pseudoRandomBytes(16 * KiB, 32);
    visitor.write(fromVisitor);
    assertSameBytes(await first.take(fromVisitor.length), fromVisitor, 'visitor → data socket');

    // The same id again, twice: single-use.
    await Promise.all([
      expectRefusal(healthy.server.dataPort, `ID ${id}\n`, 'unknown-id', 'an already used id'),
      healthy.pulse('during the reused id'),
    ]);
    await expectRefusal(healthy.server.dataPort, `ID ${id}\r\n`, 'unknown-id', 'an already used id (CRLF)');

    // The original pair is untouched: more bytes both ways, then a clean close both ways.
    const more = pseudoRandomBytes(16 * KiB, 33);
    visitor.end(more);
    assertSameBytes(await first.rest(), more, 'visitor → data socket after the reuse');
    const last = pseudoRandomBytes(8 * KiB, 34);
    first.socket.end(last);
    const ending = await within(visitorEnding, 5_000, 'the visitor to close');
    assertSameBytes(ending.received, Buffer.concat([toVisitor, last]), 'data socket → visitor');
    assert.equal(ending.code, undefined, 'the visitor was reset');
  });
});

test('data port: the id of a visitor that timed out gets ERR unknown-id and is closed', async () => {
  await withHealthy({ visitorTimeoutMs: 500 }, async (healthy, sockets) => {
    const { control, id, ending: visitorEnding } = await waitingVisitor(healthy, sockets);
    const ending = await within(visitorEnding, 5_000, 'the waiting visitor to be closed after visitorTimeoutMs');
    assert.equal(ending.received.length, 0);
    assert.equal(healthy.server.stats().pendingVisitors, 0);

    await Promise.all([
      expectRefusal(healthy.server.dataPort, `ID ${id}\n`, 'unknown-id', 'an expired id'),
      healthy.pulse('during the expired id'),
    ]);
    // The control connection that exposed it is untouched by the expiry.
    control.send('HOWDY\n');
    assert.equal(errReason(await control.reader.line()), 'unknown-verb');
  });
});

test('data port: an ID line written one byte per packet gets OK and then pipes both ways byte-exact', async () => {
  await withHealthy({}, async (healthy, sockets) => {
    const { id, visitor, ending: visitorEnding } = await waitingVisitor(healthy, sockets);
    const data = await openInbox(healthy.server.dataPort);
    sockets.push(data.socket);
    const line = Buffer.from(`ID ${id}\n`, 'latin1');
    for (let i = 0; i < line.length; i++) {
      await new Promise<void>((resolve, reject) =>
        data.socket.write(line.subarray(i, i + 1), (error) => (error ? reject(error) : resolve())),
      );
      await nextTurn(); // let the server read this byte on its own before the next one
      if (i % 8 === 0) await healthy.pulse(`during the byte-by-byte ID line (byte ${i})`);
    }
    assert.equal(await data.line(), 'OK');

    const toVisitor = pseudoRandomBytes(64 * KiB, 41);
    const fromVisitor = pseudoRandomBytes(64 * KiB, 42);
    data.socket.end(toVisitor);
    visitor.end(fromVisitor);
    assertSameBytes(await data.rest(), fromVisitor, 'visitor → data socket');
    const ending = await within(visitorEnding, 10_000, 'the visitor to close');
    assertSameBytes(ending.received, toVisitor, 'data socket → visitor');
    assert.equal(ending.code, undefined, 'the visitor was reset');
  });
});

test('data port: a socket that never completes its line gets ERR timeout after handshakeTimeoutMs and is closed', async () => {
  await withHealthy({ handshakeTimeoutMs: 500 }, async (healthy, sockets) => {
    const silent = await openRaw(healthy.server.dataPort);
    sockets.push(silent.socket);
    const partial = await openRaw(healthy.server.dataPort);
    sockets.push(partial.socket);
    partial.send('ID abcdef'); // a line that never ends
    const timedOut = async (raw: Raw, what: string): Promise<void> => {
      assert.equal(errReason(await raw.reader.line(5_000)), 'timeout', what);
      await assertClosedByServer(raw);
    };
    await Promise.all([
      timedOut(silent, 'a silent socket'),
      timedOut(partial, 'a socket with half a line'),
      healthy.pulse('while they wait'),
      healthy.check('while they wait'),
    ]);
    // The healthy client's own data connections met the same short deadline throughout
    // (healthy.finish() checks it once more).
  });
});

test('data port: a socket that sends ID for a waiting visitor and then resets makes the server reset that visitor at once', async () => {
  // visitorTimeoutMs is left at its 10 s default: the visitor must be reset by the data
  // socket's reset (ECONNRESET), not closed (FIN) by its own deadline.
  await withHealthy({}, async (healthy, sockets) => {
    const control = await openControl(healthy.server.controlPort);
    sockets.push(control.socket);
    const resetAfter = async (waitForOk: boolean): Promise<void> => {
      const what = waitForOk ? 'reset after OK' : 'reset right after the ID line';
      const { id, visitor } = await exposeAndVisit(control);
      sockets.push(visitor);
      const visitorEnding = endingOf(visitor);
      const data = await openInbox(healthy.server.dataPort);
      sockets.push(data.socket);
      await new Promise<void>((resolve, reject) =>
        data.socket.write(`ID ${id}\n`, (error) => (error ? reject(error) : resolve())),
      );
      if (waitForOk) assert.equal(await data.line(), 'OK', what);
      data.socket.resetAndDestroy();
      const ending = await within(visitorEnding, 5_000, `the visitor to be reset (${what})`);
      assert.equal(ending.code, 'ECONNRESET', `${what}: the visitor was not reset`);
      assert.equal(ending.received.length, 0, what);
      assert.equal(healthy.server.stats().pendingVisitors, 0, what);
      // The id is spent either way.
      await expectRefusal(healthy.server.dataPort, `ID ${id}\n`, 'unknown-id', `${what}: the id afterwards`);
      await healthy.pulse(`after: ${what}`);
    };
    await resetAfter(false);
    await resetAfter(true);
  });
});

test('data port: 100 concurrent garbage connections do not disturb the healthy tunnel', async () => {
  await withHealthy({}, async (healthy) => {
    const before = healthy.server.stats();
    const flood = Array.from({ length: 100 }, async (_, i) => {
      const [what, bytes, reason] = REFUSALS[i % REFUSALS.length] ?? ['garbage', 'hello\n', 'unknown-verb'];
      await expectRefusal(healthy.server.dataPort, bytes, reason, `connection ${i}: ${what}`);
    });
    const traffic = (async () => {
      for (let i = 0; i < 5; i++) await healthy.pulse(`during the flood (${i})`);
    })();
    await within(
      Promise.all([...flood, traffic, healthy.check('during the flood'), healthy.check('during the flood, again')]),
      30_000,
      'the flood',
    );
    await healthy.check('after the flood');
    const after = healthy.server.stats();
    assert.equal(after.pendingVisitors, 0);
    assert.deepEqual(
      { clients: after.clients, tunnels: after.tunnels, ports: after.ports },
      { clients: before.clients, tunnels: before.tunnels, ports: before.ports },
    );
  });
});

// ---------------------------------------------------------------------------------------
// Handshakes per address (maxHandshakesPerIp)

/** An ID line for an id nobody issued: a data connection the server has accepted answers
 * it with ERR unknown-id, like any other. */
const UNKNOWN_ID_LINE = `ID ${'a'.repeat(21)}\n`;

/** The line that turns away a data connection over the handshake limit. */
const overLimitLine = (limit: number): string =>
  `ERR too-many-connections limit is ${limit} data handshakes per address`;

/** A raw connection to `port` from `localAddress` (another loopback address). */
async function openRawFrom(port: number, localAddress: string): Promise<Raw> {
  const socket = net.connect({ host: HOST, port, localAddress });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const reader = new LineReader(socket);
  try {
    await within(once(socket, 'connect'), 5_000, `connect to ${port} from ${localAddress}`);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  socket.on('error', () => {}); // from here on, tests assert on lines and closes
  return { socket, reader, closed, send: (text) => void socket.write(text) };
}

/** Asserts that `raw` was turned away over the limit: exactly that ERR line, then closed. */
async function assertOverLimit(raw: Raw, limit: number, what: string): Promise<void> {
  assert.equal(await raw.reader.line(), overLimitLine(limit), what);
  await assertClosedByServer(raw);
}

/** Sends an unknown id on `raw` (a connection the server holds in its handshake) and
 * asserts the normal answer, ERR unknown-id, and the close: its handshake is over. */
async function answerUnknownId(raw: Raw, what: string): Promise<void> {
  raw.send(UNKNOWN_ID_LINE);
  assert.equal(errReason(await raw.reader.line()), 'unknown-id', what);
  await assertClosedByServer(raw);
}

/** A fresh data connection that sends an unknown id at once: 'accepted' if the server
 * answered its ID line (ERR unknown-id), 'over' if it was turned away at the door. */
async function tryHandshake(
  port: number,
  limit: number,
  sockets: net.Socket[],
  from: string,
): Promise<'accepted' | 'over'> {
  const raw = await openRawFrom(port, from);
  sockets.push(raw.socket);
  raw.send(UNKNOWN_ID_LINE);
  const line = await raw.reader.line();
  await assertClosedByServer(raw);
  if (line === overLimitLine(limit)) return 'over';
  assert.equal(errReason(line), 'unknown-id', `a data connection under the limit: got ${JSON.stringify(line)}`);
  return 'accepted';
}

/** Opens data connections until one is accepted (at most 50): the server notices a close
 * a few turns after its peer does. Returns how many were turned away first. */
async function untilAccepted(port: number, limit: number, sockets: net.Socket[], from: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if ((await tryHandshake(port, limit, sockets, from)) === 'accepted') return attempt;
  }
  assert.fail('no data connection was accepted in 50 attempts: a handshake slot was not given back');
}

test('data port: 3 handshakes in progress from one address (maxHandshakesPerIp: 3) and a 4th gets ERR too-many-connections and is closed; the healthy tunnel keeps working; a slot freed is taken again, and all 3 come back', async (t) => {
  const LIMIT = 3;
  // From another loopback address than the healthy client's, whose data connections
  // opened ahead (prewarm) would count at its own address.
  const FROM = '127.0.0.2';
  await withHealthy({ maxHandshakesPerIp: LIMIT }, async (healthy, sockets) => {
    const { server } = healthy;
    const { dataPort } = server;
    const overLimitErrors = (): number => server.totals().errors['too-many-connections'] ?? 0;
    let turnedAway = 0;
    // More pairings than the limit, one after another: each gives its slot back.
    for (let i = 0; i <= LIMIT; i++) await healthy.check(`pairing ${i + 1} of ${LIMIT + 1}`);

    const silent: Raw[] = [];
    try {
      silent.push(await openRawFrom(dataPort, FROM));
    } catch (error) {
      t.skip(`cannot connect from ${FROM} here: ${(error as Error).message}`);
      return;
    }
    for (const raw of silent) sockets.push(raw.socket);
    for (let i = 1; i < LIMIT; i++) {
      const raw = await openRawFrom(dataPort, FROM);
      sockets.push(raw.socket);
      silent.push(raw);
    }
    // The server accepts in order: the first 3 are counted before it sees the 4th.
    const extra = await openRawFrom(dataPort, FROM);
    sockets.push(extra.socket);
    await Promise.all([
      assertOverLimit(extra, LIMIT, 'the 4th handshake'),
      healthy.pulse('while 3 handshakes are held'),
    ]);
    turnedAway++;
    assert.equal(overLimitErrors(), turnedAway, 'counted in errors_total by reason');
    await healthy.pulse('after the 4th was turned away');

    // One of the 3 goes away: its slot is taken again by a data connection that waits
    // for its ID line like any other.
    const [gone, ...held] = silent;
    assert.ok(gone);
    gone.socket.destroy();
    await gone.closed;
    turnedAway += await untilAccepted(dataPort, LIMIT, sockets, FROM);
    await healthy.check('with 2 handshakes held');

    // The other two end by the server's own answer: then nothing is held, exactly: 3 new
    // handshakes are accepted (none was left counted) and a 4th is not (none counted twice).
    for (const [i, raw] of held.entries()) await answerUnknownId(raw, `held handshake ${i + 1}`);
    const again: Raw[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const raw = await openRawFrom(dataPort, FROM);
      sockets.push(raw.socket);
      again.push(raw);
    }
    const fourth = await openRawFrom(dataPort, FROM);
    sockets.push(fourth.socket);
    await assertOverLimit(fourth, LIMIT, 'a 4th handshake again');
    turnedAway++;
    for (const [i, raw] of again.entries()) await answerUnknownId(raw, `new handshake ${i + 1}`);
    assert.equal(overLimitErrors(), turnedAway, 'every connection turned away is counted once');
    await healthy.check('after the handshakes ended');
  });
});

test('data port: the handshake limit is per address: another address at its limit does not turn away the healthy client (maxHandshakesPerIp: 2)', async (t) => {
  // 2, not 1: the healthy tunnel starts with two visitors at once (its long-lived one and
  // its first check), so its client dials back twice at once.
  const LIMIT = 2;
  await withHealthy({ maxHandshakesPerIp: LIMIT }, async (healthy, sockets) => {
    const { dataPort } = healthy.server;
    const other: Raw[] = [];
    try {
      other.push(await openRawFrom(dataPort, '127.0.0.2'));
    } catch (error) {
      t.skip(`cannot connect from 127.0.0.2 here: ${(error as Error).message}`);
      return;
    }
    other.push(await openRawFrom(dataPort, '127.0.0.2'));
    sockets.push(...other.map((raw) => raw.socket));
    const extra = await openRawFrom(dataPort, '127.0.0.2');
    sockets.push(extra.socket);
    await assertOverLimit(extra, LIMIT, 'a third handshake from 127.0.0.2');
    // The healthy client dials back from 127.0.0.1, one visitor after another: more
    // pairings than the limit, each giving its slot of that address back.
    for (let i = 0; i <= LIMIT; i++) await healthy.check(`while 127.0.0.2 holds its handshakes (${i + 1})`);
    for (const [i, raw] of other.entries()) await answerUnknownId(raw, `handshake ${i + 1} from 127.0.0.2`);
  });
});

test('data port over TLS (maxHandshakesPerIp: 1): a handshake slot is given back after a plaintext refusal, a failed TLS handshake, a TLS connection that closes before its ID line, and an ERR over TLS', async () => {
  const certs = await testCerts();
  await withServer(
    { maxHandshakesPerIp: 1, tls: { cert: certs.server.cert, key: certs.server.key } },
    async (server, sockets) => {
      const { dataPort } = server;
      /** One plaintext connection, accepted (ERR tls-required) if the slot is free. */
      const slotFree = async (what: string): Promise<void> => {
        for (let attempt = 0; attempt < 50; attempt++) {
          const raw = await openRaw(dataPort);
          sockets.push(raw.socket);
          raw.send('ID x\n');
          const line = await raw.reader.line();
          await assertClosedByServer(raw);
          if (line !== overLimitLine(1)) {
            assert.equal(errReason(line), 'tls-required', `${what}: got ${JSON.stringify(line)}`);
            return;
          }
        }
        assert.fail(`${what}: the handshake slot was not given back`);
      };
      await slotFree('at first');
      await slotFree('after a plaintext refusal');

      // A TLS record the server cannot take: the TLS handshake fails.
      const broken = await openRaw(dataPort);
      sockets.push(broken.socket);
      broken.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00]));
      await within(broken.closed, 5_000, 'the failed TLS handshake to close');
      await slotFree('after a failed TLS handshake');

      const secure = async (): Promise<tls.TLSSocket> => {
        const socket = tls.connect({ host: HOST, port: dataPort, servername: 'localhost', ca: certs.ca.cert });
        sockets.push(socket);
        await within(once(socket, 'secureConnect'), 5_000, 'the TLS handshake');
        return socket;
      };
      // While a TLS connection is in its handshake (waiting for its ID), the slot is taken.
      const quiet = await secure();
      const closed = new Promise((resolve) => quiet.once('close', resolve));
      const over = await openRaw(dataPort);
      sockets.push(over.socket);
      await assertOverLimit(over, 1, 'a second handshake beside a TLS one');
      quiet.destroy();
      await closed;
      await slotFree('after a TLS connection closed before its ID line');

      const answered = await secure();
      const reader = new LineReader(answered);
      answered.write(UNKNOWN_ID_LINE);
      assert.equal(errReason(await reader.line()), 'unknown-id', 'an unknown id over TLS');
      await slotFree('after an ERR over TLS');
    },
  );
});
