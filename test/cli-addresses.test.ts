// --server (and BURROW_SERVER, and `burrow local --to`) the way people type it: host,
// host:port, [v6]:port, ::1, [::1], tcp://host[:port]. Pure parsing first, then the real
// command against a real relay, reached through each form.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { format } from 'node:util';
import createDebug from 'debug';
import { parseServerAddress, SERVER_FORMS, type ServerAddress } from '../cli/address.ts';
import type { RawArgs } from '../cli/args.ts';
import { LOCAL_SPELLING, resolveClientOptions } from '../cli/client-options.ts';
import { UsageError } from '../cli/usage-error.ts';
import { FORWARDING, interrupt, killAll, lines, runCli, startCli, waitForOutput, type Cli } from './child.ts';
import { HOST, listenLocal, replyOnEnd, request } from './helpers.ts';
import { freePort, serverOn } from './raw.ts';

/** Asserts `fn` throws a one-line UsageError containing every one of `parts`. */
function assertUsageError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    for (const part of parts)
      assert.ok(
        error.message.includes(part),
        `message ${JSON.stringify(error.message)} should mention ${JSON.stringify(part)}`,
      );
    assert.ok(!error.message.includes('\n'), 'a usage error is one line');
    return true;
  });
}

describe('parseServerAddress', () => {
  test('every accepted form: host, host:port, IPv6 bare or in brackets, tcp:// URLs', () => {
    const cases: Array<[string, ServerAddress]> = [
      ['relay.example.com', { host: 'relay.example.com' }],
      ['localhost', { host: 'localhost' }],
      ['relay_1.internal', { host: 'relay_1.internal' }],
      ['relay.example.com.', { host: 'relay.example.com.' }],
      ['localhost:7835', { host: 'localhost', port: 7835 }],
      ['relay.example.com:9000', { host: 'relay.example.com', port: 9000 }],
      ['203.0.113.9', { host: '203.0.113.9' }],
      ['203.0.113.9:1', { host: '203.0.113.9', port: 1 }],
      ['relay:65535', { host: 'relay', port: 65535 }],
      // IPv6: bare (every colon is the address's), or in brackets with or without a port.
      ['::1', { host: '::1' }],
      ['2001:db8::1', { host: '2001:db8::1' }],
      ['2001:db8::1:7835', { host: '2001:db8::1:7835' }], // an address, not ::1 port 7835: brackets say that
      ['fe80::1%eth0', { host: 'fe80::1%eth0' }],
      ['[::1]', { host: '::1' }],
      ['[::1]:7835', { host: '::1', port: 7835 }],
      ['[2001:db8::1]:9000', { host: '2001:db8::1', port: 9000 }],
      ['[fe80::1%eth0]:7835', { host: 'fe80::1%eth0', port: 7835 }],
      // URLs: tcp://, any case, a trailing slash as copied from a browser bar.
      ['tcp://relay.example.com', { host: 'relay.example.com' }],
      ['tcp://relay.example.com:7835', { host: 'relay.example.com', port: 7835 }],
      ['TCP://relay:7835', { host: 'relay', port: 7835 }],
      ['tcp://relay:7835/', { host: 'relay', port: 7835 }],
      ['tcp://[::1]:7835', { host: '::1', port: 7835 }],
      ['tcp://[2001:db8::1]', { host: '2001:db8::1' }],
      ['tcp://203.0.113.9:7835', { host: '203.0.113.9', port: 7835 }],
      // Over WebSocket: the port is the relay's HTTP(S) port, not its control port.
      ['wss://relay.example.com', { host: 'relay.example.com', webSocket: 'wss://relay.example.com' }],
      ['wss://relay.example.com/', { host: 'relay.example.com', webSocket: 'wss://relay.example.com' }],
      ['WS://127.0.0.1:8080', { host: '127.0.0.1', webSocket: 'ws://127.0.0.1:8080' }],
      ['wss://[::1]:8443', { host: '::1', webSocket: 'wss://[::1]:8443' }],
      // Spaces around it (a variable written in a unit file) do not matter.
      [' relay:7835 ', { host: 'relay', port: 7835 }],
    ];
    for (const [text, address] of cases) assert.deepEqual(parseServerAddress(text), address, text);
  });

  test('every mistake is a usage error naming the source, quoting the value, saying why, and showing the accepted forms', () => {
    const cases: Array<[string, string]> = [
      // Another scheme.
      ['http://relay.example.com', "http:// is not burrow's protocol; give tcp://, ws:// or wss://"],
      ['https://relay.example.com:443', "https:// is not burrow's protocol; give tcp://, ws:// or wss://"],
      ['udp://relay', "udp:// is not burrow's protocol; give tcp://, ws:// or wss://"],
      ['wss://relay/x', 'a path has no meaning here'],
      ['wss://::1', 'in a URL an IPv6 address goes in brackets, like wss://[::1]:7835'],
      // A path.
      ['relay.example.com/tunnel', 'a path has no meaning here'],
      ['tcp://relay:7835/x', 'a path has no meaning here'],
      ['tcp://relay//', 'a path has no meaning here'],
      // No host.
      ['', 'no host'],
      ['   ', 'no host'],
      [':7835', 'no host'],
      ['tcp://', 'no host'],
      ['tcp://:7835', 'no host'],
      ['[]:7835', 'no host'],
      ['[]', 'no host'],
      // A bad port.
      ['relay:', 'no port after the colon'],
      ['[::1]:', 'no port after the colon'],
      ['tcp://relay:', 'no port after the colon'],
      ['relay:0', 'port 0 is not in 1-65535'],
      ['relay:65536', 'port 65536 is not in 1-65535'],
      ['relay:123456', 'port 123456 is not in 1-65535'],
      ['relay:abc', 'abc is not a port number'],
      ['relay:-1', '-1 is not a port number'],
      ['relay:1.5', '1.5 is not a port number'],
      ['relay:0x10', '0x10 is not a port number'],
      ['[::1]:7835x', '7835x is not a port number'],
      // Brackets: only around IPv6, and in pairs.
      ['[localhost]', 'only an IPv6 address goes in brackets'],
      ['[127.0.0.1]:7835', 'only an IPv6 address goes in brackets'],
      ['[nope::]:7835', 'only an IPv6 address goes in brackets'],
      ['[::1', 'unbalanced brackets'],
      ['::1]:7835', 'unbalanced brackets'],
      // Colons that make neither an IPv6 address nor host:port.
      ['relay:78:35', 'an IPv6 address with a port goes in brackets, like [::1]:7835'],
      ['tcp://::1', 'in a URL an IPv6 address goes in brackets, like tcp://[::1]:7835'],
      // Not a host name.
      ['re lay', 're lay is not a host name or address'],
      ['user@relay', 'user@relay is not a host name or address'],
      ['relay!', 'relay! is not a host name or address'],
      ['300.1.1.1', '300.1.1.1 is not a host name or address'],
      ['-relay', '-relay is not a host name or address'],
    ];
    for (const [text, why] of cases) {
      assertUsageError(
        () => parseServerAddress(text),
        `--server: "${text}" is not a server address (${why})`,
        `give ${SERVER_FORMS}, where PORT is the control port (of ws:// and wss://: the HTTP(S) port)`,
      );
    }
    assertUsageError(() => parseServerAddress('http://x', 'BURROW_SERVER'), 'BURROW_SERVER: "http://x"');
  });
});

