// HTTP tunnels by name, end to end: a visitor's request to NAME.localhost on the relay's
// HTTP port reaches the local service of the tunnel named NAME, through the same
// CONNECTION / ID rendezvous as a TCP visitor, with the headers a proxied service expects;
// and every request the relay cannot forward gets the relay's own page.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { RequestEvent } from '../client/client.ts';
import type { TraceEvent } from '../shared/trace.ts';
import { startServer } from '../server/server.ts';
import { HOST, nextEvent, untilEqual, within } from './helpers.ts';
import { clientFor, echoHandler, echoOf, httpRig, localService, visit, type LocalService } from './http-rig.ts';
import { openControl, rejectsWith } from './raw.ts';
import { startClient } from '../client/client.ts';

describe('routing and headers', () => {
  let local: LocalService;
  let other: LocalService;
  let rig: Awaited<ReturnType<typeof httpRig>>;
  before(async () => {
    local = await localService(echoHandler('demo'));
    other = await localService(echoHandler('other'));
    rig = await httpRig([
      { localPort: local.port, http: { name: 'demo', hostHeader: 'rewrite' } },
      { localPort: other.port, http: { name: 'other' } },
      { localPort: other.port, http: true },
    ]);
  });
  after(async () => {
    await rig.close();
    await local.close();
    await other.close();
  });

  test('the client learns each URL from the relay; a tunnel without a name gets a readable random one', () => {
    const [demo, named, random] = rig.client.tunnels;
    assert.equal(demo?.url, `http://demo.localhost:${rig.port}`);
    assert.equal(named?.url, `http://other.localhost:${rig.port}`);
    assert.match(random?.name ?? '', /^[a-z]+-[a-z]+-[0-9]{2}$/);
    assert.equal(random?.url, `http://${random?.name}.localhost:${rig.port}`);
    assert.equal(demo?.publicPort, rig.port, 'every HTTP tunnel shares the HTTP port');
  });

  test('each request reaches the tunnel its Host names, with X-Forwarded-* set', async () => {
    const demo = echoOf(await visit(rig.port, `demo.localhost:${rig.port}`, { path: '/a?b=1' }));
    assert.equal(demo.service, 'demo');
    assert.equal(demo.url, '/a?b=1');
    assert.equal(demo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(demo.headers['x-forwarded-proto'], 'http');
    assert.equal(demo.headers['x-forwarded-host'], `demo.localhost:${rig.port}`);
    const other = echoOf(await visit(rig.port, 'OTHER.localhost', { headers: { 'x-forwarded-for': '203.0.113.9' } }));
    assert.equal(other.service, 'other');
    assert.equal(other.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'appended, not replaced');
    assert.equal(other.headers.host, 'OTHER.localhost', 'kept as the visitor sent it (the default)');
  });

  test('on one kept-alive visitor connection, the first and the fifth request both get the headers and the Host rewrite', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const echoes = [];
      const ports = new Set<number>();
      for (let i = 1; i <= 5; i++) {
        const answer = await visit(rig.port, 'demo.localhost', { agent, path: `/${i}` });
        ports.add(answer.visitorPort);
        echoes.push(echoOf(answer));
      }
      assert.equal(ports.size, 1, 'the visitor reused one connection');
      for (const echo of [echoes[0], echoes[4]]) {
        assert.equal(echo?.headers.host, `${HOST}:${local.port}`, 'Host rewritten for the local service');
        assert.equal(echo?.headers['x-forwarded-host'], 'demo.localhost');
        assert.equal(echo?.headers['x-forwarded-for'], '127.0.0.1');
      }
      assert.equal(new Set(echoes.map((echo) => echo.connection)).size, 1, 'the local service saw one connection');
    } finally {
      agent.destroy();
    }
  });

  test('hop-by-hop headers stay on their hop; the rest reach the service as sent', async () => {
    const echo = echoOf(
      await visit(rig.port, 'demo.localhost', {
        headers: { connection: 'keep-alive, x-hop', 'x-hop': '1', 'x-end': '2', te: 'trailers' },
      }),
    );
    assert.equal(echo.headers['x-hop'], undefined);
    assert.equal(echo.headers.te, undefined);
    assert.equal(echo.headers['x-end'], '2');
  });

  test("a request that needs a new data connection names its visitor's addresses in the CONNECTION line", async () => {
    const random = rig.client.tunnels[2]?.name ?? '';
    const lines: string[] = [];
    const onTrace = (event: TraceEvent): void => void (event.conn === 'control' && lines.push(event.text));
    rig.client.on('trace', onTrace);
    try {
      // This tunnel has carried no request yet: the first one is a dial-back.
      await visit(rig.port, `${random}.localhost`, { path: '/first' });
    } finally {
      rig.client.off('trace', onTrace);
    }
    const connection = lines.find((line) => line.startsWith('CONNECTION '));
    const port = String(rig.port);
    assert.match(
      connection ?? '',
      new RegExp(`^CONNECTION \\S+ ${port} 127\\.0\\.0\\.1:\\d+ 127\\.0\\.0\\.1:${port} ${random}$`),
    );
  });

  test('the client reports each request once it is answered (the request log)', async () => {
    const logged = nextEvent<[RequestEvent]>(rig.client, 'request');
    await visit(rig.port, 'demo.localhost', { method: 'POST', path: '/log', body: 'x'.repeat(100) });
    const [event] = await logged;
    assert.equal(event.method, 'POST');
    assert.equal(event.path, '/log');
    assert.equal(event.status, 200);
    assert.equal(event.bytesIn, 100);
    assert.ok(event.bytesOut > 100);
    assert.equal(event.visitor, '127.0.0.1');
    assert.equal(event.tunnel.name, 'demo');
    assert.equal(event.aborted, false);
  });

  test('two names on one port never see each other’s requests, even all at once', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    try {
      const names = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 'other' : 'demo'));
      const answers = await Promise.all(
        names.map((name, i) => visit(rig.port, `${name}.localhost`, { agent, path: `/${name}/${i}` })),
      );
      for (const [i, answer] of answers.entries()) {
        const echo = echoOf(answer);
        assert.equal(echo.service, names[i]);
        assert.equal(echo.url, `/${names[i]}/${i}`);
      }
    } finally {
      agent.destroy();
    }
  });
});

