// The wire protocol as pure functions: every parser on valid and invalid lines, every
// formatter, and round trips. No sockets.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ERR_REASONS,
  MAX_LINE_LENGTH,
  formatAddress,
  unbracket,
  formatConnection,
  formatErr,
  formatExpose,
  formatId,
  formatOk,
  formatSignal,
  formatAuth,
  formatChallenge,
  formatHello,
  formatProof,
  formatRefuse,
  parseClientControlLine,
  parseClientDataLine,
  parsePortRange,
  parseServerAuthLine,
  parseServerControlLine,
  parseServerDataLine,
  type ErrReason,
  type Parsed,
  type ServerControlMessage,
  type ServerDataMessage,
} from '../shared/protocol.ts';

/** Asserts a parse failed with exactly `reason`, and returns its detail. */
function assertFails<T>(parsed: Parsed<T>, reason: ErrReason, line: string): string {
  assert.equal(parsed.ok, false, `expected ${JSON.stringify(line)} to be rejected, got ${JSON.stringify(parsed)}`);
  if (parsed.ok) throw new Error('unreachable');
  assert.equal(parsed.reason, reason, `reason for ${JSON.stringify(line)}`);
  assert.equal(typeof parsed.detail, 'string');
  return parsed.detail;
}

/** Asserts a parse succeeded and returns the message. */
function assertParses<T>(parsed: Parsed<T>, line: string): T {
  assert.equal(parsed.ok, true, `expected ${JSON.stringify(line)} to parse, got ${JSON.stringify(parsed)}`);
  if (!parsed.ok) throw new Error('unreachable');
  return parsed.message;
}

/** Asserts each `[line, verb]` is rejected as unknown-verb with the detail `<verb> <isNot>`. */
function assertUnknownVerbs(
  parse: (line: string) => Parsed<unknown>,
  cases: ReadonlyArray<readonly [string, string]>,
  isNot: string,
): void {
  for (const [line, verb] of cases) {
    const detail = assertFails(parse(line), 'unknown-verb', line);
    assert.equal(detail, `${verb} ${isNot}`);
  }
}

/** Asserts each line is rejected as bad-arguments with exactly the detail `usage`. */
function assertUsage(parse: (line: string) => Parsed<unknown>, lines: readonly string[], usage: string): void {
  for (const line of lines) {
    const detail = assertFails(parse(line), 'bad-arguments', line);
    assert.equal(detail, usage);
  }
}

/** The parsers, by name, for the checks every line must pass regardless of verb. */
const PARSERS: [string, (line: string) => Parsed<unknown>][] = [
  ['parseClientControlLine', parseClientControlLine],
  ['parseServerControlLine', parseServerControlLine],
  ['parseClientDataLine', parseClientDataLine],
  ['parseServerDataLine', parseServerDataLine],
  ['parseServerAuthLine', parseServerAuthLine],
];

/** A lease token as the server issues them (21 nanoid characters), from PROTOCOL.md. */
const LEASE = '0cF3k8kQm2Yp7Lx1Vb9Zq';
/** The signal verbs either side may send on a control connection; they take no argument. */
const SIGNALS = ['PING', 'PONG', 'GOAWAY'] as const;
const EXPOSE_USAGE = 'usage: EXPOSE <localPort 1-65535> [<remotePort 0-65535> [<lease>]]';
const OK_USAGE = 'usage: OK <publicPort> [<lease> [<url>]]';

/** A valid-shaped server line (`ERR bad-line xxx...`) of exactly `length` bytes. */
const errLineOfLength = (length: number): string => {
  const head = 'ERR bad-line ';
  return head + 'x'.repeat(length - head.length);
};

