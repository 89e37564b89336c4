// What `burrow server` and `burrow client` print, as events: each event is one or two text
// lines (stdout for what a user or script acts on, stderr for notices), or with --json one
// JSON object per line on stdout. Pure; cli/reporter.ts does the printing.
//
// --json: one object per line, every one with "event" and "time" (ISO 8601, UTC). Nothing
// goes to stderr but usage errors (exit 2) and crashes. Never coloured. Not rate-limited,
// except "refused" and "warning", which keep their cap of 10 a minute (a "throttled" line
// tells what was held back). The first line is "listening" (server) or one "tunnel" per
// tunnel (client); events that happen while starting follow them.
//   listening    controlPort, dataPort, bind (null: all interfaces), publicPorts {min,max},
//                tls (boolean), fingerprint and names (with tls), secret (boolean: one is required),
//                metrics (the /metrics URL, with --metrics); http {domain, httpPort, httpsPort,
//                acme {directory, cache} when an ACME CA issues the HTTPS certificates} with
//                --http-port or --https-port (the ports listened on)
//   tunnel       url, publicPort, local ("host:port"); previousPort after a reconnect moved it;
//                proxyProtocol ("v1"/"v2") if the tunnel sends PROXY headers; name for an
//                HTTP tunnel (its url is http(s)://NAME.<domain>, its publicPort the relay's
//                HTTP port)
//   connection   id, visitor ("addr:port" or null), publicPort, url, local, bytesIn (from
//                the visitor), bytesOut (to it), durationMs, reset (ended by a reset),
//                localUnavailable (the local service refused it: the visitor was reset)
//   request      method, path, status, durationMs, bytesIn (body from the visitor),
//                bytesOut (body to it), visitor ("addr:port" or null), url (the tunnel's),
//                local, aborted: a request through an HTTP tunnel, once answered (client;
//                not with --quiet)
//   page         status, method, host, path, visitor, text: a request the relay answered
//                itself (404, 502, ...); method, host and path are "" for a request too
//                malformed to have them (server; capped at 60 a minute)
//   certificate  name, outcome ("issued"/"renewed"/"failed"), error (one line, if failed):
//                a certificate from the ACME CA (server)
//   trace        side ("server"/"client"), conn, kind ("send"/"recv"/"event"), text
//   warning      code, message: a failure the client lives with (a visitor's local service
//                down, a reconnect attempt that failed, ...)
//   refused      conn, address, reason, message: a connection turned away (TLS, auth)
//   client       kind, and its fields (server only; capped at 60 a minute):
//                  connected      conn, address
//                  tunnel-opened  conn, address, publicPort, localPort, reclaimed; url for
//                                 an HTTP tunnel
//                  lease-kept     address, publicPort, graceMs
//                  lease-expired  address, publicPort
//                  disconnected   conn, address, why, tunnels
//   disconnected code, message: the client lost the server (and will reconnect)
//   reconnecting attempt, delayMs
//   reconnected  moved: how many tunnels got a new public port or name ("tunnel" lines follow);
//                names: true if an HTTP tunnel got a new name
//   inspector    url: where the client's inspector page is (with ?token= if it needs one);
//                busy: the port asked for, when it was taken and the next free one is used
//   open-relay   message: the server has no secret
//   short-secret length, message
//   certificate-created  dir: where --tls made its self-signed certificate; replaced
//                {fingerprint, missing, certFile, keyFile} when it replaced a kept one that
//                lacked a --tls-name
//   shutdown     timeoutMs (for open connections); clients told (server only)
//   error        code, message (reason, for a refusal): fatal; the process exits 1. A client
//                that does not reconnect reports losing the server only so ("lost the
//                server: ..."), with no "disconnected" before it
//   throttled    message: lines held back by the cap
import {
  formatTrace,
  protocol,
  type BurrowError,
  type ClientEvent,
  type ConnectionClosed,
  type OpenTunnel,
  type TraceEvent,
} from '../index.ts';
import { clock, count, formatBytes, formatDuration, seconds } from './format.ts';
import {
  acmeLine,
  certificateLine,
  httpListeningLine,
  webSocketLine,
  pageLine,
  requestLine,
  type CertificateEntry,
  type HttpListening,
  type PageEntry,
  type RequestEntry,
} from './http-output.ts';

export interface ListeningEvent {
  event: 'listening';
  controlPort: number;
  dataPort: number;
  bind: string | null;
  publicPorts: { min: number; max: number };
  tls: boolean;
  fingerprint?: string;
  /** The names the certificate covers (with tls). */
  names?: string[];
  secret: boolean;
  metrics?: string;
  /** Where HTTP tunnels are served, if they are. */
  http?: HttpListening;
}

