// HTTP tunnels through the real `burrow` command (child processes, node --import tsx
// cli/main.ts): the help of the new flags, usage errors, and a relay with an HTTP port on
// port 0 with clients that open HTTP tunnels by name, visited with Node's http client. The
// startup line says which HTTP port the relay got; the client prints a Forwarding line with
// the relay's URL and a request log; the relay prints a line for each page it answers.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { test } from 'node:test';
import { envName } from '../cli/args.ts';
import {
  interrupt,
  jsonLines,
  killAll,
  lines,
  LISTENING,
  loopbackClientArgs,
  loopbackServerArgs,
  runCli,
  startCli,
  untilJson,
  waitForOutput,
  type Cli,
} from './child.ts';
import { echo, HOST, listenLocal, request, within } from './helpers.ts';
import { freePublicPort } from './raw.ts';

/** The server's line that says where HTTP tunnels are served, with the port it got. */
const HTTP_LINE = /^HTTP tunnels on http:\/\/\*\.localhost:(\d+)$/m;
const TIME = '[0-9]{2}:[0-9]{2}:[0-9]{2}';
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A local HTTP service on 127.0.0.1:0 that answers `hello <path>` and closes its sockets
 * when closed. */
async function helloService(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => res.end(`hello ${req.url ?? ''}`));
  server.listen(0, HOST);
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** GET `path` from the relay's HTTP `port` with `Host: <host>`, as a visitor would (no keep-alive). */
function visit(port: number, host: string, path = '/'): Promise<{ status: number; body: string }> {
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.get({ host: HOST, port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return within(answer, 10_000, `an answer from ${host}`);
}

test('server --help lists the HTTP flags in their own group, each with its BURROW_* variable; client --help its four', async () => {
  const [server, client] = await Promise.all([runCli(['server', '--help']), runCli(['client', '--help'])]);
  assert.equal(server.code, 0, server.stderr);
  assert.equal(client.code, 0, client.stderr);
  const group = server.stdout.slice(server.stdout.indexOf('HTTP tunnels:\n'), server.stdout.indexOf('Output:\n'));
  for (const flag of [
    'http-port',
    'https-port',
    'https-cert',
    'https-key',
    'domain',
    'reserved-names',
    'max-header-size',
    'header-timeout',
    'keepalive-timeout',
    'max-requests-per-tunnel',
  ]) {
    assert.match(group, new RegExp(`^ {6}--${flag} `, 'm'), `--${flag} in the HTTP group`);
    assert.ok(group.replace(/\s+/g, ' ').includes(`[env ${envName(flag)}]`), `--${flag} shows ${envName(flag)}`);
  }
  assert.match(group.replace(/\s+/g, ' '), /\[default: localhost\]/);
  const flat = client.stdout.replace(/\s+/g, ' ');
  for (const flag of ['http', 'name', 'auth', 'host-header'])
    assert.ok(flat.includes(`[env ${envName(flag)}]`), `client --${flag} shows ${envName(flag)}`);
  assert.match(flat, /http:3000 or tcp:3000/);
});

test('usage errors of the HTTP flags: exit 2, one line and the hint, before anything starts', async () => {
  const cases: Array<[string[], string]> = [
    [
      ['server', '--https-port', '0'],
      '--https-port without --https-cert gets its certificates from an ACME CA, which checks a challenge on the HTTP port: give --http-port too (80 for a real CA), or --https-cert FILE and --https-key FILE',
    ],
    [
      ['server', '--domain', 'relay.example.com'],
      '--domain is for HTTP tunnels, which need --http-port N or --https-port N too',
    ],
    [
      [
        'server',
        '--http-port',
        '0',
        '--https-port',
        '0',
        '--https-cert',
        '/nonexistent/cert.pem',
        '--https-key',
        '/nonexistent/key.pem',
      ],
      "--https-cert: cannot read /nonexistent/cert.pem: ENOENT: no such file or directory, open '/nonexistent/cert.pem'",
    ],
    [
      ['client', '3000', '--name', 'demo'],
      '--name is for HTTP tunnels, and this client has none: add --http, or write the port as http:3000',
    ],
    [
      ['client', '3000', '4000', '--http', '--name', 'demo'],
      '--name names one HTTP tunnel, and this client has 2: give one HTTP port with a name (or run a client per name; the others get random names)',
    ],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(args)));
  results.forEach((result, i) => {
    const [args, error] = cases[i] ?? assert.fail('a case per result');
    const command = args[0] ?? '';
    assert.deepEqual(
      { code: result.code, stdout: result.stdout, stderr: lines(result.stderr) },
      { code: 2, stdout: '', stderr: [`burrow: ${error}`, `Run 'burrow ${command} --help' for usage.`] },
      args.join(' '),
    );
  });
});

test('end to end, as text: the relay on --http-port 0 says its port; a client --http --name demo forwards; requests are logged on both sides', async () => {
  const live = new Set<Cli>();
  const service = await helloService();
  try {
    const server = startCli(
      ['server', '--bind', HOST, '--control-port', '0', '--data-port', '0', '--http-port', '0'],
      {},
      live,
    );
    const [, controlPort = '', dataPort = ''] = await waitForOutput(
      server,
      'stdout',
      LISTENING,
      'the server to listen',
    );
    const [, httpPort = ''] = await waitForOutput(server, 'stdout', HTTP_LINE, 'the server to say its HTTP port');
    assert.notEqual(Number(httpPort), 0, 'the port the system picked, not 0');
    assert.deepEqual(lines(server.stdout).slice(0, 2)[1], `HTTP tunnels on http://*.localhost:${httpPort}`);

    const options = ['--http', '--name', 'demo', '--no-state-file'];
    const client = startCli(loopbackClientArgs(service.port, { controlPort, dataPort }, options), {}, live);
    const url = `http://demo.localhost:${httpPort}`;
    await waitForOutput(client, 'stdout', /^Forwarding .*$/m, 'the client to forward');
    assert.equal(client.stdout, `Forwarding ${url} -> ${HOST}:${service.port}\n`);

    const answer = await visit(Number(httpPort), 'demo.localhost', '/api/items?x=1');
    assert.deepEqual(answer, { status: 200, body: 'hello /api/items?x=1' });
    const logged = new RegExp(`^${TIME} GET /api/items\\?x=1 200 \\d+ ms 20 B$`, 'm');
    await waitForOutput(client, 'stdout', logged, 'the request log line');

    // A name nobody has: the relay answers 404 itself, and says so on its stdout.
    const missing = await visit(Number(httpPort), 'nobody.localhost');
    assert.equal(missing.status, 404);
    const page = new RegExp(
      `^${TIME} 404 GET nobody\\.localhost/ from 127\\.0\\.0\\.1:\\d+: no tunnel is open at nobody\\.localhost\\.$`,
      'm',
    );
    await waitForOutput(server, 'stdout', page, 'the page line');
    assert.match(
      server.stdout,
      new RegExp(
        `^${TIME} client control#1 \\(${escape(HOST)}\\) opened ${escape(url)} \\(its port ${service.port}\\)$`,
        'm',
      ),
    );

    assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
    assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });
    assert.equal(lines(client.stdout).length, 2, client.stdout);
  } finally {
    await killAll(live);
    await service.close();
  }
});

