// Flags and BURROW_* variables → library options (cli/options.ts, cli/client-options.ts), as pure functions:
// plain objects for the parsed args and for the environment.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { envName, isFlag, keepFirst, type RawArgs } from '../cli/args.ts';
import { resolveClientOptions, type ClientCliOptions } from '../cli/client-options.ts';
import { resolveServerOptions } from '../cli/options.ts';
import { UsageError } from '../cli/usage-error.ts';
import { editDistance, explainUsage, suggest, unknownFlags, type UsageContext } from '../cli/usage.ts';
import { DEFAULT_MAX_CONNECTIONS, SERVER_DEFAULTS } from '../index.ts';

/** Asserts `fn` throws a UsageError whose message contains every one of `parts`. */
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

/** Every limit a server flag sets. Their numbers are the library's (server/limits.ts
 * pins and explains them); here what counts is that each one is resolved. */
const LIMIT_KEYS = [
  'maxTunnelsPerClient',
  'maxTunnels',
  'maxTunnelsPerIp',
  'maxPendingPerTunnel',
  'maxPending',
  'maxConnectionsPerTunnel',
  'maxClientsPerIp',
  'maxHandshakesPerIp',
] as const;

/** The server limits every resolved server option carries unless a flag sets them: the
 * counts, and the timeouts of staying up (README: heartbeat 10 s / 30 s, shutdown 10 s,
 * lease grace 60 s). */
const DEFAULT_COUNTS = {
  handshakeTimeoutMs: 5_000,
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 30_000,
  shutdownTimeoutMs: 10_000,
  leaseGraceMs: 60_000,
  ...Object.fromEntries(LIMIT_KEYS.map((key) => [key, SERVER_DEFAULTS[key]])),
};

/** Every server variable but the limits, each with a value of its own. */
const SERVER_ENV = {
  BURROW_CONTROL_PORT: '9100',
  BURROW_DATA_PORT: '9101',
  BURROW_BIND: '::1',
  BURROW_PORT_RANGE: '50000-50010',
  BURROW_VISITOR_TIMEOUT: '3',
  BURROW_TRACE: '1',
};

/** Asserts that each of `bads`, as `--<flag>` and as the variable `variable`, is a usage
 * error naming its source and quoting the value. */
function assertBadServerValues(flag: string, variable: string, bads: string[]): void {
  for (const bad of bads) {
    assertUsageError(() => resolveServerOptions({ [flag]: bad }, {}), `--${flag}`, `"${bad}"`);
    assertUsageError(() => resolveServerOptions({}, { [variable]: bad }), variable, `"${bad}"`);
  }
}

/** yargs hands the client its positional ports as an array of strings. */
const clientArgs = (ports: string[], more: RawArgs = {}): RawArgs => ({ 'local-port': ports, ...more });

/** What every resolved client option carries unless a flag sets it: the CLI reconnects by
 * default (the library does not), the library's connection cap, no lease file (these
 * tests' environments have no HOME or XDG_STATE_HOME), and the heartbeat and shutdown
 * defaults of the README. */
const CLIENT_DEFAULTS = {
  reconnect: true,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  leaseFile: undefined,
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 30_000,
  shutdownTimeoutMs: 10_000,
};

/** What resolveClientOptions returns: the tunnels, how to reach the server, and trace. */
function resolvedClient(
  tunnels: Array<{ localPort: number; remotePort: number }>,
  connection: { server: string; localHost: string; controlPort: number; dataPort: number | undefined },
  trace: boolean,
): ClientCliOptions {
  return { client: { tunnels, ...connection, ...CLIENT_DEFAULTS }, trace };
}

/** Settings in seconds that both commands take (README: "Both commands also take ..."). */
const SECONDS_FLAGS = ['heartbeat-interval', 'heartbeat-timeout', 'shutdown-timeout'] as const;

describe('envName', () => {
  test('maps a flag to its BURROW_* variable', () => {
    assert.equal(envName('control-port'), 'BURROW_CONTROL_PORT');
    assert.equal(envName('data-port'), 'BURROW_DATA_PORT');
    assert.equal(envName('port-range'), 'BURROW_PORT_RANGE');
    assert.equal(envName('visitor-timeout'), 'BURROW_VISITOR_TIMEOUT');
    assert.equal(envName('remote-port'), 'BURROW_REMOTE_PORT');
    assert.equal(envName('local-host'), 'BURROW_LOCAL_HOST');
    assert.equal(envName('bind'), 'BURROW_BIND');
    assert.equal(envName('trace'), 'BURROW_TRACE');
    assert.equal(envName('server'), 'BURROW_SERVER');
    assert.equal(envName('reconnect'), 'BURROW_RECONNECT');
    assert.equal(envName('heartbeat-interval'), 'BURROW_HEARTBEAT_INTERVAL');
    assert.equal(envName('heartbeat-timeout'), 'BURROW_HEARTBEAT_TIMEOUT');
    assert.equal(envName('shutdown-timeout'), 'BURROW_SHUTDOWN_TIMEOUT');
    assert.equal(envName('lease-grace'), 'BURROW_LEASE_GRACE');
    assert.equal(envName('max-tunnels-per-ip'), 'BURROW_MAX_TUNNELS_PER_IP');
    assert.equal(envName('max-handshakes-per-ip'), 'BURROW_MAX_HANDSHAKES_PER_IP');
    assert.equal(envName('max-connections'), 'BURROW_MAX_CONNECTIONS');
    assert.equal(envName('state-file'), 'BURROW_STATE_FILE');
  });
});

describe('keepFirst: two settings that exclude each other', () => {
  const conflict = () => 'give one';
  test('a flag is a source named --flag; a variable, BURROW_X', () => {
    assert.equal(isFlag('--tls-cert'), true);
    assert.equal(isFlag('--to'), true);
    assert.equal(isFlag('BURROW_TLS_NAME'), false);
  });

  test('a flag and a variable: the flag wins, in either order', () => {
    assert.equal(keepFirst({ source: '--server' }, { source: 'BURROW_CONTROL_PORT' }, conflict, 'client'), true);
    assert.equal(keepFirst({ source: 'BURROW_TLS_NAME' }, { source: '--tls-cert' }, conflict, 'server'), false);
  });

  test('two flags, or two variables: a usage error with the message given', () => {
    assertUsageError(
      () => keepFirst({ source: '--server' }, { source: '--control-port' }, conflict, 'client'),
      'give one',
    );
    assertUsageError(
      () => keepFirst({ source: 'BURROW_SERVER' }, { source: 'BURROW_CONTROL_PORT' }, conflict, 'client'),
      'give one',
    );
  });
});

