// A real browser through an HTTP tunnel: headless Chromium loads a page of 20 assets
// (scripts, stylesheets, images; tens of KiB, one chunked, one gzipped) from
// http://NAME.localhost:PORT/ and talks to the local service over a WebSocket. The page's
// own script (test/fixtures/browser-page/page.js) reports what it received; the test holds
// it against what the service sent. Needs Debian's `chromium`: without it this fails.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { WebSocketServer } from 'ws';
import type { RequestEvent } from '../client/client.ts';
import { untilEqual } from './helpers.ts';
import { httpRig, localService, type HttpRig, type LocalService } from './http-rig.ts';

const CHROMIUM = '/usr/bin/chromium';
const NAME = 'page';
const PAGE_SCRIPT = readFileSync(new URL('fixtures/browser-page/page.js', import.meta.url));

interface Asset {
  path: string;
  id: string;
  type: string;
  body: Buffer;
  /** An image's width x height. */
  image?: string;
  chunked?: boolean;
  gzip?: boolean;
}

/** Text of `size` bytes, with `code` after a comment of random filler (so a cut-off file
 * would not run `code`). */
const padded = (code: string, size: number): Buffer =>
  Buffer.from(`/* ${randomBytes(size).toString('base64').slice(0, size)} */\n${code}\n`);

