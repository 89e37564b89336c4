// The inspector: a small web server beside the client (http://127.0.0.1:4040/ unless told
// otherwise) with a live page and a JSON API of what the client's tunnels carry: the
// tunnels, the last connections with the timeline of their rendezvous, the last requests of
// HTTP tunnels with headers and bodies, and replay. It binds loopback by default; any other
// address needs the token it prints, since the page shows request bodies.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import createDebug from 'debug';
import { BurrowError, describe } from '../../shared/errors.ts';
import { hostPort } from '../../shared/protocol.ts';
import { sameToken } from '../../shared/secret.ts';
import type { BurrowClient } from '../client.ts';
import { History, type Change, type RequestRecord } from './history.ts';
import { replay, ReplayRefused, type ReplayEdits } from './replay.ts';

const debug = createDebug('burrow:inspector');

export interface InspectorOptions {
  /** Default 127.0.0.1. Any address but loopback requires the token. */
  host?: string;
  /** Default 4040; if it is taken, the next free one (up to 4049 on from it). 0: any. */
  port?: number;
  /** Connections and requests kept (the last N of each). Default 500. */
  history?: number;
  /** Bytes kept of each request and response body. Default 64 KiB. */
  maxBodyBytes?: number;
  /** The token the page and the API ask for (`?token=` or `Authorization: Bearer`). Default:
   * none on loopback, a new random one on any other address. */
  token?: string;
}

export interface Inspector {
  /** The page's address (with `?token=` when one is needed). */
  url: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_INSPECT_PORT = 4040;
const PORTS_TRIED = 10;
/** Live pages at once (each holds an SSE stream). */
const MAX_STREAMS = 16;
const REPLAY_TIMEOUT_MS = 30_000;

const PAGE_FILES: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
};
const TYPES: Record<string, string> = { html: 'text/html', js: 'text/javascript', css: 'text/css' };

/** Starts the inspector of `client`; rejects with a `listen-failed` BurrowError. */
export async function startInspector(client: BurrowClient, options: InspectorOptions = {}): Promise<Inspector> {
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  const token = options.token ?? (loopback ? undefined : randomBytes(18).toString('base64url'));
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  const history = new History(client, options.history ?? 500);
  const stopCapture = client.captureRequests(maxBodyBytes);
  const streams = new Set<http.ServerResponse>();
  const pages = Object.fromEntries(
    Object.entries(PAGE_FILES).map(([path, file]) => [path, readFileSync(new URL(`./page/${file}`, import.meta.url))]),
  );

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      debug('%s %s: %s', req.method, req.url, describe(error));
      if (!res.headersSent) json(res, 500, { error: describe(error) });
      else res.destroy();
    });
  });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://inspector');
    if (!allowed(req, url, token, loopback)) return json(res, 403, { error: 'the inspector needs its token' });
    const page = pages[url.pathname];
    if (page && req.method === 'GET') {
      const type = TYPES[PAGE_FILES[url.pathname]?.split('.').pop() ?? ''] ?? 'text/plain';
      res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
      return void res.end(page);
    }
    if (url.pathname === '/api/tunnels') {
      const none = { connections: 0, requests: 0, bytesIn: 0, bytesOut: 0 };
      const tunnels = client.tunnels.map((t) => ({ ...t, totals: history.totals.get(t.url) ?? none }));
      return json(res, 200, { state: history.state, tunnels });
    }
    if (url.pathname === '/api/connections') return json(res, 200, history.connections.list());
    if (url.pathname === '/api/requests') return json(res, 200, filtered(history.requests.list(), url).map(summary));
    const one = /^\/api\/requests\/([0-9]+)(\/replay)?$/.exec(url.pathname);
    const record = one ? history.requests.get(Number(one[1])) : undefined;
    if (one && !record) return json(res, 404, { error: 'no such request (it may have left the history)' });
    if (record && !one?.[2] && req.method === 'GET') return json(res, 200, full(record));
    if (record && one?.[2] && req.method === 'POST') return replayRequest(req, res, record);
    if (url.pathname === '/api/events') return stream(req, res);
    json(res, 404, { error: `nothing at ${url.pathname}` });
  };

  const replayRequest = async (req: http.IncomingMessage, res: http.ServerResponse, record: RequestRecord) => {
    const tunnel = client.tunnels.find((t) => t.url === record.url);
    if (!tunnel) return json(res, 409, { error: `the tunnel ${record.url} is not open any more` });
    let edits: ReplayEdits;
    try {
      edits = JSON.parse((await readBody(req, 4 * maxBodyBytes)) || '{}') as ReplayEdits;
      const answer = await replay(tunnel, record, edits, maxBodyBytes, REPLAY_TIMEOUT_MS);
      json(res, 200, { ...answer, body: bodyJson(answer.body) });
    } catch (error) {
      const status = error instanceof ReplayRefused || error instanceof SyntaxError ? 400 : 502;
      json(res, status, { error: describe(error) });
    }
  };

  const stream = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (streams.size >= MAX_STREAMS) return json(res, 503, { error: `${MAX_STREAMS} live pages already` });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.write('retry: 2000\n\n');
    streams.add(res);
    const stop = history.subscribe((change: Change) => {
      const data = change.kind === 'request' ? summary(change.record) : change.kind === 'tunnels' ? {} : change.record;
      res.write(`event: ${change.kind}\ndata: ${JSON.stringify(data)}\n\n`);
    });
    req.once('close', () => {
      stop();
      streams.delete(res);
    });
  };

  let port: number;
  try {
    port = await listen(server, host, options.port ?? DEFAULT_INSPECT_PORT);
  } catch (error) {
    // Nobody will look: stop recording and capturing.
    stopCapture();
    history.close();
    throw error;
  }
  const url = `http://${hostPort(host, port)}/${token === undefined ? '' : `?token=${token}`}`;
  debug('inspector at %s', url);
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        stopCapture();
        history.close();
        for (const res of streams) res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The token, when one is set; and on loopback, a Host that is loopback too (so a web page
 * elsewhere cannot reach it through a DNS name that points here). */
