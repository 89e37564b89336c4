// One control connection, client side: authentication when we have a secret, EXPOSE
// requests and their replies, CONNECTION notices, and the heartbeat that tells a silent
// server from a quiet one. The client (client.ts) opens a new link whenever it has to
// reconnect.
import type net from 'node:net';
import { closeWithLine, readControlLines } from '../shared/control-lines.ts';
import { BurrowError } from '../shared/errors.ts';
import { AliveCheck, type Answer } from '../shared/alive-check.ts';
import {
  agreeOn,
  EXTENSIONS,
  formatAuth,
  formatExpose,
  formatHello,
  formatProof,
  formatRefuse,
  formatSignal,
  hostPort,
  type Extension,
  parsePort,
  parseServerAuthLine,
  parseServerControlLine,
  type ConnectionMessage,
  type ServerAuthMessage,
  type ServerControlMessage,
} from '../shared/protocol.ts';
import { controlProof } from '../shared/secret.ts';
import { dial } from './dial.ts';
import { notOurControlPort, refusal } from './refusals.ts';
import { tlsFailure, type ClientTls } from './tls.ts';

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
  /** This client process's id for `fin-check`. */
  instance: string;
  host: string;
  port: number;
  connectTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** Prove this secret (AUTH, CHALLENGE, PROOF) before anything else. */
  secret: string | undefined;
  tls: ClientTls | undefined;
}

export interface LinkEvents {
  onConnection(message: ConnectionMessage): void;
  onWarning(error: BurrowError): void;
  /** The connection is gone (never called after close() or goAway()). `goAway`: the
   * server announced it, so this is a planned restart, not a failure. */
  onLost(error: BurrowError, goAway: boolean): void;
  trace(kind: 'send' | 'recv' | 'event', text: string): void;
  /** Receives every socket at once, so that its owner can close it even mid-connect. */
  track: (socket: net.Socket) => void;
  /** The server answered our HELLO (or ignored it): `extensions` is known now. */
  onAgreed(): void;
  /** The server said GOAWAY: say BYE once no joined connection needs the link. */
  onGoAway(): void;
}

type Waiter = {
  resolve: (opened: Opened) => void;
  reject: (error: BurrowError) => void;
  onOpened: (opened: Opened) => void;
  localPort: number;
};
type AuthReply = Extract<ServerAuthMessage, { verb: 'CHALLENGE' | 'OK' }>;

export class ControlLink {
  private socket: net.Socket | undefined;
  /** The sockets of a dial in progress (TCP, then TLS over it): close() cuts them. */
  private readonly dialing: net.Socket[] = [];
  /** EXPOSEs waiting for their OK/ERR; the server answers them in order. */
  private readonly waiters: Waiter[] = [];
  /** Set while AUTH or PROOF waits for its answer. */
  private authWaiter: { resolve: (reply: AuthReply) => void; reject: (error: BurrowError) => void } | undefined;
  private receiveTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private goAwayReceived = false;
  private byeSent = false;
  private byeReceived = false;
  private ended = false;
  /** What the server agreed to in its answer to our HELLO; empty for a minimal server,
   * which ignores HELLO. Known before any CONNECTION can arrive. */
  private agreed: ReadonlySet<Extension> = new Set();
  /** Our HELLO is not answered yet: the first line from the server decides. */
  private helloPending = false;
  private helloAnswered = false;
  private spokeHello = false;
  /** The server process's id from its `fin-check=<instance>`. */
  private instance: string | undefined;
  /** The data port the server named (`data-port=<port>`), if it did. */
  private namedDataPort: number | undefined;
  private readonly alive = new AliveCheck(() => this.ping());

  constructor(
    private readonly options: LinkOptions,
    private readonly events: LinkEvents,
  ) {}

  /** Connects and authenticates; rejects with `unreachable`, `tls`, `refused` (or
   * `closed` if close() came first). */
  async connect(): Promise<void> {
    const { host, port, connectTimeoutMs, tls } = this.options;
    const track = (socket: net.Socket): void => {
      this.dialing.push(socket);
      this.events.track(socket);
    };
    let socket: net.Socket;
    try {
      socket = await dial({
        host,
        port,
        timeoutMs: connectTimeoutMs,
        code: 'unreachable',
        what: 'burrow server',
        track,
        tls,
      });
    } catch (error) {
      // A dial we cut ourselves fails as "closed during the handshake": say what happened.
      throw this.ended ? new BurrowError('closed', 'the client was closed while connecting') : error;
    } finally {
      this.dialing.length = 0;
    }
    if (this.ended) {
      socket.destroy();
      throw new BurrowError('closed', 'the client was closed while connecting');
    }
    this.socket = socket;
    this.events.trace('event', `connected to ${hostPort(host, port)}${tls ? ' over TLS' : ''}`);
    socket.once('close', () => this.lose(new BurrowError('closed', 'lost the connection to the server')));
    // A server that rejects our client certificate says so after the TLS handshake.
    socket.on('error', (error) => {
      const failure = tlsFailure(error, 'the burrow server');
      if (failure) this.lose(failure);
    });
    readControlLines(socket, {
      onLine: (line) => this.onLine(line),
      onTooLong: () => this.lose(new BurrowError('line-too-long', 'the server sent an over-long line')),
      onEnd: () => this.lose(new BurrowError('closed', 'the server closed the connection')),
    });
    // Offer every extension first. A minimal server ignores the line (the base protocol
    // asks it to), so its first line is the answer to what follows; no round trip is spent.
    this.helloPending = true;
    this.send(formatHello(EXTENSIONS, { 'fin-check': this.options.instance }));
    if (this.options.secret !== undefined) await this.authenticate(this.options.secret);
  }

