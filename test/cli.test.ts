// The real `burrow` command as a child process (node --import tsx cli/main.ts): usage
// errors (exit 2), runtime errors (exit 1, one line, no stack), and a full tunnel
// configured only through BURROW_* variables, stopped with SIGINT (exit 0). Its help is
// in cli-help.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
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
