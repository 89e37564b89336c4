// The one owner of public ports: which are live (a tunnel listens on them), binding (an
// EXPOSE is opening one) or leased (kept for a client that dropped), and how many each
// source address holds. Opening, closing, leasing and reclaiming a port all happen here.
// A lease is a port as much as a tunnel is: it counts until it runs out, or a client that
// connects, exposes and vanishes, again and again, could hold every port of the range.
import type net from 'node:net';
import { nanoid } from 'nanoid';
import type { Answer } from '../shared/alive-check.ts';
import type { ErrReason } from '../shared/protocol.ts';
import { sameToken } from '../shared/secret.ts';
import { Leases } from './leases.ts';
import { Holdings } from './limits.ts';
import { PortError, PortPool, type PortPoolOptions } from './ports.ts';

/** The control session behind a tunnel, as the port owner sees it. */
export interface PortHolder {
  /** The client's source address: its ports count towards that address's limit. */
  readonly address: string;
  /** The client process's `fin-notice` instance, if it gave one. */
  readonly clientInstance: string | undefined;
  /** False once the control connection has closed. */
  readonly open: boolean;
  /** Answers once the client has proved it is alive (see AliveCheck). */
  confirmAlive(answer: Answer): void;
  /** Sends a line on its control connection (a FIN notice). */
  send(line: string): void;
  /** Its tunnel (a port's or an HTTP name's) went back to its client by its lease (on
   * another connection). */
  forget(tunnel: SessionTunnel): void;
}

/** An open tunnel, as the port owner sees it. */
export interface LiveTunnel {
  readonly publicPort: number;
  readonly lease: string;
  readonly session: PortHolder;
  close(keep: Keep): void;
}

/** A tunnel as its control session holds it: a port's (tunnel.ts) or an HTTP name's. */
export interface SessionTunnel {
  close(keep: Keep): void;
}

/** What becomes of a closing tunnel's port: back to the pool, kept for its lease holder,
 * or handed to the tunnel that reclaims it (it stays counted). */
export type Keep = 'release' | 'lease' | 'handover';

/** Why a port cannot be had: the ERR reason word and its detail. */
export interface PortRefusal {
  reason: ErrReason;
  detail: string;
}

export interface OpenedPort {
  listener: net.Server;
  /** The token that reclaims it later: the one presented, if the port was reclaimed. */
  lease: string;
  reclaimed: boolean;
}

export interface PublicPortsOptions extends PortPoolOptions {
  maxTunnels: number;
  maxTunnelsPerIp: number;
  leaseGraceMs: number;
  /** How long a live holder may take to answer before its tunnel is taken over. */
  heartbeatTimeoutMs: number;
  /** A lease ran out unclaimed (or the server closed): its port is free again. */
  onLeaseExpired(port: number, address: string): void;
}

/** At most this long to hear from the holder of a live tunnel before taking it over. */
const HOLDER_PING_MS = 2_000;

export class PublicPorts {
  private readonly pool: PortPool;
  private readonly leases: Leases;
  private readonly live = new Map<number, LiveTunnel>();
  private readonly holdings: Holdings;
  /** For each lease, the control session that holds its tunnel now (fin-notice sends there). */
  readonly holders = new Map<string, PortHolder>();

  constructor(private readonly options: PublicPortsOptions) {
    this.pool = new PortPool(options);
    this.holdings = new Holdings(options.maxTunnels, options.maxTunnelsPerIp);
    this.leases = new Leases(options.leaseGraceMs, (port, address) => {
      this.pool.release(port);
      this.holdings.remove(address);
      options.onLeaseExpired(port, address);
    });
  }

  /** Opens `requested` (0: any free port of the range) for `holder`, taking it back from a
   * lease or from a zombie tunnel if `lease` is its token. From now on the port counts
   * towards the limits, until its tunnel closes (closed()). `cancelled` is asked between
   * bind attempts, so a search stops when its requester has gone. */
  async open(
    holder: PortHolder,
    requested: number,
    lease: string | undefined,
    onVisitor: (socket: net.Socket) => void,
    cancelled: () => boolean,
  ): Promise<OpenedPort | PortRefusal> {
    const reclaimed = lease === undefined ? 'no' : await this.reclaim(holder, requested, lease);
    if (reclaimed === 'in-use') {
      const detail = `port ${requested} is in use by another live client with the same lease (two clients sharing one lease file?)`;
      return { reason: 'port-in-use', detail };
    }
    // A reclaimed port is counted already, for whoever held it: it moves to us (even past
    // our limit: it is the same client's port). Any other port is one more for the limits.
    if (reclaimed !== 'no') this.holdings.move(reclaimed.address, holder.address);
    else {
      const refusal = this.count(holder.address);
      if (refusal) return refusal;
    }
    try {
      const listener = await this.pool.listen(requested, onVisitor, cancelled);
      const wasReclaimed = reclaimed !== 'no';
      return { listener, lease: wasReclaimed && lease !== undefined ? lease : nanoid(), reclaimed: wasReclaimed };
    } catch (error) {
      this.holdings.remove(holder.address);
      if (!(error instanceof PortError)) throw error;
      return { reason: error.reason, detail: this.leasedDetail(requested) ?? error.message };
    }
  }

