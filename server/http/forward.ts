// Forwarding one request (or one upgrade, such as a WebSocket) from a visitor on the HTTP
// port to its tunnel's client, with Node's own HTTP machinery on both legs: the visitor's
// request is parsed by the ingress server, and sent on by an http.ClientRequest over the
// tunnel's data connections (tunnel.ts). Hop-by-hop headers stay on their hop; the
// X-Forwarded-* headers tell the local service who asked, and how.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { joinSockets } from '../../shared/pipe.ts';
import { endToEnd, flushHeadSoon, headerLines, LOCAL_UNAVAILABLE_HEADER } from '../../shared/http-headers.ts';
import { sendPage, rawPage, type Page } from './pages.ts';
import { viaDialBack, type FromVisitor, type HttpTunnel } from './tunnel.ts';

/** The X-Forwarded-* headers a request arrives with: ours replace them. */
const FORWARDED = new Set(['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-for']);
/** The same and, on a tunnel with basic auth, Authorization: the relay's is not the service's. */
const FORWARDED_AND_AUTH = new Set([...FORWARDED, 'authorization']);

/** The headers a request goes on with (a raw list: name, value, ...): its end-to-end
 * headers, then X-Forwarded-For (the visitor appended), X-Forwarded-Proto and
 * X-Forwarded-Host (ours, replacing any sent). */
export function forwardedHeaders(req: http.IncomingMessage, scheme: string, dropAuth: boolean): string[] {
  const headers = endToEnd(req.rawHeaders, dropAuth ? FORWARDED_AND_AUTH : FORWARDED);
  const sent = req.headers['x-forwarded-for'];
  const earlier = Array.isArray(sent) ? sent.join(', ') : sent;
  const visitor = req.socket.remoteAddress?.replace(/^::ffff:(?=\d)/, '') ?? 'unknown';
  headers.push('X-Forwarded-For', earlier ? `${earlier}, ${visitor}` : visitor);
  headers.push('X-Forwarded-Proto', scheme, 'X-Forwarded-Host', req.headers.host ?? '');
  return headers;
}

/** Options for the request to the tunnel's client. */
function outgoingOptions(
  req: http.IncomingMessage,
  tunnel: HttpTunnel,
  headers: string[],
): http.RequestOptions & FromVisitor & { servername: string } {
  return {
    agent: tunnel.agent,
    host: 'burrow-tunnel', // one pool per agent; never resolved (the agent dials back)
    servername: '', // not TLS: spares the agent its per-request isIP() of `host`
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers,
    setHost: false,
    visitorSocket: req.socket,
  };
}

/** Why a request could not be forwarded, as a page. */
export function failurePage(error: Error, tunnel: HttpTunnel): Page {
  const code = (error as Error & { code?: string }).code;
  if (code === 'timeout') return { status: 504, text: `the client of ${tunnel.name} did not dial back in time.` };
  if (code === 'closed' || !tunnel.open)
    return { status: 503, text: `the tunnel ${tunnel.name} closed.`, headers: { 'retry-after': '5' } };
  if (code === 'refused')
    return {
      status: 503,
      text: `the client of ${tunnel.name} is busy: ${error.message}.`,
      headers: { 'retry-after': '1' },
    };
  return { status: 502, text: `the connection to the client of ${tunnel.name} failed (${error.message}).` };
}

