// The `burrow` command: yargs turns flags into library options (cli/options.ts) and the
// commands run the library. Nothing here knows the protocol.
import yargs, { type Argv } from 'yargs';
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
import { envName, LIMIT_FLAGS, UsageError } from './options.ts';

/** `--help` text for a flag: what it does, its variable, its default. */
const describe = (flag: string, text: string): string => `${text}  [env ${envName(flag)}]`;

/** A port, count or number of seconds: `[number]` in --help, yet handed to cli/options.ts
 * as typed. yargs-parser never coerces a `string` key, even one also marked `number` (its
 * maybeCoerceNumber and guessType check strings first), while the help shows a `number`
 * key's tag over the others': so "1e3" or "0x10" still reach our validators as text. */
const NUMBER = { type: 'string', number: true } as const;

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

const shared = {
  'control-port': { ...NUMBER, describe: describe('control-port', 'Control port of the server'), defaultDescription: String(DEFAULT_CONTROL_PORT) },
  'data-port': { ...NUMBER, describe: describe('data-port', 'Data port of the server'), defaultDescription: String(DEFAULT_DATA_PORT) },
  trace: {
    type: 'boolean',
    describe: describe('trace', 'Print every protocol line and connection event to stderr (coloured on a terminal, unless NO_COLOR is set)'),
  },
  json: {
    type: 'boolean',
    describe: describe('json', 'Print every event (start lines, connections, warnings, traces, ...) as one JSON object per line on stdout; stderr only for usage errors'),
  },
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
} as const;

/** The secret, for both commands; in a file or the environment it stays out of `ps`. */
const secretFlags = {
  secret: { type: 'string', describe: describe('secret', 'Shared secret clients must prove they know (prefer the variable or --secret-file)'), group: 'Security:' },
  'secret-file': { type: 'string', describe: describe('secret-file', 'Read the shared secret from this file'), group: 'Security:' },
} as const;

const serverSecurity = {
  ...secretFlags,
  tls: { type: 'boolean', describe: describe('tls', 'Speak TLS; without --tls-cert, use a self-signed certificate made once in --tls-dir'), group: 'Security:' },
  'tls-cert': { type: 'string', describe: describe('tls-cert', 'TLS certificate (PEM, chain first) for the control and data ports'), group: 'Security:' },
  'tls-key': { type: 'string', describe: describe('tls-key', 'Private key (PEM) of --tls-cert'), group: 'Security:' },
  'tls-dir': {
    type: 'string',
    describe: describe('tls-dir', 'Where --tls keeps its self-signed certificate'),
    defaultDescription: '$XDG_CONFIG_HOME/burrow or ~/.config/burrow',
    group: 'Security:',
  },
  'tls-client-ca': { type: 'string', describe: describe('tls-client-ca', 'Mutual TLS: require client certificates signed by this CA (PEM)'), group: 'Security:' },
} as const;

const clientSecurity = {
  ...secretFlags,
  tls: { type: 'boolean', describe: describe('tls', "Speak TLS, trusting the system's CAs (implied by the other --tls-* flags)"), group: 'Security:' },
  'tls-ca': { type: 'string', describe: describe('tls-ca', "Trust this CA (PEM) instead: a private CA or the server's self-signed certificate"), group: 'Security:' },
  'tls-fingerprint': {
    type: 'string',
    describe: describe('tls-fingerprint', "Pin the server's certificate by its SHA-256 fingerprint (the server prints it)"),
    group: 'Security:',
  },
  'tls-client-cert': { type: 'string', describe: describe('tls-client-cert', 'Mutual TLS: our certificate (PEM)'), group: 'Security:' },
  'tls-client-key': { type: 'string', describe: describe('tls-client-key', 'Mutual TLS: the private key of --tls-client-cert'), group: 'Security:' },
} as const;