export interface TunnelEvent {
  event: 'tunnel';
  url: string;
  publicPort: number;
  local: string;
  previousPort?: number;
  /** "v1" or "v2" when the tunnel sends its local service a PROXY protocol header. */
  proxyProtocol?: string;
  /** An HTTP tunnel's name. */
  name?: string;
}

export interface ConnectionEntry {
  event: 'connection';
  id: string;
  visitor: string | null;
  publicPort: number;
  url: string;
  local: string;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  reset: boolean;
  localUnavailable: boolean;
}

export type ProblemEvent = {
  event: 'warning' | 'disconnected' | 'error';
  code: string;
  message: string;
  reason?: string;
};

export type OutputEvent =
  | ListeningEvent
  | TunnelEvent
  | ConnectionEntry
  | RequestEntry
  | PageEntry
  | CertificateEntry
  | ProblemEvent
  | ({ event: 'trace' } & TraceEvent)
  | { event: 'refused'; conn: string; address: string; reason: string; message: string }
  | ({ event: 'client' } & ClientEvent)
  | { event: 'reconnecting'; attempt: number; delayMs: number }
  | { event: 'reconnected'; moved: number; names?: boolean }
  | { event: 'inspector'; url: string; busy?: number }
  | { event: 'open-relay'; message: string }
  | { event: 'short-secret'; length: number; message: string }
  | {
      event: 'certificate-created';
      dir: string;
      replaced?: { fingerprint: string; missing: string[]; certFile: string; keyFile: string };
    }
  | { event: 'shutdown'; timeoutMs: number; clients?: number }
  | { event: 'throttled'; message: string };

export const tunnelEvent = (tunnel: OpenTunnel, previousPort?: number): TunnelEvent => ({
  event: 'tunnel',
  url: tunnel.url,
  publicPort: tunnel.publicPort,
  local: protocol.hostPort(tunnel.localHost, tunnel.localPort),
  ...(previousPort === undefined ? {} : { previousPort }),
  ...(tunnel.proxyProtocol === undefined ? {} : { proxyProtocol: tunnel.proxyProtocol }),
  ...(tunnel.name === undefined ? {} : { name: tunnel.name }),
});

export const connectionEntry = (c: ConnectionClosed): ConnectionEntry => ({
  event: 'connection',
  id: c.id,
  visitor: c.visitor ?? null,
  publicPort: c.tunnel.publicPort,
  url: c.tunnel.url,
  local: protocol.hostPort(c.tunnel.localHost, c.tunnel.localPort),
  bytesIn: c.bytesIn,
  bytesOut: c.bytesOut,
  durationMs: c.durationMs,
  reset: c.aborted,
  localUnavailable: c.localUnavailable === true,
});

export const problem = (event: ProblemEvent['event'], error: BurrowError): ProblemEvent => ({
  event,
  code: error.code,
  message: error.message,
  ...(error.reason === undefined ? {} : { reason: error.reason }),
});

/** The server was lost and the client will not reconnect: fatal, and said once. */
export const lostServer = (error: BurrowError): ProblemEvent => ({
  ...problem('error', error),
  message: `lost the server: ${error.message}`,
});

export const openRelay = (): OutputEvent => ({
  event: 'open-relay',
  message:
    'no secret is set, so anyone who can reach this server can expose ports through it. Set one with BURROW_SECRET or --secret-file (docs/SECURITY.md).',
});

export const shortSecret = (length: number): OutputEvent => ({
  event: 'short-secret',
  length,
  message: `the secret is only ${length} characters; without TLS, anyone who records a handshake can try to guess it offline. Use 32 random characters (openssl rand -base64 32).`,
});

/** `03:31:05 127.0.0.1:53422 -> tcp://127.0.0.1:41234 -> localhost:3000  in 78 B  out 210 B  12 ms`,
 * or `... -> localhost:3000  local service unreachable (reset)` */
export function connectionLine(c: ConnectionEntry, at: Date): string {
  if (c.localUnavailable)
    return `${clock(at)} ${c.visitor ?? '?'} -> ${c.url} -> ${c.local}  local service unreachable (reset)`;
  const sizes = `in ${formatBytes(c.bytesIn)}  out ${formatBytes(c.bytesOut)}`;
  return `${clock(at)} ${c.visitor ?? '?'} -> ${c.url} -> ${c.local}  ${sizes}  ${formatDuration(c.durationMs)}${c.reset ? ' (reset)' : ''}`;
}

/** One line of the server's log of its clients (the time goes before it). */
export function clientLine(e: ClientEvent): string {
  switch (e.kind) {
    case 'connected':
      return `client ${e.conn} connected from ${e.address}`;
    case 'tunnel-opened': {
      const what = e.url ?? `public port ${e.publicPort}`;
      return e.reclaimed
        ? `client ${e.conn} (${e.address}) took ${what} back with its lease (its port ${e.localPort})`
        : `client ${e.conn} (${e.address}) opened ${what} (its port ${e.localPort})`;
    }
    case 'lease-kept':
      return `public port ${e.publicPort} kept ${seconds(e.graceMs)} for ${e.address} (its lease)`;
    case 'lease-expired':
      return `public port ${e.publicPort} is free again: nobody came back for the lease of ${e.address}`;
    case 'disconnected':
      return `client ${e.conn} (${e.address}) left: ${e.why}${e.tunnels > 0 ? `, with ${count(e.tunnels, 'tunnel')}` : ''}`;
  }
}

