// What the commands print (cli/output.ts, cli/reporter.ts, shared/trace.ts), without
// processes: when traces are coloured, the trace and connection-log lines, human sizes and
// durations, the JSON object of every event, the --json start order and the 10-a-minute cap.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConnectionEvent } from '../client/types.ts';
import type { ConnectionTotals } from '../client/connection.ts';
import { resolveOutputOptions } from '../cli/options.ts';
import { UsageError } from '../cli/usage-error.ts';
import { clock, count, formatBytes, formatDuration, useColour } from '../cli/format.ts';
import {
  clientLine,
  connectionEntry,
  connectionLine,
  jsonLine,
  lostServer,
  openRelay,
  problem,
  shortSecret,
  textLines,
  tunnelEvent,
  type OutputEvent,
} from '../cli/output.ts';
import { createReporter } from '../cli/reporter.ts';
import { BurrowError } from '../shared/errors.ts';
import { formatTrace, hideSecrets, type TraceEvent } from '../shared/trace.ts';
import { OPEN_RELAY_NOTICE } from './child.ts';

const ESC = '\x1b';
const stripAnsi = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, '');

describe('useColour', () => {
  test('only a TTY, with NO_COLOR unset or empty and TERM not dumb', () => {
    assert.equal(useColour(true, {}), true);
    assert.equal(useColour(true, { TERM: 'xterm-256color', NO_COLOR: '' }), true, 'an empty NO_COLOR counts as unset');
    assert.equal(useColour(false, {}), false, 'a pipe or file');
    assert.equal(useColour(undefined, {}), false, 'a stream that does not say (not a TTY)');
    assert.equal(useColour(true, { NO_COLOR: '1' }), false);
    assert.equal(useColour(true, { NO_COLOR: '0' }), false, 'any non-empty NO_COLOR, even "0"');
    assert.equal(useColour(true, { TERM: 'dumb' }), false);
    assert.equal(useColour(false, { TERM: 'xterm' }), false);
  });
});

describe('formatTrace', () => {
  const recv: TraceEvent = { side: 'server', conn: 'control#1', kind: 'recv', text: 'EXPOSE 3000' };
  const send: TraceEvent = { side: 'client', conn: 'data:abc123', kind: 'send', text: 'ID abc123' };
  const moment: TraceEvent = {
    side: 'server',
    conn: 'visitor:abc123',
    kind: 'event',
    text: 'paired with data#1 after 3 ms; piping',
  };

  test('without colour (the default): as before, no escape codes', () => {
    assert.equal(formatTrace(recv), '[server] control#1      <- EXPOSE 3000');
    assert.equal(formatTrace(send), '[client] data:abc123    -> ID abc123');
    assert.equal(formatTrace(moment), '[server] visitor:abc123 .. paired with data#1 after 3 ms; piping');
    for (const event of [recv, send, moment]) {
      assert.equal(formatTrace(event, { colour: false }), formatTrace(event));
      assert.ok(!formatTrace(event).includes(ESC));
    }
  });

  test('with colour: the side per side, -> green, <- yellow, moments dim; the same text underneath', () => {
    assert.equal(
      formatTrace(recv, { colour: true }),
      `${ESC}[35m[server]${ESC}[0m control#1      ${ESC}[33m<-${ESC}[0m EXPOSE 3000`,
    );
    assert.equal(
      formatTrace(send, { colour: true }),
      `${ESC}[36m[client]${ESC}[0m data:abc123    ${ESC}[32m->${ESC}[0m ID abc123`,
    );
    assert.equal(
      formatTrace(moment, { colour: true }),
      `${ESC}[35m[server]${ESC}[0m visitor:abc123 ${ESC}[2m.. paired with data#1 after 3 ms; piping${ESC}[0m`,
    );
    for (const event of [recv, send, moment])
      assert.equal(stripAnsi(formatTrace(event, { colour: true })), formatTrace(event));
  });

  test("a peer's control characters are shown, not sent to the terminal", () => {
    const hostile: TraceEvent = { side: 'server', conn: 'control#9', kind: 'recv', text: 'EXPOSE \x1b[2J\x07 1\r' };
    assert.equal(formatTrace(hostile), '[server] control#9      <- EXPOSE \\x1b[2J\\x07 1\\x0d');
    assert.equal(stripAnsi(formatTrace(hostile, { colour: true })), formatTrace(hostile));
    assert.equal(formatTrace({ ...hostile, text: 'caf\u00e9 \u009b' }), '[server] control#9      <- caf\u00e9 \\x9b');
  });
});

