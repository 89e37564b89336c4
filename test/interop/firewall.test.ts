// A client behind a firewall that lets only HTTPS out, through a real HTTP proxy: a
// `burrow server` with an HTTPS port (a test certificate for 127.0.0.1) and Debian's
// tinyproxy on loopback, with Basic auth and CONNECT allowed only to the relay's HTTPS
// port. A `burrow client --server wss://...` finds the proxy in HTTPS_PROXY and exposes a
// node:http server and a private sshd: curl and ssh/scp go through the tunnel byte-exact,
// and while it runs no socket reaches the relay's control, data or HTTPS port except
// tinyproxy's (read from /proc). Then the errors and the choice of proxy: a wrong proxy
// password, no credentials, CONNECT to a port the proxy forbids (each one line, exit 1),
// --proxy over HTTPS_PROXY, and NO_PROXY or --no-proxy to go direct.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { testCerts } from '../certs.ts';
import { CHILD_MS, FORWARDING, killAll, lines, runCli, startCli, untilJson, waitFor, type Cli } from '../child.ts';
import { assertSameBytes, pseudoRandomBytes, within } from '../helpers.ts';
import {
  freePort,
  LOOPBACK,
  requireProgram,
  scoped,
  spawnTool,
  startDaemon,
  tempDir,
  type Closable,
  type Daemon,
} from './harness.ts';
import { startSshd } from './sshd.ts';

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const PROXY_USER = 'user';
const PROXY_PASSWORD = 'secret';
const DOWNLOAD = pseudoRandomBytes(8 * MiB, 81);
const UPLOAD = pseudoRandomBytes(4 * MiB, 82);
const SCP_BYTES = pseudoRandomBytes(8 * MiB, 83);

// ---------------------------------------------------------------------------------------
// The relay, the proxy and clients

interface Relay extends Closable {
  cli: Cli;
  controlPort: number;
  dataPort: number;
  httpsPort: number;
}

/** `burrow server --json` on loopback: control, data and HTTPS ports all ephemeral, the
 * HTTPS port with the test server certificate (valid for 127.0.0.1). */
async function startRelay(dir: string): Promise<Relay> {
  const certs = await testCerts();
  const cert = path.join(dir, 'relay-cert.pem');
  const key = path.join(dir, 'relay-key.pem');
  await writeFile(cert, certs.server.cert);
  await writeFile(key, certs.server.key, { mode: 0o600 });
  const live = new Set<Cli>();
  const close = (): Promise<void> => killAll(live);
  try {
    const cli = startCli(
      [
        'server',
        ...['--bind', LOOPBACK, '--control-port', '0', '--data-port', '0'],
        ...['--https-port', '0', '--https-cert', cert, '--https-key', key, '--json'],
      ],
      {},
      live,
    );
    const listening = await untilJson(cli, (event) => event.event === 'listening', 'burrow server to listen');
    const { controlPort, dataPort } = listening as { controlPort: number; dataPort: number };
    const httpsPort = (listening.http as { httpsPort?: number } | undefined)?.httpsPort;
    assert.ok(typeof httpsPort === 'number' && httpsPort > 0, `an HTTPS port in ${JSON.stringify(listening)}`);
    return { cli, controlPort, dataPort, httpsPort, close };
  } catch (error) {
    await close();
    throw error;
  }
}

interface Proxy extends Daemon {
  port: number;
  /** http://user:secret@127.0.0.1:PORT, or with another password. */
  url(password?: string): string;
  /** How many CONNECTs to 127.0.0.1:`port` it has logged so far. */
  connects(port: number): number;
  /** Waits (bounded) until it has logged at least `count` CONNECTs to 127.0.0.1:`port`. */
  untilConnects(port: number, count: number, what: string): Promise<void>;
}

const connectLine = (port: number): string => `: CONNECT ${escape(`${LOOPBACK}:${port}`)} HTTP/1\\.1$`;

