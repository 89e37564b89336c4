// One control connection: reads EXPOSE lines, opens a tunnel for each, and carries the
// CONNECTION lines of its tunnels. When it closes, its tunnels close with it.
import type { Socket } from 'node:net';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { closeWithLine, readControlLines } from '../shared/control-lines.ts';
import type { Answer } from '../shared/alive-check.ts';
import { Heartbeat } from '../shared/heartbeat.ts';
import { abortSocket } from '../shared/pipe.ts';
import {
  agreeOn,
  formatErr,
  formatHello,
  formatOk,
  formatSignal,
  MAX_LINE_LENGTH,
  parseClientControlLine,
  type Extension,
} from '../shared/protocol.ts';
import type { ServerContext } from './context.ts';
import { peerOf } from './admit.ts';
import { msLeft, type Deadline } from '../shared/deadline.ts';
import { ControlAuth, type AuthAnswer } from './auth.ts';
import type { ClientEventLog } from './client-events.ts';
import { MAX_ERRORS_PER_CLIENT, MAX_UNREAD_REPLY_BYTES } from './limits.ts';
import { PortError, portOf } from './ports.ts';
import { reclaimPort } from './reclaim.ts';
import { Tunnel } from './tunnel.ts';

const debug = createDebug('burrow:server');

export class ControlSession {
  /** The client's source address: its ports count towards that address's limits. */
  readonly address: string;
  /** What the client switched on with HELLO (nothing for a minimal client). Fixed before
   * any other line, so every tunnel and visitor of this session sees the same set. */
  extensions: ReadonlySet<Extension> = new Set();
  /** The client process's id from `fin-check=<instance>`: which later control connection
   * may vouch for this one's data connections. */
  clientInstance: string | undefined;
  private readonly tunnels = new Set<Tunnel>();
  /** Leases of the tunnels this session opened (see holdLease). */
  private readonly heldLeases = new Set<string>();
  /** Lines received so far: HELLO is only valid as the first. */
  private linesReceived = 0;
  /** Our PINGs, the receive deadline (the handshake timeout for the first line, a
   * slowloris guard; then the heartbeat timeout), and "is the client still alive?". */
  private readonly heartbeat = new Heartbeat({
    sendPing: () => this.send(formatSignal('PING')),
    silent: (why) => this.fail(formatErr('timeout', why)),
  });
  /** Replies go out strictly in the order their lines arrived: each step waits for the
   * last, even while an early EXPOSE is still binding its port. */
  private replies: Promise<void> = Promise.resolve();
  /** EXPOSEs accepted but not yet answered (they count towards the tunnel limit). */
  private exposing = 0;
  /** Refused lines, counted as they arrive and as their replies are sent (see refuse). */
  private refusedSeen = 0;
  private refusedInTurn = 0;
  /** The client said GOAWAY (or we did): its ports need no lease. */
  private leaving = false;
  /** BYE, each way: none of that side's joined connections is left. */
  private byeSent = false;
  private byeReceived = false;
  private closed = false;
  /** The operator has been told of this client ('connected'): only then is it told that
   * it left. */
  private announced = false;
  /** Set once the connection is condemned: later lines are ignored, the close is queued. */
  private failed = false;
  private readonly auth: ControlAuth;