describe('line framing (every parser)', () => {
  for (const [name, parse] of PARSERS) {
    test(`${name}: empty line is bad-line`, () => {
      assertFails(parse(''), 'bad-line', '');
    });

    test(`${name}: a lone \\r is an empty line (bad-line)`, () => {
      assertFails(parse('\r'), 'bad-line', '\r');
    });

    test(`${name}: non-printable, binary and NUL bytes are bad-line`, () => {
      for (const line of [
        'OK\0',
        '\0',
        'ERR bad-line a\tb',
        'ID abc\x7f',
        'EXPOSE 3000\x01',
        'OK\x1b[2J',
        'ERR timeout caf\u00e9',
        '\xff\xfe',
        'ID \u{1F600}',
        'OK\r\r',
        'OK\n',
      ]) {
        assertFails(parse(line), 'bad-line', line);
      }
    });

    test(`${name}: double, leading and trailing spaces are bad-line`, () => {
      for (const line of [
        ' ',
        '  ',
        ' OK',
        'OK ',
        'ERR  timeout',
        'ERR timeout ',
        ' ERR timeout',
        'EXPOSE  3000',
        'EXPOSE 3000 ',
        ' ID abc',
        'ID abc ',
        'ID  abc',
        'CONNECTION abc  4000',
        'PING ',
        ' PONG',
        'OK 4000  abc',
      ]) {
        assertFails(parse(line), 'bad-line', line);
      }
    });

    test(`${name}: MAX_LINE_LENGTH + 1 bytes is line-too-long, with or without \\r`, () => {
      const line = 'x'.repeat(MAX_LINE_LENGTH + 1);
      assertFails(parse(line), 'line-too-long', 'x * (MAX+1)');
      assertFails(parse(`${line}\r`), 'line-too-long', 'x * (MAX+1) + \\r');
      // Over-long wins over every other check: binary or spaced content too.
      assertFails(parse('\0'.repeat(MAX_LINE_LENGTH + 1)), 'line-too-long', 'NUL * (MAX+1)');
      assertFails(parse(' '.repeat(MAX_LINE_LENGTH + 1)), 'line-too-long', 'space * (MAX+1)');
    });

    test(`${name}: exactly MAX_LINE_LENGTH bytes is framed as a line (not line-too-long)`, () => {
      const line = 'x'.repeat(MAX_LINE_LENGTH);
      const parsed = parse(line);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.notEqual(parsed.reason, 'line-too-long');
      // The `\r` of a `\r\n` ending does not count towards the limit.
      const withCr = parse(`${line}\r`);
      assert.equal(withCr.ok, false);
      if (!withCr.ok) assert.notEqual(withCr.reason, 'line-too-long');
    });
  }

  test('MAX_LINE_LENGTH is 256', () => {
    assert.equal(MAX_LINE_LENGTH, 256);
  });

  test('a valid ERR line of exactly MAX_LINE_LENGTH bytes parses on control and data connections', () => {
    const line = errLineOfLength(MAX_LINE_LENGTH);
    assert.equal(line.length, MAX_LINE_LENGTH);
    const detail = 'x'.repeat(MAX_LINE_LENGTH - 'ERR bad-line '.length);
    assert.deepEqual(assertParses(parseServerControlLine(line), line), { verb: 'ERR', reason: 'bad-line', detail });
    assert.deepEqual(assertParses(parseServerDataLine(line), line), { verb: 'ERR', reason: 'bad-line', detail });
    assert.deepEqual(assertParses(parseServerControlLine(`${line}\r`), line), {
      verb: 'ERR',
      reason: 'bad-line',
      detail,
    });
    assertFails(parseServerControlLine(errLineOfLength(MAX_LINE_LENGTH + 1)), 'line-too-long', 'ERR of MAX+1');
    assertFails(parseServerDataLine(errLineOfLength(MAX_LINE_LENGTH + 1)), 'line-too-long', 'ERR of MAX+1');
  });

  test('a trailing \\r is stripped, only one, and only at the end', () => {
    assert.deepEqual(assertParses(parseClientControlLine('EXPOSE 3000\r'), ''), {
      verb: 'EXPOSE',
      localPort: 3000,
      remotePort: 0,
    });
    assert.deepEqual(assertParses(parseServerControlLine('OK 4000\r'), ''), { verb: 'OK', publicPort: 4000 });
    assert.deepEqual(assertParses(parseClientDataLine('ID abc\r'), ''), { verb: 'ID', id: 'abc' });
    assert.deepEqual(assertParses(parseServerDataLine('OK\r'), ''), { verb: 'OK' });
    assertFails(parseServerDataLine('OK\r\r'), 'bad-line', 'OK\\r\\r');
    assertFails(parseClientControlLine('EXPOSE\r 3000'), 'bad-line', 'EXPOSE\\r 3000');
    assertFails(parseServerDataLine('\rOK'), 'bad-line', '\\rOK');
  });
});

describe('parseClientControlLine (EXPOSE, PING, PONG, GOAWAY)', () => {
  test('EXPOSE <local> means any remote port (0)', () => {
    assert.deepEqual(assertParses(parseClientControlLine('EXPOSE 3000'), ''), {
      verb: 'EXPOSE',
      localPort: 3000,
      remotePort: 0,
    });
  });

  test('EXPOSE <local> 0 means any remote port', () => {
    assert.deepEqual(assertParses(parseClientControlLine('EXPOSE 3000 0'), ''), {
      verb: 'EXPOSE',
      localPort: 3000,
      remotePort: 0,
    });
  });

  test('EXPOSE <local> <remote>', () => {
    assert.deepEqual(assertParses(parseClientControlLine('EXPOSE 3000 8080'), ''), {
      verb: 'EXPOSE',
      localPort: 3000,
      remotePort: 8080,
    });
  });

  test('port bounds: 1 and 65535 are accepted', () => {
    assert.deepEqual(assertParses(parseClientControlLine('EXPOSE 1 65535'), ''), {
      verb: 'EXPOSE',
      localPort: 1,
      remotePort: 65535,
    });
    assert.deepEqual(assertParses(parseClientControlLine('EXPOSE 65535 1'), ''), {
      verb: 'EXPOSE',
      localPort: 65535,
      remotePort: 1,
    });
  });

  test('malformed ports are bad-arguments', () => {
    for (const line of [
      'EXPOSE abc',
      'EXPOSE -1',
      'EXPOSE 0',
      'EXPOSE 00',
      'EXPOSE 70000',
      'EXPOSE 65536',
      'EXPOSE 100000',
      'EXPOSE 03000',
      'EXPOSE +3000',
      'EXPOSE 3000.0',
      'EXPOSE 3e3',
      'EXPOSE 0x10',
      'EXPOSE 3000 99999',
      'EXPOSE 3000 65536',
      'EXPOSE 3000 -1',
      'EXPOSE 3000 08080',
      'EXPOSE 3000 00',
      'EXPOSE 3000 abc',
    ]) {
      const detail = assertFails(parseClientControlLine(line), 'bad-arguments', line);
      assert.match(detail, /EXPOSE/);
    }
  });

  test('missing or extra arguments are bad-arguments (a fourth field; a lease with remote port 0 or none)', () => {
    // (Three arguments are valid since leases: `EXPOSE 3000 8080 9090` carries lease "9090".)
    assertUsage(
      parseClientControlLine,
      [
        'EXPOSE',
        'EXPOSE 3000 8080 9090 1',
        `EXPOSE 3000 8080 ${LEASE} x`,
        'EXPOSE 1 2 3 4 5',
        `EXPOSE 3000 0 ${LEASE}`,
        'EXPOSE 3000 0 x',
      ],
      EXPOSE_USAGE,
    );
  });

  test('EXPOSE <local> <remote> <lease> carries the lease; without one there is no lease field', () => {
    assert.deepEqual(assertParses(parseClientControlLine(`EXPOSE 3000 41234 ${LEASE}`), ''), {
      verb: 'EXPOSE',
      localPort: 3000,
      remotePort: 41234,
      lease: LEASE,
    });
    assert.deepEqual(assertParses(parseClientControlLine('EXPOSE 1 2 3'), ''), {
      verb: 'EXPOSE',
      localPort: 1,
      remotePort: 2,
      lease: '3',
    });
    assert.deepEqual(assertParses(parseClientControlLine(`EXPOSE 3000 41234 ${LEASE}\r`), ''), {
      verb: 'EXPOSE',
      localPort: 3000,
      remotePort: 41234,
      lease: LEASE,
    });
    // The lease is id-shaped: the whole alphabet, 1 to 64 characters.
    const long = `AZaz09_-${'q'.repeat(56)}`;
    assert.deepEqual(assertParses(parseClientControlLine(`EXPOSE 3000 8080 ${long}`), ''), {
      verb: 'EXPOSE',
      localPort: 3000,
      remotePort: 8080,
      lease: long,
    });
    const parsed = assertParses(parseClientControlLine('EXPOSE 3000 8080'), '');
    assert.ok(!('lease' in parsed), `no lease field: ${JSON.stringify(parsed)}`);
  });

  test('a malformed lease is bad-arguments', () => {
    assertUsage(
      parseClientControlLine,
      [
        `EXPOSE 3000 8080 ${'a'.repeat(65)}`,
        'EXPOSE 3000 8080 a.b',
        'EXPOSE 3000 8080 a/b',
        'EXPOSE 3000 8080 a=',
        'EXPOSE 3000 8080 ~',
        'EXPOSE 3000 8080 "x"',
      ],
      EXPOSE_USAGE,
    );
    // A bad port is still a bad port with a good lease.
    assertUsage(
      parseClientControlLine,
      [`EXPOSE 3000 99999 ${LEASE}`, `EXPOSE 0 8080 ${LEASE}`, `EXPOSE 3000 abc ${LEASE}`],
      EXPOSE_USAGE,
    );
  });

  test('ID on the control port is wrong-port (the ports are swapped); other unknown verbs (OK, lower case) are unknown-verb', () => {
    assert.deepEqual(parseClientControlLine('ID abc'), {
      ok: false,
      reason: 'wrong-port',
      detail: 'this is the control port: ID belongs on the data port',
    });
    assertUnknownVerbs(
      parseClientControlLine,
      [
        ['OK 3000', 'OK'],
        ['CONNECTION abc 3000', 'CONNECTION'],
        ['expose 3000', 'expose'],
        ['Expose 3000', 'Expose'],
        ['HOWDY', 'HOWDY'],
        ['hello', 'hello'],
        ['ping', 'ping'],
        ['Goaway', 'Goaway'],
        ['PINGS', 'PINGS'],
      ],
      'is not a control verb',
    );
  });

  test('PING, PONG and GOAWAY from the client parse as signals (with a \\r\\n ending too)', () => {
    for (const verb of SIGNALS) {
      assert.deepEqual(assertParses(parseClientControlLine(verb), verb), { verb });
      assert.deepEqual(assertParses(parseClientControlLine(`${verb}\r`), verb), { verb });
    }
  });

  test('PING, PONG or GOAWAY with any argument is bad-arguments', () => {
    for (const verb of SIGNALS)
      assertUsage(
        parseClientControlLine,
        [`${verb} x`, `${verb} 1`, `${verb} ${LEASE}`, `${verb} a b`],
        `usage: ${verb}`,
      );
  });

  test('the verb is checked before the arguments', () => {
    assertFails(parseClientControlLine('EXPOS 0'), 'unknown-verb', 'EXPOS 0');
  });
});