/** tinyproxy in the foreground on 127.0.0.1: Basic auth, CONNECT only to `allowedPort`. */
async function startProxy(tinyproxy: string, dir: string, allowedPort: number): Promise<Proxy> {
  const port = await freePort();
  const config = path.join(dir, 'tinyproxy.conf');
  await writeFile(
    config,
    [
      `Port ${port}`,
      `Listen ${LOOPBACK}`,
      `Allow ${LOOPBACK}`,
      `ConnectPort ${allowedPort}`,
      `BasicAuth ${PROXY_USER} ${PROXY_PASSWORD}`,
      'LogLevel Info', // Connect lines (each CONNECT request) and Info (each refusal)
      'MaxClients 64',
      'Timeout 120',
    ].join('\n') + '\n',
  );
  const daemon = await startDaemon(tinyproxy, ['-d', '-c', config], port);
  const connects = (to: number): number => daemon.output().match(new RegExp(connectLine(to), 'gm'))?.length ?? 0;
  return Object.assign(daemon, {
    port,
    url: (password = PROXY_PASSWORD) => `http://${PROXY_USER}:${password}@${LOOPBACK}:${port}`,
    connects,
    untilConnects: async (to: number, count: number, what: string) => {
      await daemon.waitForOutput(new RegExp(`(?:[\\s\\S]*?${connectLine(to)}){${count}}`, 'm'), what);
    },
  });
}

/** The environment of a client: no proxy variable from our own environment, only `vars`. */
function proxyEnv(vars: Record<string, string> = {}): Record<string, string> {
  const cleared: Record<string, string> = {};
  for (const name of ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy']) {
    cleared[name] = '';
    cleared[name.toUpperCase()] = '';
  }
  for (const name of Object.keys(process.env)) if (/^npm_config_.*proxy$/i.test(name)) cleared[name] = '';
  return { ...cleared, ...vars };
}

interface Client extends Closable {
  cli: Cli;
  /** The public port of each local port. */
  publicPorts: Map<number, number>;
}

/** The arguments of a client reaching `server` (a wss:// URL) for `localPorts`, trusting
 * the test CA, plus `extra`. */
function clientArgs(dir: string, server: string, localPorts: number[], extra: string[] = []): string[] {
  return [
    'client',
    ...localPorts.map(String),
    ...['--server', server, '--tls-ca', path.join(dir, 'ca.pem')],
    ...['--local-host', LOOPBACK, '--no-state-file', '--quiet', ...extra],
  ];
}

/** `burrow client` (`args` from clientArgs(), for `localPorts`) as a child, with
 * proxyEnv(`vars`); resolves once it prints a Forwarding line for each local port. */
async function startClient(args: string[], localPorts: number[], vars: Record<string, string>): Promise<Client> {
  const live = new Set<Cli>();
  const close = (): Promise<void> => killAll(live);
  try {
    const cli = startCli(args, proxyEnv(vars), live);
    const publicPorts = await waitFor(
      cli,
      'stdout',
      (text) => {
        const found = new Map<number, number>();
        for (const line of lines(text)) {
          const hit = FORWARDING.exec(line);
          if (hit) found.set(Number(hit[2]), Number(hit[1]));
        }
        return localPorts.every((port) => found.has(port)) ? found : undefined;
      },
      `burrow client to forward ${localPorts.join(' and ')}`,
    );
    return { cli, publicPorts, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The public port of `localPort` on `client`. */
function publicPort(client: Client, localPort: number): number {
  return client.publicPorts.get(localPort) ?? assert.fail(`no tunnel for ${localPort}: ${client.cli.stdout}`);
}

// ---------------------------------------------------------------------------------------
// The services behind the tunnel

/** A node:http server on 127.0.0.1:0: GET /download is DOWNLOAD, POST /upload answers the
 * length and sha256 of the body, anything else a line of text. */
async function startHttp(): Promise<Closable & { port: number }> {
  const server = http.createServer((request, response) => {
    if (request.url === '/download') {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': DOWNLOAD.length });
      response.end(DOWNLOAD);
    } else if (request.url === '/upload' && request.method === 'POST') {
      const hash = createHash('sha256');
      let length = 0;
      request.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
      });
      request.on('end', () => response.end(`${length} ${hash.digest('hex')}\n`));
    } else {
      response.end(`hello from ${request.url ?? ''}\n`);
    }
  });
  server.keepAliveTimeout = 60_000; // a kept-alive visit stays open while the test looks at /proc
  server.listen(0, LOOPBACK);
  await within(once(server, 'listening'), 5_000, 'the HTTP server');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------
// Who is connected to whom, from /proc (Linux)

interface TcpSocket {
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
  established: boolean;
  inode: string;
}

/** An address of /proc/net/tcp{,6}: IPv4 (and IPv4-mapped IPv6) as dotted quads. */
function endpoint(hex: string): { address: string; port: number } {
  const [ip = '', port = '0'] = hex.split(':');
  const v4 = ip.length === 8 ? ip : ip.startsWith('0000000000000000FFFF0000') ? ip.slice(-8) : undefined;
  const address =
    v4 === undefined
      ? ip
      : (v4.match(/../g) ?? [])
          .map((byte) => parseInt(byte, 16))
          .reverse()
          .join('.');
  return { address, port: parseInt(port, 16) };
}

/** Every TCP socket of this network namespace. */
async function tcpSockets(): Promise<TcpSocket[]> {
  const sockets: TcpSocket[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const row of text.split('\n').slice(1)) {
      const fields = row.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const local = endpoint(fields[1] ?? '');
      const remote = endpoint(fields[2] ?? '');
      sockets.push({
        local: local.address,
        localPort: local.port,
        remote: remote.address,
        remotePort: remote.port,
        established: fields[3] === '01',
        inode: fields[9] ?? '',
      });
    }
  }
  return sockets;
}

/** The inodes of the sockets that process `pid` and its descendants hold open (a proxy
 * may serve connections in child processes). */
async function socketsOf(pid: number | undefined, inodes = new Set<string>()): Promise<Set<string>> {
  assert.ok(pid !== undefined, 'a process id');
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''); // closed meanwhile
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined) inodes.add(inode);
  }
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    const children = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const child of children.split(' ').filter(Boolean)) await socketsOf(Number(child), inodes);
  }
  return inodes;
}