describe('resolveServerOptions', () => {
  test('defaults', () => {
    assert.deepEqual(resolveServerOptions({}, {}), {
      server: {
        controlPort: 7835,
        dataPort: 7836,
        bind: undefined,
        portRange: { min: 1024, max: 65535 },
        visitorTimeoutMs: 10_000,
        ...DEFAULT_COUNTS,
      },
      trace: false,
    });
  });

  test('each flag', () => {
    const args: RawArgs = {
      'control-port': '9000',
      'data-port': '9001',
      bind: '127.0.0.1',
      'port-range': '40000-40100',
      'visitor-timeout': '2.5',
      trace: true,
    };
    assert.deepEqual(resolveServerOptions(args, {}), {
      server: {
        controlPort: 9000,
        dataPort: 9001,
        bind: '127.0.0.1',
        portRange: { min: 40000, max: 40100 },
        visitorTimeoutMs: 2500,
        ...DEFAULT_COUNTS,
      },
      trace: true,
    });
  });

  test('each BURROW_* variable', () => {
    assert.deepEqual(resolveServerOptions({}, SERVER_ENV), {
      server: {
        controlPort: 9100,
        dataPort: 9101,
        bind: '::1',
        portRange: { min: 50000, max: 50010 },
        visitorTimeoutMs: 3000,
        ...DEFAULT_COUNTS,
      },
      trace: true,
    });
  });

  test('every limit from its flag or its BURROW_* variable', () => {
    const args: RawArgs = {
      'handshake-timeout': '1.5',
      'max-tunnels-per-client': '2',
      'max-tunnels': '3',
      'max-pending-per-tunnel': '4',
      'max-tunnels-per-ip': '8',
    };
    const env = {
      BURROW_MAX_PENDING: '5',
      BURROW_MAX_CONNECTIONS_PER_TUNNEL: '6',
      BURROW_MAX_CLIENTS_PER_IP: '7',
      BURROW_MAX_HANDSHAKES_PER_IP: '9',
      BURROW_MAX_TUNNELS: '99', // the flag wins
      BURROW_MAX_TUNNELS_PER_IP: '98', // the flag wins
    };
    const { server } = resolveServerOptions(args, env);
    assert.deepEqual(
      [
        server.handshakeTimeoutMs,
        server.maxTunnelsPerClient,
        server.maxTunnels,
        server.maxPendingPerTunnel,
        server.maxTunnelsPerIp,
      ],
      [1500, 2, 3, 4, 8],
    );
    assert.deepEqual(
      [server.maxPending, server.maxConnectionsPerTunnel, server.maxClientsPerIp, server.maxHandshakesPerIp],
      [5, 6, 7, 9],
    );
  });

  test('--max-tunnels-per-ip and --max-handshakes-per-ip: default, flag, variable; nothing else changes', () => {
    const defaults = resolveServerOptions({}, {}).server;
    assert.equal(defaults.maxTunnelsPerIp, SERVER_DEFAULTS.maxTunnelsPerIp);
    assert.equal(defaults.maxHandshakesPerIp, SERVER_DEFAULTS.maxHandshakesPerIp);
    assert.deepEqual(resolveServerOptions({ 'max-tunnels-per-ip': '3' }, {}).server, {
      ...defaults,
      maxTunnelsPerIp: 3,
    });
    assert.deepEqual(resolveServerOptions({}, { BURROW_MAX_TUNNELS_PER_IP: '4' }).server, {
      ...defaults,
      maxTunnelsPerIp: 4,
    });
    assert.deepEqual(resolveServerOptions({ 'max-handshakes-per-ip': '5' }, {}).server, {
      ...defaults,
      maxHandshakesPerIp: 5,
    });
    assert.deepEqual(resolveServerOptions({}, { BURROW_MAX_HANDSHAKES_PER_IP: '6' }).server, {
      ...defaults,
      maxHandshakesPerIp: 6,
    });
    // A flag wins over its variable, even a bad one; an empty variable counts as unset.
    assert.equal(
      resolveServerOptions({ 'max-handshakes-per-ip': '7' }, { BURROW_MAX_HANDSHAKES_PER_IP: 'lots' }).server
        .maxHandshakesPerIp,
      7,
    );
    assert.equal(
      resolveServerOptions({}, { BURROW_MAX_TUNNELS_PER_IP: '' }).server.maxTunnelsPerIp,
      SERVER_DEFAULTS.maxTunnelsPerIp,
    );
  });

  test('a limit must be a whole number of at least 1', () => {
    assertUsageError(() => resolveServerOptions({ 'max-tunnels': '0' }, {}), '--max-tunnels', '"0"');
    assertUsageError(() => resolveServerOptions({}, { BURROW_MAX_PENDING: '1.5' }), 'BURROW_MAX_PENDING');
    assertUsageError(
      () => resolveServerOptions({}, { BURROW_MAX_CLIENTS_PER_IP: 'lots' }),
      'BURROW_MAX_CLIENTS_PER_IP',
    );
    assertUsageError(() => resolveServerOptions({ 'handshake-timeout': '0' }, {}), '--handshake-timeout');
    // Strict: what yargs would read as a number ("1e3", "0x10") is not a count here.
    for (const flag of ['max-tunnels-per-ip', 'max-handshakes-per-ip']) {
      assertBadServerValues(flag, envName(flag), ['0', '-1', '1.5', '1e3', '0x10', 'lots', '1234567890']);
      assertUsageError(() => resolveServerOptions({ [flag]: '' }, {}), `--${flag}`, '""');
    }
  });

  test('port 0 (pick a free one) is allowed for the control and data ports', () => {
    const { server } = resolveServerOptions({ 'control-port': '0' }, { BURROW_DATA_PORT: '0' });
    assert.equal(server.controlPort, 0);
    assert.equal(server.dataPort, 0);
  });

  test('a flag wins over its variable, one by one', () => {
    const { server, trace } = resolveServerOptions(
      {
        'control-port': '9000',
        'data-port': '9001',
        bind: '127.0.0.1',
        'port-range': '40000-40100',
        'visitor-timeout': '7',
        trace: false,
      },
      SERVER_ENV,
    );
    assert.deepEqual(server, {
      controlPort: 9000,
      dataPort: 9001,
      bind: '127.0.0.1',
      portRange: { min: 40000, max: 40100 },
      visitorTimeoutMs: 7000,
      ...DEFAULT_COUNTS,
    });
    assert.equal(trace, false);
    // A flag wins even when its variable holds something invalid.
    assert.equal(
      resolveServerOptions({ 'control-port': '9000' }, { BURROW_CONTROL_PORT: 'nope' }).server.controlPort,
      9000,
    );
  });

  test('a repeated flag: the last value wins', () => {
    assert.equal(resolveServerOptions({ 'control-port': ['9000', '9002'] }, {}).server.controlPort, 9002);
  });

  test('an empty variable counts as unset', () => {
    const { server } = resolveServerOptions(
      {},
      { BURROW_CONTROL_PORT: '', BURROW_BIND: '', BURROW_PORT_RANGE: '', BURROW_VISITOR_TIMEOUT: '' },
    );
    assert.deepEqual(server, {
      controlPort: 7835,
      dataPort: 7836,
      bind: undefined,
      portRange: { min: 1024, max: 65535 },
      visitorTimeoutMs: 10_000,
      ...DEFAULT_COUNTS,
    });
  });

  test('BURROW_TRACE: 1/true/yes/on (any case) turn tracing on, 0/false/no/off or empty leave it off, anything else is a usage error', () => {
    for (const value of ['1', 'true', 'TRUE', 'yes', 'Yes', 'on', 'ON']) {
      assert.equal(resolveServerOptions({}, { BURROW_TRACE: value }).trace, true, value);
    }
    for (const value of ['', '0', 'false', 'no', 'off', 'OFF']) {
      assert.equal(resolveServerOptions({}, { BURROW_TRACE: value }).trace, false, value);
    }
    // A boolean variable shares the parser of BURROW_RECONNECT: a typo is a bad value
    // (exit 2), not a silent "off".
    for (const value of ['nope', '2', 'y']) {
      assertUsageError(() => resolveServerOptions({}, { BURROW_TRACE: value }), 'BURROW_TRACE', `"${value}"`);
    }
    assert.equal(resolveServerOptions({ trace: true }, {}).trace, true);
    assert.equal(resolveServerOptions({ trace: false }, { BURROW_TRACE: 'nope' }).trace, false, 'the flag wins');
  });

  test('heartbeat, shutdown and lease-grace settings: each flag and each BURROW_* variable, in seconds', () => {
    const fromFlags = resolveServerOptions(
      { 'heartbeat-interval': '2', 'heartbeat-timeout': '7.5', 'shutdown-timeout': '3', 'lease-grace': '0.25' },
      {},
    ).server;
    assert.deepEqual(
      [
        fromFlags.heartbeatIntervalMs,
        fromFlags.heartbeatTimeoutMs,
        fromFlags.shutdownTimeoutMs,
        fromFlags.leaseGraceMs,
      ],
      [2000, 7500, 3000, 250],
    );
    const fromEnv = resolveServerOptions(
      {},
      {
        BURROW_HEARTBEAT_INTERVAL: '4',
        BURROW_HEARTBEAT_TIMEOUT: '12',
        BURROW_SHUTDOWN_TIMEOUT: '1.5',
        BURROW_LEASE_GRACE: '120',
      },
    ).server;
    assert.deepEqual(
      [fromEnv.heartbeatIntervalMs, fromEnv.heartbeatTimeoutMs, fromEnv.shutdownTimeoutMs, fromEnv.leaseGraceMs],
      [4000, 12_000, 1500, 120_000],
    );
    // A flag wins over its variable.
    const both = resolveServerOptions(
      { 'lease-grace': '5', 'heartbeat-interval': '1' },
      { BURROW_LEASE_GRACE: '9', BURROW_HEARTBEAT_INTERVAL: '8' },
    ).server;
    assert.deepEqual([both.leaseGraceMs, both.heartbeatIntervalMs], [5000, 1000]);
    // Everything else keeps its default.
    assert.deepEqual(resolveServerOptions({ 'lease-grace': '5' }, {}).server, {
      ...resolveServerOptions({}, {}).server,
      leaseGraceMs: 5000,
    });
  });

  test('--shutdown-timeout 0 (close at once) and --lease-grace 0 (no leases) are allowed', () => {
    const { server } = resolveServerOptions({ 'shutdown-timeout': '0', 'lease-grace': '0' }, {});
    assert.equal(server.shutdownTimeoutMs, 0);
    assert.equal(server.leaseGraceMs, 0);
    const fromEnv = resolveServerOptions({}, { BURROW_SHUTDOWN_TIMEOUT: '0', BURROW_LEASE_GRACE: '0' }).server;
    assert.equal(fromEnv.shutdownTimeoutMs, 0);
    assert.equal(fromEnv.leaseGraceMs, 0);
  });

  test('bad heartbeat, shutdown and lease-grace values are usage errors naming their source; 0 is no heartbeat setting', () => {
    for (const flag of ['heartbeat-interval', 'heartbeat-timeout']) {
      assertBadServerValues(flag, envName(flag), ['0', '-1', 'abc', '86401', 'Infinity', 'NaN', '1s']);
    }
    for (const flag of ['shutdown-timeout', 'lease-grace']) {
      assertBadServerValues(flag, envName(flag), ['-1', '-0.5', 'abc', '86401', 'Infinity', 'NaN', '10s']);
    }
    // An empty flag is a bad value; an empty variable counts as unset.
    assertUsageError(() => resolveServerOptions({ 'lease-grace': '' }, {}), '--lease-grace', '""');
    assert.equal(resolveServerOptions({}, { BURROW_LEASE_GRACE: '' }).server.leaseGraceMs, 60_000);
  });

  test('bad --control-port / BURROW_CONTROL_PORT values are usage errors naming their source', () => {
    for (const bad of ['abc', '-1', '65536', '70000', '123456', '', '1.5', '0x10', '3000a']) {
      assertUsageError(() => resolveServerOptions({ 'control-port': bad }, {}), '--control-port', `"${bad}"`);
    }
    for (const bad of ['abc', '-1', '65536', '70000', ' ']) {
      assertUsageError(() => resolveServerOptions({}, { BURROW_CONTROL_PORT: bad }), 'BURROW_CONTROL_PORT', `"${bad}"`);
    }
  });

  test('bad --data-port / BURROW_DATA_PORT values are usage errors naming their source', () => {
    assertUsageError(() => resolveServerOptions({ 'data-port': '99999' }, {}), '--data-port', '"99999"');
    assertUsageError(() => resolveServerOptions({}, { BURROW_DATA_PORT: 'x' }), 'BURROW_DATA_PORT', '"x"');
  });

  test('bad --port-range / BURROW_PORT_RANGE values are usage errors naming their source', () => {
    assertBadServerValues('port-range', 'BURROW_PORT_RANGE', [
      '9-3',
      '0-100',
      '1024-65536',
      'abc',
      '1024',
      '1024-',
      '03000-4000',
    ]);
  });

  test('bad --visitor-timeout / BURROW_VISITOR_TIMEOUT values are usage errors naming their source', () => {
    assertBadServerValues('visitor-timeout', 'BURROW_VISITOR_TIMEOUT', [
      '0',
      '-1',
      'abc',
      '86401',
      'Infinity',
      'NaN',
      '1s',
    ]);
  });

  test('visitor timeout is in seconds, fractions allowed, up to a day', () => {
    assert.equal(resolveServerOptions({ 'visitor-timeout': '0.2' }, {}).server.visitorTimeoutMs, 200);
    assert.equal(resolveServerOptions({ 'visitor-timeout': '86400' }, {}).server.visitorTimeoutMs, 86_400_000);
    assert.equal(resolveServerOptions({}, { BURROW_VISITOR_TIMEOUT: '1.5' }).server.visitorTimeoutMs, 1500);
  });

  test('client-only variables do not affect or break the server', () => {
    const env = {
      BURROW_REMOTE_PORT: 'not,a,port,list',
      BURROW_SERVER: 'relay.example.com',
      BURROW_LOCAL_HOST: '!!',
      BURROW_RECONNECT: 'bogus',
      BURROW_MAX_CONNECTIONS: '0',
      BURROW_STATE_FILE: '/tmp/leases.json',
      BURROW_UNKNOWN_THING: 'whatever',
    };
    assert.deepEqual(resolveServerOptions({}, env), resolveServerOptions({}, {}));
  });
});

