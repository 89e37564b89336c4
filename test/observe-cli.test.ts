// What the real `burrow` command shows of its traffic (child processes, test/child.ts):
// --json --trace on both sides while one visitor is echoed and one meets a dead local
// service; the connection log line of a text-mode client and --quiet; no colour on a pipe;
// a closed stdout (EPIPE) does not stop the client;
// --json with TLS and a short secret (the start line still first); fatal errors and usage
// errors under --json; the help text of the new flags.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { envName } from '../cli/args.ts';
import {
  FORWARDING,
  interrupt,
  jsonLines,
  killAll,
  LISTENING,
  loopbackClientArgs,
  lines,
  OPEN_RELAY_NOTICE,
  runCli,
  startCli,
  untilJson,
  waitForOutput,
  type Cli,
  type Json,
  loopbackServerArgs,
} from './child.ts';
import {
  assertSameBytes,
  connectVisitor,
  echo,
  HOST,
  listenLocal,
  pseudoRandomBytes,
  readAll,
  replyOnEnd,
  within,
} from './helpers.ts';
import { freePort, freePublicPort, holdPort } from './raw.ts';

/** The object without its "time" (which the test cannot know). */
const timeless = ({ time: _time, ...rest }: Json): Json => rest;

const isTrace = (e: Json, side: string, conn: string, kind: string, text: (t: string) => boolean): boolean =>
  e.event === 'trace' &&
  e.side === side &&
  e.conn === conn &&
  e.kind === kind &&
  typeof e.text === 'string' &&
  text(e.text);

/** Asserts that `events` holds an event matching each of `steps`, in that order. */
function assertInOrder(events: Json[], steps: Array<[string, (e: Json) => boolean]>, who: string): void {
  let from = 0;
  for (const [what, match] of steps) {
    const at = events.findIndex((e, i) => i >= from && match(e));
    assert.notEqual(
      at,
      -1,
      `${who}: "${what}" after position ${from}, in:\n${events.map((e) => JSON.stringify(e)).join('\n')}`,
    );
    from = at + 1;
  }
}

const addressOf = (socket: net.Socket): string => `${socket.localAddress}:${socket.localPort}`;

/** `burrow server` on loopback with ephemeral control and data ports and the one-port range `publicPort`. */
const serverArgs = (publicPort: number, extra: string[]): string[] =>
  loopbackServerArgs(`${publicPort}-${publicPort}`, extra);
const clientArgs = (localPort: number, controlPort: string, dataPort: string, extra: string[]): string[] =>
  loopbackClientArgs(localPort, { controlPort, dataPort }, extra);

