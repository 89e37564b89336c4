// Ports kept for a client that dropped without saying goodbye: for a grace period only the
// holder of the lease token (handed out with OK) can open the port again, so a client that
// reconnects after a network hiccup or a server restart gets the same public address.
import { sameToken } from '../shared/secret.ts';

export class Leases {
  private readonly records = new Map<number, { token: string; timer: NodeJS.Timeout }>();

  constructor(
    private readonly graceMs: number,
    /** Called when a lease runs out: the port goes back to the pool. */
    private readonly onExpire: (port: number) => void,
  ) {}

  /** Keeps `port` for whoever presents `token`, for the grace period. */
  hold(port: number, token: string): void {
    this.drop(port);
    const timer = setTimeout(() => {
      this.records.delete(port);
      this.onExpire(port);
    }, this.graceMs);
    this.records.set(port, { token, timer });
  }

  /** Ends the lease on `port` if `token` is its token: the caller may then open the port.
   * 'mismatch' if someone else holds it, 'none' if nobody does. */
  claim(port: number, token: string): 'claimed' | 'mismatch' | 'none' {
    const record = this.records.get(port);
    if (!record) return 'none';
    if (!sameToken(record.token, token)) return 'mismatch';
    this.drop(port);
    return 'claimed';
  }

  /** Ends every lease at once (the server is closing), returning the ports to the pool. */
  clear(): void {
    for (const port of [...this.records.keys()]) {
      this.drop(port);
      this.onExpire(port);
    }
  }

  private drop(port: number): void {
    const record = this.records.get(port);
    if (!record) return;
    clearTimeout(record.timer);
    this.records.delete(port);
  }
}