describe('resolveClientOptions', () => {
  test('defaults', () => {
    assert.deepEqual(
      resolveClientOptions(clientArgs(['3000']), {}),
      // No data port unless given: the server names its own (7836 if it does not).
      resolvedClient(
        [{ localPort: 3000, remotePort: 0 }],
        { server: 'localhost', localHost: 'localhost', controlPort: 7835, dataPort: undefined },
        false,
      ),
    );
  });

  test('a single local port given as a string (not an array) works too', () => {
    assert.deepEqual(resolveClientOptions({ 'local-port': '3000' }, {}).client.tunnels, [
      { localPort: 3000, remotePort: 0 },
    ]);
  });

  test('each flag', () => {
    const args = clientArgs(['3000'], {
      server: 'relay.example.com',
      'local-host': '127.0.0.1',
      'control-port': '9000',
      'data-port': '9001',
      'remote-port': ['8080'],
      trace: true,
    });
    assert.deepEqual(
      resolveClientOptions(args, {}),
      resolvedClient(
        [{ localPort: 3000, remotePort: 8080 }],
        { server: 'relay.example.com', localHost: '127.0.0.1', controlPort: 9000, dataPort: 9001 },
        true,
      ),
    );
  });

  test('each BURROW_* variable', () => {
    const env = {
      BURROW_SERVER: 'relay.example.com',
      BURROW_LOCAL_HOST: '127.0.0.1',
      BURROW_CONTROL_PORT: '9100',
      BURROW_DATA_PORT: '9101',
      BURROW_REMOTE_PORT: '8080,0,9090',
      BURROW_TRACE: 'yes',
    };
    assert.deepEqual(
      resolveClientOptions(clientArgs(['3000', '3001', '3002']), env),
      resolvedClient(
        [
          { localPort: 3000, remotePort: 8080 },
          { localPort: 3001, remotePort: 0 },
          { localPort: 3002, remotePort: 9090 },
        ],
        { server: 'relay.example.com', localHost: '127.0.0.1', controlPort: 9100, dataPort: 9101 },
        true,
      ),
    );
  });

  test('a flag wins over its variable', () => {
    const env = {
      BURROW_SERVER: 'env.example.com',
      BURROW_LOCAL_HOST: '10.0.0.1',
      BURROW_CONTROL_PORT: '9100',
      BURROW_DATA_PORT: '9101',
      BURROW_REMOTE_PORT: '8080,8081',
      BURROW_TRACE: '1',
    };
    const args = clientArgs(['3000', '3001'], {
      server: 'flag.example.com',
      'local-host': '127.0.0.1',
      'control-port': '9000',
      'data-port': '9001',
      'remote-port': ['7070'],
      trace: false,
    });
    assert.deepEqual(
      resolveClientOptions(args, env),
      resolvedClient(
        // --remote-port replaces BURROW_REMOTE_PORT as a whole: the second tunnel gets any port.
        [
          { localPort: 3000, remotePort: 7070 },
          { localPort: 3001, remotePort: 0 },
        ],
        { server: 'flag.example.com', localHost: '127.0.0.1', controlPort: 9000, dataPort: 9001 },
        false,
      ),
    );
  });

  test('several local ports, no remote ports: each asks for any port', () => {
    assert.deepEqual(resolveClientOptions(clientArgs(['3000', '5432', '6379']), {}).client.tunnels, [
      { localPort: 3000, remotePort: 0 },
      { localPort: 5432, remotePort: 0 },
      { localPort: 6379, remotePort: 0 },
    ]);
  });

  test('a repeated --remote-port maps in order onto the local ports; missing ones mean any', () => {
    assert.deepEqual(
      resolveClientOptions(clientArgs(['3000', '5432', '6379'], { 'remote-port': ['8080', '15432'] }), {}).client
        .tunnels,
      [
        { localPort: 3000, remotePort: 8080 },
        { localPort: 5432, remotePort: 15432 },
        { localPort: 6379, remotePort: 0 },
      ],
    );
    // A single --remote-port may arrive as a plain string.
    assert.deepEqual(resolveClientOptions(clientArgs(['3000'], { 'remote-port': '8080' }), {}).client.tunnels, [
      { localPort: 3000, remotePort: 8080 },
    ]);
  });

  test('BURROW_REMOTE_PORT is comma-separated and maps in order; spaces around a port are tolerated', () => {
    assert.deepEqual(
      resolveClientOptions(clientArgs(['3000', '5432']), { BURROW_REMOTE_PORT: '8080, 15432' }).client.tunnels,
      [
        { localPort: 3000, remotePort: 8080 },
        { localPort: 5432, remotePort: 15432 },
      ],
    );
    assert.deepEqual(
      resolveClientOptions(clientArgs(['3000', '5432']), { BURROW_REMOTE_PORT: '8080' }).client.tunnels,
      [
        { localPort: 3000, remotePort: 8080 },
        { localPort: 5432, remotePort: 0 },
      ],
    );
  });

  test('more remote ports than local ports is a usage error', () => {
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000'], { 'remote-port': ['8080', '8081'] }), {}),
      '2 remote ports for 1 local port',
    );
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000', '3001']), { BURROW_REMOTE_PORT: '1,2,3' }),
      '3 remote ports for 2 local port',
    );
  });

  test('--proxy-protocol: one value for every tunnel, or one per local port; none skips a tunnel', () => {
    const tunnels = (local: string[], proxy: string | string[] | undefined, env: Record<string, string> = {}) =>
      resolveClientOptions(clientArgs(local, proxy === undefined ? {} : { 'proxy-protocol': proxy }), env).client
        .tunnels;
    assert.deepEqual(tunnels(['3000'], 'v1'), [{ localPort: 3000, remotePort: 0, proxyProtocol: 'v1' }]);
    assert.deepEqual(tunnels(['3000', '5432'], ['v2']), [
      { localPort: 3000, remotePort: 0, proxyProtocol: 'v2' },
      { localPort: 5432, remotePort: 0, proxyProtocol: 'v2' },
    ]);
    assert.deepEqual(tunnels(['3000', '5432'], ['none', 'v1']), [
      { localPort: 3000, remotePort: 0 },
      { localPort: 5432, remotePort: 0, proxyProtocol: 'v1' },
    ]);
    assert.deepEqual(tunnels(['3000', '5432'], undefined, { BURROW_PROXY_PROTOCOL: 'v2, none' }), [
      { localPort: 3000, remotePort: 0, proxyProtocol: 'v2' },
      { localPort: 5432, remotePort: 0 },
    ]);
    assert.deepEqual(tunnels(['3000'], undefined), [{ localPort: 3000, remotePort: 0 }]);
  });

  test('--proxy-protocol: a bad version or a count that matches neither one nor every local port is a usage error', () => {
    const resolve =
      (local: string[], proxy: string[], env: Record<string, string> = {}) =>
      () =>
        resolveClientOptions(clientArgs(local, proxy.length === 0 ? {} : { 'proxy-protocol': proxy }), env);
    assertUsageError(resolve(['3000'], ['v3']), '--proxy-protocol', '"v3"', 'v1, v2 or none');
    assertUsageError(resolve(['3000'], [], { BURROW_PROXY_PROTOCOL: 'V1' }), 'BURROW_PROXY_PROTOCOL', '"V1"');
    assertUsageError(resolve(['3000', '3001', '3002'], ['v1', 'v2']), '2 --proxy-protocol values for 3 local port(s)');
    assertUsageError(resolve(['3000'], ['v1', 'v2']), '2 --proxy-protocol values for 1 local port(s)');
  });

  test('no local port is a usage error', () => {
    assertUsageError(() => resolveClientOptions({}, {}), 'local port');
    assertUsageError(() => resolveClientOptions({ 'local-port': [] }, {}), 'local port');
  });

  test('a bad local port is a usage error naming the port', () => {
    for (const bad of ['0', 'abc', '65536', '-1']) {
      assertUsageError(() => resolveClientOptions(clientArgs(['3000', bad]), {}), 'local port', `"${bad}"`);
    }
  });

  test('bad --remote-port / BURROW_REMOTE_PORT values are usage errors naming their source', () => {
    for (const bad of ['abc', '65536', '-1']) {
      assertUsageError(
        () => resolveClientOptions(clientArgs(['3000'], { 'remote-port': [bad] }), {}),
        '--remote-port',
        `"${bad}"`,
      );
      assertUsageError(
        () => resolveClientOptions(clientArgs(['3000']), { BURROW_REMOTE_PORT: bad }),
        'BURROW_REMOTE_PORT',
        `"${bad}"`,
      );
    }
    // A trailing comma is an empty port, not "any".
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000', '3001']), { BURROW_REMOTE_PORT: '8080,' }),
      'BURROW_REMOTE_PORT',
      '""',
    );
  });

  test('remote port 0 means any', () => {
    assert.deepEqual(resolveClientOptions(clientArgs(['3000'], { 'remote-port': ['0'] }), {}).client.tunnels, [
      { localPort: 3000, remotePort: 0 },
    ]);
  });

  test('bad --control-port / BURROW_CONTROL_PORT values are usage errors naming their source; 0 is not allowed for a client', () => {
    for (const bad of ['0', 'abc', '65536', '']) {
      assertUsageError(
        () => resolveClientOptions(clientArgs(['3000'], { 'control-port': bad }), {}),
        '--control-port',
        `"${bad}"`,
      );
    }
    for (const bad of ['0', 'abc', '65536']) {
      assertUsageError(
        () => resolveClientOptions(clientArgs(['3000']), { BURROW_CONTROL_PORT: bad }),
        'BURROW_CONTROL_PORT',
        `"${bad}"`,
      );
    }
  });

  test('bad --data-port / BURROW_DATA_PORT values are usage errors naming their source', () => {
    assertUsageError(() => resolveClientOptions(clientArgs(['3000'], { 'data-port': 'x' }), {}), '--data-port', '"x"');
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000']), { BURROW_DATA_PORT: '0' }),
      'BURROW_DATA_PORT',
      '"0"',
    );
  });

  test('server-only variables do not affect or break the client', () => {
    const env = {
      BURROW_PORT_RANGE: '9-3',
      BURROW_BIND: '127.0.0.1',
      BURROW_VISITOR_TIMEOUT: 'never',
      BURROW_HANDSHAKE_TIMEOUT: 'never',
      BURROW_LEASE_GRACE: 'forever',
      BURROW_MAX_TUNNELS: '0',
      BURROW_MAX_TUNNELS_PER_IP: '0',
      BURROW_MAX_HANDSHAKES_PER_IP: 'lots',
      BURROW_UNKNOWN_THING: 'whatever',
    };
    assert.deepEqual(resolveClientOptions(clientArgs(['3000']), env), resolveClientOptions(clientArgs(['3000']), {}));
  });

  test('reconnect is on by default; --no-reconnect (reconnect: false) turns it off, --reconnect on', () => {
    assert.equal(resolveClientOptions(clientArgs(['3000']), {}).client.reconnect, true);
    // yargs turns --no-reconnect into reconnect: false and --reconnect into reconnect: true.
    assert.equal(resolveClientOptions(clientArgs(['3000'], { reconnect: false }), {}).client.reconnect, false);
    assert.equal(resolveClientOptions(clientArgs(['3000'], { reconnect: true }), {}).client.reconnect, true);
    // Nothing else changes.
    assert.deepEqual(resolveClientOptions(clientArgs(['3000'], { reconnect: false }), {}), {
      ...resolveClientOptions(clientArgs(['3000']), {}),
      client: { ...resolveClientOptions(clientArgs(['3000']), {}).client, reconnect: false },
    });
  });

  test('BURROW_RECONNECT: 0/false/no/off (any case) turn reconnecting off, 1/true/yes/on on, empty is unset', () => {
    for (const value of ['0', 'false', 'FALSE', 'no', 'No', 'off', 'OFF']) {
      assert.equal(
        resolveClientOptions(clientArgs(['3000']), { BURROW_RECONNECT: value }).client.reconnect,
        false,
        value,
      );
    }
    for (const value of ['1', 'true', 'True', 'yes', 'on', 'ON', '']) {
      assert.equal(
        resolveClientOptions(clientArgs(['3000']), { BURROW_RECONNECT: value }).client.reconnect,
        true,
        value,
      );
    }
  });

  test('a bad BURROW_RECONNECT is a usage error naming it and quoting the value', () => {
    for (const bad of ['bogus', '2', 'nope', 'disabled', ' ']) {
      assertUsageError(
        () => resolveClientOptions(clientArgs(['3000']), { BURROW_RECONNECT: bad }),
        'BURROW_RECONNECT',
        `"${bad}"`,
      );
    }
  });

  test('a reconnect flag wins over BURROW_RECONNECT, even a bad one', () => {
    assert.equal(
      resolveClientOptions(clientArgs(['3000'], { reconnect: true }), { BURROW_RECONNECT: '0' }).client.reconnect,
      true,
    );
    assert.equal(
      resolveClientOptions(clientArgs(['3000'], { reconnect: false }), { BURROW_RECONNECT: '1' }).client.reconnect,
      false,
    );
    assert.equal(
      resolveClientOptions(clientArgs(['3000'], { reconnect: false }), { BURROW_RECONNECT: 'bogus' }).client.reconnect,
      false,
    );
  });

  test('heartbeat and shutdown settings: each flag and each BURROW_* variable, in seconds; a flag wins', () => {
    const fromFlags = resolveClientOptions(
      clientArgs(['3000'], { 'heartbeat-interval': '0.5', 'heartbeat-timeout': '2', 'shutdown-timeout': '4' }),
      {},
    ).client;
    assert.deepEqual(
      [fromFlags.heartbeatIntervalMs, fromFlags.heartbeatTimeoutMs, fromFlags.shutdownTimeoutMs],
      [500, 2000, 4000],
    );
    const env = { BURROW_HEARTBEAT_INTERVAL: '3', BURROW_HEARTBEAT_TIMEOUT: '9', BURROW_SHUTDOWN_TIMEOUT: '20' };
    const fromEnv = resolveClientOptions(clientArgs(['3000']), env).client;
    assert.deepEqual(
      [fromEnv.heartbeatIntervalMs, fromEnv.heartbeatTimeoutMs, fromEnv.shutdownTimeoutMs],
      [3000, 9000, 20_000],
    );
    const both = resolveClientOptions(clientArgs(['3000'], { 'heartbeat-timeout': '45' }), env).client;
    assert.deepEqual(
      [both.heartbeatIntervalMs, both.heartbeatTimeoutMs, both.shutdownTimeoutMs],
      [3000, 45_000, 20_000],
    );
  });

  test('--shutdown-timeout 0 is allowed for the client (close at once)', () => {
    assert.equal(
      resolveClientOptions(clientArgs(['3000'], { 'shutdown-timeout': '0' }), {}).client.shutdownTimeoutMs,
      0,
    );
    assert.equal(
      resolveClientOptions(clientArgs(['3000']), { BURROW_SHUTDOWN_TIMEOUT: '0' }).client.shutdownTimeoutMs,
      0,
    );
  });

  test('bad heartbeat and shutdown values are usage errors naming their source; a heartbeat setting cannot be 0', () => {
    for (const flag of SECONDS_FLAGS) {
      const bads =
        flag === 'shutdown-timeout'
          ? ['-1', 'abc', '86401', 'Infinity', '5m']
          : ['0', '-1', 'abc', '86401', 'Infinity', '5m'];
      for (const bad of bads) {
        assertUsageError(
          () => resolveClientOptions(clientArgs(['3000'], { [flag]: bad }), {}),
          `--${flag}`,
          `"${bad}"`,
        );
        assertUsageError(
          () => resolveClientOptions(clientArgs(['3000']), { [envName(flag)]: bad }),
          envName(flag),
          `"${bad}"`,
        );
      }
    }
  });

  test('--max-connections / BURROW_MAX_CONNECTIONS: the library default, else the flag, else the variable', () => {
    const defaults = resolveClientOptions(clientArgs(['3000']), {});
    assert.equal(defaults.client.maxConnections, DEFAULT_MAX_CONNECTIONS);
    assert.deepEqual(resolveClientOptions(clientArgs(['3000'], { 'max-connections': '50' }), {}), {
      ...defaults,
      client: { ...defaults.client, maxConnections: 50 },
    });
    assert.equal(
      resolveClientOptions(clientArgs(['3000']), { BURROW_MAX_CONNECTIONS: '60' }).client.maxConnections,
      60,
    );
    assert.equal(
      resolveClientOptions(clientArgs(['3000'], { 'max-connections': '70' }), { BURROW_MAX_CONNECTIONS: '60' }).client
        .maxConnections,
      70,
    );
    assert.equal(
      resolveClientOptions(clientArgs(['3000'], { 'max-connections': '70' }), { BURROW_MAX_CONNECTIONS: 'lots' }).client
        .maxConnections,
      70,
    );
    assert.equal(
      resolveClientOptions(clientArgs(['3000']), { BURROW_MAX_CONNECTIONS: '' }).client.maxConnections,
      DEFAULT_MAX_CONNECTIONS,
    );
  });

  test('bad --max-connections / BURROW_MAX_CONNECTIONS values are usage errors naming their source', () => {
    for (const bad of ['0', '-1', '1.5', '1e3', '0x10', 'lots', '1234567890']) {
      assertUsageError(
        () => resolveClientOptions(clientArgs(['3000'], { 'max-connections': bad }), {}),
        '--max-connections',
        `"${bad}"`,
      );
      assertUsageError(
        () => resolveClientOptions(clientArgs(['3000']), { BURROW_MAX_CONNECTIONS: bad }),
        'BURROW_MAX_CONNECTIONS',
        `"${bad}"`,
      );
    }
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000'], { 'max-connections': '' }), {}),
      '--max-connections',
      '""',
    );
  });

  test('the lease file: $XDG_STATE_HOME/burrow/leases.json, else $HOME/.local/state/burrow/leases.json, else none', () => {
    const leaseFile = (env: Record<string, string>) => resolveClientOptions(clientArgs(['3000']), env).client.leaseFile;
    assert.equal(
      leaseFile({ XDG_STATE_HOME: '/var/state', HOME: '/home/ann' }),
      path.join('/var/state', 'burrow', 'leases.json'),
    );
    assert.equal(leaseFile({ HOME: '/home/ann' }), path.join('/home/ann', '.local', 'state', 'burrow', 'leases.json'));
    // An empty or relative XDG_STATE_HOME is ignored (the XDG rule); so is a relative HOME.
    assert.equal(
      leaseFile({ XDG_STATE_HOME: '', HOME: '/home/ann' }),
      path.join('/home/ann', '.local', 'state', 'burrow', 'leases.json'),
    );
    assert.equal(
      leaseFile({ XDG_STATE_HOME: 'state', HOME: '/home/ann' }),
      path.join('/home/ann', '.local', 'state', 'burrow', 'leases.json'),
    );
    assert.equal(leaseFile({ XDG_STATE_HOME: 'state', HOME: 'ann' }), undefined);
    assert.equal(leaseFile({ HOME: '' }), undefined);
    assert.equal(leaseFile({}), undefined);
  });

  test('--state-file / BURROW_STATE_FILE: the flag wins over the variable, which wins over the default; a relative path is from the working directory', () => {
    const home = { HOME: '/home/ann', XDG_STATE_HOME: '/var/state' };
    const leaseFile = (more: RawArgs, env: Record<string, string>) =>
      resolveClientOptions(clientArgs(['3000'], more), env).client.leaseFile;
    assert.equal(leaseFile({ 'state-file': '/srv/burrow/leases.json' }, home), '/srv/burrow/leases.json');
    assert.equal(leaseFile({}, { ...home, BURROW_STATE_FILE: '/etc/burrow/leases.json' }), '/etc/burrow/leases.json');
    assert.equal(
      leaseFile({ 'state-file': '/srv/a.json' }, { ...home, BURROW_STATE_FILE: '/srv/b.json' }),
      '/srv/a.json',
    );
    assert.equal(leaseFile({ 'state-file': 'leases.json' }, {}), path.resolve(process.cwd(), 'leases.json'));
    assert.equal(
      leaseFile({}, { BURROW_STATE_FILE: 'state/leases.json' }),
      path.resolve(process.cwd(), 'state', 'leases.json'),
    );
    // An empty variable counts as unset: the default.
    assert.equal(leaseFile({}, { ...home, BURROW_STATE_FILE: '' }), path.join('/var/state', 'burrow', 'leases.json'));
    // A repeated flag: the last wins.
    assert.equal(leaseFile({ 'state-file': ['/srv/a.json', '/srv/b.json'] }, {}), '/srv/b.json');
    // Nothing else changes.
    const defaults = resolveClientOptions(clientArgs(['3000']), {});
    assert.deepEqual(resolveClientOptions(clientArgs(['3000'], { 'state-file': '/srv/a.json' }), {}), {
      ...defaults,
      client: { ...defaults.client, leaseFile: '/srv/a.json' },
    });
  });

  test('--no-state-file (state-file: false) keeps no lease file, whatever the variable and the default say', () => {
    const env = { HOME: '/home/ann', XDG_STATE_HOME: '/var/state', BURROW_STATE_FILE: '/srv/leases.json' };
    const leaseFile = (stateFile: unknown) =>
      resolveClientOptions(clientArgs(['3000'], { 'state-file': stateFile }), env).client.leaseFile;
    assert.equal(leaseFile(false), undefined);
    // yargs collects `--state-file a --no-state-file` as ['a', false]: the last wins.
    assert.equal(leaseFile(['/srv/a.json', false]), undefined);
    assert.equal(leaseFile([false, '/srv/a.json']), '/srv/a.json');
  });

  test('an empty --state-file (a bare --state-file) is a usage error', () => {
    for (const bad of ['', '  ']) {
      assertUsageError(
        () => resolveClientOptions(clientArgs(['3000'], { 'state-file': bad }), { HOME: '/home/ann' }),
        '--state-file',
        `"${bad}"`,
        'file path',
      );
    }
  });
});

