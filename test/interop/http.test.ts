// HTTP and WebSocket through burrow: a node:http server (written here) behind a tunnel,
// driven through the public port by curl (a 64 MB download, a chunked response, two
// requests on one kept-alive connection, a 16 MB upload), and a `ws` WebSocket echo.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { pseudoRandomBytes, within } from '../helpers.ts';
import { LOOPBACK, requireProgram, scoped, spawnTool, startTunnel, tempDir, type Closable } from './harness.ts';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const DOWNLOAD = pseudoRandomBytes(64 * 1024 * 1024, 64);
const CHUNKS = Array.from({ length: 500 }, (_, i) => `chunk ${i} ${'x'.repeat(i % 97)}\n`);

/** Which socket served each request (by path), to prove keep-alive reuse from the server. */
const sockets = new Map<string, net.Socket>();

/** The service behind the tunnel. */
function handle(request: http.IncomingMessage, response: http.ServerResponse): void {
  sockets.set(request.url ?? '', request.socket);
  if (request.url === '/download') {
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DOWNLOAD.length });
    response.end(DOWNLOAD);
  } else if (request.url === '/chunked') {
    response.writeHead(200, { 'content-type': 'text/plain' }); // no length: chunked
    for (const chunk of CHUNKS) response.write(chunk);
    response.end();
  } else if (request.url === '/upload' && request.method === 'POST') {
    const hash = createHash('sha256');
    let length = 0;
    request.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    request.on('end', () => response.end(`${length} ${hash.digest('hex')}\n`));
  } else {
    response.end(`hello from ${request.url}\n`);
  }
}

/** A node:http server on 127.0.0.1:0, with `ws` on it, closed (sockets too) on close. */
async function startHttp(): Promise<Closable & { port: number; wss: WebSocketServer }> {
  const server = http.createServer(handle);
  const wss = new WebSocketServer({ server });
  server.listen(0, LOOPBACK);
  await within(once(server, 'listening'), 5_000, 'the HTTP server');
  return {
    port: (server.address() as net.AddressInfo).port,
    wss,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('http: curl download, chunked, keep-alive and upload, and a WebSocket echo through the tunnel', async (t) => {
  const curl = requireProgram('curl', 'curl');
  await scoped(async (use) => {
    const dir = use(await tempDir()).path;
    const service = use(await startHttp());
    const { publicPort } = use(await startTunnel(service.port));
    const base = `http://${LOOPBACK}:${publicPort}`;
    const curlArgs = ['--silent', '--show-error', '--fail', '--max-time', '60'];

    await t.test('a 64 MB download', async () => {
      await spawnTool(curl, [...curlArgs, '--output', path.join(dir, 'download.bin'), `${base}/download`], {
        timeoutMs: 90_000,
      });
      assert.equal(sha256(await readFile(path.join(dir, 'download.bin'))), sha256(DOWNLOAD));
    });

    await t.test('a chunked response', async () => {
      const headers = path.join(dir, 'chunked.headers');
      const { stdout } = await spawnTool(curl, [...curlArgs, '--dump-header', headers, `${base}/chunked`], {
        timeoutMs: 30_000,
      });
      assert.match(await readFile(headers, 'utf8'), /^transfer-encoding: chunked\r$/im);
      assert.equal(stdout.toString(), CHUNKS.join(''));
    });

    await t.test('keep-alive: two requests of one curl share one connection', async () => {
      const { stdout, stderr } = await spawnTool(curl, [...curlArgs, '--verbose', `${base}/first`, `${base}/second`], {
        timeoutMs: 30_000,
      });
      assert.equal(stdout.toString(), 'hello from /first\nhello from /second\n');
      assert.match(stderr, /Re-using existing connection/, 'curl reused its connection');
      const first = sockets.get('/first');
      assert.ok(first !== undefined, 'the server saw /first');
      assert.equal(sockets.get('/second'), first, 'both requests arrived on the same socket');
    });

    await t.test('a 16 MB upload', async () => {
      const upload = pseudoRandomBytes(16 * 1024 * 1024, 16);
      await writeFile(path.join(dir, 'upload.bin'), upload);
      const args = [
        ...curlArgs,
        '--header',
        'content-type: application/octet-stream',
        '--data-binary',
        `@${path.join(dir, 'upload.bin')}`,
        `${base}/upload`,
      ];
      const { stdout } = await spawnTool(curl, args, { timeoutMs: 60_000 });
      assert.equal(stdout.toString(), `${upload.length} ${sha256(upload)}\n`);
    });

    await t.test('a WebSocket echo: text and binary both ways, in order, and a clean close', async () => {
      const serverGot: string[] = [];
      const serverClosed = new Promise<[number, string]>((resolve) => {
        service.wss.once('connection', (peer) => {
          peer.send('welcome'); // the server speaks first
          peer.on('message', (data: RawData, isBinary: boolean) => {
            const bytes = Buffer.isBuffer(data)
              ? data
              : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
            serverGot.push(isBinary ? `binary:${bytes.toString('hex')}` : `text:${bytes.toString()}`);
            peer.send(bytes, { binary: isBinary }); // echo, same kind
            if (!isBinary && bytes.toString() === 'last') peer.send('server says bye');
          });
          peer.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()]));
        });
      });
      const socket = new WebSocket(`ws://${LOOPBACK}:${publicPort}/echo`);
      try {
        const clientGot: string[] = [];
        const expectedCount = 6; // welcome + 4 echoes + bye
        const allIn = new Promise<void>((resolve, reject) => {
          socket.on('message', (data: RawData, isBinary: boolean) => {
            const bytes = Buffer.isBuffer(data)
              ? data
              : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
            clientGot.push(isBinary ? `binary:${bytes.toString('hex')}` : `text:${bytes.toString()}`);
            if (clientGot.length === expectedCount) resolve();
          });
          socket.once('error', reject);
          socket.once('close', () => reject(new Error(`closed after ${clientGot.length} messages`)));
        });
        await within(once(socket, 'open'), 10_000, 'the WebSocket to open');
        const binary = pseudoRandomBytes(100_000, 7);
        socket.send('hello');
        socket.send(Buffer.from([0, 1, 2, 255]));
        socket.send(binary);
        socket.send('last');
        await within(allIn, 10_000, `${expectedCount} WebSocket messages`);
        const sent = ['text:hello', 'binary:000102ff', `binary:${binary.toString('hex')}`, 'text:last'];
        assert.deepEqual(serverGot, sent, 'what the server received');
        assert.deepEqual(clientGot, ['text:welcome', ...sent, 'text:server says bye'], 'what the client received');

        const clientClosed = once(socket, 'close') as Promise<[number, Buffer]>;
        socket.close(4000, 'done');
        const [code, reason] = await within(clientClosed, 10_000, 'the WebSocket close');
        assert.deepEqual([code, reason.toString()], [4000, 'done'], 'the close the client saw echoed');
        assert.deepEqual(
          await within(serverClosed, 10_000, 'the server side close'),
          [4000, 'done'],
          'the close the server received',
        );
      } finally {
        socket.terminate();
      }
    });
  });
});
