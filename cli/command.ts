// The `burrow` command: yargs turns flags into library options (cli/options.ts) and the
// commands run the library. Nothing here knows the protocol.
import yargs, { type Argv, type Options } from 'yargs';
import {
  DEFAULT_CONTROL_PORT,
  DEFAULT_DATA_PORT,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
} from '../shared/protocol.ts';
import { DEFAULT_LIMITS } from '../server/limits.ts';
import { DEFAULT_MAX_CONNECTIONS } from '../client/types.ts';
import { runClient, runServer } from './run.ts';
import { SERVER_FORMS } from './address.ts';
import { envName, LIMIT_FLAGS, LOCAL_SPELLING, UsageError } from './options.ts';
import { explainUsage, type CommandName } from './usage.ts';
import { TLS_NAME_FLAG, TLS_NAME_HELP } from './security.ts';

/** `--help` text for a flag: what it does, its variable, its default. */
const describe = (flag: string, text: string): string => `${text}  [env ${envName(flag)}]`;

/** A port, count or number of seconds: `[number]` in --help, yet handed to cli/options.ts
 * as typed. yargs-parser never coerces a `string` key, even one also marked `number` (its
 * maybeCoerceNumber and guessType check strings first), while the help shows a `number`
 * key's tag over the others': so "1e3" or "0x10" still reach our validators as text. */
const NUMBER = { type: 'string', number: true } as const;

/** The width of --help: the terminal's, at most 100 (a child with a pipe gets 100). */
const WIDTH = Math.min(100, process.stdout.columns || 100);

type Table = Record<string, Options>;

/** The same flags, shown under `group` in --help. The groups show in the order their
 * first flag is defined, so each command defines its flags in reading order. */
const inGroup = (group: string, table: Table): Table =>
  Object.fromEntries(Object.entries(table).map(([flag, option]) => [flag, { ...option, group }]));

const LIMIT_HELP: Record<(typeof LIMIT_FLAGS)[keyof typeof LIMIT_FLAGS], string> = {
  maxTunnelsPerClient: 'Tunnels one client connection may hold',
  maxTunnels: 'Public ports the whole server may hold, leased ones included',
  maxTunnelsPerIp: 'Public ports one IP address may hold, leased ones included',
  maxPendingPerTunnel: 'Visitors waiting for a dial-back, per tunnel',
  maxPending: 'Visitors waiting for a dial-back, in all',
  maxConnectionsPerTunnel: 'Visitor connections (waiting or joined) per tunnel',
  maxClientsPerIp: 'Client connections from one IP address',
  maxHandshakesPerIp: 'Data connections from one IP address still in their handshake',
};

const liveness: Table = {
  'heartbeat-interval': {
    ...NUMBER,
    describe: describe('heartbeat-interval', 'Seconds between PINGs on the control connection'),
    defaultDescription: String(DEFAULT_HEARTBEAT_INTERVAL_MS / 1000),
  },
  'heartbeat-timeout': {
    ...NUMBER,
    describe: describe('heartbeat-timeout', 'Seconds of silence after which the other side counts as gone'),
    defaultDescription: String(DEFAULT_HEARTBEAT_TIMEOUT_MS / 1000),
  },
  'shutdown-timeout': {
    ...NUMBER,
    describe: describe('shutdown-timeout', 'On SIGINT/SIGTERM, seconds to let open connections finish'),
    defaultDescription: String(DEFAULT_SHUTDOWN_TIMEOUT_MS / 1000),
  },
};

const output: Table = {
  trace: {
    type: 'boolean',
    describe: describe(
      'trace',
      'Print every protocol line and connection event to stderr (coloured on a terminal, unless NO_COLOR is set)',
    ),
  },
  json: {
    type: 'boolean',
    describe: describe(
      'json',
      'Print every event (start lines, connections, warnings, traces, ...) as a JSON line on stdout; stderr only for usage errors',
    ),
  },
};

/** The secret, for both commands; in a file or the environment it stays out of `ps`. */
const secretFlags: Table = {
  secret: {
    type: 'string',
    describe: describe('secret', 'Shared secret clients must prove they know (prefer the variable or --secret-file)'),
  },
  'secret-file': { type: 'string', describe: describe('secret-file', 'Read the shared secret from this file') },
};

