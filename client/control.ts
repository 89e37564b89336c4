// One control connection, client side: our HELLO (hello.ts), authentication when we have
// a secret, EXPOSE requests and their replies, CONNECTION notices, the heartbeat that
// tells a silent server from a quiet one, and the goodbye (GOAWAY, then BYE each way).
// The client (client.ts) opens a new link whenever it has to reconnect.
import { once } from 'node:events';
import type net from 'node:net';
import { closeWithLine, readControlLines } from '../shared/control-lines.ts';
import { BurrowError } from '../shared/errors.ts';
import { Heartbeat } from '../shared/heartbeat.ts';
import {
  formatRefuse,
  formatSignal,
  hostPort,
  parseServerAuthLine,
  parseServerControlLine,
  type ConnectionMessage,
  type Extension,
} from '../shared/protocol.ts';
import { within } from './cancel.ts';
import { dial } from './dial.ts';
import { helloLine, readHelloAnswer, type Agreement } from './hello.ts';
import { trace, warn, type ClientEmitter } from './report.ts';
import { Requests, type Reply } from './requests.ts';
import { tlsFailure, type ClientTls } from './tls.ts';
import type { WebSocketDialer } from './websocket.ts';
import type { ClientSettings } from './types.ts';

export interface LinkOptions {
  /** This client process's id for `fin-notice`. */
  instance: string;
  tls: ClientTls | undefined;
  /** Over WebSocket instead of TCP, when the server is a ws:// or wss:// URL. */
  webSocket: WebSocketDialer | undefined;
  /** Receives every socket at once, so that its owner can close it even mid-connect. */
  track: (socket: net.Socket) => void;
  onConnection(message: ConnectionMessage): void;
  /** `FIN <id>` from the server process `instance` (fin-notice). */
  onFin(id: string, instance: string | undefined): void;
  /** The server answered our HELLO (or ignored it): `agreement` is known now. */
  onAgreed(): void;
  /** The server said GOAWAY: say BYE once no joined connection needs the link. */
  onGoAway(): void;
  /** The connection is gone (never called after close() or goAway()). `goAway`: the
   * server announced it, so this is a planned restart, not a failure. */
  onLost(error: BurrowError, goAway: boolean): void;
}

const GOING_AWAY = 'the server is restarting or shutting down (GOAWAY)';

export class ControlLink {
  private socket: net.Socket | undefined;
  /** Our requests (AUTH, PROOF, EXPOSE) and the answers that settle them. */
  readonly requests = new Requests((line) => this.send(line));
  /** What the answer to our HELLO settled; undefined until it came. */
  agreement: Agreement | undefined;
  private readonly heartbeat = new Heartbeat({
    sendPing: () => this.send(formatSignal('PING')),
    silent: (why) => this.lose(new BurrowError('timeout', why)),
  });
  /** The server said GOAWAY: it is restarting or shutting down. */
  serverLeaving = false;
  private byeSent = false;
  private byeReceived = false;
  private ended = false;
  /** Who waits for the answer to our HELLO (whenAgreed). */
  private readonly agreementWaits: (() => void)[] = [];

  constructor(
    /** Warnings and traces are the client's events. */
    private readonly client: ClientEmitter,
    private readonly settings: ClientSettings,
    private readonly options: LinkOptions,
  ) {}

  /** Connects and authenticates; rejects with `unreachable`, `tls`, `refused`, or the
   * reason of `signal` (the client's) if it is aborted first. */
  async connect(signal: AbortSignal): Promise<void> {
    const { server: host, controlPort: port, connectTimeoutMs: timeoutMs } = this.settings;
    const { tls, track, webSocket } = this.options;
    // Stopped while dialing (the dial fails) or closed meanwhile (it succeeds): the same error.
    const socket = await dial('burrow server', host, port, { timeoutMs, signal, track, tls, webSocket }).catch(
      (error: unknown) => {
        if (!signal.aborted) throw error;
      },
    );
    if (!socket || this.ended) {
      socket?.destroy();
      throw new BurrowError('closed', 'the client was closed while connecting');
    }
    this.socket = socket;
    const where = webSocket ? webSocket.where('control') : `${hostPort(host, port)}${tls ? ' over TLS' : ''}`;
    trace(this.client, 'control', 'event', `connected to ${where}`);
    socket.once('close', () => this.lose(new BurrowError('closed', 'lost the connection to the server')));
    // A server that rejects our client certificate says so after the TLS handshake.
    socket.on('error', (error) => {
      const refused = tlsFailure(error, 'the burrow server');
      if (refused) this.lose(refused);
    });
    readControlLines(socket, {
      onLine: (line) => this.onLine(line),
      onTooLong: () => this.lose(new BurrowError('line-too-long', 'the server sent an over-long line')),
      onEnd: () => this.lose(new BurrowError('closed', 'the server closed the connection')),
    });
    // Offered first, and no round trip spent on it: see hello.ts.
    this.send(helloLine(this.options.instance));
    if (this.settings.secret !== undefined) await this.requests.authenticate(this.settings.secret);
  }

  /** Resolves once the server has answered our HELLO (or ignored it), or the link ended. */
  whenAgreed(): Promise<void> {
    if (this.agreement || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.agreementWaits.push(resolve));
  }

  /** Both sides speak `extension` on this connection. */
  speaks(extension: Extension): boolean {
    return this.agreement?.extensions.has(extension) ?? false;
  }

  /** False once the connection has ended, for whatever reason. */
  get open(): boolean {
    return !this.ended && this.socket !== undefined;
  }

  /** Turns a visitor away at once (REFUSE); false if this server cannot be told. */
  refuse(id: string): boolean {
    if (this.ended || !this.speaks('refuse')) return false;
    this.send(formatRefuse(id));
    return true;
  }

