// The real `burrow` command as a child process (node --import tsx cli/main.ts): its help,
// read as a user reads it (the order of the flags, their types, their variables, the
// examples at 100 columns). Usage and runtime errors are in cli.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envName } from '../cli/args.ts';
import { EXAMPLES } from '../cli/examples.ts';
import { LIMIT_FLAGS } from '../cli/options.ts';
import { DEFAULT_MAX_CONNECTIONS, SERVER_DEFAULTS } from '../index.ts';
import { runCli } from './child.ts';

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