const SERVER_OPTIONS: Table = {
  ...inGroup('Listening:', {
    bind: {
      type: 'string',
      describe: describe('bind', 'Address every listener binds to'),
      defaultDescription: 'all interfaces',
    },
    'control-port': {
      ...NUMBER,
      describe: describe('control-port', 'Control port clients connect to (0: any free port)'),
      defaultDescription: String(DEFAULT_CONTROL_PORT),
    },
    'data-port': {
      ...NUMBER,
      describe: describe('data-port', 'Data port clients dial back on (0: any free port)'),
      defaultDescription: String(DEFAULT_DATA_PORT),
    },
    'port-range': {
      type: 'string',
      describe: describe('port-range', 'Public ports to hand out, LO-HI'),
      defaultDescription: '1024-65535',
    },
  }),
  ...inGroup('Timeouts:', {
    'visitor-timeout': {
      ...NUMBER,
      describe: describe('visitor-timeout', 'Seconds a visitor waits for the client to dial back'),
      defaultDescription: String(DEFAULT_LIMITS.visitorTimeoutMs / 1000),
    },
    'handshake-timeout': {
      ...NUMBER,
      describe: describe('handshake-timeout', 'Seconds a new connection has to send its first line'),
      defaultDescription: String(DEFAULT_LIMITS.handshakeTimeoutMs / 1000),
    },
    'lease-grace': {
      ...NUMBER,
      describe: describe('lease-grace', "Seconds a dropped client's public ports stay reserved for it (0: none)"),
      defaultDescription: String(DEFAULT_LIMITS.leaseGraceMs / 1000),
    },
    ...liveness,
  }),
  ...inGroup(
    'Limits:',
    Object.fromEntries(
      Object.entries(LIMIT_FLAGS).map(([flag, key]) => [
        flag,
        { ...NUMBER, describe: describe(flag, LIMIT_HELP[key]), defaultDescription: String(DEFAULT_LIMITS[key]) },
      ]),
    ),
  ),
  ...inGroup('Output:', {
    ...output,
    metrics: {
      type: 'string',
      describe: describe(
        'metrics',
        'Serve Prometheus metrics at http://ADDR:PORT/metrics (a bare PORT: 127.0.0.1 only)',
      ),
      defaultDescription: 'off',
    },
  }),
  ...inGroup('Security:', {
    ...secretFlags,
    tls: {
      type: 'boolean',
      describe: describe('tls', 'Speak TLS; without --tls-cert, use a self-signed certificate made once in --tls-dir'),
    },
    'tls-cert': {
      type: 'string',
      describe: describe('tls-cert', 'TLS certificate (PEM, chain first) for the control and data ports'),
    },
    'tls-key': { type: 'string', describe: describe('tls-key', 'Private key (PEM) of --tls-cert') },
    'tls-dir': {
      type: 'string',
      describe: describe('tls-dir', 'Where --tls keeps its self-signed certificate'),
      defaultDescription: '$XDG_CONFIG_HOME/burrow or ~/.config/burrow',
    },
    'tls-client-ca': {
      type: 'string',
      describe: describe('tls-client-ca', 'Mutual TLS: require client certificates signed by this CA (PEM)'),
    },
    [TLS_NAME_FLAG]: { type: 'string', array: true, describe: describe(TLS_NAME_FLAG, TLS_NAME_HELP) },
  }),
};

/** Where the server is: `burrow client` says --server, `burrow local` (bore's words) --to. */
const serverFlag = (flag: string): Options => ({
  type: 'string',
  describe: `Address of the burrow server: ${SERVER_FORMS} (PORT: its control port)  [env BURROW_SERVER]`,
  defaultDescription: 'localhost',
  ...(flag === 'to' ? { alias: 't' } : {}),
});

const connectionTail: Table = {
  'control-port': {
    ...NUMBER,
    describe: describe('control-port', "The server's control port (or give it in the address)"),
    defaultDescription: String(DEFAULT_CONTROL_PORT),
  },
  'data-port': {
    ...NUMBER,
    describe: describe('data-port', "The server's data port, if not the one it names"),
    defaultDescription: `the server's, else ${DEFAULT_DATA_PORT}`,
  },
};
const localHost: Options = {
  type: 'string',
  describe: describe('local-host', 'Host of the local service'),
  defaultDescription: 'localhost',
};

