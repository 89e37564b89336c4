// HTTP tunnels over HTTPS with a given wildcard certificate (and the SNI check), names that
// survive a reconnect and a crashed client's restart, and a relay that stays up and keeps
// a healthy tunnel whole while bad requests and floods hit its HTTP port.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startClient } from '../client/client.ts';
import { HOST, nextEvent, untilEqual, within } from './helpers.ts';
import { clientFor, echoHandler, echoOf, httpRig, localService, visit, type Echo } from './http-rig.ts';
import { selfSignedFor } from './named-certs.ts';
import { startTcpProxy } from './tcp-proxy.ts';
import { startServer } from '../server/server.ts';
import { openControl } from './raw.ts';

test('HTTPS with a wildcard certificate: the URL is https, curl verifies it, and SNI must match the Host', async () => {
  // A wildcard one level under a top-level name (`*.localhost`) is refused by TLS clients:
  // the relay's domain is one level deeper, as `relay.example.com` would be.
  const pem = await selfSignedFor(['*.relay.localhost']);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-https-'));
  const ca = path.join(tmp, 'ca.pem');
  fs.writeFileSync(ca, pem.cert);
  const local = await localService(echoHandler('secure'));
  const rig = await httpRig([{ localPort: local.port, http: { name: 'secure' } }], {
    httpsPort: 0,
    httpsCert: pem.cert,
    httpsKey: pem.key,
    domain: 'relay.localhost',
  });
  try {
    const port = rig.server.httpPorts.https ?? 0;
    assert.equal(rig.client.tunnels[0]?.url, `https://secure.relay.localhost:${port}`, 'HTTPS when the relay has it');
    const out = await run('curl', [
      '--silent',
      '--show-error',
      '--cacert',
      ca,
      `https://secure.relay.localhost:${port}/tls`,
    ]);
    const echo = JSON.parse(out) as Echo;
    assert.equal(echo.url, '/tls');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    // The plain HTTP port serves the same names.
    assert.equal(echoOf(await visit(rig.port, 'secure.relay.localhost')).headers['x-forwarded-proto'], 'http');
    // A connection opened for one name cannot be used for another.
    const misdirected = await new Promise<number>((resolve, reject) =>
      https
        .get(
          {
            host: HOST,
            port,
            servername: 'other.relay.localhost',
            headers: { host: 'secure.relay.localhost' },
            ca: pem.cert,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on('error', reject),
    );
    assert.equal(misdirected, 421);
  } finally {
    await rig.close();
    await local.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('a client that loses its control connection reconnects and keeps its random name', async () => {
  const local = await localService(echoHandler('kept'));
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0 });
  const proxy = await startTcpProxy(server.controlPort);
  const client = await startClient({
    ...clientFor(server),
    controlPort: proxy.port,
    tunnels: [{ localPort: local.port, http: true }],
    reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
  });
  try {
    const url = client.tunnels[0]?.url ?? '';
    const host = new URL(url).host;
    assert.equal(echoOf(await visit(server.httpPorts.http ?? 0, host)).service, 'kept');
    const back = nextEvent<[{ moved: unknown[] }]>(client, 'reconnected', 10_000);
    proxy.breakAll();
    const [{ moved }] = await back;
    assert.deepEqual(moved, [], 'the same name, by its lease');
    assert.equal(client.tunnels[0]?.url, url);
    assert.equal(echoOf(await visit(server.httpPorts.http ?? 0, host)).service, 'kept');
  } finally {
    await client.destroy();
    await proxy.close();
    await server.destroy();
    await local.close();
  }
});

test('a random name taken by someone else while its client was away: the client gets a new one and says so (moved)', async () => {
  const local = await localService(echoHandler('moved'));
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0, leaseGraceMs: 0 });
  const proxy = await startTcpProxy(server.controlPort);
  const client = await startClient({
    ...clientFor(server),
    controlPort: proxy.port,
    tunnels: [{ localPort: local.port, http: true }],
    reconnect: { initialDelayMs: 300, maxDelayMs: 300 },
  });
  const thief = await openControl(server.controlPort, 'ping goaway id-reply refuse http');
  try {
    const before = client.tunnels[0]?.url ?? '';
    const name = client.tunnels[0]?.name ?? '';
    const back = nextEvent<[{ moved: { previousUrl?: string; tunnel: { url: string } }[] }]>(
      client,
      'reconnected',
      10_000,
    );
    proxy.breakAll(); // no leases on this relay: the name is free at once
    await untilEqual(() => server.stats().http?.tunnels, 0, 'the name is free');
    thief.send(`HTTP 3000 ${name}\n`);
    assert.match(await thief.reader.line(), /^OK /);
    const [{ moved }] = await back;
    assert.equal(moved.length, 1);
    assert.equal(moved[0]?.previousUrl, before);
    assert.notEqual(moved[0]?.tunnel.url, before);
    assert.equal(client.tunnels[0]?.url, moved[0]?.tunnel.url);
  } finally {
    thief.socket.destroy();
    await client.destroy();
    await proxy.close();
    await server.destroy();
    await local.close();
  }
});

test('a request under way when its client’s control connection drops is answered in full (as a joined TCP visitor lives on)', async () => {
  let release: (() => void) | undefined;
  let held: () => void = () => {};
  const holding = new Promise<void>((resolve) => (held = resolve));
  const local = await localService((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first half,');
    release = () => res.end('second half');
    held();
  });
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0 });
  const proxy = await startTcpProxy(server.controlPort);
  const client = await startClient({
    ...clientFor(server),
    controlPort: proxy.port,
    tunnels: [{ localPort: local.port, http: { name: 'slow' } }],
  });
  try {
    const answer = visit(server.httpPorts.http ?? 0, 'slow.localhost');
    await within(holding, 10_000, 'the service to hold its response');
    proxy.breakAll(); // the control connection drops; the tunnel goes under lease
    await untilEqual(() => server.stats().http?.leasedNames, 1, 'the name is under lease');
    release?.();
    const { status, body } = await answer;
    assert.equal(status, 200);
    assert.equal(body.toString(), 'first half,second half');
  } finally {
    await client.destroy();
    await proxy.close();
    await server.destroy();
    await local.close();
  }
});