export interface TextLine {
  stream: 'stdout' | 'stderr';
  line: string;
}

const stdout = (line: string): TextLine => ({ stream: 'stdout', line });
const stderr = (line: string): TextLine => ({ stream: 'stderr', line: `burrow: ${line}` });

/** The event as the text output shows it; `colour` only affects traces. */
export function textLines(e: OutputEvent, at: Date, colour = false): TextLine[] {
  switch (e.event) {
    case 'listening': {
      const where = e.bind === null ? '' : `${e.bind.includes(':') ? `[${e.bind}]` : e.bind} `;
      const listening = stdout(
        `burrow server listening on ${where}control port ${e.controlPort}, data port ${e.dataPort}; public ports ${e.publicPorts.min}-${e.publicPorts.max}`,
      );
      const lines = [listening];
      if (e.http !== undefined) lines.push(stdout(httpListeningLine(e.http)));
      if (e.http?.webSocket === true) lines.push(stdout(webSocketLine(e.http)));
      if (e.http?.acme !== undefined) lines.push(stdout(acmeLine(e.http.acme)));
      if (e.fingerprint !== undefined) {
        const names = e.names === undefined ? '' : ` (names: ${e.names.length > 0 ? e.names.join(', ') : 'none'})`;
        lines.push(stdout(`TLS certificate SHA-256 fingerprint: ${e.fingerprint}${names}`));
      }
      if (e.metrics !== undefined) lines.push(stdout(`Prometheus metrics at ${e.metrics}`));
      return lines;
    }
    case 'tunnel':
      return [
        stdout(
          `Forwarding ${e.url} -> ${e.local}${e.proxyProtocol === undefined ? '' : ` (PROXY protocol ${e.proxyProtocol})`}`,
        ),
      ];
    case 'connection':
      return [stdout(connectionLine(e, at))];
    case 'request':
      return [stdout(requestLine(e, at))];
    case 'page':
      return [stdout(pageLine(e, at))];
    case 'inspector':
      return [stdout(`Inspector ${e.url}${e.busy === undefined ? '' : ` (port ${e.busy} is taken)`}`)];
    case 'certificate':
      return [(e.outcome === 'failed' ? stderr : stdout)(certificateLine(e, at))];
    case 'trace':
      return [{ stream: 'stderr', line: formatTrace(e, { colour }) }];
    case 'refused':
      return [stderr(`refused ${e.conn} from ${e.address}: ${e.message} (${e.reason})`)];
    case 'client':
      return [stdout(`${clock(at)} ${clientLine(e)}`)];
    case 'warning':
    case 'short-secret':
      return [stderr(`warning: ${e.message}`)];
    case 'open-relay':
      return [stderr(`notice: ${e.message}`)];
    case 'disconnected':
      return [stderr(`lost the server: ${e.message}`)];
    case 'reconnecting':
      return [stderr(`reconnecting in ${seconds(e.delayMs)} (attempt ${e.attempt})`)];
    case 'reconnected':
      return [
        stderr(
          e.moved === 0
            ? 'reconnected; same public address'
            : `reconnected; the old ${e.names ? 'name' : 'public port'} was taken:`,
        ),
      ];
    case 'certificate-created': {
      const replaced =
        e.replaced === undefined
          ? ''
          : `, replacing the one there, which did not name ${e.replaced.missing.join(', ')} (fingerprint ${e.replaced.fingerprint}, now ${e.replaced.certFile} and ${e.replaced.keyFile}): clients that pinned it need the new fingerprint`;
      return [stderr(`created a self-signed TLS certificate in ${e.dir}${replaced}`)];
    }
    case 'shutdown': {
      const finish = `open connections get ${seconds(e.timeoutMs)} to finish (signal again to stop now)`;
      if (e.clients === undefined) return [stderr(`closing; ${finish}`)];
      return [
        stderr(
          e.clients === 0
            ? `shutting down; ${finish}`
            : `shutting down: told ${count(e.clients, 'client')} to reconnect later; ${finish}`,
        ),
      ];
    }
    case 'error':
    case 'throttled':
      return [stderr(e.message)];
  }
}

/** The event as one line of --json output (without the newline). */
export function jsonLine(e: OutputEvent, at: Date): string {
  const { event, ...fields } = e;
  return JSON.stringify({ event, time: at.toISOString(), ...fields });
}
