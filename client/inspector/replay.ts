// Replay: a captured request sent again to its tunnel's own local service (never to any
// other host), as it was or edited, and the new answer captured like the first.
import http from 'node:http';
import { endToEnd, headerPairs } from '../../shared/http-headers.ts';
import { hostPort } from '../../shared/protocol.ts';
import type { OpenTunnel } from '../types.ts';
import type { RequestRecord } from './history.ts';

/** What may be changed before a request is sent again; anything left out is as captured. */
export interface ReplayEdits {
  method?: string;
  path?: string;
  headers?: [string, string][];
  /** The body as text (UTF-8), or `bodyBase64` for bytes. */
  body?: string;
  bodyBase64?: string;
}

export interface ReplayAnswer {
  status: number;
  statusMessage: string;
  headers: [string, string][];
  body: Buffer;
  truncated: boolean;
  durationMs: number;
}

/** Why a replay was not sent: said to whoever asked (a 400 of the API). */
export class ReplayRefused extends Error {}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Sends `record`'s request again to `tunnel`'s local service with `edits`; resolves with
 * the answer, its body cut at `limit` bytes. */
export function replay(
  tunnel: OpenTunnel,
  record: RequestRecord,
  edits: ReplayEdits,
  limit: number,
  timeoutMs: number,
): Promise<ReplayAnswer> {
  const exchange = record.exchange;
  if (!exchange) throw new ReplayRefused('this request was not captured (it came before the inspector started)');
  const method = edits.method ?? record.method;
  const path = edits.path ?? record.path;
  if (!TOKEN.test(method)) throw new ReplayRefused(`${JSON.stringify(method)} is not an HTTP method`);
  if (!/^\/[\x21-\x7e]*$/.test(path))
    throw new ReplayRefused(`${JSON.stringify(path)} is not a path (it starts with /)`);
  const body = bodyOf(edits, exchange.requestBody);
  if (body === undefined || (exchange.requestTruncated && edits.body === undefined && edits.bodyBase64 === undefined))
    throw new ReplayRefused('the captured body is incomplete (over the capture limit): send an edited one');
  const headers = headerPairs(endToEnd((edits.headers ?? exchange.requestHeaders).flat(), new Set(['content-length'])));
  for (const [name, value] of headers)
    if (!TOKEN.test(name) || /[\r\n]/.test(value))
      throw new ReplayRefused(`the header ${JSON.stringify(name)} is malformed`);
  if (body.length > 0) headers.push(['Content-Length', String(body.length)]);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: tunnel.localHost,
        port: tunnel.localPort,
        method,
        path,
        headers: headers.flat(),
        setHost: false,
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        let truncated = false;
        res.on('data', (chunk: Buffer) => {
          const room = limit - kept;
          if (chunk.length > room) truncated = true;
          if (room > 0) chunks.push(chunk.subarray(0, room));
          kept += Math.min(room, chunk.length);
        });
        res.on('error', reject);
        res.on('end', () => {
          const pairs = headerPairs(endToEnd(res.rawHeaders));
          const durationMs = Math.round(performance.now() - started);
          const answer = { status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: pairs };
          resolve({ ...answer, body: Buffer.concat(chunks), truncated, durationMs });
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', (error) =>
      reject(new Error(`${hostPort(tunnel.localHost, tunnel.localPort)}: ${error.message}`, { cause: error })),
    );
    request.end(body);
  });
}

function bodyOf(edits: ReplayEdits, captured: Buffer): Buffer | undefined {
  if (edits.bodyBase64 !== undefined) return Buffer.from(edits.bodyBase64, 'base64');
  if (edits.body !== undefined) return Buffer.from(edits.body, 'utf8');
  return captured;
}