/** What `fn` returns, and the lines it logs on the debug namespace `namespace`. */
function withDebug<T>(namespace: string, fn: () => T): { value: T; lines: string[] } {
  const lines: string[] = [];
  const log = createDebug.log;
  const before = createDebug.disable();
  createDebug.log = (...args: unknown[]) => void lines.push(format(...args));
  createDebug.enable(namespace);
  try {
    return { value: fn(), lines };
  } finally {
    createDebug.log = log;
    createDebug.enable(before);
  }
}

const clientArgs = (more: RawArgs): RawArgs => ({ 'local-port': ['3000'], ...more });
const connection = (args: RawArgs, env: Record<string, string> = {}) => {
  const { server, controlPort, dataPort } = resolveClientOptions(clientArgs(args), env).client;
  return { server, controlPort, dataPort };
};

describe('resolveClientOptions: the server address and the control port', () => {
  test('a port in --server or BURROW_SERVER is the control port; the data port is untouched', () => {
    assert.deepEqual(connection({ server: 'localhost:7835' }), {
      server: 'localhost',
      controlPort: 7835,
      dataPort: undefined,
    });
    assert.deepEqual(connection({ server: 'tcp://relay.example.com:9000' }), {
      server: 'relay.example.com',
      controlPort: 9000,
      dataPort: undefined,
    });
    assert.deepEqual(connection({ server: '[::1]:9000', 'data-port': '9001' }), {
      server: '::1',
      controlPort: 9000,
      dataPort: 9001,
    });
    assert.deepEqual(connection({}, { BURROW_SERVER: 'relay:9100' }), {
      server: 'relay',
      controlPort: 9100,
      dataPort: undefined,
    });
    assert.deepEqual(connection({ server: '[::1]' }), { server: '::1', controlPort: 7835, dataPort: undefined });
    assert.deepEqual(connection({ server: '::1' }), { server: '::1', controlPort: 7835, dataPort: undefined });
  });

  test('without a port there, --control-port (or its variable, or 7835) is the control port, as before', () => {
    assert.deepEqual(connection({ server: 'relay', 'control-port': '9000' }), {
      server: 'relay',
      controlPort: 9000,
      dataPort: undefined,
    });
    assert.deepEqual(connection({ server: 'tcp://relay' }, { BURROW_CONTROL_PORT: '9100' }), {
      server: 'relay',
      controlPort: 9100,
      dataPort: undefined,
    });
    assert.deepEqual(connection({}), { server: 'localhost', controlPort: 7835, dataPort: undefined });
    // An empty BURROW_SERVER counts as unset.
    assert.deepEqual(connection({}, { BURROW_SERVER: '' }), {
      server: 'localhost',
      controlPort: 7835,
      dataPort: undefined,
    });
  });

  test('the same port in both places is fine, from any mix of flags and variables', () => {
    assert.deepEqual(connection({ server: 'relay:9000', 'control-port': '9000' }), {
      server: 'relay',
      controlPort: 9000,
      dataPort: undefined,
    });
    assert.deepEqual(connection({ server: 'relay:9000', 'control-port': '09000' }), {
      server: 'relay',
      controlPort: 9000,
      dataPort: undefined,
    });
    assert.deepEqual(connection({}, { BURROW_SERVER: 'relay:9000', BURROW_CONTROL_PORT: '9000' }), {
      server: 'relay',
      controlPort: 9000,
      dataPort: undefined,
    });
    assert.deepEqual(connection({ server: 'relay:9000' }, { BURROW_CONTROL_PORT: '9000' }), {
      server: 'relay',
      controlPort: 9000,
      dataPort: undefined,
    });
    assert.deepEqual(connection({ 'control-port': '9000' }, { BURROW_SERVER: 'relay:9000' }), {
      server: 'relay',
      controlPort: 9000,
      dataPort: undefined,
    });
  });

  test('different ports from two flags, or from two variables, are a usage error naming both', () => {
    assertUsageError(
      () => connection({ server: 'relay:9000', 'control-port': '7000' }),
      '--server "relay:9000" says control port 9000, --control-port says 7000: give the port once',
    );
    assertUsageError(
      () => connection({}, { BURROW_SERVER: 'relay:9000', BURROW_CONTROL_PORT: '7000' }),
      'BURROW_SERVER "relay:9000" says control port 9000, BURROW_CONTROL_PORT says 7000: give the port once',
    );
    // A bad --control-port is named as such, whatever the address says; so is a bad variable beside BURROW_SERVER's port.
    assertUsageError(
      () => connection({ server: 'relay:9000', 'control-port': 'abc' }),
      '--control-port: "abc" is not a port number (1-65535)',
    );
    assertUsageError(
      () => connection({}, { BURROW_SERVER: 'relay:9000', BURROW_CONTROL_PORT: 'abc' }),
      'BURROW_CONTROL_PORT: "abc" is not a port number (1-65535)',
    );
  });

  test('a flag and a variable that disagree: the flag wins and the variable is ignored, with a debug line', () => {
    // --server relay:9000 with BURROW_CONTROL_PORT=7835 from a shared .env or a unit's Environment=.
    const fromServerFlag = withDebug('burrow:client', () =>
      connection({ server: 'relay:9000' }, { BURROW_CONTROL_PORT: '7835' }),
    );
    assert.deepEqual(fromServerFlag.value, { server: 'relay', controlPort: 9000, dataPort: undefined });
    assert.equal(fromServerFlag.lines.length, 1);
    assert.match(
      fromServerFlag.lines[0] ?? '',
      /ignoring BURROW_CONTROL_PORT "7835", given with the port in --server "relay:9000": a flag wins over a variable/,
    );
    // --control-port 7000 with BURROW_SERVER=relay:9000: the variable's host is kept, its port is not.
    const fromPortFlag = withDebug('burrow:client', () =>
      connection({ 'control-port': '7000' }, { BURROW_SERVER: 'relay:9000' }),
    );
    assert.deepEqual(fromPortFlag.value, { server: 'relay', controlPort: 7000, dataPort: undefined });
    assert.equal(fromPortFlag.lines.length, 1);
    assert.match(
      fromPortFlag.lines[0] ?? '',
      /ignoring the port in BURROW_SERVER "relay:9000", given with --control-port "7000": a flag wins over a variable/,
    );
    // The variable that loses is ignored, so even a bad one does not matter; a bad flag still does.
    assert.deepEqual(connection({ server: 'relay:9000' }, { BURROW_CONTROL_PORT: 'nope' }), {
      server: 'relay',
      controlPort: 9000,
      dataPort: undefined,
    });
    assertUsageError(
      () => connection({ 'control-port': 'abc' }, { BURROW_SERVER: 'relay:9000' }),
      '--control-port: "abc" is not a port number (1-65535)',
    );
    // No line when nothing is ignored.
    assert.deepEqual(
      withDebug('burrow:client', () => connection({ server: 'relay:9000' }, { BURROW_CONTROL_PORT: '9000' })).lines,
      [],
    );
  });

  test("--server wins over BURROW_SERVER as a whole: the variable's port goes with it", () => {
    assert.deepEqual(connection({ server: 'flag.example.com' }, { BURROW_SERVER: 'env.example.com:9000' }), {
      server: 'flag.example.com',
      controlPort: 7835,
      dataPort: undefined,
    });
    // Even a bad variable does not matter when the flag is given.
    assert.deepEqual(connection({ server: 'relay' }, { BURROW_SERVER: 'http://nope' }), {
      server: 'relay',
      controlPort: 7835,
      dataPort: undefined,
    });
  });

  test('a bad --server or BURROW_SERVER is a usage error naming it', () => {
    assertUsageError(() => connection({ server: 'http://relay' }), '--server: "http://relay" is not a server address');
    assertUsageError(
      () => connection({}, { BURROW_SERVER: 'relay:0' }),
      'BURROW_SERVER: "relay:0" is not a server address (port 0 is not in 1-65535)',
    );
    assertUsageError(() => connection({ server: '' }), '--server: "" is not a server address (no host)');
  });

  test('burrow local: --to is --server and --port is --remote-port, and errors say --to and --port', () => {
    const local = (args: RawArgs, env: Record<string, string> = {}) =>
      resolveClientOptions({ 'local-port': '3000', ...args }, env, LOCAL_SPELLING).client;
    const resolved = local({ to: 'relay.example.com:9000', port: '8080' });
    assert.deepEqual(
      [resolved.server, resolved.controlPort, resolved.tunnels],
      ['relay.example.com', 9000, [{ localPort: 3000, remotePort: 8080 }]],
    );
    // The same as burrow client with bore's words swapped for ours.
    assert.deepEqual(
      local({ to: 'relay', port: '8080', 'local-host': '127.0.0.1' }),
      resolveClientOptions(clientArgs({ server: 'relay', 'remote-port': ['8080'], 'local-host': '127.0.0.1' }), {})
        .client,
    );
    // Their variables are still BURROW_SERVER and BURROW_REMOTE_PORT.
    const fromEnv = local({}, { BURROW_SERVER: 'tcp://relay:9100', BURROW_REMOTE_PORT: '8081' });
    assert.deepEqual(
      [fromEnv.server, fromEnv.controlPort, fromEnv.tunnels],
      ['relay', 9100, [{ localPort: 3000, remotePort: 8081 }]],
    );
    // --server and --remote-port are not local's flags: they are ignored there (yargs refuses them first).
    assert.equal(local({ server: 'other', to: 'relay' }).server, 'relay');
    assertUsageError(() => local({ to: 'http://relay' }), '--to: "http://relay" is not a server address');
    assertUsageError(() => local({ port: 'abc' }), '--port: "abc" is not a port number (0-65535)');
    assertUsageError(
      () => local({ to: 'relay:9000', 'control-port': '1' }),
      '--to "relay:9000" says control port 9000, --control-port says 1',
    );
    assert.equal(local({ to: 'relay:9000' }, { BURROW_CONTROL_PORT: '1' }).controlPort, 9000);
    assert.equal(local({ 'control-port': '1' }, { BURROW_SERVER: 'relay:9000' }).controlPort, 1);
  });
});

