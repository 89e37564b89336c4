// The real `burrow` command as a child process (node --import tsx cli/main.ts): help,
// usage errors (exit 2), runtime errors (exit 1, one line, no stack), and a full tunnel
// configured only through BURROW_* variables, stopped with SIGINT (exit 0).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envName } from '../cli/args.ts';
import { EXAMPLES } from '../cli/examples.ts';
import { LIMIT_FLAGS } from '../cli/options.ts';
import { DEFAULT_MAX_CONNECTIONS, SERVER_DEFAULTS } from '../index.ts';
import {
  CHILD_MS,
  FORWARDING,
  interrupt,
  jsonLines,
  killAll,
  LISTENING,
  lines,
  loopbackClientArgs,
  OPEN_RELAY_NOTICE,
  runCli,
  startCli,
  untilJson,
  waitForOutput,
  type Cli,
  loopbackServerArgs,
} from './child.ts';
import { echo, HOST, listenLocal, pseudoRandomBytes, replyOnEnd, request, within } from './helpers.ts';
import { freePort, freePublicPort, holdPort } from './raw.ts';

const noStack = (text: string): void => {
  assert.ok(!text.split('\n').some((line) => line.startsWith('    at ')), `no stack trace expected in: ${text}`);
};
/** The last line of a usage error: the help of the command, once yargs knows it. */
const usageHint = (command?: 'server' | 'client' | 'local'): string =>
  `Run 'burrow ${command === undefined ? '' : `${command} `}--help' for usage.`;

/** What a SIGINT prints (README, "What happens when things go wrong"), default shutdown timeout. */
const CLIENT_CLOSING = 'burrow: closing; open connections get 10 s to finish (signal again to stop now)';
const FINISH = 'open connections get 10 s to finish (signal again to stop now)';
const serverShuttingDown = (clients: number): string =>
  clients === 0
    ? `burrow: shutting down; ${FINISH}`
    : `burrow: shutting down: told ${clients} client${clients === 1 ? '' : 's'} to reconnect later; ${FINISH}`;

/** Help text with its wrapping undone: every run of whitespace is one space. */
const flat = (text: string): string => text.replace(/\s+/g, ' ');

/** The help entry of `--flag`, wrapping undone, without the flag itself. yargs starts a
 * flag's entry at column 6 (`      --flag`, or `  -h, --help`) and indents its wrapped
 * lines further, so the entry ends at the next line indented 6 or less (a flag, a
 * section, a blank line); a `--flag` named in a wrapped description does not end it. */
function helpEntry(help: string, flag: string): string {
  const rows = help.split('\n');
  const start = rows.findIndex((row) => row.startsWith(`      --${flag} `) || row === `      --${flag}`);
  assert.notEqual(start, -1, `--${flag} is listed in:\n${help}`);
  const length = rows.slice(start + 1).findIndex((row) => !/^ {7,}\S/.test(row));
  const entry = rows.slice(start, length === -1 ? undefined : start + 1 + length).join(' ');
  return flat(entry).trim().slice(`--${flag}`.length).trim();
}

/** The type tags of a help entry: `[number]`, `[string]`, ... (one, for every flag). */
const typeTags = (entry: string): string[] => entry.match(/\[(?:string|number|boolean|array|count)\]/g) ?? [];

/** Asserts that every one of `flags` shows exactly the type tag `[tag]` in `help`. */
function assertTypeTag(help: string, tag: string, flags: string[]): void {
  for (const flag of flags)
    assert.deepEqual(
      typeTags(helpEntry(help, flag)),
      [`[${tag}]`],
      `--${flag} shows [${tag}]:\n${helpEntry(help, flag)}`,
    );
}

