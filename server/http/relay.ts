// HTTP tunnels by name: the layer that plugs into the relay when it has an HTTP or HTTPS
// port. It owns the names (names.ts), the ingress servers (Node's own http/https), and the
// requests waiting for a dial-back (dial-backs.ts). The core reaches it through three
// hooks: a control session opens a tunnel (`open`), the data port hands over a data
// connection (`claim`), and REFUSE turns a dial-back away (`refuse`).
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type tls from 'node:tls';
import createDebug from 'debug';
import { withDefaults } from '../../shared/defaults.ts';
import { BurrowError, describe } from '../../shared/errors.ts';
import { portOf } from '../ports.ts';
import { formatAddress, hostPort, type HttpMessage, type RelayPort } from '../../shared/protocol.ts';
import type { ServerObserver } from '../observer.ts';
import type { PortRefusal } from '../public-ports.ts';
import type { TunnelSession } from '../tunnel.ts';
import { DialBacks } from './dial-backs.ts';
import { forwardRequest, forwardUpgrade } from './forward.ts';
import { HttpNames } from './names.ts';
import { rawPage, sendPage, type Page } from './pages.ts';
import { hostOf, nameIn, route } from './route.ts';
import { AcmeCertificates, type CertificateEvent } from './acme.ts';
import { HttpTunnel } from './tunnel.ts';
import { DEFAULT_HTTP_LIMITS, type HttpOptions, type HttpPageEvent } from './options.ts';
import { doorOf, type WebSocketDoor } from '../websocket-door.ts';

export type { AcmeOptions, CertificateEvent, HttpOptions, HttpPageEvent } from './options.ts';

const debug = createDebug('burrow:http');

/** What the HTTP layer uses of the server. */
export interface HttpRelayParts {
  readonly observer: ServerObserver;
  readonly leaseGraceMs: number;
  readonly maxTunnels: number;
  readonly maxTunnelsPerIp: number;
  readonly maxPending: number;
  readonly visitorTimeoutMs: number;
  readonly heartbeatTimeoutMs: number;
  /** Every visitor socket is the server's to close on shutdown. */
  track(socket: Socket): void;
  /** Clients over WebSocket, whose paths these ports serve too (on any host that is not
   * a tunnel's name). */
  readonly webSockets?: WebSocketDoor | undefined;
  /** A request answered by one of our pages. */
  onPage(event: HttpPageEvent): void;
  /** A certificate was issued or renewed, or could not be. */
  onCertificate(event: CertificateEvent): void;
}

export class HttpRelay {
  readonly names: HttpNames;
  private readonly dialBacks: DialBacks<HttpTunnel>;
  private readonly servers: { scheme: 'http' | 'https'; server: http.Server; port: number }[] = [];
  private readonly limits: typeof DEFAULT_HTTP_LIMITS;
  /** Certificates from an ACME CA, when the HTTPS port has no certificate of its own. */
  private certificates: AcmeCertificates | undefined;

  constructor(
    private readonly options: HttpOptions,
    private readonly parts: HttpRelayParts,
  ) {
    this.limits = withDefaults(DEFAULT_HTTP_LIMITS, options);
    this.names = new HttpNames({ ...parts, reserved: options.reservedNames ?? DEFAULT_HTTP_LIMITS.reservedNames });
    this.dialBacks = new DialBacks(parts.visitorTimeoutMs, parts.maxPending);
    const serverOptions: http.ServerOptions = {
      maxHeaderSize: this.limits.maxHeaderBytes,
      headersTimeout: this.limits.headerTimeoutMs,
      // How often Node looks for heads that are late (its default, 30 s, would make a
      // 10 s header timeout up to 40 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, this.limits.headerTimeoutMs / 4)),
      requestTimeout: 0, // large uploads take as long as they take; idle ones meet the socket timeout
      keepAliveTimeout: this.limits.keepAliveTimeoutMs,
    };
    if (options.httpPort !== undefined)
      this.servers.push({ scheme: 'http', server: http.createServer(serverOptions), port: options.httpPort });
    if (options.httpsPort !== undefined)
      this.servers.push({ scheme: 'https', server: this.httpsServer(serverOptions), port: options.httpsPort });
    for (const entry of this.servers) this.serve(entry.server, entry.scheme);
  }

