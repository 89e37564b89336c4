// PROXY protocol consumers behind burrow: with `burrow client --proxy-protocol v1|v2`, the
// client writes a HAProxy PROXY header before the visitor's bytes, and nginx
// (`listen ... proxy_protocol`) and haproxy (`bind ... accept-proxy`) must see the
// visitor's own address and port: in the response they send back and in their log line.
// Visitors come from 127.0.0.1 and, through a dual-stack server (no --bind), from ::1.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { readAll, within } from '../helpers.ts';
import {
  freePort,
  LOOPBACK,
  requireProgram,
  scoped,
  startDaemon,
  startTunnel,
  tempDir,
  type Closable,
  type Daemon,
} from './harness.ts';

/** Where both services log: a UDP syslog receiver on 127.0.0.1 whose lines the test awaits
 * (event-driven). Not stdout: nginx cannot open /dev/stdout when it is a socket, as node
 * makes a child's stdout. */
interface LogSink extends Closable {
  port: number;
  waitFor(pattern: RegExp, what: string): Promise<void>;
}

async function logSink(): Promise<LogSink> {
  const socket = dgram.createSocket('udp4');
  let text = '';
  socket.on('message', (message: Buffer) => (text += `${message.toString().trimEnd()}\n`));
  socket.bind(0, LOOPBACK);
  await within(once(socket, 'listening'), 5_000, 'the syslog receiver');
  return {
    port: socket.address().port,
    close: () => Promise.resolve(void socket.close()),
    waitFor: (pattern, what) => {
      const found = new Promise<void>((resolve) => {
        const check = (): void => {
          if (!pattern.test(text)) return;
          socket.off('message', check);
          resolve();
        };
        socket.on('message', check);
        check();
      });
      return within(found, 10_000, `${what}; logged so far: ${text}`);
    },
  };
}

/** Each service answers `<visitor address>:<visitor port>\n` and logs `visitor=<same>`. */
type Service = (dir: string, port: number, logPort: number) => Promise<Daemon>;

async function nginx(dir: string, port: number, logPort: number): Promise<Daemon> {
  const program = requireProgram('/usr/sbin/nginx', 'nginx-light');
  const at = (name: string): string => path.join(dir, name);
  // master_process off: one process, no workers to change user (so no `user` directive
  // even as root) and none left behind when it is killed. Every path is in `dir`; the
  // access log goes to our syslog receiver.
  const config = `
master_process off;
pid ${at('nginx.pid')};
error_log stderr notice;
events { worker_connections 64; }
http {
  client_body_temp_path ${at('client_body')};
  proxy_temp_path ${at('proxy')};
  fastcgi_temp_path ${at('fastcgi')};
  uwsgi_temp_path ${at('uwsgi')};
  scgi_temp_path ${at('scgi')};
  log_format visitor 'visitor=$proxy_protocol_addr:$proxy_protocol_port peer=$remote_addr';
  access_log syslog:server=${LOOPBACK}:${logPort},nohostname visitor;
  server {
    listen ${LOOPBACK}:${port} proxy_protocol;
    location / { default_type text/plain; return 200 "$proxy_protocol_addr:$proxy_protocol_port\\n"; }
  }
}
`;
  await writeFile(at('nginx.conf'), config);
  // -e stderr: the error log before the config is read (else /var/log/nginx/error.log).
  return startDaemon(program, ['-e', 'stderr', '-p', dir, '-c', at('nginx.conf'), '-g', 'daemon off;'], port);
}

async function haproxy(dir: string, port: number, logPort: number): Promise<Daemon> {
  const program = requireProgram('/usr/sbin/haproxy', 'haproxy');
  const config = `
global
  log ${LOOPBACK}:${logPort} format raw local0
defaults
  mode http
  log global
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend visitors
  bind ${LOOPBACK}:${port} accept-proxy
  log-format "visitor=%ci:%cp"
  http-request return status 200 content-type text/plain lf-string "%[src]:%[src_port]\\n"
`;
  await writeFile(path.join(dir, 'haproxy.cfg'), config);
  return startDaemon(program, ['-db', '-f', path.join(dir, 'haproxy.cfg')], port);
}

/** An HTTP GET from `host` to `port`; returns the visitor's own port and the response body. */
async function visit(host: string, port: number): Promise<{ ownPort: number; status: string; body: string }> {
  const socket = net.connect({ host, port, allowHalfOpen: true });
  try {
    socket.on('error', () => {});
    await within(once(socket, 'connect'), 5_000, `a visitor to connect to ${host} port ${port}`);
    const ownPort = socket.localPort ?? 0; // read now: a closed socket no longer knows it
    const response = readAll(socket);
    socket.write(`GET / HTTP/1.1\r\nHost: burrow.test\r\nConnection: close\r\n\r\n`);
    const text = (await within(response, 10_000, 'the HTTP response')).toString('latin1');
    const split = text.indexOf('\r\n\r\n');
    return { ownPort, status: text.slice(0, text.indexOf('\r\n')), body: split < 0 ? '' : text.slice(split + 4) };
  } finally {
    socket.destroy();
  }
}

const SERVICES: [string, Service][] = [
  ['nginx', nginx],
  ['haproxy', haproxy],
];
const CASES = [
  { version: 'v1', visitor: LOOPBACK },
  { version: 'v2', visitor: LOOPBACK },
  { version: 'v1', visitor: '::1' },
  { version: 'v2', visitor: '::1' },
] as const;

for (const [name, service] of SERVICES) {
  test(`proxy protocol: ${name} sees the visitor's address and port`, async (t) => {
    await scoped(async (use) => {
      const dir = use(await tempDir()).path;
      const port = await freePort();
      const log = use(await logSink());
      use(await service(dir, port, log.port));

      for (const { version, visitor } of CASES) {
        await t.test(`--proxy-protocol ${version}, a visitor from ${visitor}`, async () => {
          await scoped(async (useHere) => {
            // An IPv6 visitor needs the server's default dual-stack listeners (no --bind).
            const ipv6 = net.isIPv6(visitor);
            const tunnel = useHere(
              await startTunnel(port, { clientArgs: ['--proxy-protocol', version], ...(ipv6 ? { bind: false } : {}) }),
            );
            const { ownPort, status, body } = await visit(visitor, tunnel.publicPort);
            const expected = `${visitor}:${ownPort}`;
            assert.equal(status, 'HTTP/1.1 200 OK', `${name}'s status line`);
            assert.equal(body, `${expected}\n`, `the address ${name} answered`);
            const pattern = new RegExp(`visitor=${expected.replace(/[.:]/g, '\\$&')}(?: |$)`, 'm');
            await log.waitFor(pattern, `${name}'s log line for ${expected}`);
          });
        });
      }
    });
  });
}
