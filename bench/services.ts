// The local services the benchmark talks to, directly and through the tunnel:
// - sink:   reads until the peer half-closes, then answers the byte count (8 bytes, BE).
// - source: reads an 8-byte BE length, sends that many bytes, then half-closes.
// - echo:   sends every byte back; half-close carried through.
// - http:   node:http answering every request with the same small body (for wrk).
// - proxy:  figure 7's reference, not burrow: the least a router of HTTP requests written
//           with Node's HTTP machinery does per request (see bareProxy()).
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { HOST, writeBytes } from './io.ts';

export interface Service {
  readonly port: number;
  close(): Promise<void>;
}

/** One chunk of the payload every sender repeats. Content is irrelevant to TCP and to
 * burrow (it never looks at visitor bytes), so it is not random. */
export const CHUNK = Buffer.alloc(256 * 1024, 0x5a);

/** The HTTP service's answer to every request. */
export const HTTP_BODY = Buffer.from('hello from the burrow bench\n');

export async function listenTcp(onSocket: (socket: net.Socket) => void): Promise<Service> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // the load generator reports failures, not the service
    onSocket(socket);
  });
  return listening(server, () => {
    for (const socket of sockets) socket.destroy();
  });
}

export async function listenHttp(): Promise<Service> {
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': HTTP_BODY.length });
    response.end(HTTP_BODY);
  });
  server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
  return listening(server, () => server.closeAllConnections());
}

/** One hop of HTTP routing at its cheapest in Node: each request is parsed by node:http
 * and sent on to `target` over a kept-alive connection (an http.Agent), its answer parsed
 * and sent back. The only header work is what any proxy must do to keep its connections:
 * `Connection` and `Keep-Alive` describe one hop and stay on it (a `Connection: close`
 * passed on would close the kept-alive connection behind it too). Anything that routes
 * each request by its Host header in Node does at least this once per hop; an HTTP tunnel
 * by name does it twice (relay and client), so figure 7 runs wrk through one and two of
 * these too: what one and two hops reach. */
export async function bareProxy(target: number): Promise<Service> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
  const server = http.createServer((request, response) => {
    const { method, url: path } = request;
    const headers = ownHopDropped(request.rawHeaders);
    const onward = http.request({ agent, host: HOST, port: target, method, path, headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, ownHopDropped(answer.rawHeaders));
      answer.pipe(response);
    });
    onward.on('error', () => response.destroy());
    request.pipe(onward);
  });
  server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
  return listening(server, () => {
    server.closeAllConnections();
    agent.destroy();
  });
}

/** A raw header list without `Connection` and `Keep-Alive`. */
function ownHopDropped(raw: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const lower = name.toLowerCase();
    if (lower !== 'connection' && lower !== 'keep-alive') kept.push(name, raw[i + 1] ?? '');
  }
  return kept;
}

async function listening(server: net.Server, destroyAll: () => void): Promise<Service> {
  server.listen(0, HOST);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    close: async () => {
      destroyAll();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function sink(socket: net.Socket): void {
  let count = 0;
  socket.on('data', (chunk: Buffer) => {
    count += chunk.length;
  });
  socket.once('end', () => {
    const reply = Buffer.alloc(8);
    reply.writeBigUInt64BE(BigInt(count));
    socket.end(reply);
  });
}

export function source(socket: net.Socket): void {
  let header = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    header = Buffer.concat([header, chunk]);
    if (header.length < 8) return;
    socket.off('data', onData);
    socket.resume(); // anything after the header is ignored
    const length = Number(header.readBigUInt64BE(0));
    writeBytes(socket, length, CHUNK).then(
      () => socket.end(),
      () => socket.destroy(),
    );
  };
  socket.on('data', onData);
  socket.on('end', () => {}); // allowHalfOpen: our side ends when we have sent everything
}

export function echo(socket: net.Socket): void {
  socket.pipe(socket);
}