  /** The HTTPS server: with the given certificate, or with ACME's, by the name asked for. */
  private httpsServer(serverOptions: http.ServerOptions): https.Server {
    const { httpsCert: cert, httpsKey: key, acme, httpPort } = this.options;
    if (cert && key) {
      try {
        return https.createServer({ ...serverOptions, cert, key });
      } catch (error) {
        throw new BurrowError('listen-failed', `the HTTPS certificate or key cannot be used: ${describe(error)}`, {
          cause: error,
        });
      }
    }
    if (!acme) throw new BurrowError('listen-failed', 'an HTTPS port needs `httpsCert` and `httpsKey`, or `acme`');
    if (httpPort === undefined) throw new BurrowError('listen-failed', 'ACME needs an HTTP port for its challenges');
    const isBound = (host: string): boolean => {
      // The relay's own name too, when clients may connect to it over WebSocket.
      if (host === this.domain && this.parts.webSockets) return true;
      const name = nameIn(host, this.domain);
      const state = name === undefined ? undefined : this.names.find(name);
      return state !== undefined && 'live' in state;
    };
    const certificates = new AcmeCertificates(acme, isBound, (event) => this.parts.onCertificate(event));
    this.certificates = certificates;
    const SNICallback = (servername: string, done: (error: Error | null, context?: tls.SecureContext) => void): void =>
      void certificates.contextFor(servername.toLowerCase()).then(
        (context) => (context ? done(null, context) : done(new Error(`no tunnel is named ${servername}`))),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      );
    return https.createServer({ ...serverOptions, SNICallback });
  }

  /** The domain tunnels are named under (`NAME.<domain>`). */
  get domain(): string {
    return this.options.domain ?? DEFAULT_HTTP_LIMITS.domain;
  }

  /** The port and scheme visitors use: HTTPS if the relay has it. */
  private get front(): { scheme: 'http' | 'https'; port: number } {
    const entry = this.servers.find((s) => s.scheme === 'https') ?? this.servers[0];
    if (!entry) throw new Error('an HTTP relay without a port');
    return { scheme: entry.scheme, port: entry.server.listening ? portOf(entry.server) : entry.port };
  }

  /** The address of `name` as visitors type it. */
  urlOf(name: string): string {
    const { scheme, port } = this.front;
    const standard = (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443);
    return `${scheme}://${name}.${this.domain}${standard ? '' : `:${port}`}`;
  }

