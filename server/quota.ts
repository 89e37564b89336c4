// How many public ports each source address holds, and the server in all: open tunnels,
// tunnels still binding, and ports kept under lease for a client that dropped. A lease is
// a port as much as a tunnel is, so it counts until it runs out; otherwise a client that
// connects, exposes and vanishes, again and again, could hold every port of the range.
import { CountPerKey } from './limits.ts';

/** Why one more port would be too many. */
export type QuotaRefusal = { reason: 'server-full' | 'too-many-tunnels'; detail: string };

export class TunnelQuota {
  private readonly perAddress: CountPerKey<string>;
  private count = 0;

  constructor(
    private readonly maxTunnels: number,
    private readonly maxTunnelsPerIp: number,
  ) {
    this.perAddress = new CountPerKey(maxTunnelsPerIp);
  }

  /** Counts one more port for `address`, unless the server or the address is at its limit. */
  tryAdd(address: string): QuotaRefusal | undefined {
    if (this.count >= this.maxTunnels)
      return {
        reason: 'server-full',
        detail: `the server holds its limit of ${this.maxTunnels} tunnels (leased ports included)`,
      };
    if (!this.perAddress.tryAdd(address)) {
      return {
        reason: 'too-many-tunnels',
        detail: `limit is ${this.maxTunnelsPerIp} per address (leased ports included)`,
      };
    }
    this.count++;
    return undefined;
  }

  /** A port changes hands (a lease reclaimed from another address): it stays counted,
   * now for `to`, even if that passes `to`'s limit: it is the same client's port. */
  move(from: string, to: string): void {
    if (from === to) return;
    this.perAddress.remove(from);
    this.perAddress.force(to);
  }

  remove(address: string): void {
    this.perAddress.remove(address);
    this.count--;
  }

  /** Ports counted in all. */
  get total(): number {
    return this.count;
  }

  /** Ports counted for `address`. */
  of(address: string): number {
    return this.perAddress.get(address);
  }
}
