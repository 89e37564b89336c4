// The relay: a control port for clients, a data port for their dial-backs, and one
// public port per tunnel. `startServer()` is the library entry point; the CLI wraps it.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import createDebug from 'debug';
import { BurrowError, describe } from '../shared/errors.ts';
import {
  DEFAULT_CONTROL_PORT,
  DEFAULT_DATA_PORT,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_PORT_RANGE,
  DEFAULT_VISITOR_TIMEOUT_MS,
  type PortRange,
} from '../shared/protocol.ts';
import type { TraceEvent } from '../shared/trace.ts';
import type { ServerContext } from './context.ts';
import { acceptDataConnection } from './data-port.ts';
import { PendingVisitors } from './pending.ts';
import { PortPool } from './ports.ts';
import { ControlSession } from './session.ts';
import type { Tunnel } from './tunnel.ts';

const debug = createDebug('burrow:server');

export interface ServerOptions {
  /** Control port; 0 picks a free one. Default 7835. */
  controlPort?: number;
  /** Data port; 0 picks a free one. Default 7836. */
  dataPort?: number;
  /** Address every listener binds to, public ports included. Default: all interfaces. */
  bind?: string;
  /** Public ports the server may hand out. Default 1024-65535. */
  portRange?: PortRange;
  /** How long a visitor waits for its data connection. Default 10 s. */
  visitorTimeoutMs?: number;
  /** How long a data connection may take to send its ID line. Default 5 s. */
  handshakeTimeoutMs?: number;
  /** Most tunnels per control connection. Default 64. */
  maxTunnelsPerClient?: number;
}

export const DEFAULT_MAX_TUNNELS_PER_CLIENT = 64;

export interface BurrowServerEvents {
  trace: [TraceEvent];
}

export class BurrowServer extends EventEmitter<BurrowServerEvents> implements ServerContext {
  readonly ports: PortPool;
  readonly pending: PendingVisitors<Tunnel>;
  readonly maxTunnelsPerClient: number;
  readonly handshakeTimeoutMs: number;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<ControlSession>();
  private readonly counters = { control: 0, data: 0 };
  private readonly controlListener: net.Server;
  private readonly dataListener: net.Server;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: ServerOptions = {}) {
    super();
    this.ports = new PortPool({ range: options.portRange ?? DEFAULT_PORT_RANGE, host: options.bind });
    this.maxTunnelsPerClient = options.maxTunnelsPerClient ?? DEFAULT_MAX_TUNNELS_PER_CLIENT;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.pending = new PendingVisitors<Tunnel>(options.visitorTimeoutMs ?? DEFAULT_VISITOR_TIMEOUT_MS, (id, visitor) =>
      this.trace(`visitor:${id.slice(0, 6)}`, 'event', `closed: no data connection within the deadline (public port ${visitor.owner.publicPort})`),
    );
    this.controlListener = net.createServer({ allowHalfOpen: true }, (socket) => this.openSession(socket));
    this.dataListener = net.createServer({ allowHalfOpen: true }, (socket) => void acceptDataConnection(socket, this));
    for (const listener of [this.controlListener, this.dataListener]) {
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

  /** Stops listening and closes every connection: control, data, visitors, tunnels.
   * Idempotent; resolves when every listener, public ones included, has closed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const listeners = [this.controlListener, this.dataListener].map(
        (listener) => new Promise<void>((resolve) => (listener.listening ? listener.close(() => resolve()) : resolve())),
      );
      const tunnels = [...this.sessions].map((session) => {
        session.close();
        return session.settled();
      });
      this.pending.clear();
      for (const socket of this.sockets) socket.destroy();
      await Promise.all([...listeners, ...tunnels]);
    })();
    return this.closing;
  }

  private openSession(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const session = new ControlSession(socket, this);
    this.sessions.add(session);
    socket.once('close', () => this.sessions.delete(session));
  }

  track(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  label(kind: 'control' | 'data'): string {
    return `${kind}#${++this.counters[kind]}`;
  }

  trace(conn: string, kind: TraceEvent['kind'], text: string): void {
    if (this.listenerCount('trace') > 0) this.emit('trace', { side: 'server', conn, kind, text });
  }
}

/** Creates a server and opens its ports. */
export async function startServer(options: ServerOptions = {}): Promise<BurrowServer> {
  const server = new BurrowServer(options);
  await server.listen();
  return server;
}

function portOf(listener: net.Server): number {
  const address = listener.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

function listenOn(listener: net.Server, port: number, host: string | undefined, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      const where = host === undefined ? `port ${port}` : `${host}:${port}`;
      reject(new BurrowError('listen-failed', `cannot listen on ${name} ${where}: ${describe(error)}`, { cause: error }));
    };
    listener.once('error', onError);
    listener.listen({ port, host }, () => {
      listener.off('error', onError);
      resolve();
    });
  });
}
