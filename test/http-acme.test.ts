// HTTPS names with certificates from a real ACME CA: Debian's pebble (Let's Encrypt's test
// server) on loopback, with pebble-challtestsrv as its DNS so that every name resolves to
// 127.0.0.1. The relay answers pebble's HTTP-01 challenge on its HTTP port. Certificates
// are issued only for names a tunnel holds, cached on disk (keys 0600), and reused.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { startClient, type BurrowClient } from '../client/client.ts';
import { startServer, type BurrowServer } from '../server/server.ts';
import type { CertificateEvent } from '../server/http/acme.ts';
import { HOST, nextEvent, within } from './helpers.ts';
import { clientFor, echoHandler, localService, type Echo, type LocalService } from './http-rig.ts';
import { selfSignedFor } from './named-certs.ts';
import { freePort, probe } from './raw.ts';

const DOMAIN = 'relay.localhost';

interface Pebble {
  directoryUrl: string;
  /** pebble's own API certificate (to trust its directory). */
  apiCert: string;
  /** The root that signs what pebble issues (new at every start). */
  root(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts pebble-challtestsrv (DNS: every name is 127.0.0.1) and pebble, which checks
 * HTTP-01 challenges on `httpPort`. */
async function startPebble(dir: string, httpPort: number): Promise<Pebble> {
  const [api, management, dns, dnsManagement, tlsAlpn] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const pem = await selfSignedFor(['localhost', '127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'pebble.crt'), pem.cert);
  fs.writeFileSync(path.join(dir, 'pebble.key'), pem.key);
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${api}`,
      managementListenAddress: `127.0.0.1:${management}`,
      certificate: path.join(dir, 'pebble.crt'),
      privateKey: path.join(dir, 'pebble.key'),
      httpPort,
      tlsPort: tlsAlpn,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  fs.writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify(config));
  const children: ChildProcess[] = [];
  const run = (program: string, args: string[], env: NodeJS.ProcessEnv = {}): void => {
    const child = spawn(program, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.resume();
    children.push(child);
  };
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map((child) =>
        child.exitCode === null && child.signalCode === null
          ? new Promise((resolve) => child.once('exit', resolve).kill('SIGKILL'))
          : Promise.resolve(),
      ),
    );
  };
  try {
    run('pebble-challtestsrv', [
      ...['-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
      ...['-dns01', `127.0.0.1:${dns}`, '-http01', '', '-https01', '', '-tlsalpn01', ''],
      ...['-management', `127.0.0.1:${dnsManagement}`],
    ]);
    run('pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dns}`], {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
    });
    for (const port of [api, management, dns]) await untilOpen(port ?? 0);
  } catch (error) {
    await stop();
    throw error;
  }
  const root = (): Promise<string> => fetchText(`https://127.0.0.1:${management}/roots/0`, pem.cert);
  return { directoryUrl: `https://127.0.0.1:${api}/dir`, apiCert: pem.cert, root, stop };
}

/** Waits until `port` accepts connections (a program starting), bounded. */
async function untilOpen(port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (let attempt = 0; attempt < 1_000 && Date.now() < deadline; attempt++) {
    if ((await probe(port)) === 'open') return;
    await new Promise((resolve) => setTimeout(resolve, 20)); // a program starting: nothing to await but time
  }
  assert.fail(`nothing listens on ${port} after 15 s`);
}

function fetchText(url: string, ca: string): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) =>
      https
        .get(url, { ca }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve(text));
        })
        .on('error', reject),
    ),
    10_000,
    url,
  );
}

/** A request to `name` over TLS (SNI `name`), trusting `ca`. */
function secureVisit(port: number, name: string, ca: string): Promise<Echo> {
  return within(
    new Promise<Echo>((resolve, reject) =>
      https
        .get({ host: HOST, port, servername: name, headers: { host: name }, ca, path: '/acme' }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve(JSON.parse(text) as Echo));
        })
        .on('error', reject),
    ),
    60_000,
    `a TLS answer from ${name}`,
  );
}

let tmp: string;
let pebble: Pebble;
let server: BurrowServer;
let client: BurrowClient;
let local: LocalService;
const events: CertificateEvent[] = [];

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'burrow-acme-'));
  const httpPort = await freePort();
  pebble = await startPebble(tmp, httpPort);
  local = await localService(echoHandler('secure'));
  server = await startServer({
    ...{ controlPort: 0, dataPort: 0, bind: HOST, httpPort, httpsPort: 0, domain: DOMAIN },
    acme: { directoryUrl: pebble.directoryUrl, directoryCa: pebble.apiCert, cacheDir: path.join(tmp, 'acme') },
  });
  server.on('certificate', (event) => events.push(event));
  client = await startClient({ ...clientFor(server), tunnels: [{ localPort: local.port, http: { name: 'secure' } }] });
});