test('--json --trace: JSON lines only, start line first; an echoed visitor traced in order on both sides with an exact connection entry; a dead local service is a warning event and a connection entry; nothing on stderr', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(echo);
  try {
    const publicPort = await freePublicPort();
    // JSON from the variable on the server, from the flag on the client.
    const server = startCli(serverArgs(publicPort, ['--trace']), { BURROW_JSON: '1' }, live);
    const listening = await untilJson(server, (e) => e.event === 'listening', 'the server to listen');
    assert.equal(jsonLines(server.stdout, 'server')[0]?.event, 'listening', 'the first server line');
    const { controlPort, dataPort } = listening;
    assert.ok(
      typeof controlPort === 'number' && controlPort > 0 && typeof dataPort === 'number' && dataPort > 0,
      JSON.stringify(listening),
    );
    assert.deepEqual(timeless(listening), {
      event: 'listening',
      controlPort,
      dataPort,
      bind: HOST,
      publicPorts: { min: publicPort, max: publicPort },
      tls: false,
      secret: false,
    });
    const notice = await untilJson(server, (e) => e.event === 'open-relay', 'the open-relay notice');
    assert.equal(`burrow: notice: ${String(notice.message)}`, OPEN_RELAY_NOTICE);

    const client = startCli(
      clientArgs(local.port, String(controlPort), String(dataPort), ['--json', '--trace']),
      {},
      live,
    );
    const tunnel = await untilJson(client, (e) => e.event === 'tunnel', 'the client to open its tunnel');
    assert.deepEqual(timeless(tunnel), {
      event: 'tunnel',
      url: `tcp://${HOST}:${publicPort}`,
      publicPort,
      local: `${HOST}:${local.port}`,
    });
    assert.deepEqual(
      jsonLines(client.stdout, 'client')[0],
      tunnel,
      'the first client line is the tunnel, before the trace of the handshake',
    );
    // The handshake happened before the tunnel line, and its trace comes after it.
    await untilJson(
      client,
      (e) => isTrace(e, 'client', 'control', 'send', (t) => t === `EXPOSE ${local.port}`),
      'the trace of EXPOSE',
    );

    // One visitor: sends, half-closes, reads the echo.
    const payload = pseudoRandomBytes(3000, 61);
    const visitor = await connectVisitor(publicPort);
    const visitorAddress = addressOf(visitor);
    const echoed = readAll(visitor);
    visitor.write(payload);
    visitor.end();
    assertSameBytes(await within(echoed, 10_000, 'the echo'), payload, 'the echo through the tunnel');
    visitor.destroy();

    const entry = await untilJson(
      client,
      (e) => e.event === 'connection' && e.visitor === visitorAddress,
      'the connection entry',
    );
    const id = String(entry.id);
    assert.match(id, /^[A-Za-z0-9_-]{21}$/);
    assert.equal(typeof entry.durationMs, 'number');
    assert.deepEqual(timeless(entry), {
      event: 'connection',
      id,
      visitor: visitorAddress,
      publicPort,
      url: `tcp://${HOST}:${publicPort}`,
      local: `${HOST}:${local.port}`,
      bytesIn: payload.length,
      bytesOut: payload.length,
      durationMs: entry.durationMs,
      reset: false,
      localUnavailable: false,
    });
    const data = `data:${id.slice(0, 6)}`;
    assertInOrder(
      jsonLines(client.stdout, 'client'),
      [
        [
          'CONNECTION',
          (e) =>
            isTrace(
              e,
              'client',
              'control',
              'recv',
              (t) => t === `CONNECTION ${id} ${publicPort} ${visitorAddress} 127.0.0.1:${publicPort}`,
            ),
        ],
        ['ID', (e) => isTrace(e, 'client', data, 'send', (t) => t === `ID ${id}`)],
        ['OK', (e) => isTrace(e, 'client', data, 'recv', (t) => t === 'OK')],
        ['joined', (e) => isTrace(e, 'client', data, 'event', (t) => t.startsWith(`joined to ${HOST}:${local.port}`))],
        [
          "the visitor's half-close",
          (e) => isTrace(e, 'client', data, 'event', (t) => t.startsWith('the visitor half-closed')),
        ],
        [
          "the local service's half-close",
          (e) => isTrace(e, 'client', data, 'event', (t) => t.startsWith('the local service half-closed')),
        ],
        [
          'closed',
          (e) =>
            isTrace(e, 'client', data, 'event', (t) =>
              t.startsWith(`closed: ${payload.length} bytes in (from the visitor), ${payload.length} bytes out`),
            ),
        ],
        ['the connection entry', (e) => e.event === 'connection' && e.id === id],
      ],
      'client',
    );

    // The server's side of the same visitor.
    const parked = `visitor:${id.slice(0, 6)}`;
    await untilJson(
      server,
      (e) => isTrace(e, 'server', parked, 'event', (t) => t.startsWith('closed')),
      "the server's close trace",
    );
    const serverEvents = jsonLines(server.stdout, 'server');
    const idLine = serverEvents.find((e) => e.event === 'trace' && e.kind === 'recv' && e.text === `ID ${id}`);
    const dataConn = String(idLine?.conn);
    assert.match(dataConn, /^data#\d+$/);
    assertInOrder(
      serverEvents,
      [
        [
          'accepted',
          (e) =>
            isTrace(
              e,
              'server',
              parked,
              'event',
              (t) => t === `accepted from ${visitorAddress} on public port ${publicPort}`,
            ),
        ],
        [
          'CONNECTION',
          (e) =>
            e.event === 'trace' &&
            e.side === 'server' &&
            e.kind === 'send' &&
            e.text === `CONNECTION ${id} ${publicPort} ${visitorAddress} 127.0.0.1:${publicPort}`,
        ],
        ['ID', (e) => isTrace(e, 'server', dataConn, 'recv', (t) => t === `ID ${id}`)],
        ['OK', (e) => isTrace(e, 'server', dataConn, 'send', (t) => t === 'OK')],
        ['paired', (e) => isTrace(e, 'server', parked, 'event', (t) => t.startsWith(`paired with ${dataConn} `))],
        ['half-closed', (e) => isTrace(e, 'server', parked, 'event', (t) => t.startsWith('the visitor half-closed'))],
        [
          'closed',
          (e) =>
            isTrace(e, 'server', parked, 'event', (t) =>
              t.startsWith(`closed: ${payload.length} bytes from the visitor, ${payload.length} bytes to it`),
            ),
        ],
      ],
      'server',
    );

    // The local service goes away: the next visitor is reset, and the client says why.
    await local.close();
    // Its connect is not awaited: the reset can beat this process to the completed
    // connect, and is then reported by the connect itself (the same ECONNRESET).
    const unlucky = net.connect({ host: HOST, port: publicPort, allowHalfOpen: true });
    const resetSeen = new Promise<string | undefined>((resolve) => {
      unlucky.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
      unlucky.once('close', () => resolve(undefined));
    });
    const got = readAll(unlucky);
    const warning = await untilJson(client, (e) => e.event === 'warning', 'the warning');
    assert.deepEqual(timeless(warning), {
      event: 'warning',
      code: 'local-unavailable',
      message: `cannot connect to local service at ${HOST}:${local.port}: connection refused`,
    });
    assert.equal(await within(resetSeen, 10_000, 'the second visitor to be reset'), 'ECONNRESET');
    assert.equal((await within(got, 10_000, 'the second visitor to close')).length, 0);

    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    const clientEvents = jsonLines(client.stdout, 'client');
    assert.ok(client.stdout.endsWith('\n'));
    const entries = clientEvents.filter((e) => e.event === 'connection');
    assert.equal(entries.length, 2, 'a connection entry for each visitor, the one that met a dead service too');
    assert.equal(entries[0]?.id, id);
    assert.equal(entries[1]?.localUnavailable, true);
    assert.equal(entries[1]?.reset, true);
    assert.equal(entries[1]?.bytesIn, 0);
    assert.deepEqual(clientEvents.filter((e) => e.event === 'shutdown').map(timeless), [
      { event: 'shutdown', timeoutMs: 10_000 },
    ]);
    assert.deepEqual(
      jsonLines(server.stdout, 'server')
        .filter((e) => e.event === 'shutdown')
        .map(timeless),
      [{ event: 'shutdown', clients: 0, timeoutMs: 10_000 }],
    );
    assert.equal(client.stderr, '', 'nothing on the client stderr');
    assert.equal(server.stderr, '', 'nothing on the server stderr: the open-relay notice is a JSON line');
  } finally {
    await killAll(live);
    await local.close();
  }
});