describe('parseServerControlLine (OK, CONNECTION, ERR, PING, PONG, GOAWAY)', () => {
  test('OK <publicPort>', () => {
    assert.deepEqual(assertParses(parseServerControlLine('OK 40000'), ''), { verb: 'OK', publicPort: 40000 });
  });

  test('OK without a port, with port 0, a bad port or a malformed lease is bad-arguments', () => {
    // (`OK 40000 1` is valid since leases: "1" is its lease.)
    assertUsage(
      parseServerControlLine,
      ['OK', 'OK 0', 'OK 65536', 'OK 040000', 'OK abc', 'OK 40000 1.2', `OK ${LEASE}`],
      OK_USAGE,
    );
  });

  test('OK with fields after the lease: ignored, so a later server can add one', () => {
    assert.deepEqual(assertParses(parseServerControlLine(`OK 40000 ${LEASE} extra more`), ''), {
      verb: 'OK',
      publicPort: 40000,
      lease: LEASE,
    });
  });

  test('OK <publicPort> <lease> carries the lease; OK without one has no lease field', () => {
    assert.deepEqual(assertParses(parseServerControlLine(`OK 41234 ${LEASE}`), ''), {
      verb: 'OK',
      publicPort: 41234,
      lease: LEASE,
    });
    assert.deepEqual(assertParses(parseServerControlLine(`OK 41234 ${LEASE}\r`), ''), {
      verb: 'OK',
      publicPort: 41234,
      lease: LEASE,
    });
    assert.deepEqual(assertParses(parseServerControlLine('OK 40000 1'), ''), {
      verb: 'OK',
      publicPort: 40000,
      lease: '1',
    });
    const long = `-_${'Z'.repeat(62)}`;
    assert.deepEqual(assertParses(parseServerControlLine(`OK 65535 ${long}`), ''), {
      verb: 'OK',
      publicPort: 65535,
      lease: long,
    });
    const parsed = assertParses(parseServerControlLine('OK 41234'), '');
    assert.ok(!('lease' in parsed), `no lease field: ${JSON.stringify(parsed)}`);
  });

  test('OK with a malformed lease is bad-arguments', () => {
    assertUsage(
      parseServerControlLine,
      [`OK 40000 ${'a'.repeat(65)}`, 'OK 40000 a.b', 'OK 40000 a/b', 'OK 40000 a+b', 'OK 40000 =', 'OK 0 abc'],
      OK_USAGE,
    );
  });

  test('PING, PONG and GOAWAY from the server parse as signals; fields after them are ignored (the base rule)', () => {
    for (const verb of SIGNALS) {
      assert.deepEqual(assertParses(parseServerControlLine(verb), verb), { verb });
      assert.deepEqual(assertParses(parseServerControlLine(`${verb}\r`), verb), { verb });
      for (const line of [`${verb} x`, `${verb} 40000`, `${verb} a b`])
        assert.deepEqual(assertParses(parseServerControlLine(line), line), { verb });
    }
  });

  test('CONNECTION <id> <publicPort>', () => {
    assert.deepEqual(assertParses(parseServerControlLine('CONNECTION V1StGXR8_Z5jdHi6B-myT 40000'), ''), {
      verb: 'CONNECTION',
      id: 'V1StGXR8_Z5jdHi6B-myT',
      publicPort: 40000,
    });
  });

  test('CONNECTION <id> <publicPort> <visitor>: IPv4 and bracketed IPv6 addresses with a port', () => {
    assert.deepEqual(assertParses(parseServerControlLine('CONNECTION abc 40000 203.0.113.9:51234'), ''), {
      verb: 'CONNECTION',
      id: 'abc',
      publicPort: 40000,
      visitor: '203.0.113.9:51234',
    });
    assert.deepEqual(assertParses(parseServerControlLine('CONNECTION abc 40000 [2001:db8::1]:0'), ''), {
      verb: 'CONNECTION',
      id: 'abc',
      publicPort: 40000,
      visitor: '[2001:db8::1]:0',
    });
    assert.deepEqual(assertParses(parseServerControlLine('CONNECTION abc 40000 [fe80::1%eth0]:5'), ''), {
      verb: 'CONNECTION',
      id: 'abc',
      publicPort: 40000,
      visitor: '[fe80::1%eth0]:5',
    });
    // An address the client cannot read is dropped, not a reason to end the session.
    for (const line of [
      'CONNECTION abc 40000 2001:db8::1:5',
      'CONNECTION abc 40000 host.example:80',
      'CONNECTION abc 40000 1.2.3.4',
      'CONNECTION abc 40000 1.2.3.4:65536x',
      'CONNECTION abc 40000 [::1]',
    ]) {
      assert.deepEqual(
        assertParses(parseServerControlLine(line), ''),
        { verb: 'CONNECTION', id: 'abc', publicPort: 40000 },
        line,
      );
    }
    assert.equal(formatConnection('abc', 40000, '[::1]:5'), 'CONNECTION abc 40000 [::1]:5\n');
    assert.equal(
      formatConnection('abc', 40000, '[::1]:5', '[::1]:40000'),
      'CONNECTION abc 40000 [::1]:5 [::1]:40000\n',
    );
    assert.equal(formatConnection('abc', 40000, undefined, '[::1]:40000'), 'CONNECTION abc 40000\n');
    assert.equal(formatAddress('::ffff:127.0.0.1', 80), '127.0.0.1:80');
    assert.equal(formatAddress('::1', 80), '[::1]:80');
    assert.equal(formatAddress(undefined, 80), undefined);
    // What a user types back after seeing `[::1]:41234`: brackets come off IPv6 only.
    assert.equal(unbracket('[::1]'), '::1');
    assert.equal(unbracket('[fe80::1%eth0]'), 'fe80::1%eth0');
    for (const same of ['::1', 'localhost', '[localhost]', '[127.0.0.1]', '[::1]:80', '127.0.0.1'])
      assert.equal(unbracket(same), same);
  });

  test('CONNECTION <id> <publicPort> <visitor> <destination>: the address the visitor connected to', () => {
    assert.deepEqual(
      assertParses(parseServerControlLine('CONNECTION abc 40000 203.0.113.9:51234 198.51.100.1:40000'), ''),
      {
        verb: 'CONNECTION',
        id: 'abc',
        publicPort: 40000,
        visitor: '203.0.113.9:51234',
        destination: '198.51.100.1:40000',
      },
    );
    assert.deepEqual(assertParses(parseServerControlLine('CONNECTION abc 40000 [::1]:5 [::1]:40000'), ''), {
      verb: 'CONNECTION',
      id: 'abc',
      publicPort: 40000,
      visitor: '[::1]:5',
      destination: '[::1]:40000',
    });
    // Unreadable addresses are dropped one by one; the line still counts.
    assert.deepEqual(assertParses(parseServerControlLine('CONNECTION abc 40000 1.2.3.4:5 extra'), ''), {
      verb: 'CONNECTION',
      id: 'abc',
      publicPort: 40000,
      visitor: '1.2.3.4:5',
    });
    assert.deepEqual(assertParses(parseServerControlLine('CONNECTION abc 40000 nowhere 1.2.3.4:5'), ''), {
      verb: 'CONNECTION',
      id: 'abc',
      publicPort: 40000,
      destination: '1.2.3.4:5',
    });
  });

  test('CONNECTION with fields after the known ones: ignored, so a later server can add one', () => {
    assert.deepEqual(
      assertParses(parseServerControlLine('CONNECTION abc 40000 1.2.3.4:5 6.7.8.9:40000 tls=1 more'), ''),
      {
        verb: 'CONNECTION',
        id: 'abc',
        publicPort: 40000,
        visitor: '1.2.3.4:5',
        destination: '6.7.8.9:40000',
      },
    );
  });

  test('CONNECTION ids: 64 characters are accepted, 65 or invalid characters are bad-arguments', () => {
    const id64 = 'a'.repeat(64);
    assert.deepEqual(assertParses(parseServerControlLine(`CONNECTION ${id64} 40000`), ''), {
      verb: 'CONNECTION',
      id: id64,
      publicPort: 40000,
    });
    for (const line of [
      `CONNECTION ${'a'.repeat(65)} 40000`,
      'CONNECTION abc.def 40000',
      'CONNECTION abc/def 40000',
      'CONNECTION abc:def 40000',
      'CONNECTION ab+c 40000',
      'CONNECTION abc=',
      'CONNECTION',
      'CONNECTION abc 0',
      'CONNECTION abc 040000',
      'CONNECTION abc 70000',
    ]) {
      assertFails(parseServerControlLine(line), 'bad-arguments', line);
    }
  });

  test('a bare CONNECTION <id> (a minimal server) parses without a public port', () => {
    assert.deepEqual(assertParses(parseServerControlLine('CONNECTION abc'), ''), { verb: 'CONNECTION', id: 'abc' });
  });

  test('ERR <reason> has an empty detail', () => {
    assert.deepEqual(assertParses(parseServerControlLine('ERR port-in-use'), ''), {
      verb: 'ERR',
      reason: 'port-in-use',
      detail: '',
    });
  });

  test('ERR keeps every detail word, single-spaced', () => {
    assert.deepEqual(assertParses(parseServerControlLine('ERR port-in-use port 8080 is taken'), ''), {
      verb: 'ERR',
      reason: 'port-in-use',
      detail: 'port 8080 is taken',
    });
  });

  test('ERR keeps unknown reasons as they are', () => {
    assert.deepEqual(assertParses(parseServerControlLine('ERR some-future-reason why not'), ''), {
      verb: 'ERR',
      reason: 'some-future-reason',
      detail: 'why not',
    });
  });

  test('ERR without a reason is bad-arguments', () => {
    assertFails(parseServerControlLine('ERR'), 'bad-arguments', 'ERR');
    assertFails(parseServerControlLine('ERR\r'), 'bad-arguments', 'ERR\\r');
  });

  test('unknown verbs (EXPOSE, ID, lower case) are unknown-verb', () => {
    // (PING is a known verb since heartbeats.)
    assertUnknownVerbs(
      parseServerControlLine,
      [
        ['EXPOSE 3000', 'EXPOSE'],
        ['ID abc', 'ID'],
        ['ok 40000', 'ok'],
        ['Err timeout', 'Err'],
        ['ping', 'ping'],
        ['HEARTBEAT', 'HEARTBEAT'],
        ['GOAWAY!', 'GOAWAY!'],
      ],
      'is not a server control verb',
    );
  });
});