describe('hideSecrets', () => {
  test('proofs and lease tokens never reach a trace; everything else passes unchanged', () => {
    assert.equal(hideSecrets('PROOF 5qX0c8mN2bV7zL4kJ1hG6fD3sA9pO0iU7yT5rE2wQ1e'), 'PROOF <hidden>');
    assert.equal(
      hideSecrets('ID V1StGXR8_Z5jdHi6B-myT 9fK2mL0pQ7rS4tU1vW8xY5zA3bC6dE0fG2hI9jK4lMn'),
      'ID V1StGXR8_Z5jdHi6B-myT <hidden>',
    );
    assert.equal(hideSecrets('OK 41234 0cF3k8kQm2Yp7Lx1Vb9Zq'), 'OK 41234 <lease>');
    assert.equal(hideSecrets('EXPOSE 3000 41234 0cF3k8kQm2Yp7Lx1Vb9Zq'), 'EXPOSE 3000 41234 <lease>');
    for (const line of [
      'OK',
      'OK 41234',
      'EXPOSE 3000',
      'EXPOSE 3000 41234',
      'ID V1StGXR8_Z5jdHi6B-myT',
      'CONNECTION abc 41234 1.2.3.4:5 6.7.8.9:41234',
      'HELLO ping fin-notice=abc',
    ]) {
      assert.equal(hideSecrets(line), line);
    }
  });
});

describe("the server's log of its clients", () => {
  test('one line for each client event, in words', () => {
    assert.equal(
      clientLine({ kind: 'connected', conn: 'control#3', address: '203.0.113.9' }),
      'client control#3 connected from 203.0.113.9',
    );
    assert.equal(
      clientLine({
        kind: 'tunnel-opened',
        conn: 'control#3',
        address: '203.0.113.9',
        publicPort: 41234,
        localPort: 3000,
        reclaimed: false,
      }),
      'client control#3 (203.0.113.9) opened public port 41234 (its port 3000)',
    );
    assert.equal(
      clientLine({
        kind: 'tunnel-opened',
        conn: 'control#4',
        address: '203.0.113.9',
        publicPort: 41234,
        localPort: 3000,
        reclaimed: true,
      }),
      'client control#4 (203.0.113.9) took public port 41234 back with its lease (its port 3000)',
    );
    assert.equal(
      clientLine({ kind: 'lease-kept', address: '203.0.113.9', publicPort: 41234, graceMs: 60_000 }),
      'public port 41234 kept 60 s for 203.0.113.9 (its lease)',
    );
    assert.equal(
      clientLine({ kind: 'lease-expired', address: '203.0.113.9', publicPort: 41234 }),
      'public port 41234 is free again: nobody came back for the lease of 203.0.113.9',
    );
    assert.equal(
      clientLine({ kind: 'disconnected', conn: 'control#3', address: '203.0.113.9', why: 'timeout', tunnels: 2 }),
      'client control#3 (203.0.113.9) left: timeout, with 2 tunnels',
    );
    assert.equal(
      clientLine({ kind: 'disconnected', conn: 'control#3', address: '203.0.113.9', why: 'goaway', tunnels: 0 }),
      'client control#3 (203.0.113.9) left: goaway',
    );
  });

  test('as JSON: the event "client" with its kind and fields', () => {
    const at = new Date('2026-12-02T08:00:00.000Z');
    assert.equal(
      jsonLine({ event: 'client', kind: 'lease-kept', address: '203.0.113.9', publicPort: 41234, graceMs: 60_000 }, at),
      '{"event":"client","time":"2026-12-02T08:00:00.000Z","kind":"lease-kept","address":"203.0.113.9","publicPort":41234,"graceMs":60000}',
    );
  });
});