/** Seconds since midnight in India (UTC+05:30 all year), the child's TZ below. */
const kolkataSeconds = (ms: number): number => Math.floor((ms / 1000 + 5.5 * 3600) % 86_400);

test('text: the client prints one connection log line on stdout (local time, visitor, tunnel, sizes, duration); --quiet prints none; traces on a pipe have no colour codes', async () => {
  const live = new Set<Cli>();
  const reply = pseudoRandomBytes(200, 62);
  const local = await listenLocal(replyOnEnd(() => reply));
  // NO_COLOR is unset (empty counts as unset) and TERM names a colour terminal: only the
  // pipe keeps the colours out.
  const colourless = { NO_COLOR: '', TERM: 'xterm-256color', TZ: 'Asia/Kolkata' };
  try {
    const publicPort = await freePublicPort();
    const server = startCli(serverArgs(publicPort, ['--trace']), colourless, live);
    const [, controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING,
      'the server to listen',
    );

    /** A visitor that sends 5000 bytes and half-closes; returns its address. */
    const visit = async (): Promise<string> => {
      const visitor = await connectVisitor(publicPort);
      const address = addressOf(visitor);
      const response = readAll(visitor);
      visitor.end(pseudoRandomBytes(5000, 63));
      assertSameBytes(await within(response, 10_000, 'the reply'), reply, 'the reply');
      visitor.destroy();
      return address;
    };

    const client = startCli(clientArgs(local.port, controlPort, dataPort, ['--trace']), colourless, live);
    await waitForOutput(client, 'stdout', FORWARDING, 'the client to forward');
    const before = Date.now();
    const visitor = await visit();
    const escaped = visitor.replace(/\./g, '\\.');
    const logLine = new RegExp(
      `^(\\d\\d):(\\d\\d):(\\d\\d) ${escaped} -> tcp://127\\.0\\.0\\.1:${publicPort} -> 127\\.0\\.0\\.1:${local.port}  in 4\\.9 KiB  out 200 B  (\\d+ ms|\\d+\\.\\d s)$`,
      'm',
    );
    const [, hh = '', mm = '', ss = ''] = await waitForOutput(
      client,
      'stdout',
      logLine,
      `the connection log line ${logLine}`,
    );
    const after = Date.now();
    const printed = Number(hh) * 3600 + Number(mm) * 60 + Number(ss);
    const [from, to] = [kolkataSeconds(before), kolkataSeconds(after)];
    if (from <= to)
      assert.ok(
        from <= printed && printed <= to,
        `the time of day is local (TZ=Asia/Kolkata): ${hh}:${mm}:${ss}, between ${from} and ${to} s`,
      );
    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.equal(lines(client.stdout).length, 2, `the Forwarding line and one log line: ${client.stdout}`);

    const quiet = startCli(clientArgs(local.port, controlPort, dataPort, ['--trace', '--quiet']), colourless, live);
    const [forwarding = ''] = await waitForOutput(quiet, 'stdout', FORWARDING, 'the quiet client to forward');
    await visit();
    // The close is traced just before the log line would be printed. (Colour codes, if
    // any, are let through here, to be reported by the assertion below.)
    await waitForOutput(
      quiet,
      'stderr',
      /data:\S+ +(?:\x1b\[\d+m)?\.\. closed: 5000 bytes in \(from the visitor\), 200 bytes out, \d+ ms/,
      'the quiet client to trace the close',
    );
    assert.deepEqual(await interrupt(quiet, 'the quiet client'), { code: 0, signal: null });
    assert.equal(quiet.stdout, `${forwarding}\n`, 'with --quiet, only the Forwarding line');
    assert.match(quiet.stderr, /^burrow: closing; /m, 'everything else stays');

    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    for (const [who, cli] of [
      ['server', server],
      ['client', client],
      ['quiet client', quiet],
    ] as const) {
      assert.ok(
        !cli.stderr.includes('\x1b') && !cli.stdout.includes('\x1b'),
        `no escape codes from the ${who}: ${JSON.stringify(cli.stderr.slice(0, 300))}`,
      );
      assert.match(cli.stderr, /^\[(server|client)\] \S+ +(->|<-|\.\.) /m, `${who} traced`);
    }
  } finally {
    await killAll(live);
    await local.close();
  }
});

test('a client whose stdout reader has gone (`burrow client 3000 | head -1`) keeps serving: the connection log is dropped, not a crash', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(echo);
  try {
    const publicPort = await freePublicPort();
    const server = startCli(serverArgs(publicPort, []), {}, live);
    const [, controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING,
      'the server to listen',
    );
    const client = startCli(clientArgs(local.port, controlPort, dataPort, ['--trace']), {}, live);
    await waitForOutput(client, 'stdout', FORWARDING, 'the client to forward');
    client.child.stdout?.destroy(); // like `head -1` exiting after the Forwarding line

    for (const [seed, closes] of [
      [64, 1],
      [65, 2],
    ] as const) {
      const payload = pseudoRandomBytes(1000, seed);
      const visitor = await connectVisitor(publicPort);
      const echoed = readAll(visitor);
      visitor.end(payload);
      assertSameBytes(await within(echoed, 10_000, `echo ${closes}`), payload, `visitor ${closes} is echoed`);
      visitor.destroy();
      // The log line is written (and fails) right after the close is traced.
      const closed = new RegExp(`(?:\\.\\. closed: 1000 bytes in[^\\n]*\\n[^]*){${closes}}`);
      await waitForOutput(client, 'stderr', closed, `the close of visitor ${closes} in the trace`);
    }
    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.doesNotMatch(client.stderr, /EPIPE|^ {4}at /m);
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
  } finally {
    await killAll(live);
    await local.close();
  }
});