test('end to end, as JSON: the listening event names the HTTP port; an HTTP and a TCP tunnel on one client; request and page events; --quiet logs none', async () => {
  const live = new Set<Cli>();
  const service = await helloService();
  const tcpService = await listenLocal(echo);
  try {
    const rangePort = await freePublicPort();
    const server = startCli(loopbackServerArgs(`${rangePort}-${rangePort}`, ['--http-port', '0', '--json']), {}, live);
    const listening = await untilJson(server, (e) => e.event === 'listening', 'the server to listen');
    const { controlPort, dataPort } = listening as { controlPort: number; dataPort: number };
    const httpInfo = listening.http as { domain: string; httpPort: number };
    assert.equal(httpInfo.domain, 'localhost');
    assert.ok(httpInfo.httpPort > 0, JSON.stringify(listening));
    const ports = { controlPort: String(controlPort), dataPort: String(dataPort) };

    // http:PORT is an HTTP tunnel, the bare port a TCP one, on one client.
    const mixed = startCli(
      [
        'client',
        `http:${service.port}`,
        String(tcpService.port),
        ...['--server', HOST, '--local-host', HOST, '--control-port', ports.controlPort, '--data-port', ports.dataPort],
        ...['--name', 'jsondemo', '--json', '--no-state-file'],
      ],
      {},
      live,
    );
    const quiet = startCli(
      loopbackClientArgs(service.port, ports, ['--http', '--name', 'quietdemo', '--quiet', '--no-state-file']),
      {},
      live,
    );
    await waitForOutput(quiet, 'stdout', /^Forwarding /m, 'the quiet client to forward');
    await untilJson(mixed, (e) => e.event === 'tunnel' && e.name === undefined, 'the TCP tunnel');
    const tunnels = jsonLines(mixed.stdout, 'the JSON client').filter((e) => e.event === 'tunnel');
    const url = `http://jsondemo.localhost:${httpInfo.httpPort}`;
    assert.deepEqual(
      tunnels.map(({ time: _time, ...rest }) => rest),
      [
        { event: 'tunnel', url, publicPort: httpInfo.httpPort, local: `${HOST}:${service.port}`, name: 'jsondemo' },
        {
          event: 'tunnel',
          url: `tcp://${HOST}:${rangePort}`,
          publicPort: rangePort,
          local: `${HOST}:${tcpService.port}`,
        },
      ],
    );
    assert.equal((await request(rangePort, 'tcp still works')).toString(), 'tcp still works');

    assert.equal((await visit(httpInfo.httpPort, 'jsondemo.localhost', '/j')).body, 'hello /j');
    const logged = await untilJson(mixed, (e) => e.event === 'request', 'the request event');
    const { time: _time, durationMs, ...fields } = logged;
    assert.equal(typeof durationMs, 'number');
    assert.deepEqual(fields, {
      event: 'request',
      method: 'GET',
      path: '/j',
      status: 200,
      bytesIn: 0,
      bytesOut: 8,
      visitor: HOST,
      url,
      local: `${HOST}:${service.port}`,
      aborted: false,
    });

    assert.equal((await visit(httpInfo.httpPort, 'quietdemo.localhost', '/q')).body, 'hello /q');
    assert.equal((await visit(httpInfo.httpPort, 'nobody.localhost', '/n')).status, 404);
    const page = await untilJson(server, (e) => e.event === 'page', 'the page event');
    assert.deepEqual(
      { ...page, time: undefined, visitor: undefined },
      {
        event: 'page',
        time: undefined,
        status: 404,
        method: 'GET',
        host: 'nobody.localhost',
        path: '/n',
        visitor: undefined,
        text: 'no tunnel is open at nobody.localhost.',
      },
    );
    assert.match(String(page.visitor), /^127\.0\.0\.1:\d+$/);

    for (const [cli, what] of [
      [quiet, 'the quiet client'],
      [mixed, 'the JSON client'],
      [server, 'the server'],
    ] as const)
      assert.deepEqual(await interrupt(cli, what), { code: 0, signal: null });
    assert.equal(
      quiet.stdout,
      `Forwarding http://quietdemo.localhost:${httpInfo.httpPort} -> ${HOST}:${service.port}\n`,
      'no request log with --quiet',
    );
  } finally {
    await killAll(live);
    await service.close();
    await tcpService.close();
  }
});
