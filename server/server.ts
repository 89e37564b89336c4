// The relay: a control port for clients, a data port for their dial-backs, and one
// public port per tunnel. `startServer()` is the library entry point; the CLI wraps it.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { WaitsForVoucher } from '../shared/alive-check.ts';
import { BurrowError, describe } from '../shared/errors.ts';
import { closeWithLine, LINGER_MS } from '../shared/control-lines.ts';
import {
  DEFAULT_CONTROL_PORT,
  DEFAULT_DATA_PORT,
  DEFAULT_PORT_RANGE,
  formatAddress,
  formatErr,
  hostPort,
  type PortRange,
} from '../shared/protocol.ts';
import { deadlineIn } from '../shared/deadline.ts';
import { SOCKET_OPTIONS } from '../shared/socket-options.ts';
import { hideProofs, type TraceEvent } from '../shared/trace.ts';
import { admit } from './admit.ts';
import { ServerCounters, type ServerTotals } from './counters.ts';
import { ServerTls, type ServerTlsOptions } from './tls-server.ts';
import type { RefusalReason, ServerContext } from './context.ts';
import { acceptDataConnection } from './data-port.ts';
import { OwnedSockets } from '../shared/owned-sockets.ts';
import { ClientEventLog, type ClientEvent } from './client-events.ts';
import { Departures } from './departures.ts';
import { Leases } from './leases.ts';
import { CountPerKey, DEFAULT_LIMITS, type Limits } from './limits.ts';
import { PendingVisitors } from './pending.ts';
import { PortPool, portOf } from './ports.ts';
import { TunnelQuota } from './quota.ts';
import { ControlSession } from './session.ts';
import type { Tunnel, TunnelSession } from './tunnel.ts';

const debug = createDebug('burrow:server');

export interface ServerOptions extends Partial<Limits> {
  /** Control port; 0 picks a free one. Default 7835. */
  controlPort?: number;
  /** Data port; 0 picks a free one. Default 7836. */
  dataPort?: number;
  /** Address every listener binds to, public ports included. Default: all interfaces. */
  bind?: string;
  /** Public ports the server may hand out. Default 1024-65535. */
  portRange?: PortRange;
  /** Clients must prove they know this secret (docs/SECURITY.md). Default: none, an open
   * relay. */
  secret?: string;
  /** Speak TLS on the control and data ports. Default: plain TCP. */
  tls?: ServerTlsOptions;
}

export type { ServerTlsOptions };

/** A connection turned away for TLS or authentication: what an operator wants to see. */
export interface RefusedEvent {
  conn: string;
  /** The peer's address and port. */
  address: string;
  reason: RefusalReason;
  message: string;
}

/** What the server holds right now: for monitoring, and for tests that check every
 * resource returns to zero. */
export interface ServerStats {
  /** Open control connections. */
  clients: number;
  /** Distinct source addresses with a control connection. */
  clientAddresses: number;
  /** Open tunnels (public listeners), counting EXPOSEs still binding. */
  tunnels: number;
  /** Public ports kept under lease for clients that dropped (they count towards the
   * tunnel limits too). */
  leasedPorts: number;
  /** Public ports held in the pool. */
  ports: number;
  /** Visitors waiting for their data connection. */
  pendingVisitors: number;
  /** Every socket the server owns: control, data (handshaking or joined), visitors. */
  sockets: number;
}

export interface BurrowServerEvents {
  /** A client connected, opened a tunnel, left; a lease was kept or ran out. */
  client: [ClientEvent];
  trace: [TraceEvent];
  refused: [RefusedEvent];
  /** A visitor was joined to its client's data connection after waiting `waitMs`. */
  paired: [{ waitMs: number }];
}

export type { ServerTotals, ClientEvent };