/** Forwards `req` to `tunnel` and its response back; resolves with the status sent. */
export function forwardRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  tunnel: HttpTunnel,
  scheme: string,
  onPage: (page: Page) => void,
): Promise<void> {
  return new Promise((resolve) => {
    tunnel.inFlight++;
    const done = (): void => {
      tunnel.inFlight--;
      resolve();
    };
    const headers = forwardedHeaders(req, scheme, tunnel.auth !== undefined);
    const outgoing = http.request(outgoingOptions(req, tunnel, headers));
    const answer = (page: Page): void => {
      onPage(page);
      sendPage(req, res, page);
    };
    outgoing.on('continue', () => res.writeContinue());
    outgoing.on('response', (upstream) => {
      if (upstream.headers[LOCAL_UNAVAILABLE_HEADER] !== undefined) {
        upstream.resume();
        const where = String(upstream.headers[LOCAL_UNAVAILABLE_HEADER]);
        return answer({ status: 502, text: `the client of ${tunnel.name} cannot reach its local service (${where}).` });
      }
      res.writeHead(upstream.statusCode ?? 502, upstream.statusMessage, endToEnd(upstream.rawHeaders));
      flushHeadSoon(res, upstream);
      upstream.pipe(res);
      upstream.on('error', () => res.destroy());
      upstream.on('aborted', () => res.destroy());
    });
    outgoing.on('error', (error) => {
      if (res.headersSent) res.destroy();
      else answer(failurePage(error, tunnel));
    });
    // The visitor left before its answer was complete: stop the request there too.
    res.once('close', () => {
      if (!res.writableFinished) outgoing.destroy();
      done();
    });
    req.pipe(outgoing);
  });
}

/** Forwards an upgrade request (a WebSocket): once the local service agrees (101), the
 * visitor's connection and a data connection of the tunnel are joined byte for byte. */
export function forwardUpgrade(
  req: http.IncomingMessage,
  socket: Socket,
  head: Buffer,
  tunnel: HttpTunnel,
  scheme: string,
  onPage: (page: Page) => void,
): void {
  const headers = forwardedHeaders(req, scheme, tunnel.auth !== undefined);
  // The upgrade's own hop-by-hop headers are what it asks for: they go on.
  headers.push('Connection', 'Upgrade', 'Upgrade', req.headers.upgrade ?? '');
  // Its own data connection, never a kept-alive one: the upgrade takes the connection over.
  const createConnection = viaDialBack((addresses) => tunnel.dialBack(addresses));
  const outgoing = http.request({ ...outgoingOptions(req, tunnel, headers), agent: undefined, createConnection });
  const refuse = (page: Page): void => {
    onPage(page);
    socket.end(rawPage(page, req.headers.accept));
  };
  outgoing.on('upgrade', (upstream, data, upstreamHead) => {
    const lines = headerLines(endToEnd(upstream.rawHeaders));
    lines.push('Connection: Upgrade', `Upgrade: ${upstream.headers.upgrade ?? ''}`);
    socket.write(`HTTP/1.1 101 ${upstream.statusMessage || 'Switching Protocols'}\r\n${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (head.length > 0) data.write(head);
    void joinSockets(socket, data);
  });
  outgoing.on('response', (upstream) => {
    if (upstream.headers[LOCAL_UNAVAILABLE_HEADER] !== undefined) {
      upstream.resume();
      const where = String(upstream.headers[LOCAL_UNAVAILABLE_HEADER]);
      return refuse({ status: 502, text: `the client of ${tunnel.name} cannot reach its local service (${where}).` });
    }
    // The service declined the upgrade: its answer goes back as it is, then we close.
    const lines = headerLines(endToEnd(upstream.rawHeaders));
    socket.write(
      `HTTP/1.1 ${upstream.statusCode ?? 502} ${upstream.statusMessage}\r\n${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`,
    );
    upstream.pipe(socket);
  });
  outgoing.on('error', (error) => refuse(failurePage(error, tunnel)));
  // A visitor gone before the answer: the request (and its data connection) goes too.
  let upgraded = false;
  outgoing.once('upgrade', () => (upgraded = true));
  socket.once('close', () => {
    if (!upgraded) outgoing.destroy();
  });
  outgoing.end();
}

/** The name the TLS client asked for (SNI), if this request came over TLS. */
export const serverNameOf = (socket: Socket): string | undefined =>
  'servername' in socket ? (socket as TLSSocket).servername || undefined : undefined;