test('--help exits 0 and lists the commands, local as bore-compatible, and examples', async () => {
  const result = await runCli(['--help']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  assert.match(result.stdout, /^ {2}burrow server +Run the relay/m);
  assert.match(result.stdout, /^ {2}burrow client <local-port\.\.> +Expose local port\(s\) through a relay/m);
  assert.match(
    result.stdout,
    /^ {2}burrow local <local-port> +Expose one local port, bore-compatible: --to HOST, --port N$/m,
  );
  // A server, a client, and a client to a relay with TLS.
  const examples = result.stdout.slice(result.stdout.indexOf('\nExamples:\n'));
  assert.match(examples, /^ {2}burrow server +\S/m);
  assert.match(examples, /^ {2}burrow client 3000 +\S/m);
  assert.match(examples, /^ {2}burrow client 3000 --server relay\.example\.com --tls-fingerprint /m);
});

/** The sections of a help text in order (`Connection:`, ..., `Examples:`), each with the
 * flags (or positionals) it lists, in order. */
function helpSections(help: string): Array<{ name: string; entries: string[] }> {
  const sections: Array<{ name: string; entries: string[] }> = [];
  for (const row of help.split('\n')) {
    if (/^[A-Z][A-Za-z ]*:$/.test(row)) sections.push({ name: row, entries: [] });
    const entry = /^ {2}(?:-[a-z], )?--([a-z-]+)|^ {6}--([a-z-]+)|^ {2}([a-z-]+) {2}/.exec(row);
    const name = entry?.[1] ?? entry?.[2] ?? entry?.[3];
    if (name !== undefined) sections.at(-1)?.entries.push(name);
  }
  return sections;
}

test('--help reads like a manual: connection flags first, security after, --help last; no bogus default on the local port', async () => {
  const [client, server, local] = await Promise.all([
    runCli(['client', '--help']),
    runCli(['server', '--help']),
    runCli(['local', '--help']),
  ]);
  for (const result of [client, server, local])
    assert.deepEqual({ code: result.code, stderr: result.stderr }, { code: 0, stderr: '' });

  const clientSections = helpSections(client.stdout);
  assert.deepEqual(
    clientSections.map(({ name }) => name),
    ['Positionals:', 'Connection:', 'Tunnels:', 'Staying up:', 'Output:', 'Security:', 'Options:', 'Examples:'],
  );
  assert.deepEqual(clientSections[1]?.entries, [
    'server',
    'control-port',
    'data-port',
    'proxy',
    'websocket-ping',
    'local-host',
    'remote-port',
  ]);
  assert.deepEqual(clientSections.at(-2)?.entries, ['help', 'version']);
  // [required] and nothing else: a default of [] contradicted it.
  assert.match(client.stdout, /^ {2}local-port +Local port\(s\) to expose +\[array\] \[required\]$/m);
  assert.match(
    helpEntry(client.stdout, 'server'),
    /HOST, HOST:PORT, \[IPv6\]:PORT, tcp:\/\/HOST\[:PORT\], or wss:\/\/HOST\[:PORT\] \(or ws:\/\/\) over WebSocket \(PORT: its control port; over WebSocket, its HTTP\(S\) port\)/,
  );

  const serverSections = helpSections(server.stdout);
  assert.deepEqual(
    serverSections.map(({ name }) => name),
    ['Listening:', 'Timeouts:', 'Limits:', 'HTTP tunnels:', 'Output:', 'Security:', 'Options:', 'Examples:'],
  );
  assert.deepEqual(serverSections[0]?.entries, ['bind', 'control-port', 'data-port', 'port-range']);

  // burrow local: bore's flags first, with bore's short forms.
  const localSections = helpSections(local.stdout);
  assert.deepEqual(localSections.slice(0, 2), [
    { name: 'Positionals:', entries: ['local-port'] },
    {
      name: 'Connection:',
      entries: ['to', 'port', 'local-host', 'control-port', 'data-port', 'proxy', 'websocket-ping'],
    },
  ]);
  assert.match(local.stdout, /^ {2}-t, --to +Address of the burrow server/m);
  assert.match(local.stdout, /^ {2}-p, --port +Public port to ask for, as --remote-port of burrow client/m);
  assert.match(local.stdout, /^ {2}-l, --local-host +Host of the local service/m);
  assert.match(local.stdout, /bore-compatible/);
  assert.match(local.stdout, /^ {2}local-port +Local port to expose +\[string\] \[required\]$/m);
});

test('--help at width 100: every example command on one line, unbroken, with its text; no line wider than 100', async () => {
  const helps = await Promise.all(
    (['top', 'server', 'client', 'local'] as const).map(async (which) => {
      const result = await runCli(which === 'top' ? ['--help'] : [which, '--help']);
      assert.equal(result.code, 0, result.stderr);
      return [which, result.stdout] as const;
    }),
  );
  for (const [which, help] of helps) {
    const rows = help.split('\n');
    for (const row of rows)
      assert.ok(row.trimEnd().length <= 100, `${which} --help: a row of ${row.trimEnd().length} columns: ${row}`);
    const examples = rows.slice(rows.indexOf('Examples:'));
    assert.ok(examples.length > 1, `${which} --help has examples`);
    for (const [command, text] of EXAMPLES[which]) {
      const typed = command.replace('$0', 'burrow');
      assert.ok(
        examples.some(
          (row) => row.startsWith(`  ${typed}`) && (row.length === typed.length + 2 || row[typed.length + 2] === ' '),
        ),
        `${which} --help shows "${typed}" on one line:\n${examples.join('\n')}`,
      );
      assert.ok(flat(examples.join('\n')).includes(flat(text)), `${which} --help explains "${typed}": ${text}`);
    }
  }
});

/** `burrow <command> --help` exits 0, shows every one of `flags` with its BURROW_* variable,
 * and none of `absent`; returns the help text. */
async function assertHelpFlags(command: 'server' | 'client', flags: string[], absent: string[]): Promise<string> {
  const result = await runCli([command, '--help']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  for (const flag of flags) {
    assert.ok(
      helpEntry(result.stdout, flag).includes(`[env ${envName(flag)}]`),
      `--${flag} shows [env ${envName(flag)}]:\n${result.stdout}`,
    );
  }
  for (const other of absent) {
    assert.ok(!result.stdout.includes(other), `${command} help does not list ${other}`);
  }
  return result.stdout;
}

/** Flags both commands take (README: "Both commands also take ..."). */
const LIVENESS_FLAGS = ['heartbeat-interval', 'heartbeat-timeout', 'shutdown-timeout'];
const LIMITS = Object.keys(LIMIT_FLAGS);

test('server --help lists every server flag with its BURROW_* variable', async () => {
  const help = await assertHelpFlags(
    'server',
    [
      'control-port',
      'data-port',
      'bind',
      'port-range',
      'visitor-timeout',
      'handshake-timeout',
      'lease-grace',
      ...LIVENESS_FLAGS,
      ...LIMITS,
      'trace',
    ],
    [
      '--remote-port',
      '--local-host',
      '--server ',
      '--reconnect',
      '--no-reconnect',
      '--max-connections ',
      '--state-file',
    ],
  );
  // 0 turns leases off (README), and the help says so.
  assert.match(helpEntry(help, 'lease-grace'), /\(0: none\)/);
  // The per-IP limits, each with its default; both tunnel caps count leased ports.
  assert.match(helpEntry(help, 'max-tunnels'), /^Public ports the whole server may hold, leased ones included /);
  assert.match(helpEntry(help, 'max-tunnels-per-ip'), /^Public ports one IP address may hold, leased ones included /);
  assert.ok(
    helpEntry(help, 'max-tunnels-per-ip').endsWith(`[default: ${SERVER_DEFAULTS.maxTunnelsPerIp}]`),
    helpEntry(help, 'max-tunnels-per-ip'),
  );
  assert.match(
    helpEntry(help, 'max-handshakes-per-ip'),
    /^Data connections from one IP address still in their handshake /,
  );
  assert.ok(
    helpEntry(help, 'max-handshakes-per-ip').endsWith(`[default: ${SERVER_DEFAULTS.maxHandshakesPerIp}]`),
    helpEntry(help, 'max-handshakes-per-ip'),
  );
});

test('server --help: ports, seconds and limits show [number]; addresses and ranges [string]', async () => {
  const result = await runCli(['server', '--help']);
  assert.equal(result.code, 0, result.stderr);
  const seconds = ['visitor-timeout', 'handshake-timeout', 'lease-grace', ...LIVENESS_FLAGS];
  assertTypeTag(result.stdout, 'number', ['control-port', 'data-port', ...seconds, ...LIMITS]);
  assertTypeTag(result.stdout, 'string', ['bind', 'port-range', 'metrics', 'secret-file', 'tls-dir']);
  assertTypeTag(result.stdout, 'boolean', ['trace', 'tls']);
});

test('client --help lists every client flag with its BURROW_* variable, --reconnect and --no-reconnect included', async () => {
  const help = await assertHelpFlags(
    'client',
    [
      'control-port',
      'data-port',
      'server',
      'local-host',
      'remote-port',
      'reconnect',
      'max-connections',
      'state-file',
      ...LIVENESS_FLAGS,
      'trace',
    ],
    ['--bind', '--port-range', '--visitor-timeout', '--lease-grace', '--max-tunnels', '--max-handshakes-per-ip'],
  );
  // Reconnecting is the default; the help names the flag that turns it off.
  assert.match(helpEntry(help, 'reconnect'), /--no-reconnect/);
  assert.match(helpEntry(help, 'reconnect'), /\[default: on\]/);
  assert.match(
    helpEntry(help, 'max-connections'),
    /^Visitor connections served at once; more are turned away at once /,
  );
  assert.ok(
    helpEntry(help, 'max-connections').endsWith(`[default: ${DEFAULT_MAX_CONNECTIONS}]`),
    helpEntry(help, 'max-connections'),
  );
  // The lease file: what it is for, how to keep none, where it goes by default.
  const stateFile = helpEntry(help, 'state-file');
  assert.match(
    stateFile,
    /^Where to keep lease tokens so a restarted client gets its --remote-port back at once \(mode 0600\); --no-state-file to keep none /,
  );
  assert.ok(
    stateFile.endsWith('[default: $XDG_STATE_HOME/burrow/leases.json or ~/.local/state/burrow/leases.json]'),
    stateFile,
  );
});

test('client --help: ports, seconds and --max-connections show [number]; hosts and the state file [string]; repeatable flags [array]', async () => {
  const result = await runCli(['client', '--help']);
  assert.equal(result.code, 0, result.stderr);
  assertTypeTag(result.stdout, 'number', ['control-port', 'data-port', 'max-connections', ...LIVENESS_FLAGS]);
  assertTypeTag(result.stdout, 'string', ['server', 'local-host', 'state-file', 'tls-fingerprint']);
  // yargs shows one tag: for a flag that repeats, [array] is the one that says so.
  assertTypeTag(result.stdout, 'array', ['remote-port', 'proxy-protocol']);
  assertTypeTag(result.stdout, 'boolean', ['reconnect', 'quiet']);
});

test('a numeric flag reaches the strict validators as typed: "1e3" and "0x10" are usage errors (exit 2), not 1000 and 16', async () => {
  // Each run also has a bad value checked later (BURROW_TRACE comes last): were yargs ever
  // to coerce "1e3" to 1000, the run would still end at once, on that value, rather than
  // start a server or client.
  const later = { BURROW_TRACE: 'bogus' };
  const cases = [
    { args: ['server', '--control-port', '1e3'], error: '--control-port: "1e3" is not a port number (0-65535)' },
    {
      args: ['server', '--max-tunnels-per-ip', '0x10', '--max-handshakes-per-ip', '1e3'],
      error: '--max-tunnels-per-ip: "0x10" is not a whole number of at least 1',
    },
    {
      args: ['client', '3000', '--remote-port', '0x10'],
      error: '--remote-port: "0x10" is not a port number (0-65535)',
    },
    // --no-state-file is a known flag (strict mode lets it through).
    {
      args: ['client', '3000', '--no-state-file', '--max-connections', '1e3'],
      error: '--max-connections: "1e3" is not a whole number of at least 1',
    },
  ];
  const results = await Promise.all(cases.map(({ args }) => runCli(args, later)));
  results.forEach((result, i) => {
    const { args, error } = cases[i] ?? assert.fail('a result for every case');
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stdout, '');
    assert.deepEqual(lines(result.stderr), [`burrow: ${error}`, usageHint(args[0] === 'server' ? 'server' : 'client')]);
  });
});

test('no command: exit 2, one error line (plus the usage hint), nothing on stdout', async () => {
  const result = await runCli([]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, '');
  assert.deepEqual(lines(result.stderr), ['burrow: give a command: server, client or local', usageHint()]);
});

test("an unknown flag: exit 2 naming it, pointing to the command's own help", async () => {
  const cases: Array<[string[], string, 'server' | 'client' | 'local']> = [
    [['server', '--bogus'], 'unknown option --bogus', 'server'],
    [['client', '3000', '--bogus'], 'unknown option --bogus', 'client'],
    [['local', '3000', '--bogus'], 'unknown option --bogus', 'local'],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  results.forEach((result, i) => {
    const [args, error, command] = cases[i] ?? assert.fail('a case per result');
    assert.deepEqual(
      { code: result.code, stdout: result.stdout, stderr: lines(result.stderr) },
      { code: 2, stdout: '', stderr: [`burrow: ${error}`, usageHint(command)] },
      args.join(' '),
    );
  });
});

test('a mistyped flag or command: "did you mean"; --port on the client (localtunnel\'s habit) says how ports are given', async () => {
  const portHint =
    'give the local port as an argument: burrow client 3000 (--port is not a flag of burrow client; --remote-port asks for a public port)';
  const cases: Array<[string[], string, 'server' | 'client' | 'local' | undefined]> = [
    [['client', '3000', '--sever', 'relay.example.com'], 'unknown option --sever (did you mean --server?)', 'client'],
    [
      ['client', '3000', '--remote-prot', '8080', '--tls-fingerprnt', 'AB'],
      'unknown options --remote-prot (did you mean --remote-port?), --tls-fingerprnt (did you mean --tls-fingerprint?)',
      'client',
    ],
    [['client', '3000', '--no-recconect'], 'unknown option --no-recconect (did you mean --no-reconnect?)', 'client'],
    [['client', '3000', '--to', 'relay'], 'unknown option --to (did you mean --server?)', 'client'],
    [['server', '--contol-port', '7000'], 'unknown option --contol-port (did you mean --control-port?)', 'server'],
    [['local', '3000', '--server', 'relay'], 'unknown option --server (did you mean --to?)', 'local'],
    [['client', '--port', '3000'], portHint, 'client'],
    [['client', '3000', '--port', '8080'], portHint, 'client'],
    [['client'], 'give the local port(s) to expose as arguments: burrow client 3000 [5432 ...]', 'client'],
    [
      ['local', '--to', 'relay'],
      'give the local port as an argument: burrow local 3000 --to relay.example.com',
      'local',
    ],
    [
      ['local', '3000', '4000'],
      'unexpected argument 4000: burrow local exposes one port (burrow client 3000 4000 exposes several)',
      'local',
    ],
    [['clinet', '3000'], 'unknown command clinet (did you mean client?)', undefined],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  results.forEach((result, i) => {
    const [args, error, command] = cases[i] ?? assert.fail('a case per result');
    assert.deepEqual(
      { code: result.code, stdout: result.stdout, stderr: lines(result.stderr) },
      { code: 2, stdout: '', stderr: [`burrow: ${error}`, usageHint(command)] },
      args.join(' '),
    );
  });
});

test('server --port-range 9-3: exit 2 naming --port-range', async () => {
  const result = await runCli(['server', '--port-range', '9-3']);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, '');
  assert.deepEqual(lines(result.stderr), [
    'burrow: --port-range: "9-3" is not a port range like 1024-65535',
    usageHint('server'),
  ]);
  noStack(result.stderr);
});

test('a bad BURROW_CONTROL_PORT: exit 2 naming the variable', async () => {
  const result = await runCli(['server'], { BURROW_CONTROL_PORT: 'abc' });
  assert.equal(result.code, 2);
  assert.equal(result.stdout, '');
  assert.deepEqual(lines(result.stderr), [
    'burrow: BURROW_CONTROL_PORT: "abc" is not a port number (0-65535)',
    usageHint('server'),
  ]);
});

test('server on a control port already in use: exit 1, one line, no stack', async () => {
  const taken = await holdPort();
  try {
    const result = await runCli(['server', '--bind', HOST, '--control-port', String(taken.port), '--data-port', '0']);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, `burrow: cannot listen on control ${HOST}:${taken.port}: address already in use\n`);
    noStack(result.stderr);
  } finally {
    await taken.close();
  }
});

test('client with no server listening: exit 1, one line "cannot connect", no stack (with --no-reconnect too)', async () => {
  const port = await freePort();
  // Reconnecting is for a server lost after start; a start that fails exits either way.
  // (--no-reconnect is an accepted flag: an unknown one would exit 2.)
  for (const extra of [[], ['--no-reconnect']]) {
    const result = await runCli(['client', '3000', '--server', HOST, '--control-port', String(port), ...extra]);
    assert.equal(result.code, 1, `${extra.join(' ')}: ${result.stderr}`);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, `burrow: cannot connect to burrow server at ${HOST}:${port}: connection refused\n`);
    noStack(result.stderr);
  }
});