describe('parseClientDataLine (ID)', () => {
  test('ID <id> with the whole id alphabet', () => {
    const id = 'AZaz09_-';
    assert.deepEqual(assertParses(parseClientDataLine(`ID ${id}`), ''), { verb: 'ID', id });
    assert.deepEqual(assertParses(parseClientDataLine('ID x'), ''), { verb: 'ID', id: 'x' });
  });

  test('an id of 64 characters is accepted, 65 is bad-arguments', () => {
    const id64 = 'Z'.repeat(64);
    assert.deepEqual(assertParses(parseClientDataLine(`ID ${id64}`), ''), { verb: 'ID', id: id64 });
    assertFails(parseClientDataLine(`ID ${'Z'.repeat(65)}`), 'bad-arguments', 'ID of 65');
  });

  test('missing id, extra fields and invalid id characters are bad-arguments', () => {
    assertUsage(
      parseClientDataLine,
      ['ID', 'ID abc def ghi', 'ID abc de.f', 'ID abc.def', 'ID abc/def', 'ID ab!c', 'ID a=b', 'ID ~abc', 'ID "abc"'],
      'usage: ID <id> [<proof>]',
    );
  });

  test('a control verb on the data port is wrong-port (the ports are swapped); other unknown verbs are unknown-verb', () => {
    for (const verb of ['HELLO', 'EXPOSE', 'AUTH', 'PROOF', 'REFUSE', 'PING', 'PONG', 'GOAWAY', 'BYE']) {
      assert.deepEqual(parseClientDataLine(`${verb} 3000`), {
        ok: false,
        reason: 'wrong-port',
        detail: `this is the data port: ${verb} belongs on the control port`,
      });
    }
    assertUnknownVerbs(
      parseClientDataLine,
      [
        ['OK', 'OK'],
        ['id abc', 'id'],
        ['ERR timeout', 'ERR'],
        ['HOWDY', 'HOWDY'],
      ],
      'is not a data verb',
    );
  });
});