describe('the command, through each form of address', () => {
  test('burrow client --server 127.0.0.1:PORT, tcp://127.0.0.1:PORT and burrow local --to ... -p N all reach the relay and carry a request', async () => {
    const live = new Set<Cli>();
    const server = await serverOn();
    const local = await listenLocal(replyOnEnd((req) => Buffer.concat([Buffer.from('reply:'), req])));
    try {
      const data = ['--data-port', String(server.dataPort), '--local-host', HOST, '--no-state-file', '--quiet'];
      const wanted = await freePort();
      const runs: Array<[string, string[]]> = [
        ['host:port', ['client', String(local.port), '--server', `${HOST}:${server.controlPort}`, ...data]],
        ['tcp://host:port', ['client', String(local.port), '--server', `tcp://${HOST}:${server.controlPort}`, ...data]],
        [
          'burrow local',
          ['local', String(local.port), '--to', `${HOST}:${server.controlPort}`, '-p', String(wanted), ...data],
        ],
      ];
      // A stray BURROW_CONTROL_PORT (a shared .env, say) loses to the port in --server.
      const clients = runs.map(([, args]) => startCli(args, { BURROW_CONTROL_PORT: '1' }, live));
      for (const [i, cli] of clients.entries()) {
        const [what] = runs[i] ?? assert.fail('a run per client');
        const [, publicPort = ''] = await waitForOutput(cli, 'stdout', FORWARDING, `the client (${what}) to forward`);
        if (what === 'burrow local') assert.equal(publicPort, String(wanted), '-p is the public port asked for');
        assert.equal((await request(Number(publicPort), what)).toString(), `reply:${what}`);
      }
      for (const [i, cli] of clients.entries())
        assert.deepEqual(await interrupt(cli, `client ${i}`), { code: 0, signal: null });
    } finally {
      await killAll(live);
      await local.close();
      await server.destroy();
    }
  });

  test('the old trap: --server localhost:PORT never becomes a lookup of "[localhost:PORT]"; a bad address is exit 2 with the forms', async () => {
    const results = await Promise.all([
      runCli(['client', '3000', '--server', 'http://localhost:7835']),
      runCli(['client', '3000', '--server', 'localhost:7835', '--control-port', '7000']),
      runCli(['local', '3000'], { BURROW_SERVER: 'relay/x' }),
    ]);
    const expected = [
      [
        `burrow: --server: "http://localhost:7835" is not a server address (http:// is not burrow's protocol; give tcp://, ws:// or wss://); give ${SERVER_FORMS}, where PORT is the control port (of ws:// and wss://: the HTTP(S) port)`,
        "Run 'burrow client --help' for usage.",
      ],
      [
        'burrow: --server "localhost:7835" says control port 7835, --control-port says 7000: give the port once',
        "Run 'burrow client --help' for usage.",
      ],
      [
        `burrow: BURROW_SERVER: "relay/x" is not a server address (a path has no meaning here); give ${SERVER_FORMS}, where PORT is the control port (of ws:// and wss://: the HTTP(S) port)`,
        "Run 'burrow local --help' for usage.",
      ],
    ];
    results.forEach((result, i) => {
      assert.deepEqual(
        { code: result.code, stdout: result.stdout, stderr: lines(result.stderr) },
        { code: 2, stdout: '', stderr: expected[i] },
      );
    });
  });
});
