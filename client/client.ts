// The client: one control connection to the server, one tunnel per exposed local port,
// and a dial-back for every CONNECTION. `startClient()` is the library entry point.
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import createDebug from 'debug';
import { readControlLines } from '../shared/control-lines.ts';
import { BurrowError } from '../shared/errors.ts';
import {
  DEFAULT_CONTROL_PORT,
  DEFAULT_DATA_PORT,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  formatExpose,
  parseServerControlLine,
  type ServerControlMessage,
} from '../shared/protocol.ts';
import type { TraceEvent } from '../shared/trace.ts';
import { dialBack } from './connection.ts';
import { dial } from './dial.ts';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  type BurrowClientEvents,
  type ClientOptions,
  type OpenTunnel,
  type TunnelRequest,
} from './types.ts';

export * from './types.ts';

const debug = createDebug('burrow:client');

/** An EXPOSE waiting for its reply. */
type Reply = { request: TunnelRequest; resolve: (tunnel: OpenTunnel) => void; reject: (error: BurrowError) => void };

export class BurrowClient extends EventEmitter<BurrowClientEvents> {
  /** Tunnels by public port, in the order they were requested. */
  readonly tunnels: OpenTunnel[] = [];
  private readonly serverHost: string;
  private readonly sockets = new Set<net.Socket>();
  /** EXPOSEs waiting for their OK/ERR; the server answers them in order. */
  private readonly replies: Reply[] = [];
  private control: net.Socket | undefined;
  private closed = false;
  /** Visitor connections being dialed or joined. */
  private connections = 0;

  constructor(private readonly options: ClientOptions) {
    super();
    this.serverHost = options.server ?? 'localhost';
  }