/** What both client commands take after their connection flags. */
const CLIENT_REST: Table = {
  ...inGroup('Tunnels:', {
    'proxy-protocol': {
      type: 'string',
      array: true,
      describe: describe(
        'proxy-protocol',
        "Send the local service a PROXY protocol header (v1 text, v2 binary) with the visitor's address; only for services that expect one (nginx proxy_protocol, haproxy accept-proxy). One value for all tunnels, or one per local port (none to skip)",
      ),
      defaultDescription: 'none',
    },
    'max-connections': {
      ...NUMBER,
      describe: describe('max-connections', 'Visitor connections served at once; more are turned away at once'),
      defaultDescription: String(DEFAULT_MAX_CONNECTIONS),
    },
  }),
  ...inGroup('Staying up:', {
    reconnect: {
      type: 'boolean',
      describe: describe('reconnect', 'Reconnect when the server is lost; --no-reconnect exits 1 instead'),
      defaultDescription: 'on',
    },
    'state-file': {
      type: 'string',
      describe: describe(
        'state-file',
        'Where to keep lease tokens so a restarted client gets its --remote-port back at once (mode 0600); --no-state-file to keep none',
      ),
      defaultDescription: '$XDG_STATE_HOME/burrow/leases.json or ~/.local/state/burrow/leases.json',
    },
    ...liveness,
  }),
  ...inGroup('Output:', {
    ...output,
    quiet: {
      type: 'boolean',
      describe: describe('quiet', 'No connection log (the line printed on stdout when a visitor connection closes)'),
    },
  }),
  ...inGroup('Security:', {
    ...secretFlags,
    tls: {
      type: 'boolean',
      describe: describe('tls', "Speak TLS, trusting the system's CAs (implied by the other --tls-* flags)"),
    },
    'tls-ca': {
      type: 'string',
      describe: describe('tls-ca', "Trust this CA (PEM) instead: a private CA or the server's self-signed certificate"),
    },
    'tls-fingerprint': {
      type: 'string',
      describe: describe(
        'tls-fingerprint',
        "Pin the server's certificate by its SHA-256 fingerprint (the server prints it)",
      ),
    },
    'tls-client-cert': { type: 'string', describe: describe('tls-client-cert', 'Mutual TLS: our certificate (PEM)') },
    'tls-client-key': {
      type: 'string',
      describe: describe('tls-client-key', 'Mutual TLS: the private key of --tls-client-cert'),
    },
  }),
};

const CLIENT_OPTIONS: Table = {
  ...inGroup('Connection:', {
    server: serverFlag('server'),
    ...connectionTail,
    'local-host': localHost,
    'remote-port': {
      type: 'string',
      array: true,
      describe: describe('remote-port', 'Public port to ask for; repeat once per local port (env: comma-separated)'),
      defaultDescription: 'any free port',
    },
  }),
  ...CLIENT_REST,
};

/** bore's `bore local <LOCAL_PORT> --to <SERVER> [--port N] [--local-host H]`, with its
 * short flags; everything else as `burrow client`. */
const LOCAL_OPTIONS: Table = {
  ...inGroup('Connection:', {
    to: serverFlag('to'),
    port: {
      ...NUMBER,
      alias: 'p',
      describe: 'Public port to ask for, as --remote-port of burrow client  [env BURROW_REMOTE_PORT]',
      defaultDescription: 'any free port',
    },
    'local-host': { ...localHost, alias: 'l' },
    ...connectionTail,
  }),
  ...CLIENT_REST,
  secret: { ...secretFlags.secret, group: 'Security:', alias: 's' },
};

/** Examples as `[command, what it does]`; a long command gets a line of its own, with
 * its text under it in the second column, so that no command wraps (at width 100 the
 * first column holds 50 characters). */
type Example = readonly [command: string, text: string];
export const EXAMPLES: Record<'top' | CommandName, readonly Example[]> = {
  top: [
    ['$0 server', 'Run a relay (no secret: an open relay, for demos)'],
    ['$0 client 3000', 'Expose localhost:3000 through a relay on localhost'],
    ['$0 client 3000 --server relay.example.com', 'Through relay.example.com (control port 7835)'],
    [
      '$0 client 3000 --server relay.example.com --tls-fingerprint AB:CD:… --secret-file ~/secret',
      'To a relay started with --tls and a secret',
    ],
  ],
  server: [
    ['$0 server', 'Listen on 7835/7836, hand out any port 1024-65535 (an open relay: for demos)'],
    ['$0 server --tls --secret-file /etc/burrow/secret', 'For real: TLS with a self-signed certificate, and a secret'],
    ['$0 server --bind 127.0.0.1 --port-range 40000-40100', 'Loopback only, 101 public ports'],
  ],
  client: [
    ['$0 client 3000', 'Expose localhost:3000 through a relay on localhost'],
    [
      '$0 client 3000 --server relay.example.com:7835',
      'Through relay.example.com (:7835, its control port, may be left out)',
    ],
    ['$0 client 3000 5432 --server relay.example.com', 'Two tunnels over one connection'],
    ['$0 client 3000 --remote-port 8080', 'Ask for public port 8080'],
    ['$0 client 8080 --proxy-protocol v2', "nginx on 8080 (listen 8080 proxy_protocol) logs the visitor's address"],
    [
      '$0 client 3000 --server relay.example.com --tls-fingerprint AB:CD:… --secret-file ~/secret',
      'To a relay started with --tls and a secret',
    ],
  ],
  local: [
    ['$0 local 3000 --to relay.example.com', 'burrow client 3000 --server relay.example.com'],
    ['$0 local 3000 --to relay.example.com -p 8080', 'The same, asking for public port 8080'],
  ],
};