test('a crashed client restarted with the same name and lease file gets its name back at once', async () => {
  const local = await localService(echoHandler('again'));
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0 });
  const proxy = await startTcpProxy(server.controlPort);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-names-'));
  const leaseFile = path.join(tmp, 'leases.json');
  const options = { ...clientFor(server), leaseFile, tunnels: [{ localPort: local.port, http: { name: 'again' } }] };
  const first = await startClient({ ...options, controlPort: proxy.port });
  try {
    const lost = nextEvent(first, 'close');
    proxy.breakAll(); // no GOAWAY: the relay keeps the name for its lease
    await lost;
    await untilEqual(() => server.stats().http?.leasedNames, 1, 'the name is kept for its lease');
    const second = await startClient({ ...options, controlPort: proxy.port }); // the same command
    try {
      assert.equal(second.tunnels[0]?.url, `http://again.localhost:${server.httpPorts.http}`);
      assert.equal(echoOf(await visit(server.httpPorts.http ?? 0, 'again.localhost')).service, 'again');
    } finally {
      await second.destroy();
    }
  } finally {
    await first.destroy();
    await proxy.close();
    await server.destroy();
    await local.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('bad requests and floods on the HTTP port: the relay stays up and a healthy tunnel beside them loses nothing', async () => {
  const local = await localService(echoHandler('healthy'));
  const rig = await httpRig([{ localPort: local.port, http: { name: 'healthy' } }], { headerTimeoutMs: 1_000 });
  const junk: net.Socket[] = [];
  try {
    const floods = [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: healthy.localhost\r\nContent-Length: -1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: healthy.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: healthy.localhost\r\n\r\n`,
      'GET / HTTP/1.1\r\nHost: nobody.localhost\r\n\r\n'.repeat(50),
      'GET / HTTP/1.1\r\nHo', // never finished: the header timeout closes it
      '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', // a TLS ClientHello on the plain port
    ];
    for (let i = 0; i < 200; i++) {
      const socket = net.connect(rig.port, HOST);
      socket.on('error', () => {});
      socket.resume(); // read the answers, so that the relay's close is seen
      socket.write(floods[i % floods.length] ?? '');
      junk.push(socket);
    }
    // Meanwhile the healthy tunnel carries requests with bodies, each checked.
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        visit(rig.port, 'healthy.localhost', { method: 'POST', path: `/h${i}`, body: `body-${i}`.repeat(100) }),
      ),
    );
    for (const [i, answer] of answers.entries()) {
      const echo = echoOf(answer);
      assert.equal(echo.url, `/h${i}`);
      assert.equal(echo.bodyBytes, `body-${i}`.repeat(100).length);
    }
    await within(
      Promise.all(
        junk.map((socket) => new Promise((resolve) => (socket.closed ? resolve(0) : socket.once('close', resolve)))),
      ),
      15_000,
      'the relay to close every junk connection',
    ).catch((error: unknown) => {
      const open = junk.flatMap((socket, i) => (socket.closed ? [] : [i % floods.length]));
      throw new Error(`${String(error)}; still open: kinds ${[...new Set(open)].join(', ')}`);
    });
    assert.equal(echoOf(await visit(rig.port, 'healthy.localhost')).service, 'healthy', 'still serving');
  } finally {
    for (const socket of junk) socket.destroy();
    await rig.close();
    await local.close();
  }
});

/** Runs a program; resolves with its stdout, rejects on a non-zero exit. */
function run(program: string, args: string[]): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const child = spawn(program, args);
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${program} exited ${code}: ${err}`))));
    }),
    30_000,
    program,
  );
}