test('--json with TLS and a short secret: listening (with the fingerprint) first, then the warning and the new certificate; nothing on stderr', async () => {
  const live = new Set<Cli>();
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'burrow-observe-cli-'));
  try {
    const publicPort = await freePublicPort();
    const tlsDir = path.join(tmp, 'tls');
    const server = startCli(
      serverArgs(publicPort, ['--tls', '--tls-dir', tlsDir, '--json']),
      { BURROW_SECRET: 'fifteen-chars!!' },
      live,
    );
    await untilJson(server, (e) => e.event === 'certificate-created', 'the server to report its new certificate');
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    const events = jsonLines(server.stdout, 'server');
    assert.deepEqual(
      events.map((e) => e.event),
      ['listening', 'short-secret', 'certificate-created', 'shutdown'],
    );
    const [listening = {}, warning = {}, created = {}] = events;
    assert.match(String(listening.fingerprint), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.deepEqual(timeless(listening), {
      event: 'listening',
      controlPort: listening.controlPort,
      dataPort: listening.dataPort,
      bind: HOST,
      publicPorts: { min: publicPort, max: publicPort },
      tls: true,
      fingerprint: listening.fingerprint,
      names: ['localhost', '127.0.0.1', '::1'],
      secret: true,
    });
    assert.equal(warning.length, 15);
    assert.match(String(warning.message), /^the secret is only 15 characters\b/);
    assert.deepEqual(timeless(created), { event: 'certificate-created', dir: tlsDir });
    assert.equal(server.stderr, '');
  } finally {
    await killAll(live);
    await fs.rm(tmp, { recursive: true, force: true });
  }
});

