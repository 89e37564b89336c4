// The names of HTTP tunnels (`NAME.relay.example.com`), as public-ports.ts is for ports:
// which names are live, which are kept under lease for a client that dropped, and how many
// each source address holds. A name is a DNS label; some are reserved by the operator.
import { nanoid } from 'nanoid';
import { sameToken } from '../../shared/secret.ts';
import { Leases } from '../leases.ts';
import { Holdings } from '../limits.ts';
import { isGone, sameProcess, type PortHolder, type PortRefusal } from '../public-ports.ts';
import { randomName } from './random-name.ts';

/** An open HTTP tunnel, as the name owner sees it. */
export interface NamedTunnel {
  readonly name: string;
  readonly lease: string;
  readonly session: PortHolder;
  /** Closes it; 'handover': its name goes to the client that reclaimed it. */
  close(keep: 'release' | 'lease' | 'handover'): void;
}

export interface NamesOptions {
  /** Names no client may have (`www`, `api`, ...). */
  reserved: readonly string[];
  leaseGraceMs: number;
  /** At most this many names on the server, leased ones included... */
  maxTunnels: number;
  /** ...and from one source address. */
  maxTunnelsPerIp: number;
  heartbeatTimeoutMs: number;
}

export interface ClaimedName {
  name: string;
  lease: string;
  reclaimed: boolean;
}

/** What a name means to a visitor right now. */
export type NameState = { live: NamedTunnel } | { leasedForMs: number } | undefined;

export class HttpNames {
  private readonly live = new Map<string, NamedTunnel>();
  /** Names being claimed (the holder is asked whether it is alive): nobody else gets them. */
  private readonly claiming = new Set<string>();
  private readonly leases: Leases<string>;
  private readonly holdings: Holdings;
  private readonly reserved: ReadonlySet<string>;

  constructor(private readonly options: NamesOptions) {
    this.reserved = new Set(options.reserved);
    this.holdings = new Holdings(options.maxTunnels, options.maxTunnelsPerIp);
    this.leases = new Leases<string>(options.leaseGraceMs, (_name, address) => this.holdings.remove(address));
  }

  /** Claims `wanted` ('' for a random name) for `holder`: a free name, or one whose `lease`
   * it holds (under lease, or still live on a zombie connection of the same client). From
   * now on the name counts towards the limits, until its tunnel closes (closed()). */
  async claim(holder: PortHolder, wanted: string, lease: string): Promise<ClaimedName | PortRefusal> {
    if (this.reserved.has(wanted)) return { reason: 'name-reserved', detail: `the name ${wanted} is reserved` };
    const name = wanted === '' ? this.freeRandomName() : wanted;
    if (name === undefined) return { reason: 'server-full', detail: 'no free random name was found' };
    if (this.claiming.has(name)) return inUse(name);
    this.claiming.add(name);
    try {
      const from = lease === '' ? 'no' : await this.reclaim(holder, name, lease);
      if (from === 'in-use') return inUse(name);
      if (from === 'no') {
        if (this.live.has(name)) return inUse(name);
        const left = this.leases.remainingMs(name);
        if (left !== undefined)
          return inUse(name, `it is kept for the client that held it (a lease), for ${Math.ceil(left / 1000)} s more`);
        const refusal = this.count(holder.address);
        if (refusal) return refusal;
      } else this.holdings.move(from.address, holder.address);
      return { name, lease: from === 'no' ? nanoid() : lease, reclaimed: from !== 'no' };
    } finally {
      this.claiming.delete(name);
    }
  }

  /** `tunnel` now serves its name. */
  adopt(tunnel: NamedTunnel): void {
    this.live.set(tunnel.name, tunnel);
  }

  /** `tunnel` has closed: its name is free, kept for its lease holder, or handed over. */
  closed(tunnel: NamedTunnel, keep: 'release' | 'lease' | 'handover'): void {
    if (this.live.get(tunnel.name) === tunnel) this.live.delete(tunnel.name);
    if (keep === 'lease') this.leases.hold(tunnel.name, tunnel.lease, tunnel.session.address);
    else if (keep === 'release') this.holdings.remove(tunnel.session.address);
  }

  find(name: string): NameState {
    const live = this.live.get(name);
    if (live) return { live };
    const left = this.leases.remainingMs(name);
    return left === undefined ? undefined : { leasedForMs: left };
  }

  /** Ends every lease (the server is closing). */
  clearLeases(): void {
    this.leases.clear();
  }

  get stats(): { live: number; leased: number } {
    return { live: this.live.size, leased: this.leases.size };
  }

  /** Takes `name` for `claimant` if `lease` is its token; see PublicPorts.reclaim. */
  private async reclaim(
    claimant: PortHolder,
    name: string,
    lease: string,
  ): Promise<{ address: string } | 'no' | 'in-use'> {
    const live = this.live.get(name);
    if (live) {
      if (!sameToken(live.lease, lease)) return 'no';
      const holder = live.session;
      const gone =
        holder === claimant || sameProcess(holder, claimant) || (await isGone(holder, this.options.heartbeatTimeoutMs));
      if (!gone) return 'in-use';
      if (this.live.get(name) === live) {
        live.close('handover');
        holder.forget(live);
        return { address: holder.address };
      }
    }
    const claim = this.leases.claim(name, lease);
    return typeof claim === 'object' ? claim : 'no';
  }

  private freeRandomName(): string | undefined {
    for (let attempt = 0; attempt < 20; attempt++) {
      const name = randomName();
      if (!this.live.has(name) && !this.reserved.has(name) && this.leases.remainingMs(name) === undefined) return name;
    }
    return undefined;
  }

  private count(address: string): PortRefusal | undefined {
    const full = this.holdings.tryAdd(address);
    if (full === 'all')
      return { reason: 'server-full', detail: `the server holds its limit of ${this.options.maxTunnels} HTTP names` };
    if (full === 'address')
      return { reason: 'too-many-tunnels', detail: `limit is ${this.options.maxTunnelsPerIp} HTTP names per address` };
    return undefined;
  }
}

const inUse = (name: string, why = 'another client has it'): PortRefusal => ({
  reason: 'name-in-use',
  detail: `the name ${name} is taken: ${why}`,
});
