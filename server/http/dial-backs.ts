// HTTP requests waiting for a data connection, by connection id: the HTTP twin of
// PendingVisitors (tunnel.ts). A TCP visitor waits as a paused socket; an HTTP tunnel
// waits as a promise that the data port settles with the client's data connection, which
// then carries that tunnel's requests (see forward.ts). Each wait has a deadline.
import type { Socket } from 'node:net';
import { BurrowError } from '../../shared/errors.ts';

interface Waiter<Owner> {
  owner: Owner;
  /** The data port hands the connection over (after its ID line and our OK). */
  join(socket: Socket, conn: string): void;
  fail(error: BurrowError): void;
  timer: NodeJS.Timeout;
}

export class DialBacks<Owner> {
  private readonly waiting = new Map<string, Waiter<Owner>>();

  constructor(
    private readonly timeoutMs: number,
    /** At most this many waits at once (the server's `maxPending`). */
    private readonly max: number,
  ) {}

  /** Resolves with the data connection the client opens for `id`; `onJoin` runs first,
   * when it is handed over (to answer `OK`). Rejects with `timeout`, `refused` or `closed`. */
  wait(id: string, owner: Owner, onJoin: (socket: Socket, conn: string) => void): Promise<Socket> {
    return new Promise((resolve, reject) => {
      if (this.waiting.size >= this.max)
        return reject(new BurrowError('refused', `${this.max} requests already wait for their client`));
      const timer = setTimeout(() => {
        if (this.waiting.get(id)?.timer !== timer) return;
        this.waiting.delete(id);
        reject(new BurrowError('timeout', `the client did not dial back within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const join = (socket: Socket, conn: string): void => {
        onJoin(socket, conn);
        resolve(socket);
      };
      this.waiting.set(id, { owner, join, fail: reject, timer });
    });
  }

  /** Claims the wait for `id` (single-use), if `check` passes for its owner. */
  take(id: string, check: (owner: Owner) => boolean = () => true): Waiter<Owner> | undefined {
    const waiter = this.waiting.get(id);
    if (!waiter || !check(waiter.owner)) return undefined;
    clearTimeout(waiter.timer);
    this.waiting.delete(id);
    return waiter;
  }

  /** Fails every wait of `owner` (its tunnel closed), or every one. */
  clear(owner?: Owner): void {
    for (const id of [...this.waiting.keys()]) {
      const waiter = this.take(id, (o) => owner === undefined || o === owner);
      waiter?.fail(new BurrowError('closed', 'the tunnel closed'));
    }
  }

  get size(): number {
    return this.waiting.size;
  }
}