test('--json: a fatal error is one "error" line on stdout and exit 1; usage errors stay on stderr with exit 2', async () => {
  const port = await freePort();
  const unreachable = await runCli(['client', '3000', '--server', HOST, '--control-port', String(port), '--json']);
  assert.deepEqual({ code: unreachable.code, stderr: unreachable.stderr }, { code: 1, stderr: '' });
  assert.deepEqual(jsonLines(unreachable.stdout, 'client').map(timeless), [
    {
      event: 'error',
      code: 'unreachable',
      message: `cannot connect to burrow server at ${HOST}:${port}: connection refused`,
    },
  ]);

  const taken = await holdPort();
  try {
    const busy = await runCli(['server', '--bind', HOST, '--control-port', String(taken.port), '--data-port', '0'], {
      BURROW_JSON: 'yes',
    });
    assert.deepEqual({ code: busy.code, stderr: busy.stderr }, { code: 1, stderr: '' });
    assert.deepEqual(jsonLines(busy.stdout, 'server').map(timeless), [
      {
        event: 'error',
        code: 'listen-failed',
        message: `cannot listen on control ${HOST}:${taken.port}: address already in use`,
      },
    ]);
  } finally {
    await taken.close();
  }

  const unknown = await runCli(['client', '3000', '--json', '--bogus']);
  assert.deepEqual({ code: unknown.code, stdout: unknown.stdout }, { code: 2, stdout: '' });
  assert.deepEqual(lines(unknown.stderr), ['burrow: unknown option --bogus', "Run 'burrow client --help' for usage."]);
  const badWord = await runCli(['server'], { BURROW_JSON: 'maybe' });
  assert.deepEqual({ code: badWord.code, stdout: badWord.stdout }, { code: 2, stdout: '' });
  assert.deepEqual(lines(badWord.stderr), [
    'burrow: BURROW_JSON: "maybe" is not one of 1/0, true/false, yes/no, on/off',
    "Run 'burrow server --help' for usage.",
  ]);
});