describe('parseServerDataLine (OK, ERR)', () => {
  test('OK', () => {
    assert.deepEqual(assertParses(parseServerDataLine('OK'), 'OK'), { verb: 'OK' });
  });

  test('OK with fields after it: ignored, so a later server can add one', () => {
    for (const line of ['OK 40000', 'OK x', 'OK 1 2'])
      assert.deepEqual(assertParses(parseServerDataLine(line), line), { verb: 'OK' });
  });

  test('ERR with and without detail', () => {
    assert.deepEqual(assertParses(parseServerDataLine('ERR unknown-id'), ''), {
      verb: 'ERR',
      reason: 'unknown-id',
      detail: '',
    });
    assert.deepEqual(assertParses(parseServerDataLine('ERR unknown-id no visitor is waiting for this id'), ''), {
      verb: 'ERR',
      reason: 'unknown-id',
      detail: 'no visitor is waiting for this id',
    });
  });

  test('ERR without a reason is bad-arguments', () => {
    assertFails(parseServerDataLine('ERR'), 'bad-arguments', 'ERR');
  });

  test('unknown verbs (CONNECTION, EXPOSE, ID, lower case) are unknown-verb', () => {
    assertUnknownVerbs(
      parseServerDataLine,
      [
        ['CONNECTION abc 40000', 'CONNECTION'],
        ['EXPOSE 3000', 'EXPOSE'],
        ['ID abc', 'ID'],
        ['ok', 'ok'],
        ['PING', 'PING'],
        ['PONG', 'PONG'],
        ['GOAWAY', 'GOAWAY'],
      ],
      'is not a server data verb',
    );
  });
});

