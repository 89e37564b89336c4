// One exposed port: a public listener whose visitors wait (PendingVisitors, below) until
// the client dials back on the data port with their id.
import type net from 'node:net';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { abortSocket } from '../shared/pipe.ts';
import { formatAddress, formatConnection, type ExposeMessage, type Extension } from '../shared/protocol.ts';
import { CountPerKey, type Limits } from './limits.ts';
import type { ServerObserver } from './observer.ts';
import type { Keep, PortHolder, PortRefusal, PublicPorts } from './public-ports.ts';
import { portOf } from './ports.ts';

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
    const { publicPort, session } = this;
    pending.clear(this);
    // The port is free as soon as the listening socket is closed, which close() does at
    // once; its callback waits for joined visitors too, which may take hours.
    this.listener.close();
    ports.closed(this, keep);
    const graceMs = limits.leaseGraceMs;
    if (keep === 'lease')
      observer.clientEvents.report({ kind: 'lease-kept', address: session.address, publicPort, graceMs });
    observer.event(`tunnel:${publicPort}`, `closed; ${OUTCOME[keep]}`);
  }

  /** Why one more visitor would be too many, if it would. */
  private overLimit(): string | undefined {
    const { limits, pending } = this.parts;
    const { maxConnectionsPerTunnel, maxPendingPerTunnel, maxPending } = limits;
    if (this.connections >= maxConnectionsPerTunnel) return `${maxConnectionsPerTunnel} connections on this tunnel`;
    if (pending.countFor(this) >= maxPendingPerTunnel) return `${maxPendingPerTunnel} visitors already waiting here`;
    if (pending.size >= maxPending) return `${maxPending} visitors already waiting on the server`;
    return undefined;
  }
}

/** Opens the public port of an EXPOSE (see PublicPorts.open) and its tunnel, which from
 * then on owns the port's place in the limits and gives it back when it closes. */
export async function openTunnel(
  session: TunnelSession,
  parts: TunnelParts,
  { localPort, remotePort, lease }: ExposeMessage,
  cancelled: () => boolean,
): Promise<{ tunnel: Tunnel; reclaimed: boolean } | PortRefusal> {
  // eslint-disable-next-line prefer-const -- the accept handler needs it before the port is bound
  let tunnel: Tunnel | undefined;
  const onVisitor = (visitor: net.Socket): void => (tunnel ? tunnel.acceptVisitor(visitor) : void visitor.destroy());
  const opened = await parts.ports.open(session, remotePort, lease, onVisitor, cancelled);
  if (!('listener' in opened)) return opened;
  tunnel = new Tunnel(portOf(opened.listener), localPort, opened.lease, opened.listener, session, parts);
  return { tunnel, reclaimed: opened.reclaimed };
}

/** REFUSE: the client will not serve this visitor (it is at its own limit): reset it now
 * rather than let it wait for the visitor timeout. Only visitors of the tunnels `ours`
 * accepts; false if there is none waiting for `id`. */
export function refuseVisitor(id: string, ours: (tunnel: Tunnel) => boolean, parts: TunnelParts): boolean {
  const visitor = parts.pending.takeIf(id, ours);
  if (!visitor) return false; // gone already, or not ours: nothing to do, nothing to reveal
  parts.observer.counters.visitorsRefused++;
  parts.observer.event(`visitor:${id.slice(0, 6)}`, 'reset: the client turned it away (REFUSE)');
  abortSocket(visitor.socket);
  return true;
}

// Visitors waiting for their data connection, by connection id. Each entry owns a timer:
// a visitor nobody claims within the deadline is reset and forgotten (reset, not closed:
// to a visitor that waits for the service to speak first, an empty stream that ends
// cleanly would look like a complete answer).
export interface PendingVisitor<Owner> {
  socket: net.Socket;
  /** The tunnel the visitor arrived on. */
  owner: Owner;
  /** When it was accepted (performance.now(): a clock that never jumps), to report how
   * long pairing took. */
  since: number;
}

export class PendingVisitors<Owner> {
  private readonly entries = new Map<string, PendingVisitor<Owner> & { timer: NodeJS.Timeout }>();
  /** Waiting visitors per owner (the limit is checked by the caller, see `countFor`). */
  private readonly perOwner = new CountPerKey<Owner>(Number.POSITIVE_INFINITY);

  constructor(
    private readonly timeoutMs: number,
    /** Called when a visitor's deadline passes, before its socket is destroyed. */
    private readonly onExpire: (id: string, visitor: PendingVisitor<Owner>) => void,
  ) {}

  add(id: string, socket: net.Socket, owner: Owner): void {
    const timer = setTimeout(() => {
      const entry = this.take(id);
      if (!entry) return;
      this.onExpire(id, entry);
      abortSocket(entry.socket);
    }, this.timeoutMs);
    this.entries.set(id, { socket, owner, since: performance.now(), timer });
    this.perOwner.tryAdd(owner);
    // Forget the entry whenever the socket closes (destroyed by us, or by the server
    // closing). A visitor who leaves is not seen here: waiting sockets are paused, so
    // its FIN or RST is only noticed when it is paired or its wait runs out.
    socket.once('close', () => this.take(id));
  }

  /** Claims a visitor only if its owner passes `check` (otherwise it keeps waiting). */
  takeIf(id: string, check: (owner: Owner) => boolean): PendingVisitor<Owner> | undefined {
    const entry = this.entries.get(id);
    return entry && check(entry.owner) ? this.take(id) : undefined;
  }

  /** Closes every visitor waiting on `owner` (its tunnel is closing), or every one. */
  clear(owner?: Owner): void {
    for (const [id, entry] of [...this.entries]) {
      const gone = owner === undefined || entry.owner === owner ? this.take(id) : undefined;
      if (gone) abortSocket(gone.socket);
    }
  }

  /** Visitors waiting on `owner`. */
  countFor(owner: Owner): number {
    return this.perOwner.get(owner);
  }

  /** Visitors waiting in all. */
  get size(): number {
    return this.entries.size;
  }

  /** Claims a visitor (ids are single-use): forgets its entry and timer; returns it if it
   * was there. */
  take(id: string): PendingVisitor<Owner> | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    this.entries.delete(id);
    this.perOwner.remove(entry.owner);
    return entry;
  }
}