describe("the relay's own pages", () => {
  let rig: Awaited<ReturnType<typeof httpRig>>;
  let local: LocalService;
  let closedPort: number;
  before(async () => {
    local = await localService(echoHandler('private'));
    const closed = net.createServer().listen(0, HOST);
    closedPort = (
      await new Promise<net.AddressInfo>((resolve) =>
        closed.once('listening', () => resolve(closed.address() as net.AddressInfo)),
      )
    ).port;
    closed.close();
    rig = await httpRig(
      [
        { localPort: local.port, http: { name: 'private', auth: 'ann:s3cret' } },
        { localPort: closedPort, http: { name: 'down' } },
      ],
      { maxHeaderBytes: 2048, headerTimeoutMs: 500 },
    );
  });
  after(async () => {
    await rig.close();
    await local.close();
  });

  test('404 for a name nobody has, as text, or as HTML for a browser', async () => {
    const text = await visit(rig.port, 'nobody.localhost');
    assert.equal(text.status, 404);
    assert.match(text.headers['content-type'] ?? '', /^text\/plain/);
    assert.match(text.body.toString(), /^404 No tunnel here: no tunnel is open at nobody\.localhost/);
    const html = await visit(rig.port, 'nobody.localhost', { headers: { accept: 'text/html,*/*' } });
    assert.equal(html.status, 404);
    assert.match(html.headers['content-type'] ?? '', /^text\/html/);
    assert.match(html.body.toString(), /<h1>404 No tunnel here<\/h1>/);
    assert.equal((await visit(rig.port, 'localhost')).status, 404, 'the bare domain is no tunnel');
    assert.equal((await visit(rig.port, 'a.b.localhost')).status, 404, 'one label only');
  });

  test('401 without the tunnel’s credentials, or with wrong ones; 200 with them, and the password stays at the relay', async () => {
    const none = await visit(rig.port, 'private.localhost');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="private.localhost", charset="UTF-8"');
    const basic = (credentials: string): string => `Basic ${Buffer.from(credentials).toString('base64')}`;
    const wrong = await visit(rig.port, 'private.localhost', { headers: { authorization: basic('ann:wrong') } });
    assert.equal(wrong.status, 401);
    const right = await visit(rig.port, 'private.localhost', { headers: { authorization: basic('ann:s3cret') } });
    assert.equal(right.status, 200);
    assert.equal(echoOf(right).headers.authorization, undefined, 'the relay’s credentials are not the service’s');
  });

  test('502 when the client cannot reach its local service, and the page says so', async () => {
    const answer = await visit(rig.port, 'down.localhost');
    assert.equal(answer.status, 502);
    assert.match(answer.body.toString(), new RegExp(`cannot reach its local service \\(${HOST}:${closedPort}\\)`));
    // An upgrade (a WebSocket) to it gets the same page.
    const upgrade = await rawExchange(
      rig.port,
      'GET /ws HTTP/1.1\r\nHost: down.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    assert.match(upgrade, /^HTTP\/1\.1 502 The tunnel cannot reach its service\r\n/);
    assert.match(upgrade, /cannot reach its local service/);
  });

  test('400 for a request that is not HTTP, 431 for a head over the limit, 408 for a head that does not arrive', async () => {
    assert.match(await rawExchange(rig.port, 'HELLO ping\r\n\r\n'), /^HTTP\/1\.1 400 Bad request/);
    const big = `GET / HTTP/1.1\r\nHost: private.localhost\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`;
    assert.match(await rawExchange(rig.port, big), /^HTTP\/1\.1 431 Request header too large/);
    assert.match(
      await rawExchange(rig.port, 'GET / HTTP/1.1\r\nHost: priv'),
      /^HTTP\/1\.1 408 Request timeout/,
      'the head must be complete within headerTimeoutMs',
    );
  });

  test('curl sees the same pages: 404, 401, 502 and 431, as text', async () => {
    const status = async (host: string, ...args: string[]): Promise<string> =>
      (
        await run('curl', [
          '--silent',
          '--output',
          '/dev/null',
          '--write-out',
          '%{http_code}',
          ...args,
          `http://${host}:${rig.port}/`,
        ])
      ).trim();
    assert.equal(await status('nobody.localhost'), '404');
    assert.equal(await status('private.localhost'), '401');
    assert.equal(await status('private.localhost', '--user', 'ann:s3cret'), '200');
    assert.equal(await status('down.localhost'), '502');
    assert.equal(await status('private.localhost', '-H', `X-Big: ${'a'.repeat(4096)}`), '431');
    const body = await run('curl', ['--silent', `http://nobody.localhost:${rig.port}/`]);
    assert.equal(body, '404 No tunnel here: no tunnel is open at nobody.localhost.\n');
  });

  test('every page is reported to the operator (the page event)', async () => {
    const page = nextEvent<[{ status: number; host: string; text: string }]>(rig.server, 'page');
    await visit(rig.port, 'ghost.localhost', { path: '/x' });
    const [event] = await page;
    assert.equal(event.status, 404);
    assert.equal(event.host, 'ghost.localhost');
  });
});

describe('names', () => {
  test('503 with Retry-After while a dropped client’s name is under lease; its client gets it back with the lease', async () => {
    const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0 });
    const port = server.httpPorts.http ?? 0;
    try {
      const raw = await openControl(server.controlPort, 'ping goaway id-reply refuse http');
      raw.send('HTTP 3000 kept\n');
      const [, , lease, url] = (await raw.reader.line()).split(' ');
      assert.equal(url, `http://kept.localhost:${port}`);
      raw.socket.destroy(); // no GOAWAY: the name is kept for its lease
      await untilEqual(() => server.stats().http?.leasedNames, 1, 'the name is under lease');
      const answer = await visit(port, 'kept.localhost');
      assert.equal(answer.status, 503);
      assert.ok(Number(answer.headers['retry-after']) >= 1);
      const thief = await openControl(server.controlPort, 'ping goaway id-reply refuse http');
      thief.send('HTTP 3000 kept\n');
      assert.match(await thief.reader.line(), /^ERR name-in-use the name kept is taken: it is kept for the client/);
      thief.send(`HTTP 3000 kept ${lease}\n`);
      assert.match(await thief.reader.line(), new RegExp(`^OK ${port} ${lease} http://kept.localhost:${port}$`));
      thief.socket.destroy();
    } finally {
      await server.destroy();
    }
  });

  test('a name that is taken, reserved or malformed is refused clearly; so is an HTTP tunnel on a relay without an HTTP port', async () => {
    const local = await localService(echoHandler('x'));
    const rig = await httpRig([{ localPort: local.port, http: { name: 'taken' } }]);
    const plain = await startServer({ controlPort: 0, dataPort: 0, bind: HOST });
    try {
      const again = startClient({
        ...clientFor(rig.server),
        tunnels: [{ localPort: local.port, http: { name: 'taken' } }],
      });
      const taken = await rejectsWith(again, 'refused', 'name-in-use');
      assert.match(taken.message, /the name taken is taken: another client has it/);
      const www = startClient({
        ...clientFor(rig.server),
        tunnels: [{ localPort: local.port, http: { name: 'www' } }],
      });
      assert.match((await rejectsWith(www, 'refused', 'name-reserved')).message, /the name www is reserved/);
      const bad = startClient({
        ...clientFor(rig.server),
        tunnels: [{ localPort: local.port, http: { name: 'Bad_Name' } }],
      });
      await rejectsWith(bad, 'refused', 'bad-arguments');
      const none = startClient({ ...clientFor(plain), tunnels: [{ localPort: local.port, http: true }] });
      const refused = await rejectsWith(none, 'refused', 'http-not-enabled');
      assert.match(refused.message, /serves no HTTP tunnels/);
    } finally {
      await rig.close();
      await plain.destroy();
      await local.close();
    }
  });

  test('a client that leaves (GOAWAY) frees its name at once', async () => {
    const local = await localService(echoHandler('x'));
    const rig = await httpRig([{ localPort: local.port, http: { name: 'brief' } }]);
    try {
      await rig.client.close();
      await untilEqual(() => rig.server.stats().http, { tunnels: 0, leasedNames: 0, waiting: 0 }, 'name freed');
      assert.equal((await visit(rig.port, 'brief.localhost')).status, 404);
    } finally {
      await rig.close();
      await local.close();
    }
  });
});

/** Sends `bytes` on a new connection to the HTTP port; resolves with all it reads until the relay closes. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, HOST, () => socket.write(bytes));
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
    }),
    10_000,
    'the relay to answer and close',
  );
}

/** Runs a program; resolves with its stdout (whatever its exit code). */
function run(program: string, args: string[]): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      execFile(program, args, (error, stdout) =>
        // A program that could not start; an exit code of its own is its answer.
        error && typeof error.code === 'string' ? reject(new Error(error.message)) : resolve(stdout),
      );
    }),
    20_000,
    program,
  );
}
