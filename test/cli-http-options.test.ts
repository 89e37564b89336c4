// HTTP tunnels on the command line, without processes: the server's HTTP flags and
// variables (cli/http-options.ts), which client ports are HTTP tunnels and how
// (cli/http-tunnels.ts, through resolveClientOptions), and what both commands print for
// them (cli/http-output.ts, cli/output.ts, cli/reporter.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { envName, type RawArgs } from '../cli/args.ts';
import { resolveClientOptions } from '../cli/client-options.ts';
import { loadHttps, resolveHttpServer } from '../cli/http-options.ts';
import {
  acmeLine,
  certificateLine,
  httpListeningLine,
  LETS_ENCRYPT,
  pageEntry,
  pageLine,
  requestEntry,
  requestLine,
} from '../cli/http-output.ts';
import { resolveServerOptions } from '../cli/options.ts';
import { clientLine, jsonLine, textLines, tunnelEvent } from '../cli/output.ts';
import { createReporter } from '../cli/reporter.ts';
import { UsageError } from '../cli/usage-error.ts';
import { DEFAULT_HTTP_LIMITS, type OpenTunnel, type RequestEvent } from '../index.ts';
import { testCerts } from './certs.ts';

/** Asserts `fn` throws (or rejects with) a one-line UsageError containing every one of `parts`. */
function isUsageError(...parts: string[]): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    for (const part of parts) assert.ok(error.message.includes(part), `${error.message} should mention ${part}`);
    assert.ok(!error.message.includes('\n'), 'a usage error is one line');
    return true;
  };
}
const assertUsageError = (fn: () => unknown, ...parts: string[]): void => assert.throws(fn, isUsageError(...parts));

/** What every HTTP plan carries unless a flag says otherwise: the library's defaults. */
const HTTP_DEFAULTS = {
  domain: 'localhost',
  reservedNames: DEFAULT_HTTP_LIMITS.reservedNames,
  maxHeaderBytes: 16 * 1024,
  headerTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerTunnel: 128,
  webSocket: true,
  webSocketPingMs: 25_000,
};

