// Ports kept for a client that dropped without saying goodbye: for a grace period only the
// holder of the lease token (handed out with OK) can open the port again, so a client that
// reconnects after a network hiccup or a server restart gets the same public address.
// A leased port still counts towards the limits of the address that held it (public-ports.ts).
import { sameToken } from '../shared/secret.ts';

interface Held {
  token: string;
  /** When it runs out (performance.now()). */
  until: number;
  /** The source address of the control connection that held the port. */
  address: string;
  timer: NodeJS.Timeout;
}

/** Leases on ports (numbers) or on HTTP names (strings). */
export class Leases<Key = number> {
  private readonly records = new Map<Key, Held>();

  constructor(
    private readonly graceMs: number,
    /** Called when a lease ends unclaimed (it ran out, or the server closes): the port
     * goes back to the pool and stops counting for `address`. */
    private readonly onExpire: (port: Key, address: string) => void,
  ) {}

  /** Keeps `port` for whoever presents `token`, for the grace period. */
  hold(port: Key, token: string, address: string): void {
    this.drop(port);
    const timer = setTimeout(() => {
      this.records.delete(port);
      this.onExpire(port, address);
    }, this.graceMs);
    this.records.set(port, { token, address, timer, until: performance.now() + this.graceMs });
  }

  /** Ends the lease on `port` if `token` is its token: the caller may then open the port,
   * which still counts for the address returned until the caller moves it. 'mismatch' if
   * someone else holds it, 'none' if nobody does. */
  claim(port: Key, token: string): { address: string } | 'mismatch' | 'none' {
    const record = this.records.get(port);
    if (!record) return 'none';
    if (!sameToken(record.token, token)) return 'mismatch';
    this.drop(port);
    return { address: record.address };
  }

  /** Ends every lease at once (the server is closing), returning the ports to the pool. */
  clear(): void {
    for (const [port, record] of [...this.records]) {
      this.drop(port);
      this.onExpire(port, record.address);
    }
  }

  /** How long `port` stays under lease, in ms; undefined if it is not under lease. */
  remainingMs(port: Key): number | undefined {
    const record = this.records.get(port);
    return record && Math.max(0, Math.round(record.until - performance.now()));
  }

  /** Ports under lease now. */
  get size(): number {
    return this.records.size;
  }

  private drop(port: Key): void {
    clearTimeout(this.records.get(port)?.timer);
    this.records.delete(port);
  }
}