  async listen(host: string | undefined): Promise<void> {
    for (const entry of this.servers) {
      try {
        await new Promise<void>((resolve, reject) => {
          entry.server.once('error', reject);
          entry.server.listen({ port: entry.port, host }, () => {
            entry.server.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        await this.close();
        const where = host === undefined ? `port ${entry.port}` : hostPort(host, entry.port);
        throw new BurrowError('listen-failed', `cannot listen on ${entry.scheme} ${where}: ${describe(error)}`, {
          cause: error,
        });
      }
      entry.server.on('error', (error) => debug('%s port: %s', entry.scheme, error.message));
      debug('%s port %d for *.%s', entry.scheme, portOf(entry.server), this.domain);
    }
  }

  /** The ports listened on, by scheme (useful with port 0). */
  get ports(): { http?: number; https?: number } {
    const ports: { http?: number; https?: number } = {};
    for (const entry of this.servers) if (entry.server.listening) ports[entry.scheme] = portOf(entry.server);
    return ports;
  }

  /** Opens an HTTP tunnel for an `HTTP` line of `session`; resolves with the tunnel and
   * the OK line's fields, or the refusal. */
  async open(
    session: TunnelSession,
    message: HttpMessage,
  ): Promise<{ tunnel: HttpTunnel; reclaimed: boolean } | PortRefusal> {
    if (!session.extensions.has('http'))
      return { reason: 'http-not-enabled', detail: 'HTTP tunnels need the http extension (HELLO)' };
    const claimed = await this.names.claim(session, message.wantedName ?? '', message.nameLease ?? '');
    if ('reason' in claimed) return claimed;
    const { port } = this.front;
    const url = this.urlOf(claimed.name);
    const tunnel = new HttpTunnel(claimed.name, url, message.localPort, claimed.lease, message.auth, session, {
      names: this.names,
      dialBacks: this.dialBacks,
      observer: this.parts.observer,
      publicPort: port,
      maxRequestsPerTunnel: this.limits.maxRequestsPerTunnel,
      idleMs: this.limits.idleDataMs,
    });
    return { tunnel, reclaimed: claimed.reclaimed };
  }

  /** The data port: a data connection whose id is a dial-back of ours takes it here. */
  claim(id: string, socket: Socket, conn: string): boolean {
    const waiter = this.dialBacks.take(id);
    if (!waiter) return false;
    waiter.join(socket, conn);
    return true;
  }

  /** REFUSE: the client turns a dial-back of its own tunnels away. */
  refuse(id: string, owns: (tunnel: HttpTunnel) => boolean): boolean {
    const waiter = this.dialBacks.take(id, owns);
    waiter?.fail(new BurrowError('refused', 'the client is at its connection limit'));
    return waiter !== undefined;
  }

  /** Closes the HTTP ports and idle visitor connections; leases end. Resolves once every
   * visitor connection has closed (the server's shutdown drains or cuts the busy ones). */
  async close(): Promise<void> {
    this.certificates?.close();
    this.dialBacks.clear();
    this.names.clearLeases();
    await Promise.all(
      this.servers.map(
        ({ server }) =>
          new Promise<void>((resolve) => {
            if (!server.listening) return resolve();
            server.close(() => resolve());
            server.closeIdleConnections();
          }),
      ),
    );
  }

  get waiting(): number {
    return this.dialBacks.size;
  }

  private serve(server: http.Server, scheme: 'http' | 'https'): void {
    server.on('connection', (socket: Socket) => this.parts.track(socket));
    server.on('request', (req, res) => {
      const challenge = this.certificates?.challengeAnswer(req.url ?? '');
      if (challenge !== undefined) return void res.writeHead(200, { 'content-type': 'text/plain' }).end(challenge);
      const door = this.doorFor(req);
      if (door !== undefined && this.parts.webSockets) {
        const page = this.parts.webSockets.page(door);
        this.page(req, page);
        return sendPage(req, res, page);
      }
      const target = route(req, this.names, this.domain, this.limits.maxRequestsPerTunnel);
      if (!(target instanceof HttpTunnel)) {
        this.page(req, target);
        return sendPage(req, res, target);
      }
      void forwardRequest(req, res, target, scheme, (page) => this.page(req, page));
    });
    // Expect: 100-continue is the local service's to answer: forwardRequest passes it on.
    server.on('checkContinue', (req, res) => server.emit('request', req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', (error) => debug('upgrade socket: %s', error.message));
      const door = this.doorFor(req);
      if (door !== undefined && this.parts.webSockets) return this.parts.webSockets.upgrade(req, socket, head, door);
      const target = route(req, this.names, this.domain, this.limits.maxRequestsPerTunnel);
      if (!(target instanceof HttpTunnel)) {
        this.page(req, target);
        return void socket.end(rawPage(target, req.headers.accept));
      }
      forwardUpgrade(req, socket, head, target, scheme, (page) => this.page(req, page));
    });
    server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
      const page = clientErrorPage(error.code);
      debug('%s client error: %s', scheme, error.message);
      if (!socket.writable || page === undefined) return void socket.destroy();
      this.parts.onPage({ ...page, host: '', method: '', path: '', visitor: visitorOf(socket) });
      socket.end(rawPage(page));
    });
  }

  /** The WebSocket door `req` is for: one of its paths, on a host that is no tunnel's. */
  private doorFor(req: http.IncomingMessage): RelayPort | undefined {
    if (!this.parts.webSockets) return undefined;
    const door = doorOf(req.url);
    if (door === undefined) return undefined;
    const host = hostOf(req.headers.host);
    return host !== undefined && nameIn(host, this.domain) !== undefined ? undefined : door;
  }

  private page(req: http.IncomingMessage, page: Page): void {
    const event = {
      status: page.status,
      text: page.text,
      host: req.headers.host ?? '',
      method: req.method ?? '',
      path: req.url ?? '',
      visitor: visitorOf(req.socket),
    };
    this.parts.observer.event('http', `${event.status} ${event.method} ${event.host}${event.path}: ${event.text}`);
    this.parts.onPage(event);
  }
}

/** The page for a request Node's parser refused; undefined: just close (the peer is gone). */
function clientErrorPage(code: string | undefined): Page | undefined {
  if (code === 'ECONNRESET') return undefined;
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, text: 'the request head is too large.' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, text: 'the request head did not arrive in time.' };
  return { status: 400, text: 'the request is not valid HTTP/1.1.' };
}

const visitorOf = (socket: Socket): string => formatAddress(socket.remoteAddress, socket.remotePort) ?? 'unknown';