export class BurrowServer extends EventEmitter<BurrowServerEvents> implements ServerContext {
  readonly ports: PortPool;
  readonly pending: PendingVisitors<Tunnel>;
  readonly limits: Readonly<Limits>;
  readonly secret: string | undefined;
  readonly tls: ServerTls | undefined;
  /** Data connections and visitors: what a graceful shutdown lets finish. */
  private readonly sockets = new OwnedSockets();
  /** Control connections: they stay while the rest drains, to answer for its FINs. */
  private readonly controlSockets = new OwnedSockets();
  private readonly sessions = new Set<ControlSession>();
  /** This process, as `fin-check` names it: a client vouches for old data connections
   * over a new control connection only to the same server process. */
  readonly instance = nanoid();
  /** FINs from clients whose control connection is down, waiting for it to come back. */
  readonly finWaits = new WaitsForVoucher();
  /** Clients that said GOAWAY, kept until their joined connections end. */
  readonly departures = new Departures();
  private readonly clientsPerAddress: CountPerKey<string>;
  readonly handshakesPerAddress: CountPerKey<string>;
  readonly leases: Leases;
  readonly liveTunnels = new Map<number, Tunnel>();
  readonly leaseHolders = new Map<string, TunnelSession>();
  readonly counters = new ServerCounters();
  readonly quota: TunnelQuota;
  shuttingDown = false;
  private readonly labels = { control: 0, data: 0 };
  private readonly controlListener: net.Server;
  private readonly dataListener: net.Server;
  private closing: Promise<void> | undefined;
  /** What was started on this server and closes with it (a metrics endpoint). */
  private readonly closers = new Set<() => Promise<void>>();
  /** Shutdown has run its closers: a closer registered now runs at once. */
  private closersRun = false;
  private readonly clientEvents = new ClientEventLog((event) => this.emitClientEvent(event));