test('--help: --json on both commands and --quiet on the client, with their variables; --trace mentions NO_COLOR', async () => {
  const flat = (text: string): string => text.replace(/\s+/g, ' ');
  const entry = (help: string, flag: string): string => {
    const text = flat(help);
    const start = text.indexOf(` --${flag} `);
    assert.notEqual(start, -1, `--${flag} is listed in:\n${help}`);
    const rest = text.slice(start + flag.length + 3);
    const end = rest.search(/ (--(?!no-)[a-z]|-h, --help|Examples:)/);
    return end === -1 ? rest : rest.slice(0, end);
  };
  const server = await runCli(['server', '--help']);
  const client = await runCli(['client', '--help']);
  for (const [help, flags] of [
    [server.stdout, ['json', 'trace']],
    [client.stdout, ['json', 'quiet', 'trace']],
  ] as const) {
    for (const flag of flags)
      assert.ok(entry(help, flag).includes(`[env ${envName(flag)}]`), `--${flag}: ${entry(help, flag)}`);
    assert.match(entry(help, 'trace'), /NO_COLOR/);
  }
  assert.ok(!server.stdout.includes('--quiet'), 'the server has no connection log to quiet');
});

test('--metrics PORT: the server prints the URL (on 127.0.0.1), serves /metrics there, and the counters move with a visitor; a bad address is a usage error', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(echo);
  try {
    const publicPort = await freePublicPort();
    const server = startCli(serverArgs(publicPort, ['--metrics', '0']), {}, live);
    const [, controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING,
      'the server to listen',
    );
    const [, url = ''] = await waitForOutput(
      server,
      'stdout',
      /^Prometheus metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m,
      'the metrics URL',
    );
    const scrape = async (): Promise<string> => {
      const response = await fetch(url);
      assert.equal(response.status, 200);
      return response.text();
    };
    assert.match(await scrape(), /^burrow_visitor_connections_total 0$/m);
    const client = startCli(clientArgs(local.port, controlPort, dataPort, ['--quiet']), {}, live);
    await waitForOutput(client, 'stdout', FORWARDING, 'the client to forward');
    const payload = pseudoRandomBytes(1000, 7);
    const visitor = await connectVisitor(publicPort);
    visitor.end(payload);
    assertSameBytes(await readAll(visitor), payload, 'the echo');
    let text = '';
    for (let i = 0; i < 200 && !/^burrow_visitor_bytes_total\{direction="out"\} 1000$/m.test(text); i++)
      text = await scrape();
    assert.match(text, /^burrow_visitor_connections_total 1$/m);
    assert.match(text, /^burrow_visitor_bytes_total\{direction="in"\} 1000$/m);
    assert.match(text, /^burrow_visitor_bytes_total\{direction="out"\} 1000$/m);
    assert.match(text, /^burrow_clients 1$/m);
    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    const bad = await runCli(['server', '--metrics', 'nowhere']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--metrics: "nowhere" is not PORT, HOST:PORT or \[IPv6\]:PORT/);
  } finally {
    await killAll(live);
    await local.close();
  }
});
