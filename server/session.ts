// One control connection: reads EXPOSE lines, opens a tunnel for each, and carries the
// CONNECTION lines of its tunnels. When it closes, its tunnels close with it.
import type { Socket } from 'node:net';
import createDebug from 'debug';
import { closeWithLine, readControlLines } from '../shared/control-lines.ts';
import type { Answer } from '../shared/alive-check.ts';
import type { FinNotices } from '../shared/fin-notices.ts';
import { Heartbeat } from '../shared/heartbeat.ts';
import {
  formatErr,
  formatOk,
  formatSignal,
  MAX_LINE_LENGTH,
  parseClientControlLine,
  type Extension,
  type ExposeMessage,
  type HttpMessage,
} from '../shared/protocol.ts';
import { msLeft, type Deadline } from '../shared/deadline.ts';
import { peerOf } from './admit.ts';
import { AUTH_REQUIRED, ControlAuth, type AuthAnswer } from './auth.ts';
import type { Departures } from './departures.ts';
import { MAX_UNREAD_REPLY_BYTES, type Limits } from './limits.ts';
import type { Keep, SessionTunnel } from './public-ports.ts';
import type { HttpRelay } from './http/relay.ts';
import { Goodbye, whyClosed } from './goodbye.ts';
import { answerHello } from './hello.ts';
import { Replies } from './replies.ts';
import { openTunnel, refuseVisitor, Tunnel, type TunnelParts } from './tunnel.ts';

/** What a control session uses of the server. */
export interface SessionParts extends TunnelParts {
  readonly limits: Readonly<Limits>;
  /** The shared secret clients must prove they know; undefined for an open relay. */
  readonly secret: string | undefined;
  /** True once the server has begun to shut down: tunnels then close without leases. */
  isShuttingDown(): boolean;
  /** The data port actually listened on (`data-port`). */
  dataPort(): number;
  /** This server process's id for `fin-notice`. */
  readonly instance: string;
  /** FIN notices, both ways (fin-notice). */
  readonly finNotices: FinNotices;
  /** Clients that said GOAWAY, kept until their joined connections end. */
  readonly departures: Departures;
  /** HTTP tunnels by name, if the relay has an HTTP or HTTPS port. */
  readonly http: HttpRelay | undefined;
}

const debug = createDebug('burrow:server');

export class ControlSession {
  /** The client's source address: its ports count towards that address's limits. */
  readonly address: string;
  /** What the client switched on with HELLO (nothing for a minimal client). Fixed before
   * any other line, so every tunnel and visitor of this session sees the same set. */
  extensions: ReadonlySet<Extension> = new Set();
  /** The client process's id from `fin-notice=<instance>`: which later control connection
   * may carry the FIN notices of this one's data connections. */
  clientInstance: string | undefined;
  private readonly tunnels = new Set<SessionTunnel>();
  /** Leases of the tunnels this session opened: it carries their FIN notices until it closes. */
  private readonly heldLeases = new Set<string>();
  /** Lines received so far: HELLO is only valid as the first. */
  private linesReceived = 0;
  /** Our PINGs, the receive deadline (the handshake timeout for the first line, a
   * slowloris guard; then the heartbeat timeout), and "is the client still alive?". */
  private readonly heartbeat = new Heartbeat({
    sendPing: () => this.send(formatSignal('PING')),
    silent: (why) => this.replies.fail(formatErr('timeout', why)),
  });
  /** Its replies, in order; settled() once no EXPOSE is still binding a port (after
   * close(), a bind in flight finishes and its listener is closed at once). */
  readonly replies = new Replies(this);
  /** EXPOSEs accepted but not yet answered (they count towards the tunnel limit). */
  private exposing = 0;
  /** GOAWAY and BYE, either way (the server says GOAWAY when it shuts down). */
  readonly goodbye: Goodbye;
  private closed = false;
  /** The operator has been told of this client ('connected'): only then is it told that
   * it left. */
  private announced = false;
  private readonly auth: ControlAuth;