describe('parsePortRange', () => {
  test('valid ranges', () => {
    assert.deepEqual(parsePortRange('1024-65535'), { min: 1024, max: 65535 });
    assert.deepEqual(parsePortRange('40000-40100'), { min: 40000, max: 40100 });
    assert.deepEqual(parsePortRange('1-1'), { min: 1, max: 1 });
    assert.deepEqual(parsePortRange('8080-8080'), { min: 8080, max: 8080 });
    assert.deepEqual(parsePortRange('1-65535'), { min: 1, max: 65535 });
  });

  test('surrounding whitespace is ignored', () => {
    assert.deepEqual(parsePortRange(' 3000-4000 '), { min: 3000, max: 4000 });
    assert.deepEqual(parsePortRange('3000-4000\n'), { min: 3000, max: 4000 });
  });

  test('invalid ranges are undefined', () => {
    for (const text of [
      '',
      '-',
      '9-3',
      '4001-4000',
      '0-100',
      '0-0',
      '1024-65536',
      '1024-70000',
      '70000-70001',
      '01024-2000',
      '1024-02000',
      '1024',
      '1024-',
      '-1024',
      '-1-5',
      '1024 - 2000',
      '1024--2000',
      '1024-2000-3000',
      'a-b',
      '1024:2000',
      '1024..2000',
      '1e3-2e3',
      '+1024-2000',
    ]) {
      assert.equal(parsePortRange(text), undefined, JSON.stringify(text));
    }
  });
});

describe('formatters', () => {
  test('formatExpose', () => {
    assert.equal(formatExpose(3000), 'EXPOSE 3000\n');
    assert.equal(formatExpose(3000, 0), 'EXPOSE 3000\n');
    assert.equal(formatExpose(3000, 8080), 'EXPOSE 3000 8080\n');
    assert.equal(formatExpose(3000, 41234, LEASE), `EXPOSE 3000 41234 ${LEASE}\n`);
    // A lease only goes with a real remote port: with "any port" it is left out, so the
    // line stays valid.
    assert.equal(formatExpose(3000, 0, LEASE), 'EXPOSE 3000\n');
  });

  test('formatOk', () => {
    assert.equal(formatOk(), 'OK\n');
    assert.equal(formatOk(40000), 'OK 40000\n');
    assert.equal(formatOk(41234, LEASE), `OK 41234 ${LEASE}\n`);
  });

  test('formatSignal', () => {
    assert.equal(formatSignal('PING'), 'PING\n');
    assert.equal(formatSignal('PONG'), 'PONG\n');
    assert.equal(formatSignal('GOAWAY'), 'GOAWAY\n');
  });

  test('formatConnection', () => {
    assert.equal(formatConnection('abc_DEF-123', 40000), 'CONNECTION abc_DEF-123 40000\n');
  });

  test('formatId', () => {
    assert.equal(formatId('abc_DEF-123'), 'ID abc_DEF-123\n');
  });

  test('formatErr with and without detail', () => {
    assert.equal(formatErr('port-in-use'), 'ERR port-in-use\n');
    assert.equal(formatErr('port-in-use', ''), 'ERR port-in-use\n');
    assert.equal(formatErr('port-in-use', 'port 8080 is taken'), 'ERR port-in-use port 8080 is taken\n');
  });

  test('formatErr cleans the detail: non-printable becomes ?, runs of spaces collapse, ends are trimmed', () => {
    assert.equal(formatErr('bad-line', 'a\0b\tc\nd\re\x7ff\u00e9'), 'ERR bad-line a?b?c?d?e?f?\n');
    assert.equal(formatErr('bad-line', '  lots   of    space  '), 'ERR bad-line lots of space\n');
    assert.equal(formatErr('bad-line', '   '), 'ERR bad-line\n');
    assert.equal(formatErr('timeout', 'line one\nline two'), 'ERR timeout line one?line two\n');
  });

  test('formatErr output is always one parseable line of at most MAX_LINE_LENGTH bytes, never ending in a space', () => {
    const details = [
      '',
      'x'.repeat(10_000),
      'word '.repeat(200),
      ' '.repeat(1000),
      '\0'.repeat(1000),
      '\n'.repeat(300),
      '\r\n'.repeat(300),
      `${'a'.repeat(MAX_LINE_LENGTH - 'ERR bad-line '.length - 1)} b`, // a space lands exactly at the cut
      `${'a'.repeat(MAX_LINE_LENGTH - 'ERR bad-line '.length)} b`, // the cut falls right before a space
      `${'a'.repeat(MAX_LINE_LENGTH - 'ERR bad-line '.length - 1)}     b`,
      '\u{1F600}'.repeat(500),
      Array.from({ length: 400 }, (_, i) => String.fromCharCode(i)).join(''),
    ];
    for (const reason of ERR_REASONS) {
      for (const detail of details) {
        const line = formatErr(reason, detail);
        const label = `${reason} / ${JSON.stringify(detail.slice(0, 20))}...`;
        assert.ok(line.endsWith('\n'), label);
        const body = line.slice(0, -1);
        assert.ok(!body.includes('\n'), `one line: ${label}`);
        assert.ok(!body.includes('\r'), `no CR: ${label}`);
        assert.ok(Buffer.byteLength(line) <= MAX_LINE_LENGTH + 1, `bounded: ${label} (${Buffer.byteLength(line)})`);
        assert.ok(!body.endsWith(' '), `no trailing space: ${label}`);
        assert.match(body, /^[\x20-\x7e]+$/, label);
        const parsers: ((line: string) => Parsed<ServerControlMessage | ServerDataMessage>)[] = [
          parseServerControlLine,
          parseServerDataLine,
        ];
        for (const parse of parsers) {
          const message = assertParses(parse(body), label);
          assert.equal(message.verb, 'ERR');
          if (message.verb === 'ERR') {
            assert.equal(message.reason, reason);
            assert.equal(message.detail === '' ? `ERR ${reason}` : `ERR ${reason} ${message.detail}`, body, label);
          }
        }
      }
    }
  });

  test('formatErr cuts an over-long detail at exactly MAX_LINE_LENGTH bytes', () => {
    const line = formatErr('bad-line', 'y'.repeat(1000));
    assert.equal(line, `ERR bad-line ${'y'.repeat(MAX_LINE_LENGTH - 'ERR bad-line '.length)}\n`);
    assert.equal(line.length, MAX_LINE_LENGTH + 1);
  });
});

