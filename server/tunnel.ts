// One exposed port: a public listener whose visitors wait in the pending map until the
// client dials back on the data port with their id.
import type net from 'node:net';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { abortSocket } from '../shared/pipe.ts';
import type { Answer } from '../shared/alive-check.ts';
import { formatAddress, formatConnection, type Extension } from '../shared/protocol.ts';
import type { ServerContext } from './context.ts';

/** The control session a tunnel belongs to, as the tunnel and its visitors see it. */
export interface TunnelSession {
  /** The client's source address: its ports count towards that address's limit. */
  readonly address: string;
  /** What the client switched on with HELLO. */
  readonly extensions: ReadonlySet<Extension>;
  /** The client process's `fin-check` instance, if it gave one. */
  readonly clientInstance: string | undefined;
  /** False once the control connection has closed. */
  readonly open: boolean;
  /** Sends a line on the control connection. */
  send(line: string): void;
  /** Answers once the client has proved it is alive (see AliveCheck). */
  confirmAlive(answer: Answer): void;
  /** The tunnel went back to its client by its lease (on another connection). */
  forget(tunnel: Tunnel): void;
}

const debug = createDebug('burrow:server');

export class Tunnel {
  private closed = false;
  /** Visitors of this tunnel still connected, waiting or joined. */
  private connections = 0;

  constructor(
    readonly publicPort: number,
    readonly localPort: number,
    /** Proof of ownership, sent with OK: presenting it later reclaims this public port.
     * It stays the same when the port is reclaimed, so it names the client's tunnel across
     * reconnects (an attempt the client gave up on cannot make its token stale). */
    readonly lease: string,
    private readonly listener: net.Server,
    /** The control session that opened it. */
    readonly session: TunnelSession,
    private readonly ctx: ServerContext,
  ) {
    listener.on('error', (error) => debug('public port %d: %s', publicPort, error.message));
    ctx.liveTunnels.set(publicPort, this);
  }

  /** A visitor connected to the public port: park it and ask the client to dial back. */
  acceptVisitor(socket: net.Socket): void {
    socket.on('error', (error) => debug('visitor on %d: %s', this.publicPort, error.message));
    const refusal = this.closed ? 'the tunnel is closed' : this.overLimit();
    if (refusal !== undefined) {
      // A reset, so the visitor sees "try later" rather than an empty reply.
      this.ctx.counters.visitorsOverLimit++;
      this.ctx.trace(`visitor`, 'event', `refused on public port ${this.publicPort}: ${refusal}`);
      abortSocket(socket);
      return;
    }
    this.ctx.track(socket);
    this.ctx.counters.visitors++;
    this.connections++;
    socket.once('close', () => this.connections--);
    const id = nanoid(); // 126 random bits: unguessable, so only the client can claim it
    this.ctx.pending.add(id, socket, this);
    const visitor = formatAddress(socket.remoteAddress, socket.remotePort);
    this.ctx.trace(
      `visitor:${id.slice(0, 6)}`,
      'event',
      `accepted from ${visitor ?? 'an unknown address'} on public port ${this.publicPort}`,
    );
    // Where the visitor connected to (this host's address as it dialed it), for the
    // client's PROXY header.
    const destination = formatAddress(socket.localAddress, socket.localPort);
    this.session.send(formatConnection(id, this.publicPort, visitor, destination));
  }

  /** Stops accepting and closes waiting visitors. The port goes back to the pool
   * ('release'), stays reserved for this tunnel's lease holder for the grace period
   * ('lease'), or passes to the tunnel that reclaims it ('handover': it stays counted).
   * Visitors already joined to a data connection are independent TCP connections and
   * live on. */
  close(keep: 'lease' | 'release' | 'handover' = 'release'): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.pending.dropOwner(this);
    // The port is free as soon as the listening socket is closed, which close() does at
    // once; its callback waits for joined visitors too, which may take hours.
    this.listener.close();
    if (this.ctx.liveTunnels.get(this.publicPort) === this) this.ctx.liveTunnels.delete(this.publicPort);
    if (keep === 'lease') {
      this.ctx.leases.hold(this.publicPort, this.lease, this.session.address);
      const graceMs = this.ctx.limits.leaseGraceMs;
      this.ctx.clientEvent({ kind: 'lease-kept', address: this.session.address, publicPort: this.publicPort, graceMs });
    } else {
      this.ctx.ports.release(this.publicPort);
      if (keep === 'release') this.ctx.quota.remove(this.session.address);
    }
    const outcome = {
      lease: 'port kept for its lease holder',
      release: 'port free',
      handover: 'port handed to the client that reclaimed it',
    };
    this.ctx.trace(`tunnel:${this.publicPort}`, 'event', `closed; ${outcome[keep]}`);
  }

  /** Why one more visitor would be too many, if it would. */
  private overLimit(): string | undefined {
    const { maxConnectionsPerTunnel, maxPendingPerTunnel, maxPending } = this.ctx.limits;
    if (this.connections >= maxConnectionsPerTunnel) return `${maxConnectionsPerTunnel} connections on this tunnel`;
    if (this.ctx.pending.countFor(this) >= maxPendingPerTunnel)
      return `${maxPendingPerTunnel} visitors already waiting here`;
    if (this.ctx.pending.size >= maxPending) return `${maxPending} visitors already waiting on the server`;
    return undefined;
  }
}