describe('editDistance', () => {
  test('insertions, deletions and substitutions count one each; swapping two neighbours counts one', () => {
    const cases: Array<[string, string, number]> = [
      ['', '', 0],
      ['server', 'server', 0],
      ['sever', 'server', 1],
      ['serverr', 'server', 1],
      ['servre', 'server', 1],
      ['remote-prot', 'remote-port', 1],
      ['tsl', 'tls', 1],
      ['quite', 'quiet', 1],
      ['contol-port', 'control-port', 1],
      ['bogus', 'bind', 4],
      ['', 'abc', 3],
      ['abc', '', 3],
    ];
    for (const [a, b, distance] of cases) {
      assert.equal(editDistance(a, b), distance, `${a} / ${b}`);
      assert.equal(editDistance(b, a), distance, `${b} / ${a}`);
    }
  });
});

/** A few of the client's flags, enough for every rule of suggest(). */
const CLIENT_FLAGS = [
  'help',
  'h',
  'version',
  'server',
  'control-port',
  'data-port',
  'local-host',
  'remote-port',
  'reconnect',
  'quiet',
  'trace',
  'json',
  'tls',
  'tls-ca',
  'tls-fingerprint',
  'tls-client-ca',
  'secret',
  'secret-file',
];

describe('suggest', () => {
  test('the nearest known flag within a slip per three letters', () => {
    assert.equal(suggest('sever', CLIENT_FLAGS), 'server');
    assert.equal(suggest('remote-prot', CLIENT_FLAGS), 'remote-port');
    assert.equal(suggest('contrl-port', CLIENT_FLAGS), 'control-port');
    assert.equal(suggest('tsl', CLIENT_FLAGS), 'tls');
    assert.equal(suggest('quite', CLIENT_FLAGS), 'quiet');
    assert.equal(suggest('secert', CLIENT_FLAGS), 'secret');
    assert.equal(suggest('remoteport', CLIENT_FLAGS), 'remote-port');
  });

  test('--no-X suggests --no-<nearest X>', () => {
    assert.equal(suggest('no-recconect', CLIENT_FLAGS), 'no-reconnect');
    assert.equal(suggest('no-bogus', CLIENT_FLAGS), undefined);
  });

  test('else the one flag that ends in -word', () => {
    assert.equal(suggest('fingerprint', CLIENT_FLAGS), 'tls-fingerprint');
    assert.equal(suggest('file', CLIENT_FLAGS), 'secret-file');
    // Two end in -ca, two in -port: no guess.
    assert.equal(suggest('ca', CLIENT_FLAGS), undefined);
    assert.equal(suggest('port', CLIENT_FLAGS), undefined);
  });

  test('nothing when nothing is close, for short words, or when two are equally close', () => {
    assert.equal(suggest('bogus', CLIENT_FLAGS), undefined);
    assert.equal(suggest('subdomain', CLIENT_FLAGS), undefined);
    assert.equal(suggest('to', CLIENT_FLAGS), undefined);
    assert.equal(suggest('x', CLIENT_FLAGS), undefined);
    assert.equal(suggest('tlz', ['tls', 'tla']), undefined);
    // Never a single-letter alias.
    assert.equal(suggest('hh', ['h', 'help']), undefined);
  });
});