  /** The extensions both sides speak on this connection. */
  get extensions(): ReadonlySet<Extension> {
    return this.agreed;
  }

  /** Which server process this connection reached (its `fin-check` instance), once the
   * HELLO is answered; undefined before, or if the server does not say. */
  get serverInstance(): string | undefined {
    return this.instance;
  }

  /** The data port the server named in its HELLO, if it did. */
  get serverDataPort(): number | undefined {
    return this.namedDataPort;
  }

  /** True if the server answered our HELLO: it knows more than the base protocol (and
   * names the public port in every CONNECTION). False for a minimal server. */
  get knowsHello(): boolean {
    return this.spokeHello;
  }

  /** True once the server has answered (or ignored) our HELLO. */
  get agreedYet(): boolean {
    return this.helloAnswered;
  }

  /** Answers once the server has answered a PING sent after now; false if the connection
   * ends first or the server speaks no heartbeats (see AliveCheck). */
  confirmAlive(answer: Answer): void {
    if (this.ended || !this.agreed.has('ping')) return answer(false);
    this.alive.ask(answer);
  }

  /** Turns a visitor away at once (REFUSE); false if this server cannot be told. */
  refuse(id: string): boolean {
    if (this.ended || !this.agreed.has('refuse')) return false;
    this.send(formatRefuse(id));
    return true;
  }

  /** The first line after our HELLO: the server's answer, or (from a minimal server, which
   * ignored it) already the answer to the next request. Returns true if it was consumed. */
  private onHelloAnswer(line: string): boolean {
    this.helloPending = false;
    const parsed = parseServerControlLine(line);
    // The first thing this port says tells whether it is a burrow control port at all.
    const wrong = notOurControlPort(line, parsed, hostPort(this.options.host, this.options.port));
    if (wrong) {
      this.lose(wrong);
      return true;
    }
    // A server that refuses unknown verbs instead of ignoring them: no extensions either.
    const refused = parsed.ok && parsed.message.verb === 'ERR' && parsed.message.reason === 'unknown-verb';
    const consumed = parsed.ok && (parsed.message.verb === 'HELLO' || refused);
    if (parsed.ok && parsed.message.verb === 'HELLO') {
      this.spokeHello = true;
      this.agreed = agreeOn(parsed.message.extensions);
      if (this.agreed.has('fin-check')) this.instance = parsed.message.values['fin-check'];
      this.namedDataPort = this.agreed.has('data-port') ? parsePort(parsed.message.values['data-port']) : undefined;
    }
    if (this.agreed.has('ping')) {
      this.expectLine();
      this.pingTimer = setInterval(() => this.ping(), this.options.heartbeatIntervalMs);
    }
    this.helloAnswered = true;
    this.events.onAgreed();
    return consumed;
  }

  /** The server is going away: we say BYE once our joined connections no longer need
   * this connection (the client decides when: onGoAway), and it closes after both BYEs. */
  private onServerGoAway(): void {
    this.goAwayReceived = true;
    this.events.onGoAway();
  }

  /** Says BYE (once, after a GOAWAY either way): none of our joined connections is left.
   * Both BYEs said, the connection has done its last job and closes. */
  bye(): void {
    if (this.ended || this.byeSent) return;
    this.byeSent = true;
    this.send(formatSignal('BYE'));
    if (this.byeReceived) this.closeAfterBye();
  }

  private onBye(): void {
    this.byeReceived = true;
    if (this.byeSent) this.closeAfterBye();
  }

  private closeAfterBye(): void {
    if (this.goAwayReceived) this.leave();
    else this.finish();
  }

  /** The server said GOAWAY: it is restarting or shutting down. */
  get serverLeaving(): boolean {
    return this.goAwayReceived;
  }

  /** After the server's GOAWAY, once nothing needs this connection: close it gracefully
   * and report it lost, as a planned restart (the client reconnects later). */
  leave(): void {
    if (this.ended || !this.socket) return;
    const reason = new BurrowError('closed', 'the server is restarting or shutting down (GOAWAY)');
    this.end(reason);
    closeWithLine(this.socket, '');
    this.events.onLost(reason, true);
  }

