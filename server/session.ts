// One control connection: reads EXPOSE lines, opens a tunnel for each, and carries the
// CONNECTION lines of its tunnels. When it closes, its tunnels close with it.
import type { Socket } from 'node:net';
import createDebug from 'debug';
import { closeWithLine, readControlLines } from '../shared/control-lines.ts';
import { formatErr, formatOk, formatSignal, MAX_LINE_LENGTH, parseClientControlLine } from '../shared/protocol.ts';
import type { ServerContext } from './context.ts';
import { sameToken } from '../shared/secret.ts';
import { msLeft, peerOf } from './admit.ts';
import { ControlAuth, type AuthAnswer } from './auth.ts';
import { MAX_ERRORS_PER_CLIENT, MAX_UNREAD_REPLY_BYTES } from './limits.ts';
import { PortError, portOf } from './ports.ts';
import { Tunnel } from './tunnel.ts';

const debug = createDebug('burrow:server');

export class ControlSession {
  private readonly tunnels = new Set<Tunnel>();
  /** Replies go out strictly in the order their lines arrived: each step waits for the
   * last, even while an early EXPOSE is still binding its port. */
  private replies: Promise<void> = Promise.resolve();
  /** EXPOSEs accepted but not yet answered (they count towards the tunnel limit). */
  private exposing = 0;
  /** Refused lines, counted as they arrive and as their replies are sent (see refuse). */
  private refusedSeen = 0;
  private refusedInTurn = 0;
  /** Deadline for the next line: the handshake timeout for the first one (slowloris
   * guard), then the heartbeat timeout (a frozen or unplugged client). */
  private receiveTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  /** The client said GOAWAY: it is leaving on purpose, so its ports need no lease. */
  private leaving = false;
  private closed = false;
  /** Set once the connection is condemned: later lines are ignored, the close is queued. */
  private failed = false;
  private readonly auth: ControlAuth;

  /** `socket` has passed the door (admit.ts): it is plain TCP or TLS, as the server speaks.
   * Its first line (with a secret: its authentication) is due by `deadline`. */
  constructor(
    private readonly socket: Socket,
    private readonly ctx: ServerContext,
    readonly label: string,
    deadline: number,
  ) {
    this.auth = new ControlAuth(ctx.secret);
    socket.on('error', (error) => debug('%s: %s', this.label, error.message));
    socket.once('close', () => this.close());
    const first = ctx.limits.handshakeTimeoutMs;
    this.expectLineWithin(msLeft(deadline), () => `${this.auth.authenticated ? 'no line' : 'not authenticated'} within ${first} ms of connecting`);
    readControlLines(socket, {
      onLine: (line) => this.onLine(line),
      onTooLong: () => this.fail(formatErr('line-too-long', `limit is ${MAX_LINE_LENGTH} bytes`)),
      onEnd: () => this.close(),
    });
  }

  /** Sends one line (newline included) to the client. A client that lets our replies
   * pile up unread is cut off: it would otherwise grow our memory without bound. */
  send(line: string): void {
    if (this.closed) return;
    this.ctx.trace(this.label, 'send', line.trimEnd());
    this.socket.write(line);
    if (this.socket.writableLength > MAX_UNREAD_REPLY_BYTES) {
      debug('%s: %d reply bytes unread; closing', this.label, this.socket.writableLength);
      this.close();
    }
  }

