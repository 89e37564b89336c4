// The relay: a control port for clients, a data port for their dial-backs, and one
// public port per tunnel. `startServer()` is the library entry point; the CLI wraps it.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { FinNotices } from '../shared/fin-notices.ts';
import { LINGER_MS } from '../shared/control-lines.ts';
import { formatAddress, formatErr } from '../shared/protocol.ts';
import { deadlineIn } from '../shared/deadline.ts';
import { SOCKET_OPTIONS } from '../shared/socket-options.ts';
import { OwnedSockets } from '../shared/owned-sockets.ts';
import { admit, turnAway } from './admit.ts';
import type { ClientEvent } from './client-events.ts';
import type { ServerTotals } from './counters.ts';
import { acceptDataConnection, type DataPortParts } from './data-port.ts';
import { Departures } from './departures.ts';
import { CountPerKey, DEFAULT_LIMITS, type Limits } from './limits.ts';
import { withServerDefaults, type ServerOptions, type ServerStats } from './options.ts';
import { ServerObserver, type BurrowServerEvents } from './observer.ts';
import { PendingVisitors, type Tunnel } from './tunnel.ts';
import { listenOn, portOf } from './ports.ts';
import { PublicPorts } from './public-ports.ts';
import { ControlSession, type SessionParts } from './session.ts';
import { ServerTls, type ServerTlsOptions } from './tls-server.ts';
import { HttpRelay } from './http/relay.ts';
import { WebSocketDoor } from './websocket-door.ts';
import { Closers, type Closer } from './closers.ts';

const debug = createDebug('burrow:server');

export type { ServerTlsOptions, ServerOptions, ServerStats };
export type { ServerTotals, ClientEvent, BurrowServerEvents };
export type { RefusedEvent } from './observer.ts';
export type { AcmeOptions, CertificateEvent, HttpPageEvent, HttpOptions } from './http/relay.ts';

export class BurrowServer extends EventEmitter<BurrowServerEvents> {
  readonly limits: Readonly<Limits>;
  /** The shared secret clients must prove they know; undefined for an open relay. */
  readonly secret: string | undefined;
  private readonly observer = new ServerObserver(this);
  /** What the sessions, tunnels and data connections use of the server. */
  private readonly parts: SessionParts & DataPortParts;
  /** Data connections and visitors: what a graceful shutdown lets finish. */
  private readonly sockets = new OwnedSockets();
  /** Control connections: they stay while the rest drains, to answer for its FINs. */
  private readonly controlSockets = new OwnedSockets();
  private readonly sessions = new Set<ControlSession>();
  private readonly clientsPerAddress: CountPerKey<string>;
  private shuttingDown = false;
  private readonly labels = { control: 0, data: 0 };
  private readonly controlListener: net.Server;
  private readonly dataListener: net.Server;
  private closing: Promise<void> | undefined;
  /** What was started on this server and closes with it (a metrics endpoint). */
  private readonly closers = new Closers();

  private readonly options: ReturnType<typeof withServerDefaults>;
  /** HTTP tunnels by name, when there is an HTTP or HTTPS port. */
  private readonly http: HttpRelay | undefined;
  /** The control and data ports over WebSocket, on the HTTP and HTTPS ports. */
  private readonly webSockets: WebSocketDoor | undefined;
  /** `parts` for connections that came over WebSocket: TLS, if any, was the HTTPS port's. */
  private readonly bridgedParts: SessionParts & DataPortParts;

