// One exposed port: a public listener whose visitors wait in the pending map until the
// client dials back on the data port with their id.
import type net from 'node:net';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { abortSocket } from '../shared/pipe.ts';
import { formatAddress, formatConnection } from '../shared/protocol.ts';
import type { ServerContext } from './context.ts';

const debug = createDebug('burrow:server');

export class Tunnel {
  /** Proof of ownership, sent with OK: presenting it later reclaims this public port. */
  readonly lease = nanoid();
  private closed = false;
  /** Visitors of this tunnel still connected, waiting or joined. */
  private connections = 0;

  constructor(
    readonly publicPort: number,
    readonly localPort: number,
    private readonly listener: net.Server,
    /** Sends a line on the owning control connection. */
    private readonly sendControl: (line: string) => void,
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
    this.ctx.trace(`visitor:${id.slice(0, 6)}`, 'event', `accepted from ${visitor ?? 'an unknown address'} on public port ${this.publicPort}`);
    // Where the visitor connected to (this host's address as it dialed it), for the
    // client's PROXY header.
    const destination = formatAddress(socket.localAddress, socket.localPort);
    this.sendControl(formatConnection(id, this.publicPort, visitor, destination));
  }

  /** Stops accepting and closes waiting visitors. The port goes back to the pool, or with
   * `keep: 'lease'` stays reserved for this tunnel's lease holder for the grace period.
   * Visitors already joined to a data connection are independent TCP connections and
   * live on. */
  close(keep: 'lease' | 'release' = 'release'): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.pending.dropOwner(this);
    // The port is free as soon as the listening socket is closed, which close() does at
    // once; its callback waits for joined visitors too, which may take hours.
    this.listener.close();
    if (this.ctx.liveTunnels.get(this.publicPort) === this) this.ctx.liveTunnels.delete(this.publicPort);
    if (keep === 'lease') this.ctx.leases.hold(this.publicPort, this.lease);
    else this.ctx.ports.release(this.publicPort);
    this.ctx.releaseTunnel();
    this.ctx.trace(`tunnel:${this.publicPort}`, 'event', keep === 'lease' ? 'closed; port kept for its lease holder' : 'closed; port free');
  }

  /** Why one more visitor would be too many, if it would. */
  private overLimit(): string | undefined {
    const { maxConnectionsPerTunnel, maxPendingPerTunnel, maxPending } = this.ctx.limits;
    if (this.connections >= maxConnectionsPerTunnel) return `${maxConnectionsPerTunnel} connections on this tunnel`;
    if (this.ctx.pending.countFor(this) >= maxPendingPerTunnel) return `${maxPendingPerTunnel} visitors already waiting here`;
    if (this.ctx.pending.size >= maxPending) return `${maxPending} visitors already waiting on the server`;
    return undefined;
  }
}
