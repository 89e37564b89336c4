// One exposed port: a public listener whose visitors wait in the pending map until the
// client dials back on the data port with their id.
import type net from 'node:net';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { abortSocket } from '../shared/pipe.ts';
import { formatAddress, formatConnection, type Extension } from '../shared/protocol.ts';
import type { Limits } from './limits.ts';
import type { ServerObserver } from './observer.ts';
import type { PendingVisitors } from './pending.ts';
import type { Keep, PortHolder, PublicPorts } from './public-ports.ts';

/** The control session a tunnel belongs to, as the tunnel and its visitors see it. */
export interface TunnelSession extends PortHolder {
  /** What the client switched on with HELLO. */
  readonly extensions: ReadonlySet<Extension>;
  /** Sends a line on the control connection. */
  send(line: string): void;
}

/** What a tunnel uses of the server. */
export interface TunnelParts {
  readonly pending: PendingVisitors<Tunnel>;
  readonly ports: PublicPorts;
  readonly observer: ServerObserver;
  readonly limits: Pick<Limits, 'maxConnectionsPerTunnel' | 'maxPendingPerTunnel' | 'maxPending' | 'leaseGraceMs'>;
  /** The server owns the visitor from now on (it closes it on shutdown). */
  track(socket: net.Socket): void;
}

const debug = createDebug('burrow:server');

const OUTCOME: Record<Keep, string> = {
  lease: 'port kept for its lease holder',
  release: 'port free',
  handover: 'port handed to the client that reclaimed it',
};

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
    private readonly parts: TunnelParts,
  ) {
    listener.on('error', (error) => debug('public port %d: %s', publicPort, error.message));
    parts.ports.adopt(this);
  }

  /** A visitor connected to the public port: park it and ask the client to dial back. */
  acceptVisitor(socket: net.Socket): void {
    socket.on('error', (error) => debug('visitor on %d: %s', this.publicPort, error.message));
    const refusal = this.closed ? 'the tunnel is closed' : this.overLimit();
    if (refusal !== undefined) {
      // A reset, so the visitor sees "try later" rather than an empty reply.
      this.parts.observer.counters.visitorsOverLimit++;
      this.parts.observer.event('visitor', `refused on public port ${this.publicPort}: ${refusal}`);
      abortSocket(socket);
      return;
    }
    this.parts.track(socket);
    this.parts.observer.counters.visitors++;
    this.connections++;
    socket.once('close', () => this.connections--);
    const id = nanoid(); // 126 random bits: unguessable, so only the client can claim it
    this.parts.pending.add(id, socket, this);
    const visitor = formatAddress(socket.remoteAddress, socket.remotePort);
    if (this.parts.observer.tracing) {
      const from = visitor ?? 'an unknown address';
      this.parts.observer.event(`visitor:${id.slice(0, 6)}`, `accepted from ${from} on public port ${this.publicPort}`);
    }
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
  close(keep: Keep = 'release'): void {
    if (this.closed) return;
    this.closed = true;
    const { pending, ports, observer, limits } = this.parts;
    pending.dropOwner(this);
    // The port is free as soon as the listening socket is closed, which close() does at
    // once; its callback waits for joined visitors too, which may take hours.
    this.listener.close();
    ports.closed(this, keep);
    if (keep === 'lease') {
      const { address } = this.session;
      observer.clientEvent({ kind: 'lease-kept', address, publicPort: this.publicPort, graceMs: limits.leaseGraceMs });
    }
    observer.event(`tunnel:${this.publicPort}`, `closed; ${OUTCOME[keep]}`);
  }

  /** Why one more visitor would be too many, if it would. */
  private overLimit(): string | undefined {
    const { maxConnectionsPerTunnel, maxPendingPerTunnel, maxPending } = this.parts.limits;
    const { pending } = this.parts;
    if (this.connections >= maxConnectionsPerTunnel) return `${maxConnectionsPerTunnel} connections on this tunnel`;
    if (pending.countFor(this) >= maxPendingPerTunnel) return `${maxPendingPerTunnel} visitors already waiting here`;
    if (pending.size >= maxPending) return `${maxPending} visitors already waiting on the server`;
    return undefined;
  }
}