  constructor(private readonly options: ServerOptions = {}) {
    super();
    const limits: Limits = { ...DEFAULT_LIMITS };
    for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
      const value = options[key];
      if (value !== undefined) limits[key] = value;
    }
    this.limits = limits;
    this.secret = options.secret;
    this.tls = options.tls && new ServerTls(options.tls);
    this.ports = new PortPool({ range: options.portRange ?? DEFAULT_PORT_RANGE, host: options.bind });
    this.clientsPerAddress = new CountPerKey(limits.maxClientsPerIp);
    this.handshakesPerAddress = new CountPerKey(limits.maxHandshakesPerIp);
    this.quota = new TunnelQuota(limits.maxTunnels, limits.maxTunnelsPerIp);
    this.leases = new Leases(limits.leaseGraceMs, (port, address) => {
      this.ports.release(port);
      this.quota.remove(address);
      if (!this.shuttingDown) this.clientEvent({ kind: 'lease-expired', address, publicPort: port });
    });
    this.pending = new PendingVisitors<Tunnel>(limits.visitorTimeoutMs, (id, visitor) => {
      this.counters.visitorsTimedOut++;
      this.trace(
        `visitor:${id.slice(0, 6)}`,
        'event',
        `closed: no data connection within the deadline (public port ${visitor.owner.publicPort})`,
      );
    });
    this.controlListener = net.createServer(SOCKET_OPTIONS, (socket) => {
      // A failure while setting one connection up must not take the relay down.
      this.openSession(socket).catch((error: unknown) => {
        debug('control connection: %O', error);
        socket.destroy();
      });
    });
    this.dataListener = net.createServer(SOCKET_OPTIONS, (socket) => void acceptDataConnection(socket, this));
    for (const listener of [this.controlListener, this.dataListener]) {
      // Accept errors (EMFILE when out of file descriptors) must not crash the relay.
      listener.on('error', (error) => debug('listener: %s', error.message));
    }
  }

  /** The control port actually listened on (useful with port 0). */
  get controlPort(): number {
    return portOf(this.controlListener);
  }

  /** The data port actually listened on. */
  get dataPort(): number {
    return portOf(this.dataListener);
  }

  /** Opens the control and data ports. Rejects with a `listen-failed` BurrowError. */
  async listen(): Promise<void> {
    const host = this.options.bind;
    await listenOn(this.controlListener, this.options.controlPort ?? DEFAULT_CONTROL_PORT, host, 'control');
    try {
      await listenOn(this.dataListener, this.options.dataPort ?? DEFAULT_DATA_PORT, host, 'data');
    } catch (error) {
      this.controlListener.close();
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
  onClose(closer: () => Promise<void>): () => void {
    if (this.closersRun) {
      void runCloser(closer);
      return () => {};
    }
    this.closers.add(closer);
    return () => void this.closers.delete(closer);
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
      session.goAway();
      return session.settled();
    });
    this.pending.clear();
    this.leases.clear();
    await this.sockets.close(this.limits.shutdownTimeoutMs);
    // A client that speaks GOAWAY closes its control connection once its last joined
    // connection is checked, which is moments after ours have drained.
    await this.controlSockets.settled(2 * LINGER_MS);
    for (const session of this.sessions) session.close('');
    this.finWaits.close();
    await this.controlSockets.close(2 * LINGER_MS);
    await Promise.all([...listeners, ...binds]);
    this.closersRun = true;
    const closers = [...this.closers];
    this.closers.clear();
    await Promise.all(closers.map(runCloser));
  }

  /** Running totals since start (connections, bytes, errors by reason). */
  totals(): ServerTotals {
    return this.counters.snapshot();
  }

  /** What the server holds right now. */
  stats(): ServerStats {
    return {
      clients: this.sessions.size,
      clientAddresses: this.clientsPerAddress.size,
      tunnels: this.quota.total - this.leases.size,
      leasedPorts: this.leases.size,
      ports: this.ports.heldCount,
      pendingVisitors: this.pending.size,
      sockets: this.sockets.size + this.controlSockets.size,
    };
  }

  private async openSession(raw: net.Socket): Promise<void> {
    if (this.shuttingDown) {
      raw.destroy();
      return;
    }
    this.track(raw, 'control');
    this.counters.controlConnections++;
    raw.on('error', (error) => debug('control connection: %s', error.message));
    const address = raw.remoteAddress ?? 'unknown';
    if (!this.clientsPerAddress.tryAdd(address)) {
      const line = formatErr('too-many-connections', `limit is ${this.limits.maxClientsPerIp} per address`);
      this.trace('control', 'send', `${line.trimEnd()} (to ${formatAddress(address, raw.remotePort) ?? address})`);
      closeWithLine(raw, line);
      return;
    }
    raw.once('close', () => this.clientsPerAddress.remove(address));
    const conn = this.label('control');
    this.trace(conn, 'event', `client connected from ${formatAddress(address, raw.remotePort) ?? address}`);
    // One deadline from accept: the first byte, TLS, and the first line or authentication.
    const deadline = deadlineIn(this.limits.handshakeTimeoutMs);
    const socket = await admit(raw, this, () => conn, deadline, 'control');
    if (!socket || this.shuttingDown) {
      socket?.destroy();
      return;
    }
    // No 'client' event yet: the session reports 'connected' once the client has
    // authenticated or said HELLO or EXPOSE (a scanner's bytes are no client).
    const session = new ControlSession(socket, this, conn, deadline, this.clientEvents);
    this.sessions.add(session);
    socket.once('close', () => this.sessions.delete(session));
  }

  track(socket: net.Socket, kind: 'control' | 'data' = 'data'): void {
    (kind === 'control' ? this.controlSockets : this.sockets).add(socket);
  }

  label(kind: 'control' | 'data'): string {
    return `${kind}#${++this.labels[kind]}`;
  }

  paired(visitor: net.Socket, waitMs: number): void {
    this.counters.paired(visitor);
    this.emit('paired', { waitMs });
  }

  trace(conn: string, kind: TraceEvent['kind'], text: string): void {
    // Every line the server sends passes here: count its refusals by reason.
    if (kind === 'send' && text.startsWith('ERR ')) this.counters.error(text.split(' ')[1] ?? '');
    if (this.listenerCount('trace') > 0)
      this.emit('trace', { side: 'server', conn, kind, text: kind === 'event' ? text : hideProofs(text) });
  }

  clientEvent(event: ClientEvent): void {
    this.clientEvents.report(event);
  }

  /** An event is a report of a change already made: a listener that throws (a bug in a
   * library user's code) must not interrupt the change or the code that made it (a timer,
   * a socket's 'close', an EXPOSE in the reply queue), where it would leave ports open or
   * crash the relay. So its error is logged here, like any other trouble of one client
   * (as with any emit, listeners after the one that threw miss that one event). */
  private emitClientEvent(event: ClientEvent): void {
    debug('client event: %o', event);
    try {
      this.emit('client', event);
    } catch (error) {
      debug("a 'client' listener threw: %O", error);
    }
  }

  refused(conn: string, address: string, reason: RefusalReason, message: string): void {
    debug('%s from %s refused (%s): %s', conn, address, reason, message);
    this.trace(conn, 'event', `refused (${reason}): ${message}`);
    this.emit('refused', { conn, address, reason, message });
  }
}

/** Creates a server and opens its ports. */
export async function startServer(options: ServerOptions = {}): Promise<BurrowServer> {
  const server = new BurrowServer(options);
  await server.listen();
  return server;
}

async function runCloser(closer: () => Promise<void>): Promise<void> {
  try {
    await closer();
  } catch (error) {
    debug('closing a part started on the server: %s', describe(error));
  }
}

function listenOn(listener: net.Server, port: number, host: string | undefined, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      const where = host === undefined ? `port ${port}` : hostPort(host, port);
      reject(
        new BurrowError('listen-failed', `cannot listen on ${name} ${where}: ${describe(error)}`, { cause: error }),
      );
    };
    listener.once('error', onError);
    listener.listen({ port, host }, () => {
      listener.off('error', onError);
      resolve();
    });
  });
}
