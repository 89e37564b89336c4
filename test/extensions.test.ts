// The pure pieces of extension negotiation: HELLO and REFUSE lines, what two peers agree
// on, and the batching of "is the peer alive?" questions over PING/PONG.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AliveCheck } from '../shared/alive-check.ts';
import {
  agreeOn,
  EXTENSIONS,
  formatHello,
  formatRefuse,
  MAX_HELLO_WORDS,
  parseClientControlLine,
  parseServerControlLine,
} from '../shared/protocol.ts';

describe('HELLO and REFUSE lines', () => {
  test('HELLO with words, and without any, parses both ways and round-trips', () => {
    assert.deepEqual(parseClientControlLine('HELLO ping goaway'), {
      ok: true,
      message: { verb: 'HELLO', extensions: ['ping', 'goaway'], values: {} },
    });
    assert.deepEqual(parseServerControlLine('HELLO'), {
      ok: true,
      message: { verb: 'HELLO', extensions: [], values: {} },
    });
    assert.equal(formatHello(EXTENSIONS), 'HELLO ping goaway id-reply fin-notice refuse data-port http prewarm\n');
    assert.equal(formatHello([]), 'HELLO\n');
    assert.deepEqual(parseClientControlLine(formatHello(EXTENSIONS).trimEnd()), {
      ok: true,
      message: { verb: 'HELLO', extensions: [...EXTENSIONS], values: {} },
    });
  });

  test('a value after a name (fin-notice=<instance>) is written, parsed and kept apart from the name', () => {
    const line = formatHello(['ping', 'fin-notice'], { 'fin-notice': 'V1StGXR8_Z5jdHi6B-myT', goaway: 'unused' });
    assert.equal(line, 'HELLO ping fin-notice=V1StGXR8_Z5jdHi6B-myT\n');
    assert.deepEqual(parseServerControlLine(line.trimEnd()), {
      ok: true,
      message: { verb: 'HELLO', extensions: ['ping', 'fin-notice'], values: { 'fin-notice': 'V1StGXR8_Z5jdHi6B-myT' } },
    });
    for (const bad of [
      'HELLO fin-notice=',
      'HELLO fin-notice=a=b',
      'HELLO fin-notice=a.b',
      `HELLO fin-notice=${'a'.repeat(65)}`,
    ]) {
      assert.equal(parseClientControlLine(bad).ok, false, bad);
    }
  });

  test('HELLO with an unknown but well-formed word parses (a newer peer may offer more)', () => {
    assert.deepEqual(parseClientControlLine('HELLO ping zstd-2'), {
      ok: true,
      message: { verb: 'HELLO', extensions: ['ping', 'zstd-2'], values: {} },
    });
  });

  test('HELLO with a malformed word, or too many words, is bad-arguments', () => {
    for (const line of [
      'HELLO Ping',
      'HELLO 2ping',
      'HELLO ping,goaway',
      'HELLO -x',
      `HELLO ${'a'.repeat(33)}`,
      `HELLO ${Array(MAX_HELLO_WORDS + 1)
        .fill('x')
        .join(' ')}`,
    ]) {
      const parsed = parseClientControlLine(line);
      assert.equal(parsed.ok, false, line);
      if (!parsed.ok) assert.equal(parsed.reason, 'bad-arguments', line);
    }
    assert.equal(parseClientControlLine(`HELLO ${Array(MAX_HELLO_WORDS).fill('x').join(' ')}`).ok, true);
  });

  test('REFUSE <id> parses; without an id, with two, or with a bad id it is bad-arguments', () => {
    assert.deepEqual(parseClientControlLine('REFUSE V1StGXR8_Z5jdHi6B-myT'), {
      ok: true,
      message: { verb: 'REFUSE', id: 'V1StGXR8_Z5jdHi6B-myT' },
    });
    assert.equal(formatRefuse('abc'), 'REFUSE abc\n');
    for (const line of ['REFUSE', 'REFUSE a b', 'REFUSE a.b']) {
      const parsed = parseClientControlLine(line);
      assert.ok(!parsed.ok && parsed.reason === 'bad-arguments', line);
    }
  });
});

describe('agreeOn', () => {
  test('keeps what both speak, in our order, and drops words we do not know', () => {
    assert.deepEqual([...agreeOn(['refuse', 'zstd', 'ping'])], ['ping', 'refuse']);
    assert.deepEqual([...agreeOn([])], []);
    assert.deepEqual([...agreeOn([...EXTENSIONS])], [...EXTENSIONS]);
  });

  test('fin-notice only comes with id-reply (the server pairs before the client may notice)', () => {
    assert.deepEqual([...agreeOn(['fin-notice', 'ping'])], ['ping']);
    assert.deepEqual([...agreeOn(['fin-notice', 'id-reply'])], ['id-reply', 'fin-notice']);
  });
});

describe('AliveCheck', () => {
  /** An AliveCheck whose PINGs are recorded, with the answers each question got. */
  function check() {
    let pings = 0;
    const alive: AliveCheck = new AliveCheck(() => {
      pings++;
      alive.pingSent();
    });
    const answers: Array<boolean | undefined> = [];
    const ask = (): number => {
      const index = answers.push(undefined) - 1;
      alive.ask((yes) => (answers[index] = yes));
      return index;
    };
    return { alive, answers, ask, pings: () => pings };
  }

  test('a question sends a PING and is answered yes by its PONG', () => {
    const { alive, answers, ask, pings } = check();
    ask();
    assert.equal(pings(), 1);
    assert.deepEqual(answers, [undefined]);
    alive.pongReceived();
    assert.deepEqual(answers, [true]);
    assert.equal(alive.pending, 0);
  });

  test('questions asked while a PING is out wait for the next one: one PING per batch', () => {
    const { alive, answers, ask, pings } = check();
    ask();
    ask();
    ask();
    assert.equal(pings(), 1, 'later questions do not send PINGs of their own');
    alive.pongReceived();
    // The PONG answers only the question asked before its PING; the others need a PING
    // sent after them, which goes out at once.
    assert.deepEqual(answers, [true, undefined, undefined]);
    assert.equal(pings(), 2);
    alive.pongReceived();
    assert.deepEqual(answers, [true, true, true]);
    assert.equal(pings(), 2);
  });

  test('a heartbeat PING already out does not answer a later question', () => {
    const { alive, answers, ask } = check();
    alive.pingSent(); // the regular heartbeat, before the question
    ask(); // sends its own PING: none carrying questions was out
    alive.pongReceived(); // answers the heartbeat
    assert.deepEqual(answers, [undefined]);
    alive.pongReceived();
    assert.deepEqual(answers, [true]);
  });

  test('a heartbeat PING sent after a question carries it', () => {
    const { alive, answers } = check();
    const noPing = new AliveCheck(() => {}); // a check whose own PINGs are not sent yet
    let answer: boolean | undefined;
    noPing.ask((yes) => (answer = yes));
    noPing.pingSent(); // the heartbeat goes out now
    noPing.pongReceived();
    assert.equal(answer, true);
    assert.deepEqual(answers, []);
    assert.equal(alive.pending, 0);
  });

  test('the connection failing answers every question no, and later ones at once', () => {
    const { alive, answers, ask } = check();
    ask();
    ask();
    alive.fail();
    assert.deepEqual(answers, [false, false]);
    ask();
    assert.deepEqual(answers, [false, false, false]);
  });

  test('an unasked-for PONG answers nothing', () => {
    const { alive, answers, ask } = check();
    alive.pongReceived();
    ask();
    assert.deepEqual(answers, [undefined]);
    alive.pongReceived();
    assert.deepEqual(answers, [true]);
  });
});