  /** Resolves once the connection has closed, or after `ms`. */
  closedWithin(ms: number): Promise<void> {
    const socket = this.socket;
    if (!socket || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      socket.once('close', done);
    });
  }

  private ping(): void {
    this.send(formatSignal('PING'));
    this.alive.pingSent();
  }

  /** Proves we know the secret without sending it: an HMAC of the server's fresh nonce. */
  private async authenticate(secret: string): Promise<void> {
    const challenge = await this.ask(formatAuth());
    if (challenge.verb !== 'CHALLENGE')
      throw new BurrowError('protocol', 'the server answered AUTH without a CHALLENGE');
    const accepted = await this.ask(formatProof(controlProof(secret, challenge.nonce)));
    if (accepted.verb !== 'OK') throw new BurrowError('protocol', 'the server answered PROOF with a second CHALLENGE');
  }

  /** Sends an authentication line and waits for its answer. */
  private ask(line: string): Promise<AuthReply> {
    return new Promise((resolve, reject) => {
      if (this.ended) return reject(new BurrowError('closed', 'the connection to the server is closed'));
      this.authWaiter = { resolve, reject };
      this.send(line);
    });
  }

  private onAuthLine(line: string): void {
    const parsed = parseServerAuthLine(line);
    if (!parsed.ok)
      return this.lose(
        new BurrowError(
          'protocol',
          `the server sent an invalid line while we authenticated (${parsed.reason}: ${parsed.detail})`,
        ),
      );
    const message = parsed.message;
    if (message.verb === 'PING') return this.send(formatSignal('PONG'));
    if (message.verb === 'PONG') return this.alive.pongReceived();
    if (message.verb === 'GOAWAY') return this.onServerGoAway();
    if (message.verb === 'BYE') return this.onBye();
    const waiter = this.authWaiter;
    this.authWaiter = undefined;
    if (message.verb !== 'ERR') return waiter?.resolve(message);
    const context =
      message.reason === 'unknown-verb'
        ? 'the server does not know AUTH (an older burrow, or not a burrow server), so it cannot check our secret'
        : 'the server refused to authenticate us';
    waiter?.reject(refusal(message.reason, message.detail, context));
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

  /** Leaves on purpose: tells the server, which frees our ports at once. A server that
   * speaks GOAWAY keeps the connection (heartbeats go on, so the FINs of our joined
   * connections can still be checked) until finish(); any other server just sees it end. */
  goAway(): void {
    if (this.ended || !this.socket) return this.close();
    if (!this.agreed.has('goaway')) return this.finish();
    this.send(formatSignal('GOAWAY'));
  }

  /** Closes gracefully (a FIN), lingering at most LINGER_MS for the server's. */
  finish(): void {
    if (this.ended || !this.socket) return this.close();
    this.end(new BurrowError('closed', 'the client is closing'));
    closeWithLine(this.socket, '');
  }

  /** Closes at once, without telling the server. */
  close(): void {
    if (!this.ended) this.end(new BurrowError('closed', 'the client was closed'));
    this.socket?.destroy();
    for (const socket of this.dialing) socket.destroy();
  }

  private send(line: string): void {
    if (this.ended || !this.socket) return;
    this.events.trace('send', line.trimEnd());
    this.socket.write(line);
  }

  private onLine(line: string): void {
    if (this.ended) return;
    this.events.trace('recv', line);
    if (this.agreed.has('ping')) this.expectLine();
    if (this.helloPending && this.onHelloAnswer(line)) return;
    if (this.authWaiter) return this.onAuthLine(line);
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
        return this.events.onConnection(message);
      case 'PING':
        return this.send(formatSignal('PONG'));
      case 'PONG':
        return this.alive.pongReceived(); // its arrival also reset the receive deadline
      case 'GOAWAY':
        return this.onServerGoAway();
      case 'BYE':
        return this.onBye();
      case 'HELLO':
        return this.events.onWarning(
          new BurrowError('protocol', 'ignored a HELLO from the server that answers nothing we asked'),
        );
      default:
        return this.onReply(message);
    }
  }

  /** Matches an OK/ERR to the oldest EXPOSE. */
  private onReply(message: Extract<ServerControlMessage, { verb: 'OK' | 'ERR' }>): void {
    const waiter = this.waiters.shift();
    if (!waiter) {
      const text =
        message.verb === 'ERR'
          ? `server error: ${message.reason} ${message.detail}`.trim()
          : `unexpected ${message.verb} from the server`;
      this.events.onWarning(
        new BurrowError(message.verb === 'ERR' ? 'refused' : 'protocol', text, {
          reason: message.verb === 'ERR' ? message.reason : undefined,
        }),
      );
      return;
    }
    if (message.verb === 'OK') {
      const opened = { publicPort: message.publicPort, lease: message.lease };
      waiter.onOpened(opened);
      waiter.resolve(opened);
      return;
    }
    waiter.reject(refusal(message.reason, message.detail, `server refused to expose port ${waiter.localPort}`));
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
    const reason = this.goAwayReceived
      ? new BurrowError('closed', 'the server is restarting or shutting down (GOAWAY)')
      : error;
    this.end(reason);
    this.socket?.destroy();
    this.events.onLost(reason, this.goAwayReceived);
  }

  private end(error: BurrowError): void {
    this.ended = true;
    clearTimeout(this.receiveTimer);
    clearInterval(this.pingTimer);
    this.alive.fail();
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    this.authWaiter?.reject(error);
    this.authWaiter = undefined;
  }
}
