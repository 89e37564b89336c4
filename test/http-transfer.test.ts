// HTTP through a tunnel the way real programs speak it: curl for keep-alive, chunked
// bodies, Expect: 100-continue and large checksummed transfers; raw sockets for
// pipelining, HTTP/1.0 and an upgrade (WebSocket-style) with a half-close; Server-Sent
// Events that arrive as they are sent; and a visitor that leaves mid-download.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { HOST, pseudoRandomBytes, within } from './helpers.ts';
import { echoHandler, httpRig, localService, type Echo, type HttpRig, type LocalService } from './http-rig.ts';

const MiB = 1024 * 1024;

/** Runs curl with `args`; resolves with its exit code, stdout's SHA-256 and length, and stderr. */
function curl(
  args: string[],
): Promise<{ code: number | null; sha256: string; bytes: number; out: string; err: string }> {
  return within(
    new Promise((resolve, reject) => {
      const child = spawn('curl', ['--silent', '--show-error', '--max-time', '60', ...args]);
      const hash = createHash('sha256');
      let bytes = 0;
      const head: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        if (bytes < 64 * 1024) head.push(chunk);
        bytes += chunk.length;
      });
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({ code, sha256: hash.digest('hex'), bytes, out: Buffer.concat(head).toString('latin1'), err }),
      );
    }),
    90_000,
    `curl ${args.join(' ')}`,
  );
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('HTTP through a tunnel, with curl and by hand', () => {
  const download = pseudoRandomBytes(64 * MiB, 7);
  const downloadSha = sha256(download);
  let local: LocalService;
  let rig: HttpRig;
  let base: string;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-http-'));
  /** What the local service saw of an `Expect` header, by request path. */
  const expects = new Map<string, string | undefined>();
  /** Released by a test to let the SSE stream go on. */
  let nextEvent: () => void = () => {};
  /** The local service's end of the last download and the bytes it has let go of so far
   * (it writes with backpressure), to see it cut when the visitor leaves. */
  let lastDownload: { res: http.ServerResponse; sent: () => number } | undefined;

  before(async () => {
    const echo = echoHandler('demo');
    local = await localService((req, res) => {
      const url = req.url ?? '';
      expects.set(url, req.headers.expect);
      if (url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': download.length });
        let sent = 0;
        // Chunk by chunk, as the pipe asks for them (it stops asking when the visitor does).
        const chunks = function* (): Generator<Buffer> {
          for (let i = 0; i < 64; i++) {
            sent += MiB;
            yield download.subarray(i * MiB, (i + 1) * MiB);
          }
        };
        lastDownload = { res, sent: () => sent };
        return void Readable.from(chunks(), { objectMode: false, highWaterMark: MiB }).pipe(res);
      }
      if (url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' }); // no length: chunked
        res.write('one,');
        setImmediate(() => res.end('two'));
        return;
      }
      if (url === '/head-first') {
        // A head with no body yet (a long poll, a stream that starts later).
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.flushHeaders();
        nextEvent = () => res.end('later');
        return;
      }
      if (url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write('data: first\n\n');
        nextEvent = () => res.end('data: second\n\n');
        return;
      }
      echo(req, res);
    });
    local.server.on('checkContinue', (req, res) => {
      expects.set(req.url ?? '', req.headers.expect);
      res.writeContinue();
      local.server.emit('request', req, res);
    });
    local.server.on('upgrade', (_req, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n');
      socket.on('data', (chunk: Buffer) => socket.write(chunk.toString().toUpperCase()));
      socket.on('end', () => socket.end('bye'));
    });
    rig = await httpRig([{ localPort: local.port, http: { name: 'demo' } }]);
    base = `http://demo.localhost:${rig.port}`;
  });
  after(async () => {
    await rig.close();
    await local.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('curl reuses its connection for two requests, and so does the way to the local service', async () => {
    const result = await curl(['-v', `${base}/one`, `${base}/two`]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.err, /Re-using existing connection/);
    const [first, second] = result.out
      .split('}{')
      .map((part, i) => JSON.parse(i === 0 ? `${part}}` : `{${part}`) as Echo);
    assert.equal(first?.url, '/one');
    assert.equal(second?.url, '/two');
    assert.equal(first?.connection, second?.connection, 'one connection to the local service');
  });

  test('a 64 MiB download arrives whole (SHA-256), with backpressure all the way', async () => {
    const result = await curl(['-o', '-', `${base}/big`]);
    assert.equal(result.code, 0, result.err);
    assert.equal(result.bytes, download.length);
    assert.equal(result.sha256, downloadSha);
  });

  test('a 16 MiB upload arrives whole, with a length and chunked', async () => {
    const upload = pseudoRandomBytes(16 * MiB, 11);
    const file = path.join(tmp, 'upload.bin');
    fs.writeFileSync(file, upload);
    for (const extra of [[], ['-H', 'Transfer-Encoding: chunked']]) {
      const result = await curl(['--data-binary', `@${file}`, ...extra, `${base}/upload`]);
      assert.equal(result.code, 0, result.err);
      const echo = JSON.parse(result.out) as Echo;
      assert.equal(echo.bodyBytes, upload.length);
      assert.equal(echo.bodySha256, sha256(upload));
      if (extra.length > 0) assert.equal(echo.headers['transfer-encoding'], 'chunked');
    }
  });

  test('a chunked response is passed on chunked', async () => {
    const result = await curl(['-i', `${base}/chunked`]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /transfer-encoding: chunked/i);
    assert.match(result.out, /\r\n\r\none,two$/);
  });

  test('Expect: 100-continue is the local service’s to answer, and curl gets its 100 from it', async () => {
    const result = await curl([
      '-v',
      '-H',
      'Expect: 100-continue',
      '--data-binary',
      'x'.repeat(2048),
      `${base}/expect`,
    ]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.err, /< HTTP\/1\.1 100 Continue/);
    assert.equal(expects.get('/expect'), '100-continue');
    assert.equal((JSON.parse(result.out) as Echo).bodyBytes, 2048);
  });

  test('pipelined requests are answered in order', async () => {
    const requests = ['/p1', '/p2', '/p3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: demo.localhost\r\n\r\n`).join('');
    const text = await exchange(rig.port, requests, (received) => (received.match(/"url":/g) ?? []).length === 3);
    assert.deepEqual(
      [...text.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]),
      ['/p1', '/p2', '/p3'],
    );
  });

  test('HTTP/1.0 is answered, and the connection closes after it', async () => {
    const text = await exchange(rig.port, 'GET /old HTTP/1.0\r\nHost: demo.localhost\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /"url":"\/old"/);
  });

  test('Server-Sent Events arrive as they are sent, not when the stream ends', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http
        .get({ host: HOST, port: rig.port, path: '/events', headers: { host: 'demo.localhost' } }, resolve)
        .on('error', reject),
    );
    res.setEncoding('utf8');
    let text = '';
    await within(
      new Promise<void>((resolve) =>
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.includes('data: first')) resolve();
        }),
      ),
      10_000,
      'the first event',
    );
    assert.doesNotMatch(text, /second/);
    nextEvent();
    await within(once(res, 'end'), 10_000, 'the end of the stream');
    assert.equal(text, 'data: first\n\ndata: second\n\n');
  });

  test('a head sent without a body reaches the visitor before the body exists', async () => {
    const res = await within(
      new Promise<http.IncomingMessage>((resolve, reject) =>
        http
          .get({ host: HOST, port: rig.port, path: '/head-first', headers: { host: 'demo.localhost' } }, resolve)
          .on('error', reject),
      ),
      10_000,
      'the head, with no body sent',
    );
    assert.equal(res.statusCode, 200);
    res.setEncoding('utf8');
    let text = '';
    res.on('data', (chunk: string) => (text += chunk));
    nextEvent();
    await within(once(res, 'end'), 10_000, 'the body');
    assert.equal(text, 'later');
  });

  test('an upgrade joins the visitor to the local service byte for byte, half-close included', async () => {
    const socket = net.connect(rig.port, HOST);
    socket.on('error', () => {});
    socket.setEncoding('latin1');
    let text = '';
    const received = (pattern: RegExp): Promise<void> =>
      within(
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (pattern.test(text)) {
              socket.off('data', onData);
              resolve();
            }
          };
          const onData = (chunk: string): void => {
            text += chunk;
            check();
          };
          socket.on('data', onData);
          check();
        }),
        10_000,
        `${pattern}`,
      );
    socket.write('GET /ws HTTP/1.1\r\nHost: demo.localhost\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n');
    await received(/\r\n\r\n/);
    assert.match(text, /^HTTP\/1\.1 101 /);
    assert.match(text, /\r\nupgrade: shout\r\n/i);
    socket.write('hello');
    await received(/HELLO$/);
    const ended = once(socket, 'end');
    socket.end(); // our FIN reaches the service, which answers and ends too
    await received(/HELLObye$/);
    await within(ended, 10_000, 'the end from the service');
    socket.destroy();
  });

  test('a visitor that leaves mid-download stops the local service’s response too', async () => {
    const socket = net.connect(rig.port, HOST);
    socket.on('error', () => {});
    socket.write('GET /big HTTP/1.1\r\nHost: demo.localhost\r\n\r\n');
    await within(once(socket, 'data'), 10_000, 'the first bytes');
    const served = lastDownload;
    assert.ok(served, 'the local service is serving the download');
    socket.resetAndDestroy(); // a reset with most of 64 MiB still in flight
    await within(once(served.res, 'close'), 10_000, 'the local response to close');
    assert.equal(served.res.writableFinished, false, 'cut short, not finished');
    assert.ok(served.sent() < download.length, `the service stopped early (${served.sent()} bytes let go of)`);
  });
});

/** Writes `request` on a new connection to the relay's HTTP port and reads until `done`
 * says so or the relay closes. */
function exchange(port: number, request: string, done: (received: string) => boolean = () => false): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, HOST, () => socket.write(request));
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (done(text)) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
    }),
    10_000,
    'the answers',
  );
}