function allowed(req: http.IncomingMessage, url: URL, token: string | undefined, loopback: boolean): boolean {
  if (loopback) {
    const hostHeader = /^(.*?)(:[0-9]+)?$/.exec(req.headers.host ?? '')?.[1] ?? '';
    if (!['localhost', '127.0.0.1', '[::1]'].includes(hostHeader) && !hostHeader.endsWith('.localhost')) return false;
  }
  if (token === undefined) return true;
  const given = url.searchParams.get('token') ?? /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
  return sameToken(given, token);
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

/** Listens on `port`, or the next free one of PORTS_TRIED (port 0: any). */
async function listen(server: http.Server, host: string, port: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const tried = port === 0 ? 0 : port + attempt;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port: tried }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return (server.address() as net.AddressInfo).port;
    } catch (error) {
      const busy = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!busy || port === 0 || attempt + 1 >= PORTS_TRIED)
        throw new BurrowError(
          'listen-failed',
          `cannot listen on inspector ${hostPort(host, tried)}: ${describe(error)}`,
          {
            cause: error,
          },
        );
    }
  }
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) return req.destroy(new ReplayRefused(`the edits are over ${limit} bytes`));
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The requests whose path, status and method match `?path=`, `?status=` and `?method=`. */
function filtered(records: RequestRecord[], url: URL): RequestRecord[] {
  const path = url.searchParams.get('path');
  const status = url.searchParams.get('status');
  const method = url.searchParams.get('method')?.toUpperCase();
  return records.filter(
    (r) =>
      (path === null || r.path.includes(path)) &&
      (status === null || String(r.status).startsWith(status.replace(/x+$/i, ''))) &&
      (method === undefined || r.method === method),
  );
}

/** A request without its headers and bodies (the list). */
const summary = ({ exchange, ...record }: RequestRecord): Omit<RequestRecord, 'exchange'> & { captured: boolean } => ({
  ...record,
  captured: exchange !== undefined,
});

/** A body for JSON: as text if it is UTF-8 text, else base64 (the page shows hex). */
function bodyJson(body: Buffer): { text?: string; base64?: string; length: number } {
  const text = body.toString('utf8');
  // eslint-disable-next-line no-control-regex -- control bytes are what make it binary
  const isText = !text.includes('\uFFFD') && !/[\x00-\x08\x0e-\x1f]/.test(text);
  return isText ? { text, length: body.length } : { base64: body.toString('base64'), length: body.length };
}

/** A request with its headers and bodies. */
function full(record: RequestRecord): unknown {
  const { exchange } = record;
  if (!exchange) return { ...record, captured: false };
  return {
    ...summary(record),
    exchange: {
      ...exchange,
      requestBody: bodyJson(exchange.requestBody),
      responseBody: bodyJson(exchange.responseBody),
    },
  };
}