  /** `tunnel` now listens on its port. */
  adopt(tunnel: LiveTunnel): void {
    this.live.set(tunnel.publicPort, tunnel);
  }

  /** `tunnel` has closed its listener: see Keep. */
  closed(tunnel: LiveTunnel, keep: Keep): void {
    const port = tunnel.publicPort;
    if (this.live.get(port) === tunnel) this.live.delete(port);
    if (keep === 'lease') return this.leases.hold(port, tunnel.lease, tunnel.session.address);
    this.pool.release(port);
    if (keep === 'release') this.holdings.remove(tunnel.session.address);
  }

  /** Ends every lease (the server is closing): the ports go back to the pool. */
  clearLeases(): void {
    this.leases.clear();
  }

  /** Tunnels open or binding, leased ports, and ports bound in all. */
  get stats(): { tunnels: number; leased: number; bound: number } {
    return { tunnels: this.holdings.size - this.leases.size, leased: this.leases.size, bound: this.pool.heldCount };
  }

  /** Takes `port` for `claimant` if `lease` is its token: from a lease kept after its
   * client dropped, or from a tunnel of the client's old connection that the server has
   * not yet seen die (a zombie). Returns the address the port was counted for, 'no' if
   * the lease does not match or the port is unknown (it is then asked for as any other),
   * or 'in-use' when another process that is still alive holds the tunnel with that same
   * lease (two clients sharing one lease file): it keeps it. */
  private async reclaim(
    claimant: PortHolder,
    port: number,
    lease: string,
  ): Promise<{ address: string } | 'no' | 'in-use'> {
    const live = this.live.get(port);
    if (live) {
      if (!sameToken(live.lease, lease)) return 'no';
      const holder = live.session;
      if (
        holder !== claimant &&
        !sameProcess(holder, claimant) &&
        !(await isGone(holder, this.options.heartbeatTimeoutMs))
      )
        return 'in-use';
      // The holder's connection may have closed while we asked (a zombie answering the
      // PING with a reset): its tunnel then went under lease, which the claim below takes.
      if (this.live.get(port) === live) {
        live.close('handover');
        holder.forget(live);
        return { address: holder.address };
      }
    }
    const claim = this.leases.claim(port, lease);
    if (typeof claim !== 'object') return 'no';
    this.pool.release(port);
    return claim;
  }

  /** Why a requested port is taken, when it is kept for a client that went away: a
   * restarted client sees why, and for how long. */
  private leasedDetail(port: number): string | undefined {
    const left = this.leases.remainingMs(port);
    if (left === undefined) return undefined;
    return `port ${port} is kept for the client that held it (a lease), for ${Math.ceil(left / 1000)} s more`;
  }

  /** Counts one more port for `address`, unless the server or the address is at its limit. */
  private count(address: string): PortRefusal | undefined {
    const { maxTunnels, maxTunnelsPerIp } = this.options;
    const full = this.holdings.tryAdd(address);
    if (full === 'all')
      return {
        reason: 'server-full',
        detail: `the server holds its limit of ${maxTunnels} tunnels (leased ports included)`,
      };
    if (full === 'address')
      return { reason: 'too-many-tunnels', detail: `limit is ${maxTunnelsPerIp} per address (leased ports included)` };
    return undefined;
  }
}

/** True if the holder does not answer a PING soon (a zombie of a crashed client, or one
 * that never agreed to heartbeats, so it cannot say); `heartbeatTimeoutMs` caps the wait. */
export function isGone(holder: PortHolder, heartbeatTimeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(true), Math.min(HOLDER_PING_MS, heartbeatTimeoutMs));
    holder.confirmAlive((alive) => {
      clearTimeout(timer);
      resolve(!alive);
    });
  });
}

/** Both connections come from one client process (the same `fin-notice` instance). */
export const sameProcess = (a: PortHolder, b: PortHolder): boolean =>
  a.clientInstance !== undefined && a.clientInstance === b.clientInstance;