  /** `socket` has passed the door (admit.ts): it is plain TCP or TLS, as the server speaks.
   * Its first line (with a secret: its authentication) is due by `deadline`. */
  constructor(
    private readonly socket: Socket,
    private readonly parts: SessionParts,
    readonly label: string,
    deadline: Deadline,
  ) {
    this.auth = new ControlAuth(parts.secret);
    this.goodbye = new Goodbye(this, parts.departures);
    this.address = socket.remoteAddress ?? 'unknown';
    socket.on('error', (error) => debug('%s: %s', this.label, error.message));
    socket.once('close', () => this.close());
    const first = parts.limits.handshakeTimeoutMs;
    this.heartbeat.expectLineWithin(
      msLeft(deadline),
      () => `${this.auth.authenticated ? 'no line' : 'not authenticated'} within ${first} ms of connecting`,
    );
    readControlLines(socket, {
      onLine: (line) => this.onLine(line),
      onTooLong: () => this.replies.fail(formatErr('line-too-long', `limit is ${MAX_LINE_LENGTH} bytes`)),
      onEnd: () => this.close(),
    });
  }

  /** Sends one line (newline included) to the client. A client that lets our replies
   * pile up unread is cut off: it would otherwise grow our memory without bound. */
  send(line: string): void {
    if (this.closed) return;
    this.parts.observer.sent(this.label, line);
    this.socket.write(line);
    if (this.socket.writableLength > MAX_UNREAD_REPLY_BYTES) {
      debug('%s: %d reply bytes unread; closing', this.label, this.socket.writableLength);
      this.close();
    }
  }

  /** Closes the connection and every tunnel it holds; `finalLine` is sent first (an empty
   * one: just a graceful FIN). A client that did not say GOAWAY keeps its ports under
   * lease for the grace period. */
  close(finalLine?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.heartbeat.stop();
    const { ports, observer } = this.parts;
    this.goodbye.closed();
    const keep = this.keepOnClose();
    for (const lease of this.heldLeases) if (ports.holders.get(lease) === this) ports.holders.delete(lease);
    const why = whyClosed(finalLine, this.parts.isShuttingDown(), this.goodbye.leaving);
    if (!this.announced) debug('%s from %s closed before it was a client: %s', this.label, this.address, why);
    const left = this.announced
      ? { kind: 'disconnected' as const, conn: this.label, address: this.address, why, tunnels: this.tunnels.size }
      : undefined;
    // Reported once the teardown is done, so that a listener sees the ports leased or free
    // (and one that throws cannot stop it half-way); still before the leases kept, which
    // are what became of this client's ports.
    observer.clientEvents.reportAfter(left, () => {
      this.closeTunnels(keep);
      if (finalLine === undefined) this.socket.destroy();
      else {
        if (finalLine !== '') observer.sent(this.label, finalLine);
        closeWithLine(this.socket, finalLine);
      }
      const fate = keep === 'lease' ? 'are kept for its lease' : 'are free again';
      observer.event(this.label, `closed; its public ports ${fate}`);
    });
  }

  /** Tells the operator of this client, once: when it has authenticated (with a secret)
   * or sent its first HELLO or EXPOSE. Bytes from a scanner, or a wrong secret, would
   * otherwise crowd out the lines about real clients (the CLI prints 60 a minute). */
  private announce(): void {
    if (this.announced || this.closed || !this.auth.authenticated) return;
    this.announced = true;
    this.parts.observer.clientEvents.report({ kind: 'connected', conn: this.label, address: this.address });
  }

  /** What becomes of this client's ports when its connection ends: leased, unless it
   * left on purpose (or the server is closing, or leases are off). */
  private keepOnClose(): Keep {
    return this.goodbye.leaving || this.parts.isShuttingDown() || this.parts.limits.leaseGraceMs <= 0
      ? 'release'
      : 'lease';
  }

  /** False once the connection has closed. */
  get open(): boolean {
    return !this.closed;
  }