  /** Leaves on purpose: tells the server, which frees our ports at once. A server that
   * speaks GOAWAY keeps the connection (heartbeats go on, and the FIN notices of our
   * joined connections can still pass) until finish(); any other server just sees it end. */
  goAway(): void {
    if (this.ended || !this.socket) return this.close();
    if (!this.speaks('goaway')) return this.finish();
    this.send(formatSignal('GOAWAY'));
  }

  /** Says BYE (once, after a GOAWAY either way): none of our joined connections is left. */
  bye(): void {
    if (this.ended || this.byeSent) return;
    this.byeSent = true;
    this.send(formatSignal('BYE'));
    this.afterByes();
  }

  /** Resolves once the connection has closed, or after `ms`. */
  async closedWithin(ms: number): Promise<void> {
    if (!this.socket || this.socket.destroyed) return;
    await within(once(this.socket, 'close'), ms).catch(() => {});
  }

  /** Closes gracefully (a FIN), lingering at most LINGER_MS for the server's. */
  finish(): void {
    this.end(new BurrowError('closed', 'the client is closing'), true);
  }

  /** Closes at once, without telling the server. */
  close(): void {
    this.end(new BurrowError('closed', 'the client was closed'), false);
  }

  private onLine(line: string): void {
    if (this.ended) return;
    trace(this.client, 'control', 'recv', line);
    this.heard();
    if (!this.agreement && this.onHelloAnswer(line)) return;
    const { authenticating } = this.requests;
    const parsed = authenticating ? parseServerAuthLine(line) : parseServerControlLine(line);
    if (!parsed.ok) {
      // A newer server may say things we do not know yet: skip them, keep serving.
      if (!authenticating && parsed.reason === 'unknown-verb')
        return warn(this.client, new BurrowError('protocol', `ignored a line from the server: ${parsed.detail}`));
      // A known verb we cannot parse, or bytes that are not a line at all: this server
      // cannot be trusted with our tunnels.
      const when = authenticating ? ' while we authenticated' : '';
      const what = `${parsed.reason}: ${parsed.detail}`;
      return this.lose(new BurrowError('protocol', `the server sent an invalid line${when} (${what})`));
    }
    const message = parsed.message;
    switch (message.verb) {
      case 'CONNECTION':
        return this.options.onConnection(message);
      case 'PING':
        return this.send(formatSignal('PONG'));
      case 'PONG':
        return this.heartbeat.pongReceived(); // its arrival also re-armed the receive deadline
      case 'FIN':
        return this.options.onFin(message.id, this.agreement?.instance);
      case 'GOAWAY':
        this.serverLeaving = true;
        return this.options.onGoAway(); // the client says BYE once nothing joined needs us
      case 'BYE':
        this.byeReceived = true;
        return this.afterByes();
      case 'HELLO':
        return warn(
          this.client,
          new BurrowError('protocol', 'ignored a HELLO from the server that answers nothing we asked'),
        );
      default:
        if (this.requests.answer(message)) return;
        return warn(this.client, unexpected(message));
    }
  }

  /** The first line after our HELLO. Returns true if it was the answer (consumed). */
  private onHelloAnswer(line: string): boolean {
    const answer = readHelloAnswer(line, hostPort(this.settings.server, this.settings.controlPort));
    if (answer instanceof BurrowError) {
      this.lose(answer);
      return true;
    }
    this.agreement = answer.agreement;
    for (const resolve of this.agreementWaits.splice(0)) resolve();
    if (this.speaks('ping')) {
      this.heard();
      this.heartbeat.startPinging(this.settings.heartbeatIntervalMs);
    }
    this.options.onAgreed();
    return answer.answer;
  }

  /** A line arrived: with heartbeats, the server has another timeout to say something. */
  private heard(): void {
    const ms = this.settings.heartbeatTimeoutMs;
    if (this.speaks('ping')) this.heartbeat.expectLineWithin(ms, () => `the server has been silent for ${ms / 1000} s`);
  }

  /** Both BYEs said: the connection has done its last job and closes. After the server's
   * GOAWAY it is reported lost, as a planned restart (the client reconnects later). */
  private afterByes(): void {
    if (!this.byeSent || !this.byeReceived) return;
    if (this.serverLeaving) this.lose(new BurrowError('closed', GOING_AWAY), true);
    else this.finish();
  }

  /** Sends one line (newline included), unless the connection has ended. */
  send(line: string): void {
    if (this.ended || !this.socket) return;
    trace(this.client, 'control', 'send', line.trimEnd());
    this.socket.write(line);
  }

  /** The connection failed (or, `graceful`, has done its job): settle everything and
   * tell the client, once. */
  private lose(error: BurrowError, graceful = false): void {
    if (this.ended) return;
    const reason = this.serverLeaving ? new BurrowError('closed', GOING_AWAY) : error;
    this.end(reason, graceful);
    this.options.onLost(reason, this.serverLeaving);
  }

  /** Ends the link the first time (every request fails with `reason`), and closes the
   * socket: with a FIN if `graceful` and this is the first end, else at once. */
  private end(reason: BurrowError, graceful: boolean): void {
    if (!this.ended) {
      this.ended = true;
      this.heartbeat.stop();
      for (const resolve of this.agreementWaits.splice(0)) resolve();
      this.requests.close(reason);
      if (graceful && this.socket) return closeWithLine(this.socket, '');
    }
    this.socket?.destroy();
  }
}

/** An answer nobody asked for: the server's words, kept as a warning. */
function unexpected(reply: Reply): BurrowError {
  if (reply.verb !== 'ERR') return new BurrowError('protocol', `unexpected ${reply.verb} from the server`);
  const text = `server error: ${reply.reason} ${reply.detail}`.trim();
  return new BurrowError('refused', text, { reason: reply.reason });
}