/** A 24-bit BMP of random pixels (rows padded to 4 bytes). */
function bmp(width: number, height: number): Buffer {
  const pixels = Math.ceil((width * 3) / 4) * 4 * height;
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(54 + pixels, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  header.writeUInt32LE(pixels, 34);
  return Buffer.concat([header, randomBytes(pixels)]);
}

const assets: Asset[] = [
  ...[1, 9, 24, 40, 2, 64, 5].map((kib, i) => ({
    path: `/assets/script-${i}.js`,
    id: `script-${i}`,
    type: 'text/javascript',
    body: padded(`(window.ran ??= []).push('script-${i}');`, kib * 1024),
    chunked: i === 5,
  })),
  ...[3, 30, 1, 12, 48, 7].map((kib, i) => ({
    path: `/assets/style-${i}.css`,
    id: `style-${i}`,
    type: 'text/css',
    body: padded(`:root { --style-${i}: loaded; }`, kib * 1024),
    gzip: i === 4,
  })),
  ...[8, 40, 64, 100, 130, 16, 77].map((side, i) => ({
    path: `/assets/image-${i}.bmp`,
    id: `image-${i}`,
    type: 'image/bmp',
    body: bmp(side, side + i),
    image: `${side}x${side + i}`,
  })),
];

const tag = ({ path, id, type }: Asset): string =>
  type === 'text/javascript'
    ? `<script id="${id}" src="${path}" data-asset="${path}"></script>`
    : type === 'text/css'
      ? `<link rel="stylesheet" id="${id}" href="${path}" data-asset="${path}">`
      : `<img id="${id}" src="${path}" data-asset="${path}" alt="">`;
const tags = (images: boolean): string =>
  assets
    .filter((asset) => (asset.image !== undefined) === images)
    .map(tag)
    .join('\n');
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>burrow</title>
${tags(false)}
</head><body>
${tags(true)}
<script src="/page.js"></script></body></html>`;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const greeting = randomBytes(150_000);

/** What the page reports (see page.js). */
interface Results {
  assets: {
    url: string;
    status: number;
    size: number;
    sha256: string;
    loadedSize?: number;
    image?: string;
    style?: string;
    ran?: boolean;
  }[];
  webSocket: { received: unknown[]; sent: unknown[]; code: number; wasClean: boolean };
}

/** Serves `/`, the page's script, the assets (cacheable) and a WebSocket echo at `/ws`;
 * remembers every request's URL and headers. */
function handler(seen: { url: string; headers: http.IncomingHttpHeaders }[]): http.RequestListener {
  return (req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    if (req.url === '/page.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(PAGE_SCRIPT);
    const asset = assets.find(({ path }) => path === req.url);
    if (asset === undefined) return void res.writeHead(404).end();
    const headers: http.OutgoingHttpHeaders = { 'content-type': asset.type, 'cache-control': 'max-age=3600' };
    const gzip = asset.gzip === true && /\bgzip\b/.test(String(req.headers['accept-encoding']));
    const body = gzip ? gzipSync(asset.body) : asset.body;
    if (gzip) headers['content-encoding'] = 'gzip';
    if (asset.chunked !== true) return void res.writeHead(200, { ...headers, 'content-length': body.length }).end(body);
    res.writeHead(200, headers);
    for (let at = 0; at < body.length; at += 4096) res.write(body.subarray(at, at + 4096));
    res.end();
  };
}

describe('a real browser through an HTTP tunnel', () => {
  const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
  const requests: RequestEvent[] = [];
  const closes: number[] = [];
  let local: LocalService | undefined;
  let sockets: WebSocketServer | undefined;
  let rig: HttpRig | undefined;
  let browser: Browser | undefined;
  let results: Results;
  let port = 0;

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} not found: install Debian's chromium (apt-get install -y --no-install-recommends chromium)`,
    );
    local = await localService(handler(seen));
    const wss = (sockets = new WebSocketServer({ noServer: true }));
    local.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send('hello');
        ws.send(greeting);
        ws.on('message', (data: Buffer, isBinary) => ws.send(data, { binary: isBinary }));
        ws.on('close', (code) => closes.push(code));
      });
    });
    rig = await httpRig([{ localPort: local.port, http: { name: NAME } }]);
    rig.client.on('request', (event: RequestEvent) => requests.push(event));
    port = rig.port;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--no-proxy-server'] });
    const page = await browser.newPage();
    const answer = await page.goto(`http://${NAME}.localhost:${port}/`, { timeout: 30_000 });
    assert.equal(answer?.status(), 200);
    await page.waitForFunction('window.results !== undefined || window.failure !== undefined', undefined, {
      timeout: 30_000,
    });
    const failure = await page.evaluate<string | undefined>('window.failure');
    assert.equal(failure, undefined, 'the page script failed');
    results = await page.evaluate<Results>('window.results');
    await page.close();
  });

  after(async () => {
    await browser?.close();
    await rig?.close();
    for (const client of sockets?.clients ?? []) client.terminate();
    sockets?.close();
    await local?.close();
  });

  test('every asset arrived byte-exact, and the browser used it', () => {
    assert.equal(results.assets.length, assets.length);
    for (const [i, asset] of assets.entries()) {
      const got = results.assets[i];
      const expected = { url: asset.path, status: 200, size: asset.body.length, sha256: sha256(asset.body) };
      assert.deepEqual(
        { url: got?.url, status: got?.status, size: got?.size, sha256: got?.sha256 },
        expected,
        asset.path,
      );
      const fetched = seen.filter(({ url }) => url === asset.path).length;
      assert.equal(fetched, 1, `${asset.path}: asked for once (the page's checksum is of the bytes it loaded)`);
      assert.equal(got?.loadedSize, asset.body.length, `${asset.path}: the size the page loaded`);
      if (asset.image) assert.equal(got?.image, asset.image, `${asset.path} decoded`);
      if (asset.type === 'text/css') assert.equal(got?.style, 'loaded', `${asset.path} applied`);
      if (asset.type === 'text/javascript') assert.equal(got?.ran, true, `${asset.path} ran`);
    }
  });

  test('the WebSocket carried the greeting and every echo, text and binary, and closed cleanly', async () => {
    const { received, sent, code, wasClean } = results.webSocket;
    assert.deepEqual(received, ['hello', { bytes: greeting.length, sha256: sha256(greeting) }, ...sent]);
    assert.equal(sent.length, 5);
    assert.deepEqual({ code, wasClean }, { code: 1000, wasClean: true });
    await untilEqual(() => [...closes], [1000], 'the service saw the close');
  });

  test('the service saw the relay’s X-Forwarded-* headers on every request, the upgrade included', () => {
    const wanted = ['/', '/page.js', ...assets.map(({ path }) => path), '/ws'];
    assert.deepEqual(
      wanted.filter((url) => !seen.some((request) => request.url === url)),
      [],
      'requests the service never saw',
    );
    for (const { url, headers } of seen) {
      assert.equal(headers.host, `${NAME}.localhost:${port}`, url);
      assert.equal(headers['x-forwarded-host'], `${NAME}.localhost:${port}`, url);
      assert.equal(headers['x-forwarded-proto'], 'http', url);
      assert.equal(headers['x-forwarded-for'], '127.0.0.1', url);
    }
    assert.equal(seen.find(({ url }) => url === '/ws')?.headers.upgrade, 'websocket');
  });

  test("the client reported each request (the request log), the WebSocket's once it closed", async () => {
    const logged = (): string[] =>
      ['/ws', ...assets.map(({ path }) => path)].filter((path) => !requests.some((event) => event.path === path));
    await untilEqual(logged, [], 'requests missing from the request log');
    for (const asset of assets) {
      const event = requests.find(({ path }) => path === asset.path);
      const bytes = asset.gzip ? gzipSync(asset.body).length : asset.body.length;
      assert.deepEqual(
        { method: event?.method, status: event?.status, name: event?.tunnel.name, aborted: event?.aborted },
        { method: 'GET', status: 200, name: NAME, aborted: false },
        asset.path,
      );
      assert.equal(event?.bytesOut, bytes, `${asset.path}: bytes out`);
    }
    const ws = requests.find(({ path }) => path === '/ws');
    assert.equal(ws?.status, 101);
    assert.ok((ws?.bytesOut ?? 0) > greeting.length, 'the greeting counted as bytes out');
    assert.ok((ws?.bytesIn ?? 0) > 200_000, 'the echoes counted as bytes in');
  });
});