  /** Closes every tunnel; by default frees its port at once (the client is leaving on purpose). */
  closeTunnels(keep: Keep = 'release'): void {
    for (const tunnel of this.tunnels) tunnel.close(keep);
    this.tunnels.clear();
  }

  /** Answers once the client has answered a PING sent after now (false if it is gone or
   * never agreed to heartbeats): proof that a FIN it sent before was not its death. */
  confirmAlive(answer: Answer): void {
    if (this.closed || !this.extensions.has('ping')) return answer(false);
    this.heartbeat.ask(answer);
  }

  private onLine(line: string): void {
    if (this.closed || this.replies.failed) return;
    this.linesReceived++;
    this.parts.observer.received(this.label, line);
    // Until it has authenticated, the first-line deadline stands: lines do not extend it.
    if (this.auth.authenticated) this.heard();
    const parsed = parseClientControlLine(line);
    if (!parsed.ok) {
      const reply = formatErr(parsed.reason, parsed.detail);
      // A line we could not even frame means the stream cannot be trusted: close it.
      return parsed.reason === 'line-too-long' ? this.replies.fail(reply) : this.replies.refuse(reply);
    }
    const message = parsed.message;
    if (message.verb === 'HELLO') {
      if (this.linesReceived !== 1)
        return this.replies.refuse(formatErr('bad-arguments', 'HELLO must be the first line'));
      const agreed = answerHello(message, this.parts);
      ({ extensions: this.extensions, clientInstance: this.clientInstance } = agreed);
      return this.accepted(agreed.reply); // heard now with the heartbeats it agreed to
    }
    // Signals are not requests: they get no place in the reply order.
    if (message.verb === 'PING') return this.send(formatSignal('PONG'));
    if (message.verb === 'PONG') return this.heartbeat.pongReceived(); // its arrival already reset the receive deadline
    if (message.verb === 'GOAWAY') return this.goodbye.heardGoAway();
    if (message.verb === 'BYE') return this.goodbye.heardBye();
    if (message.verb === 'AUTH' || message.verb === 'PROOF') {
      const answer = message.verb === 'AUTH' ? this.auth.answerAuth() : this.auth.answerProof(message.proof);
      if (answer.refused) return this.refuseAuth(answer);
      return this.accepted(answer.line); // announced after a PROOF that was right
    }
    if (!this.auth.authenticated) return this.refuseAuth(AUTH_REQUIRED);
    if (message.verb === 'FIN') return this.parts.finNotices.received(message.id, this.clientInstance);
    if (message.verb === 'REFUSE') {
      // Not a TCP visitor: perhaps a request of one of our HTTP tunnels.
      const ours = (tunnel: SessionTunnel): boolean => this.tunnels.has(tunnel);
      return void (refuseVisitor(message.id, ours, this.parts) || this.parts.http?.refuse(message.id, ours));
    }
    this.announce(); // an EXPOSE, even one refused below: a client asked for a tunnel
    if (this.goodbye.leaving) return this.replies.refuse(goingAway());
    const { maxTunnelsPerClient } = this.parts.limits;
    if (this.tunnels.size + this.exposing >= maxTunnelsPerClient)
      return this.replies.refuse(formatErr('too-many-tunnels', `limit is ${maxTunnelsPerClient} per connection`));
    this.exposing++; // counted now, so that pipelined EXPOSEs cannot overshoot the limit
    this.heard(); // again: the connection now holds (or is opening) a tunnel
    this.replies.inOrder(() =>
      this.expose(message).finally(() => {
        this.exposing--;
        if (!this.closed) this.heard();
      }),
    );
  }

  /** Answers a HELLO, AUTH or PROOF that was accepted, in its turn. */
  private accepted(reply: string): void {
    this.replies.inOrder(() => this.send(reply));
    if (this.auth.authenticated) this.heard();
    this.announce();
  }

