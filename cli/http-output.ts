// What HTTP tunnels add to the commands' output (cli/output.ts prints it): the client's
// request log, the relay's line for each page it answered itself, and where the relay
// serves HTTP tunnels. Pure. Method, path and Host come from visitors: they are shown with
// their control characters escaped and cut to a readable length.
import { protocol, type HttpPageEvent, type RequestEvent } from '../index.ts';
import { clock, formatBytes, formatDuration } from './format.ts';

/** Where a relay serves HTTP tunnels (part of the `listening` event), and where its HTTPS
 * certificates come from when an ACME CA issues them. */
export interface HttpListening {
  domain: string;
  httpPort?: number;
  httpsPort?: number;
  acme?: { directory: string; cache: string };
  /** Clients may connect over WebSocket on those ports (`--server wss://...`). */
  webSocket?: boolean;
}

/** Let's Encrypt's production directory: the ACME CA unless --acme-directory says otherwise. */
export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory';

/** A certificate from the ACME CA: issued, renewed, or why not. */
export interface CertificateEntry {
  event: 'certificate';
  name: string;
  outcome: 'issued' | 'renewed' | 'failed';
  error?: string;
}

/** `12:00:01 certificate for demo.relay.example.com: issued` (or `failed: why`). */
export const certificateLine = (e: CertificateEntry, at: Date): string =>
  `${clock(at)} certificate for ${e.name}: ${e.outcome}${e.error === undefined ? '' : `: ${e.error}`}`;

/** One request through an HTTP tunnel, once answered (the client's request log). */
export interface RequestEntry {
  event: 'request';
  method: string;
  path: string;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  visitor: string | null;
  url: string;
  local: string;
  aborted: boolean;
}

/** A request the relay answered itself (404, 502, ...). */
export type PageEntry = { event: 'page' } & HttpPageEvent;

export const requestEntry = (r: RequestEvent): RequestEntry => ({
  event: 'request',
  method: r.method,
  path: r.path,
  status: r.status,
  durationMs: r.durationMs,
  bytesIn: r.bytesIn,
  bytesOut: r.bytesOut,
  visitor: r.visitor ?? null,
  url: r.tunnel.url,
  local: protocol.hostPort(r.tunnel.localHost, r.tunnel.localPort),
  aborted: r.aborted,
});

export const pageEntry = (page: HttpPageEvent): PageEntry => ({ event: 'page', ...page });

/** Longest path (or Host) a line shows. */
const SHOWN = 200;
// eslint-disable-next-line no-control-regex -- control characters are exactly what it escapes
const CONTROL_CHARACTERS = /[\x00-\x1f\x7f-\x9f]/g;

/** Text a visitor sent, safe for a terminal and a log line. */
export function shown(text: string): string {
  const safe = text.replace(CONTROL_CHARACTERS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return safe.length > SHOWN ? `${safe.slice(0, SHOWN - 1)}…` : safe;
}

/** `12:00:01 GET /api/items 200 14 ms 1.2 KiB` (the size: the body sent to the visitor),
 * ` (aborted)` at the end if the response did not end cleanly. */
export const requestLine = (e: RequestEntry, at: Date): string =>
  `${clock(at)} ${shown(e.method)} ${shown(e.path)} ${e.status} ${formatDuration(e.durationMs)} ${formatBytes(e.bytesOut)}${e.aborted ? ' (aborted)' : ''}`;

/** `12:00:01 404 GET nobody.localhost/ from 127.0.0.1:51234: no tunnel is open at nobody.localhost.`;
 * a request too malformed to have a method says only its status and visitor. */
export function pageLine(e: PageEntry, at: Date): string {
  const request = e.method === '' ? '' : ` ${shown(e.method)} ${shown(e.host)}${shown(e.path)}`;
  return `${clock(at)} ${e.status}${request} from ${e.visitor}: ${e.text}`;
}

/** `http://*.localhost:8080` (no port if it is the scheme's own). */
const wildcard = (scheme: 'http' | 'https', domain: string, port: number): string =>
  `${scheme}://*.${domain}${port === (scheme === 'http' ? 80 : 443) ? '' : `:${port}`}`;

/** `Clients behind firewalls: burrow client --server wss://relay.example.com` (the HTTPS
 * port if there is one). */
export function webSocketLine({ domain, httpPort, httpsPort }: HttpListening): string {
  const [scheme, port] = httpsPort === undefined ? ['ws', httpPort ?? 80] : ['wss', httpsPort];
  const standard = port === (scheme === 'ws' ? 80 : 443);
  return `Clients behind firewalls: burrow client --server ${scheme}://${domain}${standard ? '' : `:${port}`} PORT`;
}

/** `HTTP tunnels on http://*.localhost:8080` (and `https://*.localhost:8443`). */
export function httpListeningLine({ domain, httpPort, httpsPort }: HttpListening): string {
  const urls = [
    ...(httpPort === undefined ? [] : [wildcard('http', domain, httpPort)]),
    ...(httpsPort === undefined ? [] : [wildcard('https', domain, httpsPort)]),
  ];
  return `HTTP tunnels on ${urls.join(' and ')}`;
}

/** `HTTPS certificates from https://.../directory (ACME), kept in DIR`. */
export const acmeLine = ({ directory, cache }: { directory: string; cache: string }): string =>
  `HTTPS certificates from ${directory} (ACME), kept in ${cache}`;
