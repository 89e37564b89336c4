// The flags of `burrow client` and `burrow local` (bore's names for the same), as yargs and
// --help take them. Their defaults are the client's (cli/defaults.ts).
import type { Options } from 'yargs';
import { DEFAULT_WEBSOCKET_PING_MS } from '../index.ts';
import { SERVER_FORMS } from './address.ts';
import { CLIENT_DEFAULTS } from './defaults.ts';
import {
  describe,
  inGroup,
  inSeconds,
  livenessFlags,
  NUMBER,
  outputFlags,
  secretFlags,
  type Table,
} from './flag-help.ts';

/** Where the server is: `burrow client` says --server, `burrow local` (bore's words) --to. */
const serverFlag = (flag: string): Options => ({
  type: 'string',
  describe: `Address of the burrow server: ${SERVER_FORMS} (PORT: its control port; over WebSocket, its HTTP(S) port)  [env BURROW_SERVER]`,
  defaultDescription: CLIENT_DEFAULTS.server,
  ...(flag === 'to' ? { alias: 't' } : {}),
});

const connectionTail: Table = {
  'control-port': {
    ...NUMBER,
    describe: describe('control-port', "The server's control port (or give it in the address)"),
    defaultDescription: String(CLIENT_DEFAULTS.controlPort),
  },
  'data-port': {
    ...NUMBER,
    describe: describe('data-port', "The server's data port, if not the one it names"),
    defaultDescription: `the server's, else ${CLIENT_DEFAULTS.dataPort}`,
  },
  proxy: {
    type: 'string',
    describe: describe(
      'proxy',
      'With a ws:// or wss:// server: go through this HTTP proxy (CONNECT), http://[user:password@]HOST:PORT; --no-proxy for none',
    ),
    defaultDescription: 'HTTPS_PROXY (wss://) or HTTP_PROXY (ws://), unless NO_PROXY names the relay',
  },
  'websocket-ping': {
    ...NUMBER,
    describe: describe('websocket-ping', 'With a ws:// or wss:// server: seconds between WebSocket pings'),
    defaultDescription: inSeconds(DEFAULT_WEBSOCKET_PING_MS),
  },
};
const localHost: Options = {
  type: 'string',
  describe: describe('local-host', 'Host of the local service'),
  defaultDescription: CLIENT_DEFAULTS.localHost,
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
      defaultDescription: String(CLIENT_DEFAULTS.maxConnections),
    },
    http: {
      type: 'boolean',
      describe: describe(
        'http',
        "Make the ports HTTP tunnels, reached by name at http://NAME.<the relay's domain> (the relay needs --http-port). A port written http:3000 or tcp:3000 is that kind either way, so one client can mix both",
      ),
    },
    name: {
      type: 'string',
      describe: describe('name', 'The name to ask for, with one HTTP tunnel: http://NAME.<domain>'),
      defaultDescription: 'a random one',
    },
    auth: {
      type: 'string',
      describe: describe(
        'auth',
        'Visitors of the HTTP tunnels must give this user:password (basic auth, checked at the relay); prefer the variable, which stays out of ps',
      ),
    },
    'host-header': {
      type: 'string',
      describe: describe(
        'host-header',
        'The Host header the local service sees: keep (NAME.<domain>, as sent), rewrite (its own host:port, e.g. localhost:3000, for dev servers that check it) or a host of your own',
      ),
      defaultDescription: 'keep',
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
    ...livenessFlags(CLIENT_DEFAULTS),
  }),
  ...inGroup('Output:', {
    inspect: {
      type: 'string',
      describe: describe(
        'inspect',
        'Serve the inspector (a live page of connections and requests) at [ADDR:]PORT; --no-inspect for none',
      ),
      defaultDescription: '127.0.0.1:4040, or the next free port',
    },
    ...outputFlags,
    quiet: {
      type: 'boolean',
      describe: describe(
        'quiet',
        'No connection log (the line printed on stdout when a visitor connection closes) and no request log (one line per HTTP request)',
      ),
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

export const CLIENT_OPTIONS: Table = {
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
export const LOCAL_OPTIONS: Table = {
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
