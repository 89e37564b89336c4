// One control connection, client side: EXPOSE requests and their replies, CONNECTION
// notices, and the heartbeat that tells a silent server from a quiet one. The client
// (client.ts) opens a new link whenever it has to reconnect.
import type net from 'node:net';
import { closeWithLine, readControlLines } from '../shared/control-lines.ts';
import { BurrowError } from '../shared/errors.ts';
import { formatExpose, formatSignal, parseServerControlLine, type ServerControlMessage } from '../shared/protocol.ts';
import { dial } from './dial.ts';

export interface ExposeRequest {
  localPort: number;
  /** 0 for any port. */
  remotePort: number;
  /** The lease of `remotePort` from an earlier OK, to get that port back. */
  lease?: string;
}

export interface Opened {
  publicPort: number;
  lease: string | undefined;
}

export interface LinkOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
}

export interface LinkEvents {
  onConnection(id: string, publicPort: number): void;
  onWarning(error: BurrowError): void;
  /** The connection is gone (never called after close() or goAway()). `goAway`: the
   * server announced it, so this is a planned restart, not a failure. */
  onLost(error: BurrowError, goAway: boolean): void;
  trace(kind: 'send' | 'recv' | 'event', text: string): void;
  /** Receives every socket at once, so that its owner can close it even mid-connect. */
  track(socket: net.Socket): void;
}

type Waiter = { resolve: (opened: Opened) => void; reject: (error: BurrowError) => void; onOpened: (opened: Opened) => void; localPort: number };

export class ControlLink {
  private socket: net.Socket | undefined;
  /** EXPOSEs waiting for their OK/ERR; the server answers them in order. */
  private readonly waiters: Waiter[] = [];
  private receiveTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private goAwayReceived = false;
  private ended = false;

  constructor(
    private readonly options: LinkOptions,
    private readonly events: LinkEvents,
  ) {}

  /** Connects; rejects with `unreachable` (or `closed` if close() came first). */
  async connect(): Promise<void> {
    const { host, port, connectTimeoutMs } = this.options;
    const socket = await dial({ host, port, timeoutMs: connectTimeoutMs, code: 'unreachable', what: 'burrow server', track: this.events.track });
    if (this.ended) {
      socket.destroy();
      throw new BurrowError('closed', 'the client was closed while connecting');
    }
    this.socket = socket;
    this.events.trace('event', `connected to ${host}:${port}`);
    socket.once('close', () => this.lose(new BurrowError('closed', 'lost the connection to the server')));
    readControlLines(socket, {
      onLine: (line) => this.onLine(line),
      onTooLong: () => this.lose(new BurrowError('line-too-long', 'the server sent an over-long line')),
      onEnd: () => this.lose(new BurrowError('closed', 'the server closed the connection')),
    });
    this.expectLine();
    this.pingTimer = setInterval(() => this.send(formatSignal('PING')), this.options.heartbeatIntervalMs);
  }

  /** False once the connection has ended, for whatever reason. */
  get open(): boolean {
    return !this.ended && this.socket !== undefined;
  }

  /** Sends one EXPOSE. `onOpened` runs the moment its OK is read — before any later line,
   * since a CONNECTION for the new tunnel may follow in the same packet. */
  expose(request: ExposeRequest, onOpened: (opened: Opened) => void): Promise<Opened> {
    return new Promise<Opened>((resolve, reject) => {
      if (this.ended) return reject(new BurrowError('closed', 'the connection to the server is closed'));
      this.waiters.push({ resolve, reject, onOpened, localPort: request.localPort });
      this.send(formatExpose(request.localPort, request.remotePort, request.lease));
    });
  }

  /** Leaves on purpose: tells the server (so it frees our ports at once) and closes,
   * lingering at most LINGER_MS for the server to close its side. */
  goAway(): void {
    if (this.ended || !this.socket) return this.close();
    const line = formatSignal('GOAWAY');
    this.events.trace('send', line.trimEnd());
    this.end(new BurrowError('closed', 'the client is closing'));
    closeWithLine(this.socket, line);
  }

  /** Closes at once, without telling the server. */
  close(): void {
    if (!this.ended) this.end(new BurrowError('closed', 'the client was closed'));
    this.socket?.destroy();
  }

  private send(line: string): void {
    if (this.ended || !this.socket) return;
    this.events.trace('send', line.trimEnd());
    this.socket.write(line);
  }

  private onLine(line: string): void {
    if (this.ended) return;
    this.events.trace('recv', line);
    this.expectLine();
    const parsed = parseServerControlLine(line);
    if (!parsed.ok && parsed.reason === 'unknown-verb') {
      // A newer server may say things we do not know yet: skip them, keep serving.
      this.events.onWarning(new BurrowError('protocol', `ignored a line from the server: ${parsed.detail}`));
      return;
    }
    if (!parsed.ok) {
      // A known verb we cannot parse, or bytes that are not a line at all: this server
      // cannot be trusted with our tunnels.
      this.lose(new BurrowError('protocol', `the server sent an invalid line (${parsed.reason}: ${parsed.detail})`));
      return;
    }
    const message = parsed.message;
    switch (message.verb) {
      case 'CONNECTION':
        return this.events.onConnection(message.id, message.publicPort);
      case 'PING':
        return this.send(formatSignal('PONG'));
      case 'PONG':
        return; // its arrival already reset the receive deadline
      case 'GOAWAY':
        this.goAwayReceived = true; // the server closes next
        return;
      default:
        return this.onReply(message);
    }
  }

  /** Matches an OK/ERR to the oldest EXPOSE. */
  private onReply(message: Extract<ServerControlMessage, { verb: 'OK' | 'ERR' }>): void {
    const waiter = this.waiters.shift();
    if (!waiter) {
      const text = message.verb === 'ERR' ? `server error: ${message.reason} ${message.detail}`.trim() : `unexpected ${message.verb} from the server`;
      this.events.onWarning(new BurrowError(message.verb === 'ERR' ? 'refused' : 'protocol', text, { reason: message.verb === 'ERR' ? message.reason : undefined }));
      return;
    }
    if (message.verb === 'OK') {
      const opened = { publicPort: message.publicPort, lease: message.lease };
      waiter.onOpened(opened);
      waiter.resolve(opened);
      return;
    }
    const why = `${message.detail || message.reason} (${message.reason})`;
    waiter.reject(new BurrowError('refused', `server refused to expose port ${waiter.localPort}: ${why}`, { reason: message.reason }));
  }

  /** No line from the server for the heartbeat timeout: it is gone, whatever TCP thinks. */
  private expectLine(): void {
    clearTimeout(this.receiveTimer);
    const ms = this.options.heartbeatTimeoutMs;
    this.receiveTimer = setTimeout(() => {
      this.lose(new BurrowError('timeout', `the server has been silent for ${ms / 1000} s`));
      this.socket?.destroy();
    }, ms);
  }

  /** The connection failed: settle everything and tell the client, once. */
  private lose(error: BurrowError): void {
    if (this.ended) return;
    const reason = this.goAwayReceived ? new BurrowError('closed', 'the server is restarting or shutting down (GOAWAY)') : error;
    this.end(reason);
    this.socket?.destroy();
    this.events.onLost(reason, this.goAwayReceived);
  }

  private end(error: BurrowError): void {
    this.ended = true;
    clearTimeout(this.receiveTimer);
    clearInterval(this.pingTimer);
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}