  /** `socket` has passed the door (admit.ts): it is plain TCP or TLS, as the server speaks.
   * Its first line (with a secret: its authentication) is due by `deadline`. */
  constructor(
    private readonly socket: Socket,
    private readonly ctx: ServerContext,
    readonly label: string,
    deadline: Deadline,
    /** The server's 'client' events, held back while this session tears down. */
    private readonly events: ClientEventLog,
  ) {
    this.auth = new ControlAuth(ctx.secret);
    this.address = socket.remoteAddress ?? 'unknown';
    socket.on('error', (error) => debug('%s: %s', this.label, error.message));
    socket.once('close', () => this.close());
    const first = ctx.limits.handshakeTimeoutMs;
    this.heartbeat.expectLineWithin(
      msLeft(deadline),
      () => `${this.auth.authenticated ? 'no line' : 'not authenticated'} within ${first} ms of connecting`,
    );
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

  /** Closes the connection and every tunnel it holds; `finalLine` is sent first (an empty
   * one: just a graceful FIN). A client
   * that did not say GOAWAY keeps its ports under lease for the grace period. */
  close(finalLine?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.heartbeat.stop();
    this.ctx.departures.forget(this.clientInstance, this);
    const keep = this.keepOnClose();
    for (const lease of this.heldLeases)
      if (this.ctx.leaseHolders.get(lease) === this) this.ctx.leaseHolders.delete(lease);
    const why = this.why(finalLine);
    if (!this.announced) debug('%s from %s closed before it was a client: %s', this.label, this.address, why);
    const left = this.announced
      ? { kind: 'disconnected' as const, conn: this.label, address: this.address, why, tunnels: this.tunnels.size }
      : undefined;
    // Reported once the teardown is done, so that a listener sees the ports leased or free
    // (and one that throws cannot stop it half-way); still before the leases kept, which
    // are what became of this client's ports.
    this.events.reportAfter(left, () => {
      for (const tunnel of this.tunnels) tunnel.close(keep);
      this.tunnels.clear();
      if (finalLine === undefined) {
        this.socket.destroy();
      } else {
        if (finalLine !== '') this.ctx.trace(this.label, 'send', finalLine.trimEnd());
        closeWithLine(this.socket, finalLine);
      }
      this.ctx.trace(
        this.label,
        'event',
        keep === 'lease'
          ? 'closed; its public ports are kept for its lease'
          : 'closed; its public ports are free again',
      );
    });
  }

  /** Tells the operator of this client, once: when it has authenticated (with a secret)
   * or sent its first HELLO or EXPOSE. Bytes from a scanner, or a wrong secret, would
   * otherwise crowd out the lines about real clients (the CLI prints 60 a minute). */
  private announce(): void {
    if (this.announced || this.closed || !this.auth.authenticated) return;
    this.announced = true;
    this.ctx.clientEvent({ kind: 'connected', conn: this.label, address: this.address });
  }

  /** What becomes of this client's ports when its connection ends: leased, unless it
   * left on purpose (or the server is closing, or leases are off). */
  private keepOnClose(): 'lease' | 'release' {
    return this.leaving || this.ctx.shuttingDown || this.ctx.limits.leaseGraceMs <= 0 ? 'release' : 'lease';
  }

  /** Why the connection ends, in a word or two, for the operator. */
  private why(finalLine: string | undefined): string {
    if (finalLine?.startsWith('ERR ')) return finalLine.split(' ')[1]?.trimEnd() ?? 'error';
    if (this.ctx.shuttingDown) return 'server shutting down';
    if (this.leaving) return 'goaway';
    return 'connection closed';
  }

  /** The server is shutting down: tell the client (so it reconnects later rather than
   * fail) and free its ports. With a client that speaks GOAWAY the connection stays until
   * both sides have said BYE (joined connections ended, their FINs checked); a minimal
   * one sees it end now. */
  goAway(): void {
    this.leaving = true;
    if (!this.extensions.has('goaway')) return this.close('');
    this.send(formatSignal('GOAWAY'));
    this.depart();
  }

  /** Says BYE (once): none of our joined connections with this client is left. Both
   * BYEs said, the connection has done its last job. */
  bye(): void {
    if (this.closed || this.byeSent || !this.extensions.has('goaway')) return;
    this.byeSent = true;
    this.send(formatSignal('BYE'));
    if (this.byeReceived) this.close('');
  }

  /** A GOAWAY either way: free the ports now (no lease), and say BYE once our joined
   * connections with this client have ended, since until then its heartbeat is what
   * checks their FINs. */
  private depart(): void {
    this.leaving = true;
    this.releaseTunnels();
    this.ctx.departures.leave(this.extensions.has('fin-check') ? this.clientInstance : undefined, this);
  }

  /** False once the connection has closed. */
  get open(): boolean {
    return !this.closed;
  }

  /** Closes every tunnel and frees its port at once: the client is leaving on purpose. */
  private releaseTunnels(): void {
    for (const tunnel of this.tunnels) tunnel.close('release');
    this.tunnels.clear();
  }

  /** Answers once the client has answered a PING sent after now (false if it is gone or
   * never agreed to heartbeats): proof that a FIN it sent before was not its death. */
  confirmAlive(answer: Answer): void {
    if (this.closed || !this.extensions.has('ping')) return answer(false);
    this.heartbeat.ask(answer);
  }

  /** Resolves when no EXPOSE of this session is still binding a port (after close(), a
   * bind in flight finishes and its listener is closed at once). */
  settled(): Promise<void> {
    return this.replies;
  }

  private onLine(line: string): void {
    if (this.closed || this.failed) return;
    this.linesReceived++;
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
    if (message.verb === 'HELLO') {
      if (this.linesReceived !== 1) return this.refuse(formatErr('bad-arguments', 'HELLO must be the first line'));
      // fin-check needs the client's instance: without one it is not agreed.
      const offered =
        message.values['fin-check'] === undefined
          ? message.extensions.filter((name) => name !== 'fin-check')
          : message.extensions;
      this.extensions = agreeOn(offered);
      this.clientInstance = this.extensions.has('fin-check') ? message.values['fin-check'] : undefined;
      // fin-check=<us>: the client may check, after a reconnect, that it reached us again.
      const values = { 'fin-check': this.ctx.instance, 'data-port': String(this.ctx.dataPort) };
      this.inOrder(() => this.send(formatHello(this.extensions, values)));
      if (this.auth.authenticated) this.heard(); // now with the heartbeats it agreed to
      this.announce();
      return;
    }
    // Signals are not requests: they get no place in the reply order.
    if (message.verb === 'PING') return this.send(formatSignal('PONG'));
    if (message.verb === 'PONG') return this.heartbeat.pongReceived(); // its arrival already reset the receive deadline
    if (message.verb === 'GOAWAY') return this.depart(); // the client is leaving on purpose
    if (message.verb === 'BYE') {
      this.byeReceived = true;
      if (this.byeSent) this.close('');
      return;
    }
    if (message.verb === 'AUTH' || message.verb === 'PROOF') {
      const answer = message.verb === 'AUTH' ? this.auth.answerAuth() : this.auth.answerProof(message.proof);
      if (answer.refused) return this.refuseAuth(answer);
      this.inOrder(() => this.send(answer.line));
      if (this.auth.authenticated) this.heard();
      this.announce(); // after a PROOF that was right
      return;
    }
    if (!this.auth.authenticated) return this.refuseAuth(ControlAuth.required());
    if (message.verb === 'REFUSE') return this.refuseVisitor(message.id);
    this.announce(); // an EXPOSE, even one refused below: a client asked for a tunnel
    if (this.leaving) return this.refuse(goingAway());
    const { maxTunnelsPerClient } = this.ctx.limits;
    if (this.tunnels.size + this.exposing >= maxTunnelsPerClient) {
      this.refuse(formatErr('too-many-tunnels', `limit is ${maxTunnelsPerClient} per connection`));
      return;
    }
    this.exposing++; // counted now, so that pipelined EXPOSEs cannot overshoot the limit
    this.heard(); // again: the connection now holds (or is opening) a tunnel
    this.inOrder(() =>
      this.expose(message.localPort, message.remotePort, message.lease).finally(() => {
        this.exposing--;
        if (!this.closed) this.heard();
      }),
    );
  }

  /** A line arrived on an authenticated connection (or an EXPOSE was answered): re-arm
   * the receive deadline.
   * - With heartbeats (`ping`): silence for the heartbeat timeout means the client is
   *   dead; and we start our own PINGs.
   * - A minimal client never sends PING: while it holds a tunnel it may stay quiet for
   *   hours (TCP keep-alive finds it if it dies), but a connection that holds nothing is
   *   closed after the same silence. */
  private heard(): void {
    const silence = this.ctx.limits.heartbeatTimeoutMs;
    if (this.extensions.has('ping')) {
      this.heartbeat.expectLineWithin(silence, () => `no line for ${silence} ms`);
      this.heartbeat.startPinging(this.ctx.limits.heartbeatIntervalMs);
    } else if (this.tunnels.size + this.exposing > 0) {
      this.heartbeat.stopExpecting();
    } else {
      this.heartbeat.expectLineWithin(silence, () => `no tunnel and no line for ${silence} ms`);
    }
  }

  /** REFUSE: the client will not serve this visitor (it is at its own limit): reset it now
   * rather than let it wait for the visitor timeout. Only this session's visitors. */
  private refuseVisitor(id: string): void {
    const visitor = this.ctx.pending.takeIf(id, (tunnel) => this.tunnels.has(tunnel));
    if (!visitor) return; // gone already, or not ours: nothing to do, nothing to reveal
    this.ctx.counters.visitorsRefused++;
    this.ctx.trace(`visitor:${id.slice(0, 6)}`, 'event', 'reset: the client turned it away (REFUSE)');
    abortSocket(visitor.socket);
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
    this.replies = this.replies
      .then(async () => void (await step()))
      .catch((error: unknown) => {
        // Not a refusal we know how to word: log it and drop this client, not the server.
        debug('%s: %O', this.label, error);
        this.close();
      });
  }

  /** Opens the tunnel for one EXPOSE, in its turn, and answers. Its port counts towards
   * the server's and this address's limits from now on (see quota.ts). */
  private async expose(localPort: number, remotePort: number, lease: string | undefined): Promise<void> {
    if (this.closed) return; // the client left before its turn
    if (this.leaving) return this.refuseNow(goingAway());
    // A reclaimed port is counted already, for whoever held it: it moves to us, and keeps
    // its lease token. Any other port is one more for the limits.
    const reclaimed = lease === undefined ? 'no' : await reclaimPort(this.ctx, this, remotePort, lease);
    if (reclaimed === 'in-use') {
      return this.refuseNow(
        formatErr(
          'port-in-use',
          `port ${remotePort} is in use by another live client with the same lease (two clients sharing one lease file?)`,
        ),
      );
    }
    if (reclaimed !== 'no') {
      this.ctx.quota.move(reclaimed.address, this.address);
    } else {
      const refusal = this.ctx.quota.tryAdd(this.address);
      if (refusal) return this.refuseNow(formatErr(refusal.reason, refusal.detail));
    }
    // eslint-disable-next-line prefer-const -- assigned once the port is bound; the accept handler needs it before
    let tunnel: Tunnel | undefined;
    let listener;
    try {
      listener = await this.ctx.ports.listen(
        remotePort,
        (visitor) => (tunnel ? tunnel.acceptVisitor(visitor) : visitor.destroy()),
        () => this.closed,
      );
    } catch (error) {
      this.ctx.quota.remove(this.address);
      if (!(error instanceof PortError)) throw error;
      this.refuseNow(formatErr(error.reason, this.leasedDetail(remotePort) ?? error.message));
      return;
    }
    const publicPort = portOf(listener);
    // From here the tunnel owns the port's place in the limits and gives it back when it closes.
    tunnel = new Tunnel(
      publicPort,
      localPort,
      reclaimed !== 'no' && lease !== undefined ? lease : nanoid(),
      listener,
      this,
      this.ctx,
    );
    if (this.closed || this.leaving) {
      // The client left (or said GOAWAY) while we were binding. A reclaimed port keeps
      // the lease its client holds; a new one was never told to anyone.
      tunnel.close(reclaimed !== 'no' ? this.keepOnClose() : 'release');
      if (!this.closed) this.refuseNow(goingAway());
      return;
    }
    this.tunnels.add(tunnel);
    this.holdLease(tunnel.lease);
    this.send(formatOk(publicPort, tunnel.lease));
    this.ctx.finWaits.wake(); // a client back after a reconnect can vouch for its old FINs
    this.ctx.clientEvent({
      kind: 'tunnel-opened',
      conn: this.label,
      address: this.address,
      publicPort,
      localPort,
      reclaimed: reclaimed !== 'no',
    });
    this.ctx.trace(this.label, 'event', `public port ${publicPort} now forwards to the client's port ${localPort}`);
  }

  /** Why a requested port is taken, when it is kept for a client that went away: a
   * restarted client sees why, and for how long. */
  private leasedDetail(port: number): string | undefined {
    const left = this.ctx.leases.remainingMs(port);
    if (left === undefined) return undefined;
    return `port ${port} is kept for the client that held it (a lease), for ${Math.ceil(left / 1000)} s more`;
  }

  /** This session is now the one to ask about the tunnel named by `lease` (fin-check):
   * until it closes, even after GOAWAY has closed the tunnel itself. */
  private holdLease(lease: string): void {
    this.heldLeases.add(lease);
    this.ctx.leaseHolders.set(lease, this);
  }

  /** A tunnel that came back to its client by its lease is no longer this session's. */
  forget(tunnel: Tunnel): void {
    this.tunnels.delete(tunnel);
  }
}

const goingAway = (): string => formatErr('going-away', 'GOAWAY was said on this connection: no new tunnels');
