// Which tunnel a request on the HTTP port is for: the name in its Host header (and, on
// HTTPS, the name the TLS client asked for), then that tunnel's own checks (basic auth,
// requests in flight). Every request is routed afresh, even on a kept-alive connection, so
// a request for one name never reaches another name's client.
import type http from 'node:http';
import { authToken } from '../../shared/http-headers.ts';
import { DNS_LABEL } from '../../shared/protocol.ts';
import { sameToken } from '../../shared/secret.ts';
import { serverNameOf } from './forward.ts';
import type { HttpNames } from './names.ts';
import type { Page } from './pages.ts';
import type { HttpTunnel } from './tunnel.ts';

/** The host of a Host header, lower case, without its port; undefined if malformed. */
export function hostOf(header: string | undefined): string | undefined {
  const match = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/i.exec(header?.trim() ?? '');
  return match?.[1]?.toLowerCase().replace(/\.$/, '');
}

/** The tunnel name in `host` if it is `NAME.<domain>`, else undefined. */
export function nameIn(host: string, domain: string): string | undefined {
  const suffix = `.${domain}`;
  if (!host.endsWith(suffix)) return undefined;
  const name = host.slice(0, -suffix.length);
  return DNS_LABEL.test(name) ? name : undefined;
}

/** The tunnel `req` is for, or the page that answers it instead. */
export function route(
  req: http.IncomingMessage,
  names: HttpNames,
  domain: string,
  maxRequestsPerTunnel: number,
): HttpTunnel | Page {
  const host = hostOf(req.headers.host);
  if (host === undefined) return { status: 400, text: 'the request has no valid Host header.' };
  const sni = serverNameOf(req.socket)?.toLowerCase();
  if (sni !== undefined && sni !== host)
    return { status: 421, text: `this connection was opened for ${sni}, not ${host}: open a new one.` };
  const name = nameIn(host, domain);
  const state = name === undefined ? undefined : names.find(name);
  if (state === undefined) return { status: 404, text: `no tunnel is open at ${host}.` };
  if ('leasedForMs' in state) {
    const seconds = Math.max(1, Math.ceil(state.leasedForMs / 1000));
    const text = `the client of ${host} is reconnecting; try again in a few seconds.`;
    return { status: 503, text, headers: { 'retry-after': String(Math.min(seconds, 5)) } };
  }
  const tunnel = state.live as HttpTunnel;
  if (tunnel.auth !== undefined && !authorized(req.headers.authorization, tunnel.auth)) {
    const text = `${host} is protected by a user name and password.`;
    return { status: 401, text, headers: { 'www-authenticate': `Basic realm="${host}", charset="UTF-8"` } };
  }
  if (tunnel.inFlight >= maxRequestsPerTunnel) {
    const text = `${host} already has ${maxRequestsPerTunnel} requests in flight; try again shortly.`;
    return { status: 503, text, headers: { 'retry-after': '1' } };
  }
  return tunnel;
}

/** True if `header` is Basic credentials whose token is `expected`. */
function authorized(header: string | undefined, expected: string): boolean {
  const match = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return false;
  return sameToken(authToken(Buffer.from(match[1], 'base64').toString('utf8')), expected);
}