  /** Closes the connection and every tunnel it holds; `finalLine` is sent first. A client
   * that did not say GOAWAY keeps its ports under lease for the grace period. */
  close(finalLine?: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.receiveTimer);
    clearInterval(this.pingTimer);
    const keep = this.leaving || this.ctx.shuttingDown || this.ctx.limits.leaseGraceMs <= 0 ? 'release' : 'lease';
    for (const tunnel of this.tunnels) tunnel.close(keep);
    this.tunnels.clear();
    if (finalLine === undefined) {
      this.socket.destroy();
    } else {
      this.ctx.trace(this.label, 'send', finalLine.trimEnd());
      closeWithLine(this.socket, finalLine);
    }
    this.ctx.trace(this.label, 'event', keep === 'lease' ? 'closed; its public ports are kept for its lease' : 'closed; its public ports are free again');
  }

  /** The server is shutting down: tell the client (so it reconnects later rather than
   * fail) and close, releasing the ports. */
  goAway(): void {
    this.leaving = true;
    this.close(formatSignal('GOAWAY'));
  }

  /** Resolves when no EXPOSE of this session is still binding a port (after close(), a
   * bind in flight finishes and its listener is closed at once). */
  settled(): Promise<void> {
    return this.replies;
  }

  private onLine(line: string): void {
    if (this.closed || this.failed) return;
    this.ctx.trace(this.label, 'recv', line);
    // Until it has authenticated, the first-line deadline stands: lines do not extend it.
    if (this.auth.authenticated) this.heard();
    const parsed = parseClientControlLine(line);
    if (!parsed.ok) {
      // A line we could not even frame means the stream cannot be trusted: close it.
      if (parsed.reason === 'line-too-long') this.fail(formatErr(parsed.reason, parsed.detail));
      else this.refuse(formatErr(parsed.reason, parsed.detail));
      return;
    }
    const message = parsed.message;
    // Signals are not requests: they get no place in the reply order.
    if (message.verb === 'PING') return this.send(formatSignal('PONG'));
    if (message.verb === 'PONG') return; // its arrival already reset the receive deadline
    if (message.verb === 'GOAWAY') {
      this.leaving = true; // the client closes next; its ports need no lease
      return;
    }
    if (message.verb === 'AUTH' || message.verb === 'PROOF') {
      const answer = message.verb === 'AUTH' ? this.auth.answerAuth() : this.auth.answerProof(message.proof);
      if (answer.refused) return this.refuseAuth(answer);
      this.inOrder(() => this.send(answer.line));
      if (this.auth.authenticated) this.heard();
      return;
    }
    if (!this.auth.authenticated) return this.refuseAuth(ControlAuth.required());
    const { maxTunnelsPerClient, maxTunnels } = this.ctx.limits;
    if (this.tunnels.size + this.exposing >= maxTunnelsPerClient) {
      this.refuse(formatErr('too-many-tunnels', `limit is ${maxTunnelsPerClient} per connection`));
      return;
    }
    if (!this.ctx.reserveTunnel()) {
      this.refuse(formatErr('server-full', `the server holds its limit of ${maxTunnels} tunnels`));
      return;
    }
    this.exposing++; // counted now, so that pipelined EXPOSEs cannot overshoot the limit
    this.inOrder(() => this.expose(message.localPort, message.remotePort, message.lease).finally(() => this.exposing--));
  }

  /** A line arrived on an authenticated connection: the client is alive, so re-arm the
   * heartbeat deadline, and start our own PINGs. */
  private heard(): void {
    const silence = this.ctx.limits.heartbeatTimeoutMs;
    this.expectLineWithin(silence, () => `no line for ${silence} ms`);
    this.pingTimer ??= setInterval(() => this.send(formatSignal('PING')), this.ctx.limits.heartbeatIntervalMs);
  }

  /** (Re)arms the receive deadline: no line by then and the client is dead to us. */
  private expectLineWithin(ms: number, why: () => string): void {
    clearTimeout(this.receiveTimer);
    this.receiveTimer = setTimeout(() => this.fail(formatErr('timeout', why())), ms);
  }

  /** Answers a refused line in its turn; past the error budget the answer is
   * `too-many-errors` and the connection closes. */
  private refuse(reply: string): void {
    // Counted on arrival too, so that a flood of bad lines stops being read at once
    // (at most the budget's worth of refusals can then wait in the queue).
    if (++this.refusedSeen > MAX_ERRORS_PER_CLIENT) this.failed = true;
    this.inOrder(() => this.refuseNow(reply));
  }

  /** Sends a refusal whose turn has come. Counting in turn (not on arrival) decides which
   * reply becomes `too-many-errors`: an EXPOSE refused only after binding counts in its
   * own place among pipelined lines. */
  private refuseNow(reply: string): void {
    if (++this.refusedInTurn > MAX_ERRORS_PER_CLIENT) {
      this.failed = true;
      this.close(formatErr('too-many-errors', `more than ${MAX_ERRORS_PER_CLIENT} refused lines`));
    } else {
      this.send(reply);
    }
  }

  /** An authentication refusal: the operator hears of it, and the connection closes. */
  private refuseAuth({ line, refused }: AuthAnswer): void {
    if (refused) this.ctx.refused(this.label, peerOf(this.socket), refused.reason, refused.detail);
    this.fail(line);
  }

  /** Stops reading and closes with `finalLine` once earlier replies have been sent. */
  private fail(finalLine: string): void {
    if (this.failed) return;
    this.failed = true;
    this.inOrder(() => this.close(finalLine));
  }

  private inOrder(step: () => unknown): void {
    this.replies = this.replies.then(async () => void (await step())).catch((error: unknown) => {
      // Not a refusal we know how to word: log it and drop this client, not the server.
      debug('%s: %O', this.label, error);
      this.close();
    });
  }

  /** Opens the tunnel for one EXPOSE (its reservation was taken by onLine) and answers. */
  private async expose(localPort: number, remotePort: number, lease: string | undefined): Promise<void> {
    let tunnel: Tunnel | undefined;
    let listener;
    try {
      if (this.closed) throw new PortError('no-free-port', 'the client has gone');
      if (lease !== undefined) this.reclaim(remotePort, lease);
      listener = await this.ctx.ports.listen(
        remotePort,
        (visitor) => (tunnel ? tunnel.acceptVisitor(visitor) : visitor.destroy()),
        () => this.closed,
      );
    } catch (error) {
      this.ctx.releaseTunnel();
      if (!(error instanceof PortError)) throw error;
      this.refuseNow(formatErr(error.reason, error.message));
      return;
    }
    const publicPort = portOf(listener);
    // From here the tunnel owns the reservation and gives it back when it closes.
    tunnel = new Tunnel(publicPort, localPort, listener, (line) => this.send(line), this.ctx);
    if (this.closed) {
      tunnel.close(); // the client left while we were binding
      return;
    }
    this.tunnels.add(tunnel);
    this.send(formatOk(publicPort, tunnel.lease));
    this.ctx.trace(this.label, 'event', `public port ${publicPort} now forwards to the client's port ${localPort}`);
  }

  /** A client presenting the lease of `port` gets it back: from a lease kept after its
   * drop, or from a tunnel of its old connection that the server has not yet seen die.
   * Without a lease, or with a wrong one, the port stays taken (listen() refuses). */
  private reclaim(port: number, lease: string): void {
    const live = this.ctx.liveTunnels.get(port);
    if (live && sameToken(live.lease, lease)) {
      // The old connection is a zombie (or this one asks again): this client owns the port.
      live.close('release');
      this.tunnels.delete(live);
      return;
    }
    if (!live && this.ctx.leases.claim(port, lease) === 'claimed') this.ctx.ports.release(port);
  }
}