describe('sizes, durations, time of day', () => {
  test('bytes: B up to 1023, then KiB/MiB/GiB with one decimal', () => {
    const cases: Array<[number, string]> = [
      [0, '0 B'],
      [78, '78 B'],
      [1023, '1023 B'],
      [1024, '1.0 KiB'],
      [5000, '4.9 KiB'],
      [1536, '1.5 KiB'],
      [1024 * 1024 - 1, '1.0 MiB'],
      [10.25 * 1024 * 1024, '10.3 MiB'],
      [3 * 1024 ** 3, '3.0 GiB'],
      [5 * 1024 ** 4, '5120.0 GiB'],
    ];
    for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
  });

  test('durations: ms under a second, else seconds with one decimal', () => {
    const cases: Array<[number, string]> = [
      [0, '0 ms'],
      [12, '12 ms'],
      [999, '999 ms'],
      [1000, '1.0 s'],
      [1549, '1.5 s'],
      [125_000, '125.0 s'],
    ];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
  });

  test('a count with its noun: singular for 1 only', () => {
    assert.equal(count(0, 'client'), '0 clients');
    assert.equal(count(1, 'client'), '1 client');
    assert.equal(count(3, 'client'), '3 clients');
    assert.equal(count(2, 'address', 'addresses'), '2 addresses');
  });

  test('the clock is local time, HH:MM:SS', () => {
    assert.equal(clock(new Date(2024, 0, 2, 3, 31, 5)), '03:31:05');
    assert.equal(clock(new Date(2024, 11, 31, 23, 59, 59, 999)), '23:59:59');
  });
});

/** What BurrowClient's 'connection-close' hands over. */
function closed(overrides: Partial<ConnectionEvent & ConnectionTotals> = {}): ConnectionEvent & ConnectionTotals {
  return {
    id: 'Xy3_abcdefghijklmnopq',
    tunnel: { localHost: 'localhost', localPort: 3000, publicPort: 41234, url: 'tcp://127.0.0.1:41234' },
    visitor: '127.0.0.1:53422',
    bytesIn: 78,
    bytesOut: 210,
    durationMs: 12,
    aborted: false,
    ...overrides,
  };
}

const AT = new Date(2024, 5, 1, 3, 31, 5);

describe('the connection log', () => {
  test('one line: time, visitor, tunnel url, local target, sizes, duration', () => {
    assert.equal(
      connectionLine(connectionEntry(closed()), AT),
      '03:31:05 127.0.0.1:53422 -> tcp://127.0.0.1:41234 -> localhost:3000  in 78 B  out 210 B  12 ms',
    );
  });

  test('(reset) when it ended with a reset; ? for an unknown visitor; larger sizes; an IPv6 local host in brackets', () => {
    const entry = connectionEntry(
      closed({ aborted: true, visitor: undefined, bytesIn: 5000, bytesOut: 3 * 1024 * 1024, durationMs: 61_500 }),
    );
    assert.equal(
      connectionLine(entry, AT),
      '03:31:05 ? -> tcp://127.0.0.1:41234 -> localhost:3000  in 4.9 KiB  out 3.0 MiB  61.5 s (reset)',
    );
    const v6 = connectionEntry(
      closed({
        tunnel: { localHost: '::1', localPort: 8080, publicPort: 1, url: 'tcp://relay:1' },
        visitor: '[::1]:4000',
      }),
    );
    assert.equal(
      connectionLine(v6, AT),
      '03:31:05 [::1]:4000 -> tcp://relay:1 -> [::1]:8080  in 78 B  out 210 B  12 ms',
    );
  });

  test('is a stdout line in text mode', () => {
    assert.deepEqual(textLines(connectionEntry(closed()), AT), [
      {
        stream: 'stdout',
        line: '03:31:05 127.0.0.1:53422 -> tcp://127.0.0.1:41234 -> localhost:3000  in 78 B  out 210 B  12 ms',
      },
    ]);
  });
});

const listening: OutputEvent = {
  event: 'listening',
  controlPort: 7835,
  dataPort: 7836,
  bind: null,
  publicPorts: { min: 1024, max: 65535 },
  tls: true,
  fingerprint: 'AB:CD',
  secret: true,
};
const trace: OutputEvent = { event: 'trace', side: 'client', conn: 'control', kind: 'send', text: 'EXPOSE 3000' };
const refusedError = new BurrowError(
  'refused',
  'server refused to expose port 3000: port 8080 is taken (port-in-use)',
  { reason: 'port-in-use' },
);