describe('unknownFlags', () => {
  test('the flags of the command line that are not known, as typed, once each; values and arguments are not flags', () => {
    assert.deepEqual(unknownFlags(['client', '3000', '--sever', 'relay', '--quiet'], CLIENT_FLAGS), ['--sever']);
    assert.deepEqual(unknownFlags(['client', '--port', '3000', '--port=4000', '-p', '5'], CLIENT_FLAGS), [
      '--port',
      '-p',
    ]);
    assert.deepEqual(unknownFlags(['client', '3000', '--bogus=1', '--sever'], CLIENT_FLAGS), ['--bogus', '--sever']);
  });

  test('known flags in every spelling yargs takes: --no-X, --X=value, camelCase, short aliases', () => {
    assert.deepEqual(
      unknownFlags(
        [
          'client',
          '3000',
          '--no-reconnect',
          '--server=relay',
          '--controlPort',
          '1',
          '--remotePort',
          '2',
          '-h',
          '--help',
          '--version',
        ],
        CLIENT_FLAGS,
      ),
      [],
    );
    assert.deepEqual(unknownFlags(['client', '3000', '--no-sever'], CLIENT_FLAGS), ['--no-sever']);
  });

  test('short flags one letter at a time (-p3000 is -p with a value); negative numbers and everything after -- are arguments', () => {
    assert.deepEqual(unknownFlags(['-xh'], CLIENT_FLAGS), ['-x']);
    assert.deepEqual(unknownFlags(['-p3000'], CLIENT_FLAGS), ['-p']);
    assert.deepEqual(unknownFlags(['client', '-1', '--', '--bogus', '-x'], CLIENT_FLAGS), []);
  });
});