test('env only: server and client configured by BURROW_* carry a request; a second client asking for the taken port gets port-in-use; SIGINT exits 0', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(replyOnEnd((req) => Buffer.concat([Buffer.from('reply:'), req])));
  try {
    const rangePort = await freePublicPort();
    const server = startCli(
      ['server'],
      {
        BURROW_BIND: HOST,
        BURROW_CONTROL_PORT: '0',
        BURROW_DATA_PORT: '0',
        BURROW_PORT_RANGE: `${rangePort}-${rangePort}`,
      },
      live,
    );
    const listening = await waitForOutput(server, 'stdout', LISTENING, 'the server to listen');
    const [, controlPort = '', dataPort = '', lo, hi] = listening;
    assert.equal(lo, String(rangePort));
    assert.equal(hi, String(rangePort));
    assert.notEqual(Number(controlPort), 0);
    assert.notEqual(Number(dataPort), 0);

    const clientEnv = {
      BURROW_SERVER: HOST,
      BURROW_CONTROL_PORT: controlPort,
      BURROW_DATA_PORT: dataPort,
      BURROW_LOCAL_HOST: HOST,
    };
    const client = startCli(['client', String(local.port)], clientEnv, live);
    const forwarding = await waitForOutput(client, 'stdout', FORWARDING, 'the client to forward');
    const publicPort = Number(forwarding[1]);
    assert.equal(publicPort, rangePort, 'the only port of the range');
    assert.equal(Number(forwarding[2]), local.port);
    assert.equal(client.stdout, `Forwarding tcp://${HOST}:${publicPort} -> ${HOST}:${local.port}\n`);

    assert.equal((await request(publicPort, 'hello through the cli')).toString(), 'reply:hello through the cli');
    const payload = pseudoRandomBytes(200_000, 7);
    assert.deepEqual(await request(publicPort, payload), Buffer.concat([Buffer.from('reply:'), payload]));

    // Another client asking (through BURROW_REMOTE_PORT) for the port the first one holds.
    const second = startCli(
      ['client', String(local.port)],
      { ...clientEnv, BURROW_REMOTE_PORT: String(publicPort) },
      live,
    );
    assert.deepEqual(await within(second.closed, CHILD_MS, 'the second client to exit'), { code: 1, signal: null });
    assert.equal(second.stdout, '');
    assert.equal(
      second.stderr,
      `burrow: server refused to expose port ${local.port}: port ${publicPort} is taken (port-in-use)\n`,
    );
    noStack(second.stderr);

    // The first tunnel is unaffected.
    assert.equal((await request(publicPort, 'still there')).toString(), 'reply:still there');

    // SIGINT is a graceful close: one line on stderr each, then exit 0. The client has left
    // (with GOAWAY) by the time the server is stopped, so the server tells 0 clients.
    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.equal(client.stderr, `${CLIENT_CLOSING}\n`);
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    assert.equal(server.stderr, `${OPEN_RELAY_NOTICE}\n${serverShuttingDown(0)}\n`);
    // The listening line, then the server's log of its clients: the first client came,
    // opened the port and left; the second came and left after its refusal.
    const [listeningLine, ...clientLines] = lines(server.stdout);
    assert.equal(
      listeningLine,
      `burrow server listening on ${HOST} control port ${controlPort}, data port ${dataPort}; public ports ${rangePort}-${rangePort}`,
    );
    const at = '[0-9]{2}:[0-9]{2}:[0-9]{2}';
    const client1 = clientLines.filter((line) => line.includes(' control#1 '));
    assert.equal(client1.length, 3, clientLines.join('\n'));
    assert.match(client1[0] ?? '', new RegExp(`^${at} client control#1 connected from ${HOST}$`));
    assert.match(
      client1[1] ?? '',
      new RegExp(
        `^${at} client control#1 \\(${HOST}\\) opened public port ${publicPort} \\(its port ${local.port}\\)$`,
      ),
    );
    assert.match(
      client1[2] ?? '',
      new RegExp(
        `^${at} client control#1 \\(${HOST}\\) left: goaway, with 1 tunnel$|^${at} client control#1 \\(${HOST}\\) left: goaway$`,
      ),
    );
    assert.equal(clientLines.length, 5, clientLines.join('\n'));
  } finally {
    await killAll(live);
    await local.close();
  }
});

