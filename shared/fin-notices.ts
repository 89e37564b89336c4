// fin-notice: a FIN on a data connection is passed on only once the program that sent it
// has said so on its control connection, `FIN <id>`, after the FIN was in its operating
// system's hands (every byte before it too). A program that dies also has its operating
// system send a FIN, which looks exactly like a complete stream, but it cannot send the
// notice. One line, one way, per FIN (docs/PROTOCOL.md, `fin-notice`); the same on both
// sides. One FinNotices per process: a notice may come on any control connection of the
// program that sent it, a newer one after a reconnect.
import createDebug from 'debug';
import { formatFin } from './protocol.ts';

const debug = createDebug('burrow:proto');

/** Whether the FIN that came on a data connection was its sender's choice. */
export type Answer = (chosen: boolean) => void;

/** Where a notice to the program at the other end can go now: a control connection, `'gone'`
 * if that program is known to be gone (another process took its place), or undefined if
 * none is open now (it may be reconnecting). */
export type Reach = { send(line: string): void } | 'gone' | undefined;

/** One data connection, as fin-notice sees it. */
export interface FinNoticeHooks {
  /** Its peer's FIN arrived: `answer` says whether to pass it on. */
  confirm: (answer: Answer) => void;
  /** We passed a FIN on to it, and that FIN is in our operating system's hands now. */
  sent: () => void;
  /** The data connection has closed: its notice, and any answer still waiting, are moot. */
  done: () => void;
}

/** Notices owed at most: the oldest goes once more are owed (no peer waits for them
 * longer than the deadline anyway). */
export const MAX_OWED = 4096;

interface Expected {
  /** The peer program that may send its notice (its fin-notice instance). */
  peer: string;
  noticed: boolean;
  waiting: { answer: Answer; gone: () => boolean; timer: NodeJS.Timeout } | undefined;
}

export class FinNotices {
  /** Our data connections whose peer may send a notice, by id. */
  private readonly expected = new Map<string, Expected>();
  /** Notices no control connection could take yet, oldest first, each until its deadline. */
  private readonly owed = new Map<string, { reach: () => Reach; until: number }>();
  private closed = false;

  /** `waitMs`: how long a FIN waits for its notice, and a notice for a connection to go
   * out on (the heartbeat timeout: a silent peer is dead by then). */
  constructor(private readonly waitMs: number) {}

  /** Takes the data connection `id` (to `peer`, its program's instance) until the returned
   * `done()`: its peer's notice is kept from now on, since it may come before the FIN.
   * `reach` finds where our own notice can go; `gone` tells that the peer was replaced. */
  track(id: string, peer: string, reach: () => Reach): FinNoticeHooks {
    this.expected.set(id, { peer, noticed: false, waiting: undefined });
    return {
      confirm: (answer) => this.confirm(id, () => reach() === 'gone', answer),
      sent: () => this.owe(id, reach),
      done: () => this.forget(id),
    };
  }

  /** A `FIN <id>` line came from the program `peer`: ignored unless it names one of our
   * data connections with that program. */
  received(id: string, peer: string | undefined): void {
    const entry = this.expected.get(id);
    if (!entry || entry.peer !== peer) return void debug('FIN %s: not a data connection of that peer; ignored', id);
    entry.noticed = true;
    this.settle(entry, true);
  }

  /** A control connection came up or changed hands: owed notices go out on it, and FINs
   * whose program is gone get their answer. */
  wake(): void {
    const now = Date.now();
    for (const [id, { reach, until }] of this.owed) if (until <= now || this.deliver(id, reach)) this.owed.delete(id);
    for (const entry of this.expected.values()) if (entry.waiting?.gone()) this.settle(entry, false);
  }

  /** No control connection will come again: every FIN still waiting is answered no. */
  close(): void {
    this.closed = true;
    this.owed.clear();
    for (const entry of this.expected.values()) this.settle(entry, false);
  }

  private confirm(id: string, gone: () => boolean, answer: Answer): void {
    const entry = this.expected.get(id);
    if (!entry || this.closed || gone()) return answer(false);
    if (entry.noticed) return answer(true);
    const timer = setTimeout(() => this.settle(entry, false), this.waitMs);
    entry.waiting = { answer, gone, timer };
  }

  private settle(entry: Expected, chosen: boolean): void {
    const { waiting } = entry;
    if (!waiting) return;
    entry.waiting = undefined;
    clearTimeout(waiting.timer);
    waiting.answer(chosen);
  }

  private owe(id: string, reach: () => Reach): void {
    if (this.closed || this.deliver(id, reach)) return;
    const now = Date.now();
    // Oldest first, all with the same wait: those out of time go here too, not only at a
    // wake() that may never come (each holds what its reach() holds), and the oldest over
    // the bound.
    for (const [oldest, { until }] of this.owed) {
      if (until > now && this.owed.size < MAX_OWED) break;
      this.owed.delete(oldest);
    }
    this.owed.set(id, { reach, until: now + this.waitMs });
  }

  /** Sends the notice if a connection can take it; true once nothing is left to do. */
  private deliver(id: string, reach: () => Reach): boolean {
    const where = reach();
    if (where === undefined) return false;
    if (where !== 'gone') where.send(formatFin(id));
    return true;
  }

  private forget(id: string): void {
    const entry = this.expected.get(id);
    if (!entry) return;
    this.expected.delete(id);
    if (entry.waiting) clearTimeout(entry.waiting.timer);
  }
}