describe('burrow server: the HTTP flags', () => {
  test('without --http-port or --https-port there are no HTTP tunnels, and the server options are what they were', () => {
    assert.equal(resolveHttpServer({}, {}), undefined);
    assert.deepEqual(resolveServerOptions({ 'http-port': '8080' }, {}), resolveServerOptions({}, {}));
  });

  test('--http-port alone: the defaults, from the library; 0 is any free port', () => {
    assert.deepEqual(resolveHttpServer({ 'http-port': '8080' }, {}), { options: { httpPort: 8080, ...HTTP_DEFAULTS } });
    assert.deepEqual(resolveHttpServer({ 'http-port': '0' }, {})?.options.httpPort, 0);
  });

  test('each flag, and each BURROW_* variable; a flag wins over its variable', () => {
    const args: RawArgs = {
      'http-port': '8080',
      domain: '*.Relay.Example.com.',
      'reserved-names': 'www, Admin,www',
      'max-header-size': '32768',
      'header-timeout': '2.5',
      'keepalive-timeout': '1',
      'max-requests-per-tunnel': '4',
      websocket: false,
      'websocket-ping': '5',
    };
    const expected = {
      httpPort: 8080,
      domain: 'relay.example.com',
      reservedNames: ['www', 'admin'],
      maxHeaderBytes: 32768,
      headerTimeoutMs: 2500,
      keepAliveTimeoutMs: 1000,
      maxRequestsPerTunnel: 4,
      webSocket: false,
      webSocketPingMs: 5000,
    };
    assert.deepEqual(resolveHttpServer(args, {}), { options: expected });
    const env = {
      BURROW_HTTP_PORT: '8080',
      BURROW_DOMAIN: 'relay.example.com',
      BURROW_RESERVED_NAMES: 'www,admin',
      BURROW_MAX_HEADER_SIZE: '32768',
      BURROW_HEADER_TIMEOUT: '2.5',
      BURROW_KEEPALIVE_TIMEOUT: '1',
      BURROW_MAX_REQUESTS_PER_TUNNEL: '4',
      BURROW_WEBSOCKET: 'off',
      BURROW_WEBSOCKET_PING: '5',
    };
    assert.deepEqual(resolveHttpServer({}, env), { options: expected });
    const flags = { 'http-port': '9090', domain: 'other.test' };
    assert.deepEqual(resolveHttpServer(flags, env)?.options, { ...expected, httpPort: 9090, domain: 'other.test' });
  });

  test('--reserved-names "" reserves none', () => {
    assert.deepEqual(resolveHttpServer({ 'http-port': '80', 'reserved-names': '' }, {})?.options.reservedNames, []);
  });

  test('--https-port with --https-cert and --https-key: the files are still to be read', () => {
    const plan = resolveHttpServer({ 'https-port': '8443', 'https-cert': 'c.pem', 'https-key': 'k.pem' }, {});
    assert.deepEqual(plan, {
      options: { httpsPort: 8443, ...HTTP_DEFAULTS },
      https: { cert: { text: 'c.pem', source: '--https-cert' }, key: { text: 'k.pem', source: '--https-key' } },
    });
    const env = { BURROW_HTTPS_PORT: '0', BURROW_HTTPS_CERT: 'c.pem', BURROW_HTTPS_KEY: 'k.pem' };
    assert.deepEqual(resolveHttpServer({ 'http-port': '0' }, env)?.options, {
      httpPort: 0,
      httpsPort: 0,
      ...HTTP_DEFAULTS,
    });
  });

  test('usage errors: HTTPS without its certificate, a certificate without HTTPS, HTTP settings without a port', () => {
    assertUsageError(
      () => resolveHttpServer({ 'https-port': '8443' }, {}),
      '--https-port',
      '--https-cert',
      '--https-key',
    );
    assertUsageError(
      () => resolveHttpServer({ 'https-port': '8443', 'https-cert': 'c.pem' }, {}),
      '--https-cert and --https-key go together',
    );
    assertUsageError(
      () => resolveHttpServer({ 'http-port': '80', 'https-cert': 'c.pem', 'https-key': 'k.pem' }, {}),
      '--https-cert',
      'give --https-port N too',
    );
    for (const [flag, value] of [
      ['domain', 'relay.example.com'],
      ['max-header-size', '100'],
      ['https-key', 'k.pem'],
    ] as const) {
      assertUsageError(() => resolveHttpServer({ [flag]: value }, {}), `--${flag} is for HTTP tunnels`, '--http-port');
    }
    assertUsageError(() => resolveHttpServer({}, { BURROW_DOMAIN: 'x.test' }), 'BURROW_DOMAIN is for HTTP tunnels');
    assertUsageError(
      () => resolveHttpServer({ 'http-port': '8080', 'https-port': '8080', 'https-cert': 'c', 'https-key': 'k' }, {}),
      'both 8080',
    );
  });

  test('usage errors: bad ports, domains, names, sizes and timeouts name their source and quote the value', () => {
    const cases: Array<[RawArgs, string[]]> = [
      [{ 'http-port': 'eighty' }, ['--http-port', '"eighty"']],
      [{ 'http-port': '70000' }, ['--http-port', '"70000"']],
      [{ 'http-port': '80', domain: 'relay_.example.com' }, ['--domain', '"relay_.example.com"']],
      [{ 'http-port': '80', domain: 'a..b' }, ['--domain', '"a..b"']],
      [{ 'http-port': '80', 'reserved-names': 'www,-bad' }, ['--reserved-names', '"-bad"']],
      [{ 'http-port': '80', 'max-header-size': '16k' }, ['--max-header-size', '"16k"']],
      [{ 'http-port': '80', 'header-timeout': '0' }, ['--header-timeout', '"0"']],
      [{ 'http-port': '80', 'keepalive-timeout': 'soon' }, ['--keepalive-timeout', '"soon"']],
      [{ 'http-port': '80', 'max-requests-per-tunnel': '0' }, ['--max-requests-per-tunnel', '"0"']],
    ];
    for (const [args, parts] of cases) assertUsageError(() => resolveHttpServer(args, {}), ...parts);
    assertUsageError(() => resolveHttpServer({}, { BURROW_HTTP_PORT: 'x' }), 'BURROW_HTTP_PORT', '"x"');
  });

  test('loadHttps reads the pair and checks it: a missing file, a file that is no certificate, a key of another certificate', async () => {
    const certs = await testCerts();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'burrow-cli-http-'));
    try {
      const file = async (name: string, text: string): Promise<string> => {
        await fs.writeFile(path.join(dir, name), text);
        return path.join(dir, name);
      };
      const [cert, key, otherKey, junk] = await Promise.all([
        file('cert.pem', certs.server.cert),
        file('key.pem', certs.server.key),
        file('other-key.pem', certs.selfSignedServer.key),
        file('junk.pem', 'not a certificate\n'),
      ]);
      const plan = (c: string, k: string) => ({
        cert: { text: c, source: '--https-cert' },
        key: { text: k, source: 'BURROW_HTTPS_KEY' },
      });
      assert.deepEqual(await loadHttps(plan(cert, key)), {
        httpsCert: Buffer.from(certs.server.cert),
        httpsKey: Buffer.from(certs.server.key),
      });
      assert.deepEqual(await loadHttps(undefined), {});
      const missing = path.join(dir, 'missing.pem');
      await assert.rejects(loadHttps(plan(missing, key)), isUsageError(`--https-cert: cannot read ${missing}`));
      await assert.rejects(loadHttps(plan(cert, missing)), isUsageError(`BURROW_HTTPS_KEY: cannot read ${missing}`));
      await assert.rejects(loadHttps(plan(junk, key)), isUsageError(`--https-cert: ${junk} is not a PEM certificate`));
      await assert.rejects(
        loadHttps(plan(cert, otherKey)),
        isUsageError(`BURROW_HTTPS_KEY: ${otherKey} is not the PEM private key of ${cert}`),
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

const client = (ports: string[], more: RawArgs = {}, env = {}) =>
  resolveClientOptions({ 'local-port': ports, ...more }, env).client.tunnels;

describe('burrow server: certificates from an ACME CA', () => {
  const home = { HOME: '/home/ann' };

  test("--https-port without --https-cert: Let's Encrypt by default, kept under the state directory", () => {
    const plan = resolveHttpServer({ 'http-port': '80', 'https-port': '443' }, home);
    assert.deepEqual(plan?.options.acme, { cacheDir: '/home/ann/.local/state/burrow/acme' });
    const xdg = resolveHttpServer({ 'http-port': '80', 'https-port': '443' }, { XDG_STATE_HOME: '/state', ...home });
    assert.deepEqual(xdg?.options.acme, { cacheDir: '/state/burrow/acme' });
  });

  test('--acme-directory, --acme-email, --acme-cache and --acme-ca, or their variables', () => {
    const args: RawArgs = {
      'http-port': '80',
      'https-port': '443',
      'acme-directory': 'https://127.0.0.1:14000/dir',
      'acme-email': 'ops@example.com',
      'acme-cache': '/var/lib/burrow/acme',
      'acme-ca': '/etc/pebble.pem',
    };
    const plan = resolveHttpServer(args, home);
    assert.deepEqual(plan?.options.acme, {
      cacheDir: '/var/lib/burrow/acme',
      directoryUrl: 'https://127.0.0.1:14000/dir',
      email: 'ops@example.com',
    });
    assert.equal(plan?.acmeCa?.text, '/etc/pebble.pem');
    const env = { ...home, BURROW_HTTP_PORT: '80', BURROW_HTTPS_PORT: '443', BURROW_ACME_EMAIL: 'a@b.c' };
    assert.equal(resolveHttpServer({}, env)?.options.acme?.email, 'a@b.c');
  });

  test('usage errors: ACME without an HTTP port (its challenge), ACME flags without ACME, a bad directory', () => {
    assert.throws(
      () => resolveHttpServer({ 'https-port': '443' }, home),
      /--https-port without --https-cert gets its certificates from an ACME CA, which checks a challenge on the HTTP port: give --http-port too/,
    );
    assert.throws(
      () => resolveHttpServer({ 'http-port': '80', 'acme-email': 'a@b.c' }, home),
      /--acme-email is for certificates from an ACME CA: --https-port N without --https-cert/,
    );
    assert.throws(
      () => resolveHttpServer({ 'http-port': '80', 'https-port': '443', 'acme-directory': 'letsencrypt' }, home),
      /--acme-directory: "letsencrypt" is not an ACME directory URL/,
    );
    assert.throws(() => resolveHttpServer({ 'http-port': '80', 'https-port': '443' }, {}), /give --acme-cache DIR/);
  });

  test('what it prints: where certificates come from, and each one issued, renewed or not', () => {
    const at = new Date(2026, 11, 2, 12, 0, 1);
    assert.equal(
      acmeLine({ directory: LETS_ENCRYPT, cache: '/var/lib/burrow/acme' }),
      'HTTPS certificates from https://acme-v02.api.letsencrypt.org/directory (ACME), kept in /var/lib/burrow/acme',
    );
    const issued = { event: 'certificate', name: 'demo.relay.example.com', outcome: 'issued' } as const;
    assert.equal(certificateLine(issued, at), '12:00:01 certificate for demo.relay.example.com: issued');
    const failed = { ...issued, outcome: 'failed', error: 'no answer from the ACME CA at https://x/dir' } as const;
    assert.equal(
      certificateLine(failed, at),
      '12:00:01 certificate for demo.relay.example.com: failed: no answer from the ACME CA at https://x/dir',
    );
  });
});

describe('burrow client: HTTP tunnels', () => {
  test('--http makes every bare port an HTTP tunnel; http:PORT and tcp:PORT are that kind either way', () => {
    assert.deepEqual(client(['3000']), [{ localPort: 3000, remotePort: 0 }], 'TCP, as before');
    assert.deepEqual(client(['3000', '3001'], { http: true }), [
      { localPort: 3000, http: true },
      { localPort: 3001, http: true },
    ]);
    assert.deepEqual(client(['3000'], {}, { BURROW_HTTP: '1' }), [{ localPort: 3000, http: true }]);
    assert.deepEqual(client(['http:3000', '5432', 'TCP:6379']), [
      { localPort: 3000, http: true },
      { localPort: 5432, remotePort: 0 },
      { localPort: 6379, remotePort: 0 },
    ]);
    assert.deepEqual(client(['3000', 'tcp:5432'], { http: true }), [
      { localPort: 3000, http: true },
      { localPort: 5432, remotePort: 0 },
    ]);
  });

  test('--name, --auth and --host-header go to every HTTP tunnel; the name in lower case', () => {
    assert.deepEqual(client(['http:3000', '5432'], { name: 'Demo', auth: 'ann:s3:cret', 'host-header': 'rewrite' }), [
      { localPort: 3000, http: { name: 'demo', auth: 'ann:s3:cret', hostHeader: 'rewrite' } },
      { localPort: 5432, remotePort: 0 },
    ]);
    const env = { BURROW_NAME: 'demo', BURROW_AUTH: 'ann:pw', BURROW_HOST_HEADER: 'myapp.test:8000' };
    assert.deepEqual(client(['3000'], { http: true }, env), [
      { localPort: 3000, http: { name: 'demo', auth: 'ann:pw', hostHeader: 'myapp.test:8000' } },
    ]);
    assert.deepEqual(client(['3000', '3001'], { http: true, 'host-header': 'keep' }), [
      { localPort: 3000, http: { hostHeader: 'keep' } },
      { localPort: 3001, http: { hostHeader: 'keep' } },
    ]);
  });

  test("--remote-port and --proxy-protocol are the TCP tunnels', in order", () => {
    const args = { 'remote-port': ['8080'], 'proxy-protocol': ['v1', 'v2'] };
    assert.deepEqual(client(['http:3000', '5432', '6379'], args), [
      { localPort: 3000, http: true },
      { localPort: 5432, remotePort: 8080, proxyProtocol: 'v1' },
      { localPort: 6379, remotePort: 0, proxyProtocol: 'v2' },
    ]);
    assert.deepEqual(client(['http:3000', '5432'], { 'proxy-protocol': ['v2'] }), [
      { localPort: 3000, http: true },
      { localPort: 5432, remotePort: 0, proxyProtocol: 'v2' },
    ]);
  });

  test('usage errors, each in one line naming its flag', () => {
    const cases: Array<[string[], RawArgs, string[]]> = [
      [['3000'], { name: 'demo' }, ['--name is for HTTP tunnels', 'add --http, or write the port as http:3000']],
      [['3000'], { auth: 'a:b' }, ['--auth is for HTTP tunnels']],
      [['3000'], { 'host-header': 'rewrite' }, ['--host-header is for HTTP tunnels']],
      [['3000', '3001'], { http: true, name: 'demo' }, ['--name names one HTTP tunnel, and this client has 2']],
      [['3000'], { http: true, name: 'my_app' }, ['--name: "my_app" is not a tunnel name']],
      [['3000'], { http: true, name: '-x' }, ['--name: "-x"']],
      [['3000'], { http: true, 'host-header': 'a b' }, ['--host-header: "a b" is not keep, rewrite or a host']],
      [['3000'], { http: true, 'host-header': 'x\r\nEvil: 1' }, ['--host-header']],
      [['https:3000'], {}, ['"https:3000": write http:3000']],
      [['ftp:3000'], {}, ['"ftp:3000" is not PORT, http:PORT or tcp:PORT']],
      [['http:x'], {}, ['local port: "x" is not a port number']],
      [['http:3000'], { 'remote-port': ['8080'] }, ['1 remote ports for 0 TCP port(s)', 'no public port of its own']],
      [['http:3000'], { 'proxy-protocol': ['v1'] }, ['--proxy-protocol is for TCP tunnels', 'X-Forwarded-For']],
      [
        ['http:3000', '1', '2'],
        { 'proxy-protocol': ['v1', 'v2', 'v1'] },
        ['3 --proxy-protocol values for 2 TCP port(s)'],
      ],
    ];
    for (const [ports, args, parts] of cases) assertUsageError(() => client(ports, args), ...parts);
  });

  test('--auth must be user:password, and its error never quotes it (it holds a password)', () => {
    for (const bad of ['secret', ':secret', 'ann:']) {
      assert.throws(
        () => client(['3000'], { http: true, auth: bad }),
        (error: unknown) =>
          isUsageError('--auth: give user:password')(error) && !(error as Error).message.includes(bad.replace(':', '')),
      );
    }
  });

  test('a client without HTTP tunnels ignores nothing and changes nothing: the same options as before', () => {
    assert.deepEqual(
      resolveClientOptions({ 'local-port': ['3000'], http: false }, {}),
      resolveClientOptions({ 'local-port': ['3000'] }, {}),
    );
  });
});

const tunnel: OpenTunnel = {
  localHost: 'localhost',
  localPort: 3000,
  publicPort: 8080,
  url: 'http://demo.localhost:8080',
  name: 'demo',
  http: {},
};
const request: RequestEvent = {
  tunnel,
  method: 'GET',
  path: '/api/items',
  status: 200,
  durationMs: 14,
  bytesIn: 0,
  bytesOut: 1229,
  visitor: '203.0.113.9',
  aborted: false,
};
const AT = new Date(2026, 0, 1, 12, 0, 1);

describe('what HTTP tunnels print', () => {
  test('the Forwarding line of an HTTP tunnel is the URL the relay gave; its JSON event has the name', () => {
    assert.deepEqual(textLines(tunnelEvent(tunnel), AT), [
      { stream: 'stdout', line: 'Forwarding http://demo.localhost:8080 -> localhost:3000' },
    ]);
    assert.deepEqual(JSON.parse(jsonLine(tunnelEvent(tunnel), AT)), {
      event: 'tunnel',
      time: AT.toISOString(),
      url: 'http://demo.localhost:8080',
      publicPort: 8080,
      local: 'localhost:3000',
      name: 'demo',
    });
  });

  test('the request log: time, method, path, status, duration, size sent; (aborted) when cut', () => {
    assert.equal(requestLine(requestEntry(request), AT), '12:00:01 GET /api/items 200 14 ms 1.2 KiB');
    assert.deepEqual(textLines(requestEntry(request), AT), [
      { stream: 'stdout', line: '12:00:01 GET /api/items 200 14 ms 1.2 KiB' },
    ]);
    const cut = {
      ...request,
      method: 'POST',
      path: '/upload',
      status: 502,
      durationMs: 1500,
      bytesOut: 0,
      aborted: true,
    };
    assert.equal(requestLine(requestEntry(cut), AT), '12:00:01 POST /upload 502 1.5 s 0 B (aborted)');
  });

  test('the request event as JSON: every field, the visitor null when unknown', () => {
    assert.deepEqual(JSON.parse(jsonLine(requestEntry(request), AT)), {
      event: 'request',
      time: AT.toISOString(),
      method: 'GET',
      path: '/api/items',
      status: 200,
      durationMs: 14,
      bytesIn: 0,
      bytesOut: 1229,
      visitor: '203.0.113.9',
      url: 'http://demo.localhost:8080',
      local: 'localhost:3000',
      aborted: false,
    });
    const { visitor: _visitor, ...anonymous } = request;
    assert.equal(requestEntry(anonymous).visitor, null);
  });

  test("a visitor's control characters are escaped, and a long path is cut", () => {
    const hostile = { ...request, path: `/\x1b[2J${'a'.repeat(500)}` };
    const line = requestLine(requestEntry(hostile), AT);
    assert.ok(!line.includes('\x1b'), line);
    assert.ok(line.startsWith('12:00:01 GET /\\x1b[2Jaaa'), line);
    assert.ok(line.length < 260, `${line.length} characters`);
  });

  test('a page line, as the server prints it; a request too malformed for a method says only its status', () => {
    const page = pageEntry({
      status: 404,
      method: 'GET',
      host: 'nobody.localhost',
      path: '/',
      visitor: '127.0.0.1:51234',
      text: 'no tunnel is open at nobody.localhost.',
    });
    assert.equal(
      pageLine(page, AT),
      '12:00:01 404 GET nobody.localhost/ from 127.0.0.1:51234: no tunnel is open at nobody.localhost.',
    );
    assert.deepEqual(textLines(page, AT), [{ stream: 'stdout', line: pageLine(page, AT) }]);
    const bad = { ...page, status: 400, method: '', host: '', path: '', text: 'the request is not valid HTTP/1.1.' };
    assert.equal(pageLine(bad, AT), '12:00:01 400 from 127.0.0.1:51234: the request is not valid HTTP/1.1.');
    assert.deepEqual(JSON.parse(jsonLine(page, AT)), { ...page, time: AT.toISOString() });
  });

  test("where the relay serves HTTP tunnels: one line after the listening line; the scheme's own port is left out", () => {
    assert.equal(httpListeningLine({ domain: 'localhost', httpPort: 8080 }), 'HTTP tunnels on http://*.localhost:8080');
    assert.equal(
      httpListeningLine({ domain: 'relay.example.com', httpPort: 80, httpsPort: 443 }),
      'HTTP tunnels on http://*.relay.example.com and https://*.relay.example.com',
    );
    assert.equal(httpListeningLine({ domain: 'x.test', httpsPort: 8443 }), 'HTTP tunnels on https://*.x.test:8443');
    const listening = {
      event: 'listening',
      controlPort: 7835,
      dataPort: 7836,
      bind: null,
      publicPorts: { min: 1024, max: 65535 },
      tls: false,
      secret: false,
    } as const;
    const lines = textLines({ ...listening, http: { domain: 'localhost', httpPort: 8080 } }, AT).map((l) => l.line);
    assert.deepEqual(lines.slice(1), ['HTTP tunnels on http://*.localhost:8080']);
    assert.equal(textLines(listening, AT).length, 1, 'no HTTP port, no line');
  });

  test("the server's log of its clients names an HTTP tunnel by its URL", () => {
    const opened = {
      kind: 'tunnel-opened',
      conn: 'control#3',
      address: '203.0.113.9',
      publicPort: 8080,
      localPort: 3000,
    } as const;
    assert.equal(
      clientLine({ ...opened, reclaimed: false, url: 'http://demo.localhost:8080' }),
      'client control#3 (203.0.113.9) opened http://demo.localhost:8080 (its port 3000)',
    );
    assert.equal(
      clientLine({ ...opened, reclaimed: true, url: 'http://demo.localhost:8080' }),
      'client control#3 (203.0.113.9) took http://demo.localhost:8080 back with its lease (its port 3000)',
    );
  });

  test('page lines are capped at 60 a minute, as the client lines are; the rest are counted', () => {
    const printed: string[] = [];
    let now = AT.getTime();
    const out = createReporter({
      json: false,
      colour: false,
      stdout: (text) => printed.push(text),
      stderr: (text) => printed.push(text),
      now: () => new Date(now),
    });
    const page = pageEntry({
      status: 404,
      method: 'GET',
      host: 'x.localhost',
      path: '/',
      visitor: '1.2.3.4:5',
      text: 'no.',
    });
    for (let i = 0; i < 100; i++) out.print(page);
    assert.equal(printed.filter((line) => line.includes(' 404 GET ')).length, 60);
    now += 60_000;
    out.print(page);
    assert.ok(
      printed.some((line) => line.includes('(40 similar lines not shown)')),
      printed.slice(-3).join(''),
    );
  });
});

test('the README documents every HTTP flag with its BURROW_* variable, and the request log', async () => {
  const readme = await fs.readFile(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const server = ['http-port', 'https-port', 'https-cert', 'https-key', 'domain', 'reserved-names'];
  const more = ['max-header-size', 'header-timeout', 'keepalive-timeout', 'max-requests-per-tunnel'];
  const acme = ['acme-directory', 'acme-email', 'acme-cache', 'acme-ca'];
  for (const flag of [...server, ...more, ...acme, 'http', 'name', 'auth', 'host-header']) {
    const named = new RegExp(`^\\| [^|]*\`--${flag}[\` ]`);
    const row = readme.split('\n').find((line) => named.test(line));
    assert.ok(row?.includes(`\`${envName(flag)}`), `README has a row for --${flag} with ${envName(flag)}`);
  }
  assert.ok(readme.includes('12:00:01 GET /api/items 200 14 ms 1.2 KiB'), 'the request log, as printed');
  assert.ok(readme.includes('HTTP tunnels on http://*.localhost:8080'), 'the startup line');
});