/** Every kind of event, with its JSON fields (after "event" and "time") and its text. */
const EVERY_EVENT: Array<{
  event: OutputEvent;
  json: Record<string, unknown>;
  text: Array<['stdout' | 'stderr', string]>;
}> = [
  {
    event: listening,
    json: {
      controlPort: 7835,
      dataPort: 7836,
      bind: null,
      publicPorts: { min: 1024, max: 65535 },
      tls: true,
      fingerprint: 'AB:CD',
      secret: true,
    },
    text: [
      ['stdout', 'burrow server listening on control port 7835, data port 7836; public ports 1024-65535'],
      ['stdout', 'TLS certificate SHA-256 fingerprint: AB:CD'],
    ],
  },
  {
    event: tunnelEvent({
      localHost: 'localhost',
      localPort: 3000,
      publicPort: 41234,
      url: 'tcp://relay.example.com:41234',
    }),
    json: { url: 'tcp://relay.example.com:41234', publicPort: 41234, local: 'localhost:3000' },
    text: [['stdout', 'Forwarding tcp://relay.example.com:41234 -> localhost:3000']],
  },
  {
    event: tunnelEvent({ localHost: 'localhost', localPort: 3000, publicPort: 40612, url: 'tcp://relay:40612' }, 8080),
    json: { url: 'tcp://relay:40612', publicPort: 40612, local: 'localhost:3000', previousPort: 8080 },
    text: [['stdout', 'Forwarding tcp://relay:40612 -> localhost:3000']],
  },
  {
    event: tunnelEvent({
      localHost: 'localhost',
      localPort: 8080,
      publicPort: 40613,
      url: 'tcp://relay:40613',
      proxyProtocol: 'v2',
    }),
    json: { url: 'tcp://relay:40613', publicPort: 40613, local: 'localhost:8080', proxyProtocol: 'v2' },
    text: [['stdout', 'Forwarding tcp://relay:40613 -> localhost:8080 (PROXY protocol v2)']],
  },
  {
    event: connectionEntry(closed({ aborted: true })),
    json: {
      id: 'Xy3_abcdefghijklmnopq',
      visitor: '127.0.0.1:53422',
      publicPort: 41234,
      url: 'tcp://127.0.0.1:41234',
      local: 'localhost:3000',
      bytesIn: 78,
      bytesOut: 210,
      durationMs: 12,
      reset: true,
      localUnavailable: false,
    },
    text: [
      [
        'stdout',
        '03:31:05 127.0.0.1:53422 -> tcp://127.0.0.1:41234 -> localhost:3000  in 78 B  out 210 B  12 ms (reset)',
      ],
    ],
  },
  {
    event: connectionEntry({
      ...closed({ aborted: true, bytesIn: 0, bytesOut: 0, durationMs: 1 }),
      localUnavailable: true,
    }),
    json: {
      id: 'Xy3_abcdefghijklmnopq',
      visitor: '127.0.0.1:53422',
      publicPort: 41234,
      url: 'tcp://127.0.0.1:41234',
      local: 'localhost:3000',
      bytesIn: 0,
      bytesOut: 0,
      durationMs: 1,
      reset: true,
      localUnavailable: true,
    },
    text: [
      [
        'stdout',
        '03:31:05 127.0.0.1:53422 -> tcp://127.0.0.1:41234 -> localhost:3000  local service unreachable (reset)',
      ],
    ],
  },
  {
    event: trace,
    json: { side: 'client', conn: 'control', kind: 'send', text: 'EXPOSE 3000' },
    text: [['stderr', '[client] control        -> EXPOSE 3000']],
  },
  {
    event: problem(
      'warning',
      new BurrowError('local-unavailable', 'cannot connect to local service at localhost:3000: connection refused'),
    ),
    json: {
      code: 'local-unavailable',
      message: 'cannot connect to local service at localhost:3000: connection refused',
    },
    text: [['stderr', 'burrow: warning: cannot connect to local service at localhost:3000: connection refused']],
  },
  {
    event: {
      event: 'refused',
      conn: 'control#7',
      address: '203.0.113.9:51234',
      reason: 'auth-failed',
      message: 'wrong secret',
    },
    json: { conn: 'control#7', address: '203.0.113.9:51234', reason: 'auth-failed', message: 'wrong secret' },
    text: [['stderr', 'burrow: refused control#7 from 203.0.113.9:51234: wrong secret (auth-failed)']],
  },
  {
    event: problem('disconnected', new BurrowError('closed', 'the server closed the connection')),
    json: { code: 'closed', message: 'the server closed the connection' },
    text: [['stderr', 'burrow: lost the server: the server closed the connection']],
  },
  {
    event: { event: 'reconnecting', attempt: 2, delayMs: 1234 },
    json: { attempt: 2, delayMs: 1234 },
    text: [['stderr', 'burrow: reconnecting in 1.2 s (attempt 2)']],
  },
  {
    event: { event: 'reconnected', moved: 0 },
    json: { moved: 0 },
    text: [['stderr', 'burrow: reconnected; same public address']],
  },
  {
    event: { event: 'reconnected', moved: 1 },
    json: { moved: 1 },
    text: [['stderr', 'burrow: reconnected; the old public port was taken:']],
  },
  {
    event: openRelay(),
    json: { message: OPEN_RELAY_NOTICE.replace('burrow: notice: ', '') },
    text: [['stderr', OPEN_RELAY_NOTICE]],
  },
  {
    event: shortSecret(15),
    json: {
      length: 15,
      message:
        'the secret is only 15 characters; without TLS, anyone who records a handshake can try to guess it offline. Use 32 random characters (openssl rand -base64 32).',
    },
    text: [
      [
        'stderr',
        'burrow: warning: the secret is only 15 characters; without TLS, anyone who records a handshake can try to guess it offline. Use 32 random characters (openssl rand -base64 32).',
      ],
    ],
  },
  {
    event: { event: 'certificate-created', dir: '/tmp/x' },
    json: { dir: '/tmp/x' },
    text: [['stderr', 'burrow: created a self-signed TLS certificate in /tmp/x']],
  },
  {
    event: { event: 'shutdown', clients: 3, timeoutMs: 10_000 },
    json: { clients: 3, timeoutMs: 10_000 },
    text: [
      [
        'stderr',
        'burrow: shutting down: told 3 clients to reconnect later; open connections get 10 s to finish (signal again to stop now)',
      ],
    ],
  },
  {
    event: { event: 'shutdown', clients: 1, timeoutMs: 10_000 },
    json: { clients: 1, timeoutMs: 10_000 },
    text: [
      [
        'stderr',
        'burrow: shutting down: told 1 client to reconnect later; open connections get 10 s to finish (signal again to stop now)',
      ],
    ],
  },
  {
    // Nobody to tell: no "told 0 clients".
    event: { event: 'shutdown', clients: 0, timeoutMs: 5000 },
    json: { clients: 0, timeoutMs: 5000 },
    text: [['stderr', 'burrow: shutting down; open connections get 5 s to finish (signal again to stop now)']],
  },
  {
    event: { event: 'shutdown', timeoutMs: 2500 },
    json: { timeoutMs: 2500 },
    text: [['stderr', 'burrow: closing; open connections get 2.5 s to finish (signal again to stop now)']],
  },
  {
    event: problem('error', refusedError),
    json: { code: 'refused', message: refusedError.message, reason: 'port-in-use' },
    text: [['stderr', `burrow: ${refusedError.message}`]],
  },
  {
    // --no-reconnect: losing the server is the fatal error, said once.
    event: lostServer(new BurrowError('closed', 'the server is restarting or shutting down (GOAWAY)')),
    json: { code: 'closed', message: 'lost the server: the server is restarting or shutting down (GOAWAY)' },
    text: [['stderr', 'burrow: lost the server: the server is restarting or shutting down (GOAWAY)']],
  },
  {
    event: { event: 'throttled', message: '(3 similar lines not shown)' },
    json: { message: '(3 similar lines not shown)' },
    text: [['stderr', 'burrow: (3 similar lines not shown)']],
  },
];

