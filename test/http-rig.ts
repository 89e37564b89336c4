// Fixtures for HTTP tunnels: a relay with an HTTP port, a client with HTTP tunnels, local
// HTTP services on 127.0.0.1:0, and a visitor's request by name (`NAME.localhost`), all on
// loopback with ephemeral ports.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { startClient, type BurrowClient, type ClientOptions, type TunnelRequest } from '../client/client.ts';
import { startServer, type BurrowServer, type ServerOptions } from '../server/server.ts';
import { HOST, within } from './helpers.ts';

/** A local HTTP service whose sockets close with it. */
export interface LocalService {
  port: number;
  server: http.Server;
  /** Connections it has accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function localService(handler: http.RequestListener): Promise<LocalService> {
  const server = http.createServer(handler);
  let connections = 0;
  server.on('connection', (socket: net.Socket) => {
    connections++;
    socket.on('error', () => {});
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    server,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** What the echo service saw of a request. */
export interface Echo {
  service: string;
  method: string;
  url: string;
  httpVersion: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  bodySha256: string;
  /** The number of the service's connection this request came on (1, 2, ...). */
  connection: number;
}

/** A service that answers every request with what it saw (JSON). `name` tells services apart. */
export function echoHandler(name: string): http.RequestListener {
  const numbers = new WeakMap<net.Socket, number>();
  let next = 0;
  return (req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      let connection = numbers.get(req.socket);
      if (connection === undefined) numbers.set(req.socket, (connection = ++next));
      const echo: Echo = {
        service: name,
        method: req.method ?? '',
        url: req.url ?? '',
        httpVersion: req.httpVersion,
        headers: req.headers,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
        connection,
      };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(echo));
    });
  };
}

export interface HttpRig {
  server: BurrowServer;
  client: BurrowClient;
  /** The relay's HTTP port. */
  port: number;
  close(): Promise<void>;
}

/** A relay with an HTTP port (`serverOptions` added) and a client with `tunnels`. */
export async function httpRig(
  tunnels: TunnelRequest[],
  serverOptions: ServerOptions = {},
  clientOptions: Partial<ClientOptions> = {},
): Promise<HttpRig> {
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, httpPort: 0, ...serverOptions });
  let client: BurrowClient;
  try {
    client = await startClient({ ...clientFor(server), tunnels, ...clientOptions });
  } catch (error) {
    await server.destroy();
    throw error;
  }
  return {
    server,
    client,
    port: server.httpPorts.http ?? 0,
    close: async () => {
      await client.destroy();
      await server.destroy();
    },
  };
}

/** The options that point a client at `server` on loopback. */
export const clientFor = (server: BurrowServer): Omit<ClientOptions, 'tunnels'> => ({
  server: HOST,
  controlPort: server.controlPort,
  dataPort: server.dataPort,
  localHost: HOST,
});

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The local port of the visitor's connection (the same for requests that reused it). */
  visitorPort: number;
}

/** One request to `host` (`NAME.localhost`) on the relay's HTTP `port`. */
export function visit(
  port: number,
  host: string,
  options: http.RequestOptions & { body?: string | Buffer } = {},
): Promise<Answer> {
  const { body, headers, ...rest } = options;
  return within(
    new Promise<Answer>((resolve, reject) => {
      const req = http.request({ host: HOST, port, path: '/', ...rest, headers: { host, ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            visitorPort: req.socket?.localPort ?? 0,
          }),
        );
      });
      req.on('error', reject);
      req.end(body);
    }),
    10_000,
    `an answer from ${host}`,
  );
}

/** The echo in an answer's body. */
export const echoOf = (answer: Answer): Echo => JSON.parse(answer.body.toString('utf8')) as Echo;