test('client --remote-port held by another client: exit 1, one line port-in-use', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(replyOnEnd((req) => req));
  try {
    const rangePort = await freePublicPort();
    const server = startCli(loopbackServerArgs(`${rangePort}-${rangePort}`), {}, live);
    const [, controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING,
      'the server to listen',
    );
    const common = ['--server', HOST, '--local-host', HOST, '--control-port', controlPort, '--data-port', dataPort];

    const first = startCli(['client', String(local.port), ...common], {}, live);
    const [, publicPort = ''] = await waitForOutput(first, 'stdout', FORWARDING, 'the first client to forward');
    assert.equal(publicPort, String(rangePort));

    const second = await runCli(['client', String(local.port), ...common, '--remote-port', publicPort]);
    assert.equal(second.code, 1, second.stderr);
    assert.equal(second.stdout, '');
    assert.equal(
      second.stderr,
      `burrow: server refused to expose port ${local.port}: port ${publicPort} is taken (port-in-use)\n`,
    );
    noStack(second.stderr);

    // The server is stopped first this time: it tells its one client to come back later.
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    assert.equal(server.stderr, `${OPEN_RELAY_NOTICE}\n${serverShuttingDown(1)}\n`);
    assert.deepEqual(await interrupt(first, 'the first client'), { code: 0, signal: null });
  } finally {
    await killAll(live);
    await local.close();
  }
});