describe('round trips: every formatter output parses back to the same message', () => {
  test('formatExpose → parseClientControlLine', () => {
    for (const [localPort, remotePort] of [
      [1, 0],
      [3000, 0],
      [3000, 8080],
      [65535, 65535],
      [80, 1],
    ] as const) {
      const line = formatExpose(localPort, remotePort);
      assert.ok(line.endsWith('\n'));
      assert.deepEqual(assertParses(parseClientControlLine(line.slice(0, -1)), line), {
        verb: 'EXPOSE',
        localPort,
        remotePort,
      });
      // The same with a \r\n ending.
      assert.deepEqual(assertParses(parseClientControlLine(`${line.slice(0, -1)}\r`), line), {
        verb: 'EXPOSE',
        localPort,
        remotePort,
      });
    }
    assert.deepEqual(assertParses(parseClientControlLine(formatExpose(4000).slice(0, -1)), ''), {
      verb: 'EXPOSE',
      localPort: 4000,
      remotePort: 0,
    });
    for (const lease of [LEASE, 'x', 'Q'.repeat(64)]) {
      const line = formatExpose(3000, 41234, lease);
      assert.deepEqual(assertParses(parseClientControlLine(line.slice(0, -1)), line), {
        verb: 'EXPOSE',
        localPort: 3000,
        remotePort: 41234,
        lease,
      });
    }
  });

  test('formatSignal → parseClientControlLine and parseServerControlLine', () => {
    for (const verb of SIGNALS) {
      const line = formatSignal(verb);
      assert.deepEqual(assertParses(parseClientControlLine(line.slice(0, -1)), line), { verb });
      assert.deepEqual(assertParses(parseServerControlLine(line.slice(0, -1)), line), { verb });
    }
  });

  test('formatOk(port) → parseServerControlLine, formatOk() → parseServerDataLine', () => {
    for (const publicPort of [1, 1024, 40000, 65535]) {
      const line = formatOk(publicPort);
      assert.deepEqual(assertParses(parseServerControlLine(line.slice(0, -1)), line), { verb: 'OK', publicPort });
      const leased = formatOk(publicPort, LEASE);
      assert.deepEqual(assertParses(parseServerControlLine(leased.slice(0, -1)), leased), {
        verb: 'OK',
        publicPort,
        lease: LEASE,
      });
    }
    assert.deepEqual(assertParses(parseServerDataLine(formatOk().slice(0, -1)), 'OK'), { verb: 'OK' });
  });

  test('formatConnection → parseServerControlLine', () => {
    for (const id of ['a', 'V1StGXR8_Z5jdHi6B-myT', 'Q'.repeat(64), '-_-_']) {
      for (const publicPort of [1, 40000, 65535]) {
        const line = formatConnection(id, publicPort);
        assert.deepEqual(assertParses(parseServerControlLine(line.slice(0, -1)), line), {
          verb: 'CONNECTION',
          id,
          publicPort,
        });
      }
    }
  });

  test('formatId → parseClientDataLine', () => {
    for (const id of ['a', 'V1StGXR8_Z5jdHi6B-myT', 'Q'.repeat(64), '-_-_']) {
      const line = formatId(id);
      assert.deepEqual(assertParses(parseClientDataLine(line.slice(0, -1)), line), { verb: 'ID', id });
    }
  });

  test('formatErr → parseServerControlLine and parseServerDataLine, for every reason', () => {
    for (const reason of ERR_REASONS) {
      for (const detail of ['', 'port 8080 is taken', 'limit is 256 bytes', 'no visitor is waiting for this id']) {
        const line = formatErr(reason, detail);
        const expected = { verb: 'ERR', reason, detail };
        assert.deepEqual(assertParses(parseServerControlLine(line.slice(0, -1)), line), expected);
        assert.deepEqual(assertParses(parseServerDataLine(line.slice(0, -1)), line), expected);
      }
    }
  });

  test('every reason word is itself a valid single field', () => {
    for (const reason of ERR_REASONS) assert.match(reason, /^[a-z]+(-[a-z]+)*$/);
    assert.equal(new Set(ERR_REASONS).size, ERR_REASONS.length);
  });
});

describe('parseServerAuthLine (CHALLENGE, OK, ERR and the signals, while the client authenticates)', () => {
  const NONCE = 'r7TQ0y3b6LqzWm2VfXc9JkP1sHn4Dg8uEa5iOt_-QwZ';

  test('CHALLENGE <nonce>, a bare OK, ERR, and every signal', () => {
    assert.deepEqual(assertParses(parseServerAuthLine(`CHALLENGE ${NONCE}`), ''), { verb: 'CHALLENGE', nonce: NONCE });
    assert.deepEqual(assertParses(parseServerAuthLine('OK\r'), ''), { verb: 'OK' });
    assert.deepEqual(assertParses(parseServerAuthLine('ERR auth-failed wrong secret'), ''), {
      verb: 'ERR',
      reason: 'auth-failed',
      detail: 'wrong secret',
    });
    for (const verb of [...SIGNALS, 'BYE'] as const)
      assert.deepEqual(assertParses(parseServerAuthLine(verb), verb), { verb });
  });

  test('a missing or malformed argument is bad-arguments with the usage; fields after the arguments are ignored', () => {
    assertUsage(parseServerAuthLine, ['CHALLENGE', 'CHALLENGE a.b'], 'usage: CHALLENGE <nonce>');
    assert.deepEqual(parseServerAuthLine('ERR'), { ok: false, reason: 'bad-arguments', detail: 'ERR needs a reason' });
    // The base rule: a newer server may add a field.
    assert.deepEqual(assertParses(parseServerAuthLine(`CHALLENGE ${NONCE} x`), 'CHALLENGE x'), {
      verb: 'CHALLENGE',
      nonce: NONCE,
    });
    for (const line of ['OK 40000', `OK 40000 ${LEASE}`])
      assert.deepEqual(assertParses(parseServerAuthLine(line), line), { verb: 'OK' });
    assert.deepEqual(assertParses(parseServerAuthLine('BYE x'), 'BYE x'), { verb: 'BYE' });
  });

  test('every other verb is unknown-verb: HELLO, CONNECTION and the client verbs', () => {
    assertUnknownVerbs(
      parseServerAuthLine,
      [
        ['HELLO ping', 'HELLO'],
        ['CONNECTION abc 40000', 'CONNECTION'],
        ['AUTH', 'AUTH'],
        ['PROOF x', 'PROOF'],
        ['ID abc', 'ID'],
        ['challenge x', 'challenge'],
      ],
      'is not an authentication reply',
    );
  });

  test('the control parser does not take CHALLENGE: it is only an answer to AUTH', () => {
    assertUnknownVerbs(parseServerControlLine, [[`CHALLENGE ${NONCE}`, 'CHALLENGE']], 'is not a server control verb');
  });
});