after(async () => {
  await client?.destroy();
  await server?.destroy();
  await local?.close();
  await pebble?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the first handshake for a bound name gets a certificate from the CA, which the CA’s root verifies', async () => {
  const port = server.httpPorts.https ?? 0;
  assert.equal(client.tunnels[0]?.url, `https://secure.${DOMAIN}:${port}`);
  const root = await pebble.root();
  const echo = await secureVisit(port, `secure.${DOMAIN}`, root);
  assert.equal(echo.service, 'secure');
  assert.equal(echo.headers['x-forwarded-proto'], 'https');
  assert.deepEqual(events, [{ name: `secure.${DOMAIN}`, outcome: 'issued' }]);
  // Cached on disk, the key for its owner only; the next handshake uses it.
  const key = fs.statSync(path.join(tmp, 'acme', `secure.${DOMAIN}.key`));
  assert.equal(key.mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(tmp, 'acme')).mode & 0o777, 0o700);
  assert.equal((await secureVisit(port, `secure.${DOMAIN}`, root)).service, 'secure');
  assert.equal(events.length, 1, 'no second request to the CA');
});

test('a name no tunnel holds gets no certificate: the handshake fails and the CA is not asked', async () => {
  const port = server.httpPorts.https ?? 0;
  const failed = await within(
    new Promise<Error>((resolve, reject) => {
      const socket = tls.connect({ host: HOST, port, servername: `made-up.${DOMAIN}`, rejectUnauthorized: false });
      socket.on('secureConnect', () => reject(new Error('the handshake succeeded')));
      socket.on('error', resolve);
    }),
    10_000,
    'the handshake to fail',
  );
  assert.ok(failed instanceof Error);
  assert.equal(events.length, 1);
  assert.equal(fs.existsSync(path.join(tmp, 'acme', `made-up.${DOMAIN}.crt`)), false);
});

test('a CA that cannot be reached is reported in one line, and the handshake fails', async () => {
  const closed = await freePort();
  const other = await startServer({
    ...{ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0, httpsPort: 0, domain: DOMAIN },
    acme: { directoryUrl: `https://127.0.0.1:${closed}/dir`, cacheDir: path.join(tmp, 'acme-unreachable'), retries: 0 },
  });
  const otherClient = await startClient({
    ...clientFor(other),
    tunnels: [{ localPort: local.port, http: { name: 'lost' } }],
  });
  try {
    const reported = nextEvent<[CertificateEvent]>(other, 'certificate', 60_000);
    const handshake = new Promise<void>((resolve) => {
      const socket = tls.connect({ host: HOST, port: other.httpPorts.https ?? 0, servername: `lost.${DOMAIN}` });
      socket.on('error', () => resolve());
      socket.on('secureConnect', () => socket.destroy());
    });
    const [event] = await reported;
    await within(handshake, 10_000, 'the handshake to fail');
    assert.equal(event.outcome, 'failed');
    assert.equal(event.name, `lost.${DOMAIN}`);
    assert.equal(event.error, `no answer from the ACME CA at https://127.0.0.1:${closed}/dir`);
    assert.doesNotMatch(event.error ?? '', /\n/);
  } finally {
    await otherClient.destroy();
    await other.destroy();
  }
});

test('a restarted relay serves the certificate it cached, and renews one that is due (in the background)', async () => {
  // The first relay holds the HTTP port pebble checks: it gives it up to its successor.
  const httpPort = server.httpPorts.http;
  await client.destroy();
  await server.destroy();
  const again = await startServer({
    ...{ controlPort: 0, dataPort: 0, bind: HOST, httpPort, httpsPort: 0, domain: DOMAIN },
    // Everything pebble issues is "due" with a renewal window this wide.
    acme: { directoryUrl: pebble.directoryUrl, cacheDir: path.join(tmp, 'acme'), renewBeforeMs: 10 * 365 * 86_400_000 },
  });
  const seen: CertificateEvent[] = [];
  again.on('certificate', (event) => seen.push(event));
  const againClient = await startClient({
    ...clientFor(again),
    tunnels: [{ localPort: local.port, http: { name: 'secure' } }],
  });
  try {
    const renewed = nextEvent<[CertificateEvent]>(again, 'certificate', 60_000);
    const root = await pebble.root();
    const echo = await secureVisit(again.httpPorts.https ?? 0, `secure.${DOMAIN}`, root);
    assert.equal(echo.service, 'secure', 'served at once with the cached certificate');
    assert.deepEqual((await renewed)[0], { name: `secure.${DOMAIN}`, outcome: 'renewed' });
    assert.deepEqual(
      seen,
      [{ name: `secure.${DOMAIN}`, outcome: 'renewed' }],
      'no new issuance: it came from the cache',
    );
  } finally {
    await againClient.destroy();
    await again.destroy();
  }
});