describe('every event, as JSON and as text', () => {
  test('JSON: "event" first, then "time" (ISO 8601), then its fields; no escape codes', () => {
    for (const { event, json } of EVERY_EVENT) {
      const line = jsonLine(event, new Date(Date.UTC(2024, 5, 1, 3, 31, 5, 120)));
      assert.ok(!line.includes('\n') && !line.includes(ESC), line);
      const parsed: unknown = JSON.parse(line);
      assert.deepEqual(parsed, { event: event.event, time: '2024-06-01T03:31:05.120Z', ...json }, line);
      assert.deepEqual(Object.keys(json).length + 2, Object.keys(parsed as object).length);
      assert.deepEqual(Object.keys(parsed as object).slice(0, 2), ['event', 'time'], line);
    }
  });

  test('text: the lines the commands printed before --json existed, on the same streams', () => {
    for (const { event, text } of EVERY_EVENT) {
      assert.deepEqual(
        textLines(event, AT).map(({ stream, line }) => [stream, line]),
        text,
        event.event,
      );
    }
  });

  test('only traces are coloured, and only when asked', () => {
    assert.equal(
      textLines(trace, AT, true)[0]?.line,
      formatTrace({ side: 'client', conn: 'control', kind: 'send', text: 'EXPOSE 3000' }, { colour: true }),
    );
    for (const { event } of EVERY_EVENT.filter((e) => e.event.event !== 'trace')) {
      assert.ok(!textLines(event, AT, true).some(({ line }) => line.includes(ESC)), event.event);
    }
  });
});