  constructor(options: ServerOptions = {}) {
    super();
    this.options = withServerDefaults(options);
    const limits = { ...DEFAULT_LIMITS };
    for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) limits[key] = this.options[key];
    this.limits = limits;
    this.secret = options.secret;
    const { observer } = this;
    this.clientsPerAddress = new CountPerKey(limits.maxClientsPerIp);
    const ports = new PublicPorts({
      ...limits,
      range: this.options.portRange,
      host: options.bind,
      onLeaseExpired: (port, address) => {
        if (!this.shuttingDown) observer.clientEvents.report({ kind: 'lease-expired', address, publicPort: port });
      },
    });
    const pending = new PendingVisitors<Tunnel>(limits.visitorTimeoutMs, (id, visitor) => {
      observer.counters.visitorsTimedOut++;
      const why = `closed: no data connection within the deadline (public port ${visitor.owner.publicPort})`;
      observer.event(`visitor:${id.slice(0, 6)}`, why);
    });
    const track = (socket: net.Socket, kind: 'control' | 'data' = 'data'): void =>
      (kind === 'control' ? this.controlSockets : this.sockets).add(socket);
    const hasHttp = options.httpPort !== undefined || options.httpsPort !== undefined;
    this.webSockets =
      hasHttp && this.options.webSocket
        ? new WebSocketDoor({
            pingIntervalMs: this.options.webSocketPingMs,
            enter: (socket, door) =>
              door === 'data'
                ? void acceptDataConnection(socket, this.bridgedParts)
                : this.acceptControl(socket, this.bridgedParts),
            adoptControl: (socket) => {
              this.sockets.forget(socket);
              this.controlSockets.add(socket);
            },
          })
        : undefined;
    this.http = hasHttp
      ? new HttpRelay(options, {
          ...limits,
          observer,
          track,
          webSockets: this.webSockets,
          onPage: (event) => this.emit('page', event),
          onCertificate: (event) => this.emit('certificate', event),
        })
      : undefined;
    this.parts = {
      limits,
      http: this.http,
      secret: options.secret,
      tls: options.tls && new ServerTls(options.tls),
      observer,
      pending,
      ports,
      holders: ports.holders,
      // This process, as `fin-notice` names it: a client sends notices for old data
      // connections over a new control connection only to the same server process.
      instance: nanoid(),
      finNotices: new FinNotices(limits.heartbeatTimeoutMs),
      departures: new Departures(),
      handshakesPerAddress: new CountPerKey(limits.maxHandshakesPerIp),
      isShuttingDown: () => this.shuttingDown,
      dataPort: () => this.dataPort,
      track,
      label: (kind) => this.label(kind),
    };
    this.bridgedParts = { ...this.parts, tls: undefined };
    this.controlListener = net.createServer(SOCKET_OPTIONS, (socket) => this.acceptControl(socket, this.parts));
    this.dataListener = net.createServer(SOCKET_OPTIONS, (socket) => void acceptDataConnection(socket, this.parts));
    for (const listener of [this.controlListener, this.dataListener]) {
      // Accept errors (EMFILE when out of file descriptors) must not crash the relay.
      listener.on('error', (error) => debug('listener: %s', error.message));
    }
  }

  /** The control port actually listened on (useful with port 0). */
  get controlPort(): number {
    return portOf(this.controlListener);
  }

  /** The HTTP and HTTPS ports actually listened on, if any. */
  get httpPorts(): { http?: number; https?: number } {
    return this.http?.ports ?? {};
  }

  /** The data port actually listened on. */
  get dataPort(): number {
    return portOf(this.dataListener);
  }

  /** Opens the control and data ports. Rejects with a `listen-failed` BurrowError. */
  async listen(): Promise<void> {
    const host = this.options.bind;
    await listenOn(this.controlListener, this.options.controlPort, host, 'control');
    try {
      await listenOn(this.dataListener, this.options.dataPort, host, 'data');
      await this.http?.listen(host);
    } catch (error) {
      this.controlListener.close();
      this.dataListener.close();
      throw error;
    }
    debug('listening: control %d, data %d', this.controlPort, this.dataPort);
  }

  /** Graceful shutdown: stops accepting clients and visitors, sends GOAWAY to every
   * client (they reconnect later), closes tunnels and waiting visitors, lets joined
   * connections finish for up to `shutdownTimeoutMs`, then closes everything.
   * Idempotent; resolves when every listener and socket has closed. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  /** Registers `closer` to be called once when the server shuts down (close() or
   * destroy()), after its own ports and connections have closed (so that, say, metrics
   * still report the drain); the shutdown awaits it. If the server has shut down already,
   * `closer` is called at once. Returns a function that unregisters it (for a part that
   * is closed on its own first). A closer's failure is logged, never thrown. */
  onClose(closer: Closer): () => void {
    return this.closers.add(closer);
  }

  /** Like close(), but without waiting for joined connections. */
  destroy(): Promise<void> {
    const closing = this.close();
    this.sockets.stopDraining();
    this.controlSockets.stopDraining();
    return closing;
  }

  private async shutDown(): Promise<void> {
    this.shuttingDown = true;
    const listeners = [this.controlListener, this.dataListener].map(
      (listener) => new Promise<void>((resolve) => (listener.listening ? listener.close(() => resolve()) : resolve())),
    );
    // GOAWAY frees every port now; a client that speaks it keeps its control connection
    // while its joined connections finish, so that their FINs can still be checked.
    const binds = [...this.sessions].map((session) => {
      session.goodbye.sayGoAway();
      return session.replies.settled();
    });
    this.parts.pending.clear();
    this.parts.ports.clearLeases();
    this.webSockets?.close();
    // No new visitors; requests under way drain below. It resolves once every connection
    // to the HTTP ports has closed, WebSocket control connections too: awaited last.
    const http = this.http?.close();
    await this.sockets.close(this.limits.shutdownTimeoutMs);
    // A client that speaks GOAWAY closes its control connection once its last joined
    // connection is checked, which is moments after ours have drained.
    await this.controlSockets.settled(2 * LINGER_MS);
    for (const session of this.sessions) session.close('');
    this.parts.finNotices.close();
    await this.controlSockets.close(2 * LINGER_MS);
    await Promise.all([...listeners, ...binds, http]);
    await this.closers.runAll();
  }

  /** Running totals since start (connections, bytes, errors by reason). */
  totals(): ServerTotals {
    return this.observer.counters.snapshot();
  }

  /** What the server holds right now. */
  stats(): ServerStats {
    const ports = this.parts.ports.stats;
    return {
      clients: this.sessions.size,
      clientAddresses: this.clientsPerAddress.size,
      tunnels: ports.tunnels,
      leasedPorts: ports.leased,
      ports: ports.bound,
      pendingVisitors: this.parts.pending.size,
      sockets: this.sockets.size + this.controlSockets.size,
      ...(this.http && {
        http: {
          tunnels: this.http.names.stats.live,
          leasedNames: this.http.names.stats.leased,
          waiting: this.http.waiting,
        },
      }),
    };
  }

  /** A control connection: to the control port, or over WebSocket (`bridgedParts`). */
  private acceptControl(socket: net.Socket, parts: SessionParts & DataPortParts): void {
    // A failure while setting one connection up must not take the relay down.
    this.openSession(socket, parts).catch((error: unknown) => {
      debug('control connection: %O', error);
      socket.destroy();
    });
  }

  private async openSession(raw: net.Socket, parts: SessionParts & DataPortParts): Promise<void> {
    if (this.shuttingDown) {
      raw.destroy();
      return;
    }
    this.parts.track(raw, 'control');
    this.observer.counters.controlConnections++;
    raw.on('error', (error) => debug('control connection: %s', error.message));
    const address = raw.remoteAddress ?? 'unknown';
    const from = formatAddress(address, raw.remotePort) ?? address;
    if (!this.clientsPerAddress.tryAdd(address)) {
      const line = formatErr('too-many-connections', `limit is ${this.limits.maxClientsPerIp} per address`);
      return turnAway(raw, this.parts, 'control', line, `to ${from}`);
    }
    raw.once('close', () => this.clientsPerAddress.remove(address));
    const conn = this.label('control');
    const via = parts === this.bridgedParts ? ' over WebSocket' : '';
    this.observer.event(conn, `client connected from ${from}${via}`);
    // One deadline from accept: the first byte, TLS, and the first line or authentication.
    const deadline = deadlineIn(this.limits.handshakeTimeoutMs);
    const socket = await admit(raw, parts, () => conn, deadline, 'control');
    if (!socket || this.shuttingDown) {
      socket?.destroy();
      return;
    }
    // No 'client' event yet: the session reports 'connected' once the client has
    // authenticated or said HELLO or EXPOSE (a scanner's bytes are no client).
    const session = new ControlSession(socket, this.parts, conn, deadline);
    this.sessions.add(session);
    socket.once('close', () => this.sessions.delete(session));
  }

  private label(kind: 'control' | 'data'): string {
    return `${kind}#${++this.labels[kind]}`;
  }
}

/** Creates a server and opens its ports. */
export async function startServer(options: ServerOptions = {}): Promise<BurrowServer> {
  const server = new BurrowServer(options);
  await server.listen();
  return server;
}