  /** Connects, exposes every requested port, and resolves once all are open. Rejects with
   * a BurrowError (`unreachable`, `refused`, `timeout`, `closed`, `protocol`) and leaves
   * nothing open if any step fails. */
  async start(): Promise<void> {
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const controlPort = this.options.controlPort ?? DEFAULT_CONTROL_PORT;
    // One deadline for the whole start: connecting and every answer.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BurrowError('timeout', `the server did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const connecting = dial({
        host: this.serverHost,
        port: controlPort,
        timeoutMs,
        code: 'unreachable',
        what: 'burrow server',
        track: (socket) => this.track(socket),
      });
      const control = await Promise.race([connecting, deadline]);
      if (this.closed) throw new BurrowError('closed', 'the client was closed while connecting');
      this.control = control;
      this.trace('control', 'event', `connected to ${this.serverHost}:${controlPort}`);
      control.once('close', () => this.shutdown(new BurrowError('closed', 'lost the connection to the server')));
      readControlLines(control, {
        onLine: (line) => this.onLine(line),
        onTooLong: () => this.shutdown(new BurrowError('line-too-long', 'the server sent an over-long line')),
        onEnd: () => this.shutdown(new BurrowError('closed', 'the server closed the connection')),
      });
      // Send every EXPOSE at once (one round trip for all); replies come in order.
      const answers = this.options.tunnels.map((request) => this.expose(request));
      await Promise.race([Promise.all(answers), deadline]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
      deadline.catch(() => {}); // settled or not, nobody waits for it any more
    }
  }

  /** Closes the control connection and every visitor connection. Idempotent. */
  close(): Promise<void> {
    this.shutdown(undefined);
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    return Promise.resolve();
  }

  /** Sends one EXPOSE; resolves when its tunnel is open (see onReply). */
  private expose(request: TunnelRequest): Promise<OpenTunnel> {
    return new Promise<OpenTunnel>((resolve, reject) => {
      this.replies.push({ request, resolve, reject });
      this.send(formatExpose(request.localPort, request.remotePort ?? 0));
    });
  }

  /** Matches an OK/ERR to the oldest EXPOSE. The tunnel is registered right here, before
   * anything else is read, because a CONNECTION for it may follow in the same packet. */
  private onReply(message: ServerControlMessage): void {
    const waiter = this.replies.shift();
    if (!waiter) {
      if (message.verb === 'ERR') {
        this.warn(new BurrowError('refused', `server error: ${message.reason} ${message.detail}`.trim(), { reason: message.reason }));
      } else {
        this.warn(new BurrowError('protocol', `unexpected ${message.verb} from the server`));
      }
      return;
    }
    const { request } = waiter;
    if (message.verb === 'OK') {
      const tunnel: OpenTunnel = {
        localHost: request.localHost ?? this.options.localHost ?? 'localhost',
        localPort: request.localPort,
        publicPort: message.publicPort,
        url: `tcp://${hostForUrl(this.serverHost)}:${message.publicPort}`,
      };
      this.tunnels.push(tunnel);
      waiter.resolve(tunnel);
      return;
    }
    const why = message.verb === 'ERR' ? `${message.detail || message.reason} (${message.reason})` : 'unexpected reply';
    const reason = message.verb === 'ERR' ? message.reason : undefined;
    waiter.reject(new BurrowError('refused', `server refused to expose port ${request.localPort}: ${why}`, { reason }));
  }

  private send(line: string): void {
    this.trace('control', 'send', line.trimEnd());
    this.control?.write(line);
  }

  private onLine(line: string): void {
    if (this.closed) return;
    this.trace('control', 'recv', line);
    const parsed = parseServerControlLine(line);
    if (!parsed.ok && parsed.reason === 'unknown-verb') {
      // A newer server may say things we do not know yet: skip them, keep serving.
      this.warn(new BurrowError('protocol', `ignored a line from the server: ${parsed.detail}`));
      return;
    }
    if (!parsed.ok) {
      // A known verb we cannot parse, or bytes that are not a line at all: this server
      // cannot be trusted with our tunnels.
      this.shutdown(new BurrowError('protocol', `the server sent an invalid line (${parsed.reason}: ${parsed.detail})`));
      return;
    }
    const message = parsed.message;
    if (message.verb === 'CONNECTION') {
      this.onConnection(message.id, message.publicPort);
      return;
    }
    this.onReply(message);
  }

  private onConnection(id: string, publicPort: number): void {
    const tunnel = this.tunnels.find((t) => t.publicPort === publicPort);
    if (!tunnel) {
      this.warn(new BurrowError('protocol', `CONNECTION for public port ${publicPort}, which is not one of our tunnels`));
      return;
    }
    const limit = this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.connections >= limit) {
      // Each CONNECTION costs two sockets here: a flood must not exhaust this machine.
      // The visitor is closed by the server when its wait runs out.
      this.warn(new BurrowError('protocol', `ignored CONNECTION ${id}: already ${limit} connections`));
      return;
    }
    this.connections++;
    const conn = `data:${id.slice(0, 6)}`;
    dialBack({
      id,
      serverHost: this.serverHost,
      dataPort: this.options.dataPort ?? DEFAULT_DATA_PORT,
      localHost: tunnel.localHost,
      localPort: tunnel.localPort,
      timeoutMs: this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      track: (socket) => this.track(socket),
      trace: (kind, text) => this.trace(conn, kind, text),
      onJoined: () => this.emit('connection', { id, tunnel }),
    }).then(
      (totals) => {
        this.trace(conn, 'event', `closed: ${totals.bytesIn} bytes in, ${totals.bytesOut} bytes out, ${totals.durationMs} ms`);
        this.emit('connection-close', { id, tunnel, ...totals });
      },
      (error: unknown) => {
        const failure = error instanceof BurrowError ? error : new BurrowError('closed', String(error), { cause: error });
        this.trace(conn, 'event', `failed: ${failure.message}`);
        if (!this.closed) this.warn(failure);
      },
    ).finally(() => this.connections--);
  }

  private track(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (socket.destroyed) return; // its 'close' has fired or is about to: nothing to own
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private warn(error: BurrowError): void {
    debug('warning: %s', error.message);
    this.emit('warning', error);
  }

  /** Ends the control session. Visitor connections already joined are independent TCP
   * connections: they keep flowing until they end or `close()` is called. */
  private shutdown(error: BurrowError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.replies.splice(0)) waiter.reject(error ?? new BurrowError('closed', 'the client was closed'));
    this.control?.destroy();
    this.trace('control', 'event', error ? `closed: ${error.message}` : 'closed');
    this.emit('close', error);
  }

  private trace(conn: string, kind: TraceEvent['kind'], text: string): void {
    if (this.listenerCount('trace') > 0) this.emit('trace', { side: 'client', conn, kind, text });
  }
}

/** Creates a client, connects and exposes its tunnels. */
export async function startClient(options: ClientOptions): Promise<BurrowClient> {
  const client = new BurrowClient(options);
  await client.start();
  return client;
}

/** IPv6 literals need brackets inside a URL. */
function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