/** A reporter writing into arrays, with a clock the test moves. */
function capture(json: boolean, colour = false) {
  const out: string[] = [];
  const err: string[] = [];
  let now = Date.UTC(2024, 5, 1, 3, 31, 5);
  const reporter = createReporter({
    json,
    colour,
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    now: () => new Date(now),
  });
  return {
    reporter,
    out,
    err,
    advance: (ms: number) => (now += ms),
    events: (): string[] => out.map((line) => String((JSON.parse(line) as { event: unknown }).event)),
  };
}

describe('createReporter', () => {
  test('text: stdout and stderr as textLines says, one newline each; colour reaches traces', () => {
    const { reporter, out, err } = capture(false, true);
    reporter.print(shortSecret(15));
    reporter.print(listening);
    reporter.print(trace);
    reporter.started();
    assert.deepEqual(out, [
      'burrow server listening on control port 7835, data port 7836; public ports 1024-65535\n',
      'TLS certificate SHA-256 fingerprint: AB:CD\n',
    ]);
    assert.equal(err.length, 2);
    assert.match(err[0] ?? '', /^burrow: warning: the secret is only 15 characters/);
    assert.equal(
      err[1],
      `${formatTrace({ side: 'client', conn: 'control', kind: 'send', text: 'EXPOSE 3000' }, { colour: true })}\n`,
    );
  });

  test('JSON: everything on stdout; the start lines first, what came before them after, each with its own time', () => {
    const { reporter, out, err, advance, events } = capture(true, true);
    reporter.print(shortSecret(15));
    advance(1000);
    reporter.print(trace);
    reporter.print(listening);
    reporter.print(openRelay());
    assert.deepEqual(events(), ['listening']);
    reporter.started();
    reporter.print(trace);
    assert.deepEqual(events(), ['listening', 'short-secret', 'trace', 'open-relay', 'trace']);
    assert.deepEqual(err, []);
    assert.ok(out.every((line) => line.endsWith('}\n') && !line.includes(ESC)));
    const times = out.map((line) => (JSON.parse(line) as { time: string }).time);
    assert.deepEqual(times, [
      '2024-06-01T03:31:06.000Z',
      '2024-06-01T03:31:05.000Z',
      '2024-06-01T03:31:06.000Z',
      '2024-06-01T03:31:06.000Z',
      '2024-06-01T03:31:06.000Z',
    ]);
  });

  test('JSON: a failed start prints what waited, then the error', () => {
    const { reporter, events } = capture(true);
    reporter.print(shortSecret(3));
    reporter.print(trace);
    reporter.print(problem('error', new BurrowError('unreachable', 'cannot connect')));
    assert.deepEqual(events(), ['short-secret', 'trace', 'error']);
  });

  for (const json of [false, true]) {
    test(`${json ? 'JSON' : 'text'}: warnings and refusals are capped at 10 a minute each; traces and connections are not`, () => {
      const { reporter, out, err, advance } = capture(json);
      reporter.started();
      const warning = problem('warning', new BurrowError('local-unavailable', 'cannot connect to local service'));
      const refused: OutputEvent = {
        event: 'refused',
        conn: 'control#2',
        address: '127.0.0.1:1',
        reason: 'tls-required',
        message: 'plain text',
      };
      for (let i = 0; i < 13; i++) reporter.print(warning);
      for (let i = 0; i < 11; i++) reporter.print(refused);
      for (let i = 0; i < 30; i++) reporter.print(trace);
      for (let i = 0; i < 30; i++) reporter.print(connectionEntry(closed()));
      advance(60_000);
      reporter.print(warning);

      const lines = json
        ? out.map((line) => JSON.parse(line) as { event: string; message?: string })
        : [...out, ...err].map((line) => ({ event: '', message: line }));
      const count = (match: (l: { event: string; message?: string }) => boolean): number => lines.filter(match).length;
      if (json) {
        assert.equal(
          count((l) => l.event === 'warning'),
          11,
        );
        assert.equal(
          count((l) => l.event === 'refused'),
          10,
        );
        assert.equal(
          count((l) => l.event === 'trace'),
          30,
        );
        assert.equal(
          count((l) => l.event === 'connection'),
          30,
        );
        assert.deepEqual(
          lines.filter((l) => l.event === 'throttled').map((l) => l.message),
          [
            '(more of these in the next 60 s are counted, not shown)',
            '(more of these in the next 60 s are counted, not shown)',
            '(3 similar lines not shown)',
          ],
        );
        assert.deepEqual(err, []);
      } else {
        assert.equal(
          count((l) => l.message?.startsWith('burrow: warning: ') === true),
          11,
        );
        assert.equal(
          count((l) => l.message?.startsWith('burrow: refused ') === true),
          10,
        );
        assert.equal(
          count((l) => l.message?.startsWith('[client] ') === true),
          30,
        );
        assert.equal(out.length, 30, 'connection lines, all on stdout');
        assert.equal(
          count((l) => l.message === 'burrow: (3 similar lines not shown)\n'),
          1,
        );
        assert.equal(
          count((l) => l.message === 'burrow: (more of these in the next 60 s are counted, not shown)\n'),
          2,
        );
      }
    });
  }
});