// ---------------------------------------------------------------------------------------

test('firewall: a wss:// client through tinyproxy (CONNECT to the HTTPS port only); proxy errors and choices', async (t) => {
  const tinyproxy = requireProgram('tinyproxy', 'tinyproxy');
  const curl = requireProgram('curl', 'curl');
  const ssh = requireProgram('ssh', 'openssh-client');
  const scp = requireProgram('scp', 'openssh-client');

  await scoped(async (use) => {
    const dir = use(await tempDir()).path;
    const file = (name: string): string => path.join(dir, name);
    await writeFile(file('ca.pem'), (await testCerts()).ca.cert);
    const relay = use(await startRelay(dir));
    const proxy = use(await startProxy(tinyproxy, dir, relay.httpsPort));
    const server = `wss://${LOOPBACK}:${relay.httpsPort}`;
    const curlArgs = ['--silent', '--show-error', '--fail', '--noproxy', '*', '--max-time', '60'];
    const service = use(await startHttp());
    const sshd = use(await startSshd(dir));
    /** A port nothing listens on: a proxy there refuses every connection. */
    const closedPort = await freePort();
    const deadProxy = `http://${PROXY_USER}:${PROXY_PASSWORD}@${LOOPBACK}:${closedPort}`;

    await t.test(
      'through the proxy: curl and ssh/scp through the tunnel, byte-exact, and no direct connection',
      async () => {
        const client = use(
          await startClient(clientArgs(dir, server, [service.port, sshd.port]), [service.port, sshd.port], {
            HTTPS_PROXY: proxy.url(),
          }),
        );
        const httpPort = publicPort(client, service.port);
        const sshPort = publicPort(client, sshd.port);
        await proxy.untilConnects(relay.httpsPort, 1, 'tinyproxy to log the CONNECT of the control connection');
        assert.doesNotMatch(proxy.output(), /Refused CONNECT/, 'the client asked the proxy for the HTTPS port only');

        // curl: 8 MB down, 4 MB up, byte-exact; each visitor is a data connection through the proxy.
        let connects = proxy.connects(relay.httpsPort);
        const download = ['--output', file('download.bin'), `http://${LOOPBACK}:${httpPort}/download`];
        await spawnTool(curl, [...curlArgs, ...download], { timeoutMs: 90_000 });
        const downloaded = await readFile(file('download.bin'));
        assert.equal(sha256(downloaded), sha256(DOWNLOAD), 'the download (sha256)');
        await proxy.untilConnects(relay.httpsPort, connects + 1, 'a CONNECT for the visitor’s data connection');
        await writeFile(file('upload.bin'), UPLOAD);
        const upload = await spawnTool(
          curl,
          [...curlArgs, '--data-binary', `@${file('upload.bin')}`, `http://${LOOPBACK}:${httpPort}/upload`],
          { timeoutMs: 90_000 },
        );
        assert.equal(
          upload.stdout.toString(),
          `${UPLOAD.length} ${sha256(UPLOAD)}\n`,
          'the upload, as the service got it',
        );

        // While a visitor's connection is open, the only sockets that reach the relay's ports
        // are tinyproxy's: none at all to the control and data ports, and none from the client.
        connects = proxy.connects(relay.httpsPort);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const body = await within(
            new Promise<string>((resolve, reject) => {
              http
                .get({ host: LOOPBACK, port: httpPort, path: '/kept', agent }, (response) => {
                  let text = '';
                  response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
                  response.on('end', () => resolve(text)).on('error', reject);
                })
                .on('error', reject);
            }),
            10_000,
            'a kept-alive visit',
          );
          assert.equal(body, 'hello from /kept\n');
          await proxy.untilConnects(relay.httpsPort, connects + 1, 'a CONNECT for the kept-alive visit');
          const [sockets, proxySockets, clientSockets] = await Promise.all([
            tcpSockets(),
            socketsOf(proxy.child.pid),
            socketsOf(client.cli.child.pid),
          ]);
          const toRelay = sockets.filter(
            (s) =>
              s.established &&
              s.remote === LOOPBACK &&
              [relay.controlPort, relay.dataPort, relay.httpsPort].includes(s.remotePort),
          );
          const describe = (s: TcpSocket): string =>
            `${s.local}:${s.localPort} -> ${s.remote}:${s.remotePort}${proxySockets.has(s.inode) ? ' (tinyproxy)' : ''}${clientSockets.has(s.inode) ? ' (client)' : ''}`;
          const all = toRelay.map(describe).join(', ');
          assert.deepEqual(
            toRelay.filter((s) => s.remotePort !== relay.httpsPort).map(describe),
            [],
            'connections to the relay’s control or data port',
          );
          assert.deepEqual(
            toRelay.filter((s) => !proxySockets.has(s.inode)).map(describe),
            [],
            `connections to the HTTPS port not from tinyproxy (all: ${all})`,
          );
          assert.ok(toRelay.length >= 2, `tinyproxy carries the control and a data connection (all: ${all})`);
          const fromClient = sockets.filter((s) => s.established && clientSockets.has(s.inode));
          assert.ok(
            fromClient.filter((s) => s.remote === LOOPBACK && s.remotePort === proxy.port).length >= 2,
            `the client's control and data connections go to the proxy: ${fromClient.map(describe).join(', ')}`,
          );
        } finally {
          agent.destroy();
        }

        // ssh: a command, then 8 MB there and back with scp.
        const target = `${sshd.user}@${LOOPBACK}`;
        const run = await spawnTool(
          ssh,
          [
            ...['-p', String(sshPort), ...sshd.options, target],
            "printf 'burrow-ssh-ok %s\\n' \"$(id -un)\"; printf 'second line\\n'",
          ],
          { timeoutMs: 30_000 },
        ).catch((error: Error) => assert.fail(`${error.message}\nsshd: ${sshd.output()}`));
        assert.equal(run.stdout.toString(), `burrow-ssh-ok ${sshd.user}\nsecond line\n`);
        await writeFile(file('original.bin'), SCP_BYTES);
        const scpArgs = ['-q', '-P', String(sshPort), ...sshd.options];
        await spawnTool(scp, [...scpArgs, file('original.bin'), `${target}:${file('remote.bin')}`], {
          timeoutMs: 60_000,
        });
        await spawnTool(scp, [...scpArgs, `${target}:${file('remote.bin')}`, file('back.bin')], { timeoutMs: 60_000 });
        assert.equal(sha256(await readFile(file('remote.bin'))), sha256(SCP_BYTES), 'the uploaded copy (sha256)');
        const back = await readFile(file('back.bin'));
        assert.equal(sha256(back), sha256(SCP_BYTES), 'the downloaded copy (sha256)');
        assertSameBytes(back, SCP_BYTES, 'the scp round trip');
        assert.doesNotMatch(proxy.output(), /Refused CONNECT/);
        await client.close();
      },
    );

    await t.test(
      'a wrong proxy password: exit 1, one line naming the proxy (password hidden) and the credentials',
      async () => {
        const before = proxy.connects(relay.httpsPort);
        const wrong = await runCli(
          clientArgs(dir, server, [service.port]),
          proxyEnv({ HTTPS_PROXY: proxy.url('wrong') }),
        );
        assert.deepEqual(
          { code: wrong.code, stdout: wrong.stdout, stderr: lines(wrong.stderr) },
          {
            code: 1,
            stdout: '',
            stderr: [
              `burrow: cannot connect to ${server}/_burrow/control via the proxy http://${PROXY_USER}:***@${LOOPBACK}:${proxy.port}: the proxy did not accept our credentials (HTTP 401 Unauthorized): check the user and password in the proxy URL`,
            ],
          },
        );
        await proxy.untilConnects(relay.httpsPort, before + 1, 'tinyproxy to log the CONNECT it refused');

        // No credentials at all: tinyproxy answers 407.
        const none = await runCli(
          clientArgs(dir, server, [service.port]),
          proxyEnv({ HTTPS_PROXY: `http://${LOOPBACK}:${proxy.port}` }),
        );
        assert.deepEqual(
          { code: none.code, stdout: none.stdout, stderr: lines(none.stderr) },
          {
            code: 1,
            stdout: '',
            stderr: [
              `burrow: cannot connect to ${server}/_burrow/control via the proxy http://${LOOPBACK}:${proxy.port}: the proxy wants a user name and password (HTTP 407 Proxy Authentication Required): put them in the proxy URL, http://user:password@host:port`,
            ],
          },
        );
      },
    );

    await t.test('--proxy overrides HTTPS_PROXY; NO_PROXY and --no-proxy go direct', async () => {
      const dead = { HTTPS_PROXY: deadProxy };
      // The control: HTTPS_PROXY alone, at a closed port, is honoured (and fails).
      const honoured = await runCli(clientArgs(dir, server, [service.port]), proxyEnv(dead));
      assert.equal(honoured.code, 1, honoured.stderr);
      const stderr = lines(honoured.stderr);
      assert.equal(stderr.length, 1, honoured.stderr);
      assert.ok(
        stderr[0]?.startsWith(
          `burrow: cannot connect to ${server}/_burrow/control via the proxy http://${PROXY_USER}:***@${LOOPBACK}:${closedPort}: `,
        ),
        honoured.stderr,
      );
      assert.ok(!honoured.stderr.includes(PROXY_PASSWORD), 'the password is not shown');

      const visit = async (client: Client, what: string): Promise<void> => {
        const port = publicPort(client, service.port);
        const answer = await spawnTool(curl, [...curlArgs, `http://${LOOPBACK}:${port}/${what}`], {
          timeoutMs: 30_000,
        });
        assert.equal(answer.stdout.toString(), `hello from /${what}\n`);
      };

      const before = proxy.connects(relay.httpsPort);
      const overridden = use(
        await startClient(clientArgs(dir, server, [service.port], ['--proxy', proxy.url()]), [service.port], dead),
      );
      await visit(overridden, 'overridden');
      await proxy.untilConnects(relay.httpsPort, before + 2, 'CONNECTs for the control and the data connection');
      await overridden.close();

      const noProxy = use(
        await startClient(clientArgs(dir, server, [service.port]), [service.port], { ...dead, NO_PROXY: LOOPBACK }),
      );
      await visit(noProxy, 'no-proxy-env');
      await noProxy.close();

      const flag = use(
        await startClient(clientArgs(dir, server, [service.port], ['--no-proxy']), [service.port], dead),
      );
      await visit(flag, 'no-proxy-flag');
      await flag.close();
    });

    await t.test(
      'the proxy forbids CONNECT to other ports: the control port through it fails with HTTP 403',
      async () => {
        const forbidden = `wss://${LOOPBACK}:${relay.controlPort}`;
        const refused = await runCli(
          clientArgs(dir, forbidden, [service.port]),
          proxyEnv({ HTTPS_PROXY: proxy.url() }),
        );
        assert.equal(refused.code, 1, refused.stderr);
        assert.equal(refused.stdout, '');
        const stderr = lines(refused.stderr);
        assert.equal(stderr.length, 1, refused.stderr);
        assert.match(
          stderr[0] ?? '',
          new RegExp(
            `^burrow: cannot connect to ${escape(forbidden)}/_burrow/control via the proxy ${escape(`http://${PROXY_USER}:***@${LOOPBACK}:${proxy.port}`)}: the proxy or the relay refused \\(HTTP 403 [^)]*\\); the proxy may not allow CONNECT to ${escape(`${LOOPBACK}:${relay.controlPort}`)}$`,
          ),
        );
        await proxy.waitForOutput(
          new RegExp(`Refused CONNECT method on port ${relay.controlPort}$`, 'm'),
          'tinyproxy to refuse the CONNECT',
          CHILD_MS,
        );
      },
    );

    // The relay stayed up through all of it.
    assert.equal(relay.cli.child.exitCode, null, relay.cli.stderr);
  });
});