/** The longest command that fits the first column of the examples at WIDTH. */
const EXAMPLE_COLUMN = Math.floor(WIDTH / 2);

function withExamples(y: Argv, examples: readonly Example[]): Argv {
  for (const [command, text] of examples) {
    if (command.replace('$0', 'burrow').length <= EXAMPLE_COLUMN) y.example(command, text);
    else y.example(command, '').example('', text);
  }
  return y;
}

/** Every flag a command knows, for "did you mean" (help and version are everyone's). */
const knownFlags = (table: Table): string[] => [
  'help',
  'h',
  'version',
  ...Object.entries(table).flatMap(([flag, option]) => [flag, ...[option.alias ?? []].flat()]),
];

const serverArgs = (y: Argv): Argv => withExamples(y.options(SERVER_OPTIONS), EXAMPLES.server);

const clientArgs = (y: Argv): Argv =>
  withExamples(
    // No default: yargs would show `[default: []]` beside `[required]`.
    y
      .positional('local-port', {
        type: 'string',
        array: true,
        default: undefined,
        describe: 'Local port(s) to expose',
      })
      .options(CLIENT_OPTIONS),
    EXAMPLES.client,
  );

const localArgs = (y: Argv): Argv =>
  withExamples(
    y
      .usage(
        "$0 local <local-port>\n\nExpose one local port through a relay, with bore's flags (bore-compatible). These are the same:\n" +
          'burrow local 3000 --to HOST --port 8080\nburrow client 3000 --server HOST --remote-port 8080',
      )
      .positional('local-port', { type: 'string', default: undefined, describe: 'Local port to expose' })
      .options(LOCAL_OPTIONS),
    EXAMPLES.local,
  );

/** Parses `argv` and runs the command; resolves with the process exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let exitCode = 0;
  // Set by the command's builder, which yargs runs before it validates: a usage error then
  // points to that command's help.
  let command: CommandName | undefined;
  const known: Record<CommandName, string[]> = {
    server: knownFlags(SERVER_OPTIONS),
    client: knownFlags(CLIENT_OPTIONS),
    local: knownFlags(LOCAL_OPTIONS),
  };
  const builder =
    (name: CommandName, args: (y: Argv) => Argv) =>
    (y: Argv): Argv => {
      command = name;
      return args(y);
    };
  /** A mistake yargs found, in its words (cli/options.ts explainUsage rewords it). */
  class YargsUsage extends UsageError {}
  const parser = withExamples(yargs(argv), EXAMPLES.top)
    .scriptName('burrow')
    .usage('$0 <command>\n\nA reverse TCP tunnel: expose a port on this machine through a public relay.')
    .command('server', 'Run the relay (on a public host)', builder('server', serverArgs), async (args) => {
      exitCode = await runServer(args, env);
    })
    .command(
      'client <local-port..>',
      'Expose local port(s) through a relay',
      builder('client', clientArgs),
      async (args) => {
        exitCode = await runClient(args, env);
      },
    )
    .command(
      'local <local-port>',
      'Expose one local port, bore-compatible: --to HOST, --port N',
      builder('local', localArgs),
      async (args) => {
        exitCode = await runClient(args, env, LOCAL_SPELLING);
      },
    )
    .demandCommand(1, 'give a command: server, client or local')
    .strict()
    // Our messages are English; so are yargs' (explainUsage reads some of them).
    .detectLocale(false)
    .help()
    .alias('help', 'h')
    .version()
    .wrap(WIDTH)
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new YargsUsage(message);
    });
  try {
    await parser.parseAsync();
  } catch (error) {
    const fromYargs = error instanceof YargsUsage || (error instanceof Error && error.name === 'YError');
    if (!(error instanceof UsageError) && !fromYargs) throw error;
    const message = fromYargs
      ? explainUsage(error.message, {
          command,
          tokens: argv,
          known: command === undefined ? ['help', 'h', 'version'] : known[command],
        })
      : error.message;
    process.stderr.write(
      `burrow: ${message}\nRun 'burrow ${command === undefined ? '' : `${command} `}--help' for usage.\n`,
    );
    return 2;
  }
  return exitCode;
}
