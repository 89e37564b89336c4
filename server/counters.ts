// Running totals since the server started: what monitoring graphs (server/metrics.ts).
// The core only calls these small methods; everything about how the numbers are exposed
// lives elsewhere.
import type { Socket } from 'node:net';
import { bytesAccepted } from '../shared/pipe.ts';

export interface ServerTotals {
  /** Control connections accepted (before TLS and authentication). */
  controlConnections: number;
  /** Visitor connections accepted onto a tunnel (not those reset over a limit). */
  visitors: number;
  /** Visitors reset at once because a limit was reached. */
  visitorsOverLimit: number;
  /** Visitors joined to a data connection. */
  visitorsPaired: number;
  /** Visitors reset at once because their client turned them away (REFUSE). */
  visitorsRefused: number;
  /** Visitors closed because no data connection came in time. */
  visitorsTimedOut: number;
  /** Visitors joined right now. */
  visitorsActive: number;
  /** Bytes read from visitors and written to them, joined connections still open included.
   * Written: only what the kernel took, not what a reset threw away (bytesAccepted()). */
  bytesFromVisitors: number;
  bytesToVisitors: number;
  /** `ERR` lines the server sent, by reason. */
  errors: Record<string, number>;
}

export class ServerCounters {
  controlConnections = 0;
  visitors = 0;
  visitorsOverLimit = 0;
  visitorsPaired = 0;
  visitorsRefused = 0;
  visitorsTimedOut = 0;
  private readonly errors = new Map<string, number>();
  /** Joined visitors, whose byte counts are still growing. */
  private readonly joined = new Set<Socket>();
  private closedBytesFrom = 0;
  private closedBytesTo = 0;

  error(reason: string): void {
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
  }

  paired(visitor: Socket): void {
    this.visitorsPaired++;
    this.joined.add(visitor);
  }

  /** A joined visitor closed: its bytes move from live to closed. */
  unpaired(visitor: Socket): void {
    if (!this.joined.delete(visitor)) return;
    this.closedBytesFrom += visitor.bytesRead;
    this.closedBytesTo += bytesAccepted(visitor);
  }

  snapshot(): ServerTotals {
    const { errors, joined, closedBytesFrom, closedBytesTo, ...counted } = this as ServerCounters;
    let from = closedBytesFrom;
    let to = closedBytesTo;
    for (const visitor of joined) {
      from += visitor.bytesRead;
      to += bytesAccepted(visitor);
    }
    const live = { visitorsActive: joined.size, bytesFromVisitors: from, bytesToVisitors: to };
    return { ...counted, ...live, errors: Object.fromEntries(errors) };
  }
}