describe('explainUsage', () => {
  const client = (tokens: string[]): UsageContext => ({ command: 'client', tokens, known: CLIENT_FLAGS });
  const LOCAL_FLAGS = ['help', 'h', 'version', 'to', 't', 'port', 'p', 'local-host', 'l', 'control-port', 'data-port'];
  const local = (tokens: string[]): UsageContext => ({ command: 'local', tokens, known: LOCAL_FLAGS });
  const top = (tokens: string[]): UsageContext => ({ command: undefined, tokens, known: ['help', 'h', 'version'] });
  const NOT_ENOUGH = 'Not enough non-option arguments: got 0, need at least 1';
  const PORT_HINT = (flag: string) =>
    `give the local port as an argument: burrow client 3000 (${flag} is not a flag of burrow client; --remote-port asks for a public port)`;

  test("burrow client --port 3000 (localtunnel's habit) is told how ports are given, whatever yargs said", () => {
    assert.equal(explainUsage(NOT_ENOUGH, client(['client', '--port', '3000'])), PORT_HINT('--port'));
    assert.equal(
      explainUsage('Unknown argument: port', client(['client', '3000', '--port', '8080'])),
      PORT_HINT('--port'),
    );
    assert.equal(explainUsage(NOT_ENOUGH, client(['client', '-p', '3000'])), PORT_HINT('-p'));
    assert.equal(explainUsage(NOT_ENOUGH, client(['client', '--port=3000'])), PORT_HINT('--port'));
    // Other unknown flags are still named.
    assert.equal(
      explainUsage(NOT_ENOUGH, client(['client', '--port', '3000', '--sever', 'x'])),
      `${PORT_HINT('--port')}; unknown option --sever (did you mean --server?)`,
    );
  });

  test('unknown options: each named, with what it probably meant', () => {
    assert.equal(
      explainUsage('Unknown argument: sever', client(['client', '3000', '--sever', 'x'])),
      'unknown option --sever (did you mean --server?)',
    );
    assert.equal(
      explainUsage('Unknown argument: bogus', client(['client', '3000', '--bogus'])),
      'unknown option --bogus',
    );
    assert.equal(
      explainUsage(
        'Unknown arguments: remote-prot, remoteProt, bogus',
        client(['client', '3000', '--remote-prot', '1', '--bogus']),
      ),
      'unknown options --remote-prot (did you mean --remote-port?), --bogus',
    );
    assert.equal(explainUsage('Unknown argument: x', client(['client', '3000', '-x'])), 'unknown option -x');
    // Even when yargs first missed the local port: the flag is the clearer mistake.
    assert.equal(
      explainUsage(NOT_ENOUGH, client(['client', '--sever', 'x'])),
      'unknown option --sever (did you mean --server?)',
    );
  });

  test("bore's --to on burrow client means --server; burrow client's --server on burrow local means --to", () => {
    assert.equal(
      explainUsage('Unknown argument: to', client(['client', '3000', '--to', 'relay'])),
      'unknown option --to (did you mean --server?)',
    );
    assert.equal(
      explainUsage('Unknown argument: server', local(['local', '3000', '--server', 'relay'])),
      'unknown option --server (did you mean --to?)',
    );
    assert.equal(
      explainUsage('Unknown argument: remote-port', local(['local', '3000', '--remote-port', '1'])),
      'unknown option --remote-port (did you mean --port?)',
    );
    // --port is burrow local's own.
    assert.equal(
      explainUsage(NOT_ENOUGH, local(['local', '--port', '8080'])),
      'give the local port as an argument: burrow local 3000 --to relay.example.com',
    );
  });

  test('a missing local port gets an example', () => {
    assert.equal(
      explainUsage(NOT_ENOUGH, client(['client'])),
      'give the local port(s) to expose as arguments: burrow client 3000 [5432 ...]',
    );
    assert.equal(
      explainUsage(NOT_ENOUGH, local(['local', '--to', 'relay'])),
      'give the local port as an argument: burrow local 3000 --to relay.example.com',
    );
  });

  test('arguments a command does not take', () => {
    const server: UsageContext = {
      command: 'server',
      tokens: ['server', '3000'],
      known: ['help', 'h', 'version', 'control-port'],
    };
    assert.equal(
      explainUsage('Unknown argument: 3000', server),
      'unexpected argument 3000: burrow server takes none (its ports are flags: --control-port, --data-port)',
    );
    assert.equal(
      explainUsage('Unknown arguments: 3000, 4000', { ...server, tokens: ['server', '3000', '4000'] }),
      'unexpected arguments 3000, 4000: burrow server takes none (its ports are flags: --control-port, --data-port)',
    );
    assert.equal(
      explainUsage('Unknown argument: 4000', local(['local', '3000', '4000'])),
      'unexpected argument 4000: burrow local exposes one port (burrow client 3000 4000 exposes several)',
    );
  });

  test('an unknown command gets the nearest one, or the list', () => {
    assert.equal(
      explainUsage('Unknown arguments: clinet, 3000', top(['clinet', '3000'])),
      'unknown command clinet (did you mean client?)',
    );
    assert.equal(
      explainUsage('Unknown argument: sever', top(['sever'])),
      'unknown command sever (did you mean server?)',
    );
    assert.equal(
      explainUsage('Unknown argument: lcal', top(['lcal', '3000'])),
      'unknown command lcal (did you mean local?)',
    );
    assert.equal(
      explainUsage('Unknown argument: foo', top(['foo'])),
      'unknown command foo (give server, client or local)',
    );
    assert.equal(explainUsage('Unknown argument: bogus', top(['--bogus'])), 'unknown option --bogus');
  });

  test("anything else: yargs' message as it is", () => {
    assert.equal(
      explainUsage('give a command: server, client or local', top([])),
      'give a command: server, client or local',
    );
    assert.equal(
      explainUsage('Not enough arguments following: server', client(['client', '3000', '--server'])),
      'Not enough arguments following: server',
    );
  });
});