describe('the usage texts of bad-arguments refusals (what a server tells a client that got a line wrong)', () => {
  test('one per verb, exactly', () => {
    assertUsage(parseClientControlLine, ['AUTH x'], 'usage: AUTH');
    assertUsage(parseClientControlLine, ['PROOF', 'PROOF a b', 'PROOF a.b'], 'usage: PROOF <proof>');
    assertUsage(parseClientControlLine, ['REFUSE', 'REFUSE a b', 'REFUSE a.b'], 'usage: REFUSE <id>');
    assertUsage(parseClientControlLine, ['BYE x'], 'usage: BYE');
    assertUsage(
      parseClientControlLine,
      ['HELLO Ping', `HELLO ${Array(17).fill('x').join(' ')}`],
      'usage: HELLO [<extension>[=<token>]...] (at most 16 lower-case words)',
    );
    assertUsage(
      parseServerControlLine,
      ['CONNECTION', 'CONNECTION abc 0'],
      'usage: CONNECTION <id> [<publicPort> [<visitor address:port> [<destination address:port> [<name>]]]]',
    );
    assertUsage(parseServerControlLine, ['ERR'], 'ERR needs a reason');
    assertUsage(parseServerDataLine, ['ERR'], 'ERR needs a reason');
    assertUsage(parseClientDataLine, ['ID a b c'], 'usage: ID <id> [<proof>]');
  });

  test('the checks every line must pass come with their own details', () => {
    assert.deepEqual(parseClientControlLine(''), { ok: false, reason: 'bad-line', detail: 'empty line' });
    assert.deepEqual(parseClientDataLine('ID \0'), { ok: false, reason: 'bad-line', detail: 'not printable ASCII' });
    assert.deepEqual(parseServerDataLine('OK  x'), {
      ok: false,
      reason: 'bad-line',
      detail: 'fields must be separated by single spaces',
    });
    assert.deepEqual(parseServerControlLine('x'.repeat(MAX_LINE_LENGTH + 1)), {
      ok: false,
      reason: 'line-too-long',
      detail: `limit is ${MAX_LINE_LENGTH} bytes`,
    });
  });
});

describe('round trips: the authentication lines, BYE, HELLO and REFUSE', () => {
  test('formatAuth, formatProof → parseClientControlLine; formatChallenge, formatOk() → parseServerAuthLine', () => {
    const proof = '5qX0c8mN2bV7zL4kJ1hG6fD3sA9pO0iU7yT5rE2wQ1e';
    assert.equal(formatAuth(), 'AUTH\n');
    assert.equal(formatProof(proof), `PROOF ${proof}\n`);
    assert.equal(formatChallenge(proof), `CHALLENGE ${proof}\n`);
    assert.deepEqual(assertParses(parseClientControlLine(formatAuth().trimEnd()), ''), { verb: 'AUTH' });
    assert.deepEqual(assertParses(parseClientControlLine(formatProof(proof).trimEnd()), ''), { verb: 'PROOF', proof });
    assert.deepEqual(assertParses(parseServerAuthLine(formatChallenge(proof).trimEnd()), ''), {
      verb: 'CHALLENGE',
      nonce: proof,
    });
    assert.deepEqual(assertParses(parseServerAuthLine(formatOk().trimEnd()), ''), { verb: 'OK' });
  });

  test('formatId with a proof → parseClientDataLine', () => {
    const line = formatId('V1StGXR8_Z5jdHi6B-myT', LEASE);
    assert.equal(line, `ID V1StGXR8_Z5jdHi6B-myT ${LEASE}\n`);
    assert.deepEqual(assertParses(parseClientDataLine(line.trimEnd()), line), {
      verb: 'ID',
      id: 'V1StGXR8_Z5jdHi6B-myT',
      proof: LEASE,
    });
  });

  test('formatSignal(BYE) → both control parsers; formatRefuse and formatHello → parseClientControlLine', () => {
    assert.equal(formatSignal('BYE'), 'BYE\n');
    assert.deepEqual(assertParses(parseClientControlLine('BYE'), ''), { verb: 'BYE' });
    assert.deepEqual(assertParses(parseServerControlLine('BYE'), ''), { verb: 'BYE' });
    assert.deepEqual(assertParses(parseClientControlLine(formatRefuse(LEASE).trimEnd()), ''), {
      verb: 'REFUSE',
      id: LEASE,
    });
    const hello = formatHello(['ping', 'fin-notice', 'data-port'], { 'fin-notice': LEASE, 'data-port': '7836' });
    assert.equal(hello, `HELLO ping fin-notice=${LEASE} data-port=7836\n`);
    assert.deepEqual(assertParses(parseServerControlLine(hello.trimEnd()), hello), {
      verb: 'HELLO',
      extensions: ['ping', 'fin-notice', 'data-port'],
      values: { 'fin-notice': LEASE, 'data-port': '7836' },
    });
  });

  test('formatConnection with both addresses → parseServerControlLine', () => {
    const line = formatConnection(LEASE, 41234, '203.0.113.9:51234', '[2001:db8::1]:41234');
    assert.deepEqual(assertParses(parseServerControlLine(line.trimEnd()), line), {
      verb: 'CONNECTION',
      id: LEASE,
      publicPort: 41234,
      visitor: '203.0.113.9:51234',
      destination: '[2001:db8::1]:41234',
    });
  });
});