describe('resolveOutputOptions', () => {
  test('--json and --quiet, or BURROW_JSON and BURROW_QUIET with the on/off words; off by default; the flag wins', () => {
    assert.deepEqual(resolveOutputOptions({}, {}, 'client'), { json: false, quiet: false });
    assert.deepEqual(resolveOutputOptions({ json: true, quiet: true }, {}, 'client'), { json: true, quiet: true });
    for (const on of ['1', 'true', 'YES', 'on']) {
      assert.deepEqual(
        resolveOutputOptions({}, { BURROW_JSON: on, BURROW_QUIET: on }, 'client'),
        { json: true, quiet: true },
        on,
      );
    }
    for (const off of ['0', 'false', 'no', 'OFF', '']) {
      assert.deepEqual(
        resolveOutputOptions({}, { BURROW_JSON: off, BURROW_QUIET: off }, 'client'),
        { json: false, quiet: false },
        off,
      );
    }
    assert.deepEqual(
      resolveOutputOptions({ json: false, quiet: false }, { BURROW_JSON: '1', BURROW_QUIET: '1' }, 'client'),
      { json: false, quiet: false },
    );
  });

  test('a bad word is a usage error naming the variable; the server ignores BURROW_QUIET', () => {
    assert.throws(
      () => resolveOutputOptions({}, { BURROW_JSON: 'maybe' }, 'server'),
      (error: unknown) =>
        error instanceof UsageError && error.message.includes('BURROW_JSON') && error.message.includes('"maybe"'),
    );
    assert.throws(
      () => resolveOutputOptions({}, { BURROW_QUIET: 'loud' }, 'client'),
      (error: unknown) => error instanceof UsageError && error.message.includes('BURROW_QUIET'),
    );
    assert.deepEqual(resolveOutputOptions({}, { BURROW_QUIET: 'loud', BURROW_JSON: 'on' }, 'server'), {
      json: true,
      quiet: false,
    });
  });
});