describe('resolveClientOptions: over WebSocket', () => {
  test('--server wss://HOST: the WebSocket transport, with the proxy from the environment unless --proxy or --no-proxy says', () => {
    const { client } = resolveClientOptions(clientArgs(['3000'], { server: 'wss://relay.example.com' }), {});
    assert.equal(client.server, 'relay.example.com');
    assert.deepEqual(client.webSocket, { url: 'wss://relay.example.com', proxy: undefined, pingIntervalMs: 25_000 });
    const proxied = resolveClientOptions(
      clientArgs(['3000'], {
        server: 'ws://127.0.0.1:8080',
        proxy: 'http://u:p@127.0.0.1:3128',
        'websocket-ping': '5',
      }),
      {},
    ).client.webSocket;
    assert.deepEqual(proxied, { url: 'ws://127.0.0.1:8080', proxy: 'http://u:p@127.0.0.1:3128', pingIntervalMs: 5000 });
    const none = resolveClientOptions(clientArgs(['3000'], { server: 'wss://relay', proxy: false }), {});
    assert.equal(none.client.webSocket?.proxy, false);
    const fromEnv = resolveClientOptions(clientArgs(['3000']), {
      BURROW_SERVER: 'wss://relay',
      BURROW_PROXY: 'http://127.0.0.1:3128',
    });
    assert.equal(fromEnv.client.webSocket?.proxy, 'http://127.0.0.1:3128');
    // A TCP server: no WebSocket options at all.
    assert.equal(resolveClientOptions(clientArgs(['3000'], { server: 'relay' }), {}).client.webSocket, undefined);
  });

  test('usage errors: --proxy or --websocket-ping without a WebSocket server, TLS flags with ws://, ports with a URL, a proxy that is no URL', () => {
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000'], { proxy: 'http://p:3128' }), {}),
      '--proxy is for a relay reached over WebSocket',
    );
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000'], { 'websocket-ping': '5' }), {}),
      '--websocket-ping is for a relay reached over WebSocket',
    );
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000'], { server: 'ws://relay', 'tls-ca': 'ca.pem' }), {}),
      '--tls-ca with ws://relay',
      'wss://',
    );
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000'], { server: 'wss://relay', 'control-port': '7835' }), {}),
      '--control-port has no meaning with wss://relay',
    );
    assertUsageError(
      () => resolveClientOptions(clientArgs(['3000'], { server: 'wss://relay', proxy: 'proxy:3128' }), {}),
      '--proxy: "proxy:3128" is not an HTTP proxy URL',
    );
  });
});
