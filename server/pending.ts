// Visitors waiting for their data connection, by connection id. Each entry owns a timer:
// a visitor nobody claims within the deadline is reset and forgotten (reset, not closed:
// to a visitor that waits for the service to speak first, an empty stream that ends
// cleanly would look like a complete answer).
import type { Socket } from 'node:net';
import { abortSocket } from '../shared/pipe.ts';
import { CountPerKey } from './limits.ts';

export interface PendingVisitor<Owner> {
  socket: Socket;
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

  add(id: string, socket: Socket, owner: Owner): void {
    const timer = setTimeout(() => {
      const entry = this.remove(id);
      if (!entry) return;
      this.onExpire(id, entry);
      abortSocket(entry.socket);
    }, this.timeoutMs);
    this.entries.set(id, { socket, owner, since: performance.now(), timer });
    this.perOwner.tryAdd(owner);
    // Forget the entry whenever the socket closes (destroyed by us, or by the server
    // closing). A visitor who leaves is not seen here: waiting sockets are paused, so
    // its FIN or RST is only noticed when it is paired or its wait runs out.
    socket.once('close', () => this.remove(id));
  }

  /** Claims a visitor: ids are single-use, so the entry is gone afterwards. */
  take(id: string): PendingVisitor<Owner> | undefined {
    return this.remove(id);
  }

  /** Claims a visitor only if its owner passes `check` (otherwise it keeps waiting). */
  takeIf(id: string, check: (owner: Owner) => boolean): PendingVisitor<Owner> | undefined {
    const entry = this.entries.get(id);
    return entry && check(entry.owner) ? this.remove(id) : undefined;
  }

  /** Closes every visitor waiting on `owner` (its tunnel is closing). */
  dropOwner(owner: Owner): void {
    for (const [id, entry] of this.entries) {
      const gone = entry.owner === owner ? this.remove(id) : undefined;
      if (gone) abortSocket(gone.socket);
    }
  }

  /** Closes every waiting visitor. */
  clear(): void {
    for (const id of [...this.entries.keys()]) {
      const gone = this.remove(id);
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

  /** Forgets an entry and its timer; returns it if it was there. */
  private remove(id: string): PendingVisitor<Owner> | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    this.entries.delete(id);
    this.perOwner.remove(entry.owner);
    return entry;
  }
}