test('client --remote-port held by a plain listener in the range: exit 1, one line port-in-use', async () => {
  const live = new Set<Cli>();
  const taken = await holdPort();
  try {
    const server = startCli(loopbackServerArgs(`${taken.port}-${taken.port}`), {}, live);
    const [, controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING,
      'the server to listen',
    );

    const result = await runCli([
      'client',
      '3000',
      '--server',
      HOST,
      '--control-port',
      controlPort,
      '--data-port',
      dataPort,
      '--remote-port',
      String(taken.port),
    ]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(
      result.stderr,
      `burrow: server refused to expose port 3000: port ${taken.port} is not available (EADDRINUSE) (port-in-use)\n`,
    );
    noStack(result.stderr);

    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    assert.equal(server.stderr, `${OPEN_RELAY_NOTICE}\n${serverShuttingDown(0)}\n`);
  } finally {
    await killAll(live);
    await taken.close();
  }
});

test('--no-reconnect: a server shutting down (GOAWAY) is said once, as text and as --json, and the client exits 1', async () => {
  const live = new Set<Cli>();
  const local = await listenLocal(echo);
  try {
    const server = startCli(['server', '--bind', HOST, '--control-port', '0', '--data-port', '0'], {}, live);
    const [, controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING,
      'the server to listen',
    );
    const options = ['--no-reconnect', '--no-state-file'];
    const text = startCli(loopbackClientArgs(local.port, { controlPort, dataPort }, options), {}, live);
    const json = startCli(loopbackClientArgs(local.port, { controlPort, dataPort }, [...options, '--json']), {}, live);
    await waitForOutput(text, 'stdout', FORWARDING, 'the text client to forward');
    await untilJson(json, (e) => e.event === 'tunnel', 'the JSON client to forward');

    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    assert.equal(server.stderr, `${OPEN_RELAY_NOTICE}\n${serverShuttingDown(2)}\n`);

    const lost = 'lost the server: the server is restarting or shutting down (GOAWAY)';
    assert.deepEqual(await within(text.closed, CHILD_MS, 'the text client to exit'), { code: 1, signal: null });
    assert.deepEqual(lines(text.stderr), [`burrow: ${lost}`]);
    noStack(text.stderr);
    assert.deepEqual(await within(json.closed, CHILD_MS, 'the JSON client to exit'), { code: 1, signal: null });
    assert.equal(json.stderr, '');
    const events = jsonLines(json.stdout, 'the JSON client').map(({ time: _time, ...rest }) => rest);
    assert.deepEqual(
      events.slice(1),
      [{ event: 'error', code: 'closed', message: lost }],
      'one fatal event, no "disconnected" before it',
    );
  } finally {
    await killAll(live);
    await local.close();
  }
});
