// The client's end of an HTTP tunnel: the data connections of one tunnel carry HTTP/1.1
// requests from the relay (keep-alive: one after another), and each is sent on to the
// local service with Node's own HTTP machinery, its answer sent back. Seeing each request
// is what lets the client log it (`GET /api 200 14 ms`), set the Host header the local
// service expects, and tell the relay when the local service is down.
import http from 'node:http';
import net from 'node:net';
import createDebug from 'debug';
import { endToEnd, flushHeadSoon, headerLines, LOCAL_UNAVAILABLE_HEADER } from '../../shared/http-headers.ts';
import { joinSockets } from '../../shared/pipe.ts';
import { hostPort } from '../../shared/protocol.ts';
import { connectOptions } from '../../shared/socket-options.ts';
import type { CapturedExchange, OpenTunnel, RequestEvent } from '../types.ts';
import { Capture } from './capture.ts';

const debug = createDebug('burrow:client');

/** The Host header: the client sets the one the local service sees (hostFor()). */
const HOST = new Set(['host']);

export class LocalHttp {
  /** Parses what the relay sends; it is never listening: data connections are given to it. */
  private readonly parser: http.Server;
  /** Connections to the local service, kept alive between requests. */
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 128, timeout: 30_000 });

  constructor(
    private readonly tunnel: OpenTunnel,
    private readonly onRequest: (event: RequestEvent) => void,
    /** Body bytes to keep of each request and response for the request event (0: none). */
    private readonly captureLimit: () => number = () => 0,
  ) {
    // The relay decides how long a data connection stays (it closes idle ones): no
    // timeouts of our own here, but TCP keep-alive notices a relay that is gone.
    this.parser = http.createServer({ requestTimeout: 0, keepAliveTimeout: 0, headersTimeout: 0 });
    this.parser.on('request', (req, res) => this.forward(req, res));
    this.parser.on('checkContinue', (req, res) => this.forward(req, res));
    this.parser.on('upgrade', (req, socket: net.Socket, head: Buffer) => this.upgrade(req, socket, head));
    this.parser.on('clientError', (error, socket) => {
      debug('HTTP from the relay: %s', error.message);
      socket.destroy();
    });
  }

  /** Serves the requests of one data connection; resolves when it has closed. */
  serve(socket: net.Socket): Promise<void> {
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      this.parser.emit('connection', socket);
    });
  }

  /** Closes the kept-alive connections to the local service. */
  close(): void {
    this.agent.destroy();
  }

  /** The Host header the local service sees (see HttpTunnelOptions.hostHeader). */
  private hostFor(received: string | undefined): string | undefined {
    const mode = this.tunnel.http?.hostHeader ?? 'keep';
    if (mode === 'keep') return received;
    if (mode === 'rewrite') return hostPort(this.tunnel.localHost, this.tunnel.localPort);
    return mode;
  }

  /** The request's headers for the local service: end-to-end ones, with our Host. */
  private headersFor(req: http.IncomingMessage): string[] {
    const host = this.hostFor(req.headers.host);
    const headers = endToEnd(req.rawHeaders, HOST);
    if (host !== undefined) headers.unshift('Host', host);
    return headers;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    let bytesIn = 0;
    let bytesOut = 0;
    const limit = this.captureLimit();
    const capture = limit > 0 ? new Capture(req, limit) : undefined;
    req.on('data', (chunk: Buffer) => {
      bytesIn += chunk.length;
      capture?.requestData(chunk);
    });
    const { localHost: host, localPort: port } = this.tunnel;
    const options: http.RequestOptions & { servername: string } = {
      agent: this.agent,
      host,
      port,
      servername: '', // not TLS: spares the agent its per-request isIP() of `host`
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: this.headersFor(req),
      setHost: false,
    };
    const outgoing = http.request(options);
    let status = 502;
    outgoing.on('continue', () => res.writeContinue());
    outgoing.on('response', (upstream) => {
      status = upstream.statusCode ?? 502;
      res.writeHead(status, upstream.statusMessage, endToEnd(upstream.rawHeaders));
      flushHeadSoon(res, upstream);
      capture?.answered(upstream);
      upstream.on('data', (chunk: Buffer) => {
        bytesOut += chunk.length;
        capture?.responseData(chunk);
      });
      upstream.on('error', () => res.destroy());
      upstream.on('aborted', () => res.destroy());
      upstream.pipe(res);
    });
    outgoing.on('error', (error) => {
      debug('request to %s: %s', hostPort(host, port), error.message);
      if (res.headersSent) return void res.destroy();
      // The relay turns this into its own 502 page.
      res.writeHead(502, { [LOCAL_UNAVAILABLE_HEADER]: hostPort(host, port), 'content-length': '0' });
      res.end();
    });
    res.once('close', () => {
      const aborted = !res.writableFinished;
      if (aborted) outgoing.destroy();
      const durationMs = Math.round(performance.now() - started);
      this.onRequest(this.event(req, status, durationMs, bytesIn, bytesOut, aborted, capture?.result()));
    });
    req.pipe(outgoing);
  }

  /** An upgrade (a WebSocket): the request goes to the local service as it came, and from
   * its answer on the two connections are joined byte for byte. */
  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const started = performance.now();
    const { localHost: host, localPort: port } = this.tunnel;
    const local = net.connect(connectOptions(host, port));
    const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
    const hostHeader = this.hostFor(req.headers.host);
    if (hostHeader !== undefined) lines.push(`Host: ${hostHeader}`);
    lines.push(...headerLines(endToEnd(req.rawHeaders, HOST)));
    lines.push('Connection: Upgrade', `Upgrade: ${req.headers.upgrade ?? ''}`);
    local.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) local.write(head);
    // The relay gave up on the upgrade before the local service answered the dial.
    socket.once('close', () => {
      if (local.connecting) local.destroy();
    });
    local.once('connect', () => {
      void joinSockets(local, socket).then((totals) => {
        const durationMs = Math.round(performance.now() - started);
        this.onRequest(this.event(req, 101, durationMs, totals.toA, totals.fromA, totals.aborted, undefined));
      });
    });
    local.once('error', (error) => {
      if (local.connecting || local.bytesRead === 0) {
        debug('upgrade to %s: %s', hostPort(host, port), error.message);
        socket.end(
          `HTTP/1.1 502 Bad Gateway\r\n${LOCAL_UNAVAILABLE_HEADER}: ${hostPort(host, port)}\r\nContent-Length: 0\r\n\r\n`,
        );
      }
    });
  }

  /** The request's event, one literal with every field: an object spread would give each
   * event a hidden class of its own (Node 20), and each listener's reads would miss. */
  private event(
    req: http.IncomingMessage,
    status: number,
    durationMs: number,
    bytesIn: number,
    bytesOut: number,
    aborted: boolean,
    exchange: CapturedExchange | undefined,
  ): RequestEvent {
    const forwarded = req.headers['x-forwarded-for'];
    const visitor = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded)?.split(',').pop()?.trim() || undefined;
    const { tunnel } = this;
    const method = req.method ?? '';
    const path = req.url ?? '';
    return { tunnel, method, path, status, durationMs, bytesIn, bytesOut, visitor, aborted, exchange };
  }
}
