// The flags of `burrow server`, as yargs and --help take them. Their defaults are the
// library's, read from SERVER_DEFAULTS.
import { SERVER_DEFAULTS } from '../index.ts';
import { HTTP_DEFAULTS } from './defaults.ts';
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
import { LIMIT_FLAGS } from './options.ts';
import { TLS_NAME_FLAG, TLS_NAME_HELP } from './security.ts';

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

const { portRange } = SERVER_DEFAULTS;

export const SERVER_OPTIONS: Table = {
  ...inGroup('Listening:', {
    bind: {
      type: 'string',
      describe: describe('bind', 'Address every listener binds to'),
      defaultDescription: 'all interfaces',
    },
    'control-port': {
      ...NUMBER,
      describe: describe('control-port', 'Control port clients connect to (0: any free port)'),
      defaultDescription: String(SERVER_DEFAULTS.controlPort),
    },
    'data-port': {
      ...NUMBER,
      describe: describe('data-port', 'Data port clients dial back on (0: any free port)'),
      defaultDescription: String(SERVER_DEFAULTS.dataPort),
    },
    'port-range': {
      type: 'string',
      describe: describe('port-range', 'Public ports to hand out, LO-HI'),
      defaultDescription: `${portRange.min}-${portRange.max}`,
    },
  }),
  ...inGroup('Timeouts:', {
    'visitor-timeout': {
      ...NUMBER,
      describe: describe('visitor-timeout', 'Seconds a visitor waits for the client to dial back'),
      defaultDescription: inSeconds(SERVER_DEFAULTS.visitorTimeoutMs),
    },
    'handshake-timeout': {
      ...NUMBER,
      describe: describe('handshake-timeout', 'Seconds a new connection has to send its first line'),
      defaultDescription: inSeconds(SERVER_DEFAULTS.handshakeTimeoutMs),
    },
    'lease-grace': {
      ...NUMBER,
      describe: describe('lease-grace', "Seconds a dropped client's public ports stay reserved for it (0: none)"),
      defaultDescription: inSeconds(SERVER_DEFAULTS.leaseGraceMs),
    },
    ...livenessFlags(SERVER_DEFAULTS),
  }),
  ...inGroup(
    'Limits:',
    Object.fromEntries(
      Object.entries(LIMIT_FLAGS).map(([flag, key]) => [
        flag,
        { ...NUMBER, describe: describe(flag, LIMIT_HELP[key]), defaultDescription: String(SERVER_DEFAULTS[key]) },
      ]),
    ),
  ),
  ...inGroup('HTTP tunnels:', {
    'http-port': {
      ...NUMBER,
      describe: describe(
        'http-port',
        'Also serve HTTP tunnels by name, at http://NAME.<domain>:PORT (0: any free port)',
      ),
      defaultDescription: 'off',
    },
    'https-port': {
      ...NUMBER,
      describe: describe(
        'https-port',
        "Serve them over HTTPS on this port: with --https-cert and --https-key, else with certificates from an ACME CA (Let's Encrypt; needs --http-port, 80 for a real CA)",
      ),
      defaultDescription: 'off',
    },
    'acme-directory': {
      type: 'string',
      describe: describe('acme-directory', 'The ACME CA for --https-port without --https-cert (its directory URL)'),
      defaultDescription: "Let's Encrypt",
    },
    'acme-email': { type: 'string', describe: describe('acme-email', 'Contact address for the ACME account') },
    'acme-cache': {
      type: 'string',
      describe: describe('acme-cache', 'Where the ACME account, certificates and keys are kept (mode 0700)'),
      defaultDescription: '$XDG_STATE_HOME/burrow/acme or ~/.local/state/burrow/acme',
    },
    'acme-ca': {
      type: 'string',
      describe: describe('acme-ca', "A CA certificate to trust for the ACME directory's own HTTPS (a test CA)"),
    },
    'https-cert': {
      type: 'string',
      describe: describe('https-cert', 'Certificate (PEM, chain first) for *.<domain>, for --https-port'),
    },
    'https-key': { type: 'string', describe: describe('https-key', 'Private key (PEM) of --https-cert') },
    domain: {
      type: 'string',
      describe: describe('domain', 'Tunnels are reached at NAME.<domain> (*.localhost resolves to this machine)'),
      defaultDescription: HTTP_DEFAULTS.domain,
    },
    'reserved-names': {
      type: 'string',
      describe: describe('reserved-names', 'Names no client may have, comma-separated, instead of these ("": none)'),
      defaultDescription: HTTP_DEFAULTS.reservedNames.join(','),
    },
    websocket: {
      type: 'boolean',
      describe: describe(
        'websocket',
        'Take clients over WebSocket on the HTTP(S) ports too (a client gives wss://HOST as the server), for networks that let only HTTPS out; --no-websocket for none',
      ),
      defaultDescription: 'on',
    },
    'websocket-ping': {
      ...NUMBER,
      describe: describe('websocket-ping', 'Seconds between pings on each WebSocket; one that stays silent is closed'),
      defaultDescription: inSeconds(SERVER_DEFAULTS.webSocketPingMs),
    },
    'max-header-size': {
      ...NUMBER,
      describe: describe('max-header-size', 'Bytes a request head may have; a larger one gets 431'),
      defaultDescription: String(HTTP_DEFAULTS.maxHeaderBytes),
    },
    'header-timeout': {
      ...NUMBER,
      describe: describe('header-timeout', 'Seconds a visitor has to send a request head; then 408'),
      defaultDescription: inSeconds(HTTP_DEFAULTS.headerTimeoutMs),
    },
    'keepalive-timeout': {
      ...NUMBER,
      describe: describe('keepalive-timeout', 'Seconds an idle kept-alive visitor connection stays open'),
      defaultDescription: inSeconds(HTTP_DEFAULTS.keepAliveTimeoutMs),
    },
    'max-requests-per-tunnel': {
      ...NUMBER,
      describe: describe('max-requests-per-tunnel', 'Requests one HTTP tunnel forwards at once; more get 503'),
      defaultDescription: String(HTTP_DEFAULTS.maxRequestsPerTunnel),
    },
  }),
  ...inGroup('Output:', {
    ...outputFlags,
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
