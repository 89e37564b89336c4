// HTTP headers as both ends of an HTTP tunnel pass them on: hop-by-hop headers stay on
// their hop (Node writes its own), the rest go on as they came, in order and case.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

/** Headers that describe one hop (RFC 9110 §7.6.1), never passed on as they came. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The response header by which our client says it could not reach its local service:
 * the relay answers with its own 502 page instead. */
export const LOCAL_UNAVAILABLE_HEADER = 'burrow-local-unavailable';

/** A raw header list (name, value, name, value, ...) as pairs, as they came. */
export function headerPairs(raw: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i] ?? '', raw[i + 1] ?? '']);
  return pairs;
}

/** A raw header list as the lines of a head written by hand (`Name: value`). */
export const headerLines = (raw: readonly string[]): string[] =>
  headerPairs(raw).map(([name, value]) => `${name}: ${value}`);

/** A raw header list (name, value, name, value, ...) without the hop-by-hop ones, nor
 * those the `Connection` header names, nor `drop`: a raw list again. (Every request passes
 * here twice, so it is one loop with no list of pairs.) */
export function endToEnd(raw: readonly string[], drop?: ReadonlySet<string>): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() !== 'connection') continue;
    named ??= new Set();
    for (const token of (raw[i + 1] ?? '').split(',')) named.add(token.trim().toLowerCase());
  }
  const kept: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const lower = name.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && named?.has(lower) !== true && drop?.has(lower) !== true)
      kept.push(name, raw[i + 1] ?? '');
  }
  return kept;
}

/** What an HTTP tunnel's `user:password` becomes on the wire and at the relay: base64url
 * SHA-256. The relay keeps this, never the password, and compares it with the hash of the
 * credentials a visitor sends. */
export const authToken = (credentials: string): string =>
  createHash('sha256').update(credentials, 'utf8').digest('base64url');

/** Sends a response's head soon even if its body has not begun (Server-Sent Events and
 * other streams start at once), but not at once: a body that came in the same read as the
 * head is written by then, and Node sends the two in one write, not two. (`headersSent`
 * cannot tell: it is true from writeHead() on.) */
export function flushHeadSoon(res: ServerResponse, body: Readable): void {
  let begun = false;
  body.once('data', () => (begun = true));
  setImmediate(() => {
    if (!begun && !res.writableEnded && !res.destroyed) res.flushHeaders();
  });
}