function serverArgs(y: Argv): Argv {
  return y
    .options(shared)
    .options(serverSecurity)
    .option('bind', { type: 'string', describe: describe('bind', 'Address every listener binds to'), defaultDescription: 'all interfaces' })
    .option('metrics', {
      type: 'string',
      describe: describe('metrics', 'Serve Prometheus metrics at http://ADDR:PORT/metrics (a bare PORT: 127.0.0.1 only)'),
      defaultDescription: 'off',
    })
    .option('port-range', { type: 'string', describe: describe('port-range', 'Public ports to hand out, LO-HI'), defaultDescription: '1024-65535' })
    .option('visitor-timeout', {
      ...NUMBER,
      describe: describe('visitor-timeout', 'Seconds a visitor waits for the client to dial back'),
      defaultDescription: String(DEFAULT_LIMITS.visitorTimeoutMs / 1000),
    })
    .option('lease-grace', {
      ...NUMBER,
      describe: describe('lease-grace', "Seconds a dropped client's public ports stay reserved for it (0: none)"),
      defaultDescription: String(DEFAULT_LIMITS.leaseGraceMs / 1000),
    })
    .option('handshake-timeout', {
      ...NUMBER,
      describe: describe('handshake-timeout', 'Seconds a new connection has to send its first line'),
      defaultDescription: String(DEFAULT_LIMITS.handshakeTimeoutMs / 1000),
    })
    .options(
      Object.fromEntries(
        Object.entries(LIMIT_FLAGS).map(([flag, key]) => [
          flag,
          { ...NUMBER, describe: describe(flag, LIMIT_HELP[key]), defaultDescription: String(DEFAULT_LIMITS[key]), group: 'Limits:' },
        ]),
      ),
    )
    .example('$0 server', 'Listen on 7835/7836 and hand out any port 1024-65535 (an open relay: for demos)')
    .example('$0 server --tls --secret-file /etc/burrow/secret', 'For real: TLS with a self-signed certificate, and a secret')
    .example('$0 server --bind 127.0.0.1 --port-range 40000-40100', 'Loopback only, 101 public ports');
}

function clientArgs(y: Argv): Argv {
  return y
    .positional('local-port', { type: 'string', array: true, describe: 'Local port(s) to expose' })
    .options(shared)
    .options(clientSecurity)
    .option('local-host', { type: 'string', describe: describe('local-host', 'Host of the local service'), defaultDescription: 'localhost' })
    .option('server', { type: 'string', describe: describe('server', 'Host of the burrow server'), defaultDescription: 'localhost' })
    .option('remote-port', {
      type: 'string',
      array: true,
      describe: describe('remote-port', 'Public port to ask for; repeat once per local port (env: comma-separated)'),
      defaultDescription: 'any free port',
    })
    .option('proxy-protocol', {
      type: 'string',
      array: true,
      describe: describe(
        'proxy-protocol',
        "Send the local service a PROXY protocol header (v1 text, v2 binary) with the visitor's address; only for services that expect one (nginx proxy_protocol, haproxy accept-proxy). One value for all tunnels, or one per local port (none to skip)",
      ),
      defaultDescription: 'none',
    })
    .option('max-connections', {
      ...NUMBER,
      describe: describe('max-connections', 'Visitor connections served at once; more are turned away at once'),
      defaultDescription: String(DEFAULT_MAX_CONNECTIONS),
    })
    .option('state-file', {
      type: 'string',
      describe: describe(
        'state-file',
        'Where to keep lease tokens so a restarted client gets its --remote-port back at once (mode 0600); --no-state-file to keep none',
      ),
      defaultDescription: '$XDG_STATE_HOME/burrow/leases.json or ~/.local/state/burrow/leases.json',
    })
    .option('quiet', {
      type: 'boolean',
      describe: describe('quiet', 'No connection log (the line printed on stdout when a visitor connection closes)'),
    })
    .option('reconnect', {
      type: 'boolean',
      describe: describe('reconnect', 'Reconnect when the server is lost; --no-reconnect exits 1 instead'),
      defaultDescription: 'on',
    })
    .example('$0 client 3000', 'Expose localhost:3000 through a server on localhost')
    .example('$0 client 3000 5432 --server relay.example.com', 'Two tunnels over one connection')
    .example('$0 client 3000 --remote-port 8080', 'Ask for public port 8080')
    .example('$0 client 8080 --proxy-protocol v2', "nginx on 8080 (listen 8080 proxy_protocol) logs the visitor's address")
    .example('$0 client 3000 --server relay.example.com --tls-fingerprint AB:CD:… --secret-file ~/.burrow-secret', 'To a server started with --tls and a secret');
}

/** Parses `argv` and runs the command; resolves with the process exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let exitCode = 0;
  const parser = yargs(argv)
    .scriptName('burrow')
    .usage('$0 <command>\n\nA reverse TCP tunnel: expose a port on this machine through a public relay.')
    .command('server', 'Run the relay (on a public host)', serverArgs, async (args) => {
      exitCode = await runServer(args, env);
    })
    .command('client <local-port..>', 'Expose local port(s) through a relay', clientArgs, async (args) => {
      exitCode = await runClient(args, env);
    })
    .demandCommand(1, 'Give a command: server or client')
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    });
  try {
    await parser.parseAsync();
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof Error && error.name === 'YError')) throw error;
    process.stderr.write(`burrow: ${error.message}\nRun 'burrow --help' for usage.\n`);
    return 2;
  }
  return exitCode;
}