  /** A line arrived on an authenticated connection (or an EXPOSE was answered): re-arm
   * the receive deadline.
   * - With heartbeats (`ping`): silence for the heartbeat timeout means the client is
   *   dead; and we start our own PINGs.
   * - A minimal client never sends PING: while it holds a tunnel it may stay quiet for
   *   hours (TCP keep-alive finds it if it dies), but a connection that holds nothing is
   *   closed after the same silence. */
  private heard(): void {
    const silence = this.parts.limits.heartbeatTimeoutMs;
    if (this.extensions.has('ping')) {
      this.heartbeat.expectLineWithin(silence, () => `no line for ${silence} ms`);
      this.heartbeat.startPinging(this.parts.limits.heartbeatIntervalMs);
    } else if (this.tunnels.size + this.exposing > 0) {
      this.heartbeat.stopExpecting();
    } else {
      this.heartbeat.expectLineWithin(silence, () => `no tunnel and no line for ${silence} ms`);
    }
  }

  /** An authentication refusal: the operator hears of it, and the connection closes. */
  private refuseAuth({ line, refused }: AuthAnswer): void {
    if (refused) this.parts.observer.refused(this.label, peerOf(this.socket), refused.reason, refused.detail);
    this.replies.fail(line);
  }

  /** Opens the tunnel for one EXPOSE, in its turn, and answers. Its port counts towards
   * the server's and this address's limits from now on (see public-ports.ts). */
  private async expose(message: ExposeMessage | HttpMessage): Promise<void> {
    if (this.closed) return; // the client left before its turn
    if (this.goodbye.leaving) return this.replies.refuseNow(goingAway());
    const { http, ports, finNotices } = this.parts;
    const { localPort } = message;
    const opened =
      message.verb === 'HTTP'
        ? ((await http?.open(this, message)) ?? HTTP_NOT_ENABLED)
        : await openTunnel(this, this.parts, message, () => this.closed);
    if ('reason' in opened) return this.replies.refuseNow(formatErr(opened.reason, opened.detail));
    const { tunnel, reclaimed } = opened;
    if (!this.keep(tunnel, reclaimed)) return;
    const { publicPort, lease } = tunnel;
    if (!(tunnel instanceof Tunnel))
      return this.opened(formatOk(publicPort, lease, tunnel.url), {
        localPort,
        reclaimed,
        publicPort,
        url: tunnel.url,
      });
    // This session now carries the FIN notices of the tunnel named by its lease:
    // until it closes, even after GOAWAY has closed the tunnel itself.
    this.heldLeases.add(lease);
    ports.holders.set(lease, this);
    this.opened(formatOk(publicPort, lease), { publicPort, localPort, reclaimed });
    finNotices.wake(); // a client back after a reconnect: notices go both ways again
  }

  /** Takes a tunnel just opened, unless the client left (or said GOAWAY) while it opened:
   * then it closes again. A reclaimed one keeps the lease its client holds; a new one was
   * never told to anyone. */
  private keep(tunnel: SessionTunnel, reclaimed: boolean): boolean {
    if (this.closed || this.goodbye.leaving) {
      tunnel.close(reclaimed ? this.keepOnClose() : 'release');
      if (!this.closed) this.replies.refuseNow(goingAway());
      return false;
    }
    this.tunnels.add(tunnel);
    return true;
  }

  /** Answers the request that opened a tunnel, and tells the operator. */
  private opened(
    ok: string,
    tunnel: { publicPort: number; localPort: number; reclaimed: boolean; url?: string },
  ): void {
    this.send(ok);
    const { address, label: conn } = this;
    this.parts.observer.clientEvents.report({ kind: 'tunnel-opened', conn, address, ...tunnel });
    const where = tunnel.url ?? `public port ${tunnel.publicPort}`;
    this.parts.observer.event(conn, `${where} now forwards to the client's port ${tunnel.localPort}`);
  }

  /** A tunnel that came back to its client by its lease is no longer this session's. */
  forget(tunnel: SessionTunnel): void {
    this.tunnels.delete(tunnel);
  }
}

const HTTP_NOT_ENABLED = { reason: 'http-not-enabled', detail: 'this relay serves no HTTP tunnels' } as const;
const goingAway = (): string => formatErr('going-away', 'GOAWAY was said on this connection: no new tunnels');
