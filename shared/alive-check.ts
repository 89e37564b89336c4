// "Is the program at the other end of this control connection still alive?", answered
// with the heartbeat that is already there: a question is answered yes once the peer has
// answered a PING sent after it was asked. Questions asked together ride on one PING, so
// a burst of them costs one line each way, not one per question.
//
// Why it matters: when a program dies (kill -9, a crash), its operating system ends its
// connections with a FIN, which looks exactly like a complete stream. A FIN on a data
// connection is only passed on once the program that sent it has proved it was alive
// after sending it (see `fin-check` in docs/PROTOCOL.md).
import { msLeft, type Deadline } from './deadline.ts';

export type Answer = (alive: boolean) => void;

export class AliveCheck {
  /** Questions asked since the last PING went out. */
  private waiting: Answer[] = [];
  /** Questions riding on each PING not yet answered, by its number; PINGs that carry
   * none are only counted. The peer answers PINGs in order, one PONG each. */
  private readonly riding = new Map<number, Answer[]>();
  private pingsSent = 0;
  private pongsReceived = 0;
  private failed = false;

  /** `sendPing` sends one PING now, and must call pingSent(). */
  constructor(private readonly sendPing: () => void) {}

  /** Answers `answer` once the peer has answered a PING sent after now; with false if the
   * connection ends first. */
  ask(answer: Answer): void {
    if (this.failed) return answer(false);
    this.waiting.push(answer);
    // One PING carrying questions at a time: later ones wait for the next.
    if (this.riding.size === 0) this.sendPing();
  }

  /** A PING has just been sent (ours, or the regular heartbeat): the questions waiting
   * so far ride on it. */
  pingSent(): void {
    this.pingsSent++;
    if (this.waiting.length === 0) return;
    this.riding.set(this.pingsSent, this.waiting);
    this.waiting = [];
  }

  /** A PONG arrived: it answers our oldest unanswered PING. */
  pongReceived(): void {
    if (this.pongsReceived >= this.pingsSent) return; // a PONG we never asked for
    const answers = this.riding.get(++this.pongsReceived);
    this.riding.delete(this.pongsReceived);
    for (const answer of answers ?? []) answer(true);
    if (this.waiting.length > 0 && this.riding.size === 0) this.sendPing();
  }

  /** The connection is gone: no question can be answered yes any more. */
  fail(): void {
    if (this.failed) return;
    this.failed = true;
    const answers = [...this.riding.values()].flat().concat(this.waiting);
    this.riding.clear();
    this.waiting = [];
    for (const answer of answers) answer(false);
  }

  /** Questions not answered yet. */
  get pending(): number {
    let count = this.waiting.length;
    for (const answers of this.riding.values()) count += answers.length;
    return count;
  }
}

/** Something that can answer "alive?" for the program we ask about. */
export interface Voucher {
  confirmAlive(answer: Answer): void;
}

/** Where a question about a program stands right now: a control connection that can
 * answer it, `'gone'` if the program is known to be gone (another process took its
 * place), or undefined if none can answer yet (it may be reconnecting). */
export type Lookup = () => Voucher | 'gone' | undefined;

/**
 * Asks whether the program behind `lookup` is alive, and keeps asking across reconnects,
 * answering once, by `deadline` (a Date.now() value) at the latest: a FIN that arrives
 * while its control connection is down (a network hiccup) waits for the same program to
 * come back, which proves it was alive; one that never comes back (a crash), or whose
 * connection never answers, gets no by the deadline.
 */
export function confirmAcrossReconnects(
  lookup: Lookup,
  waits: WaitsForVoucher,
  deadline: Deadline,
  answer: Answer,
): void {
  let settled = false;
  let stopWaiting = (): void => {};
  const finish = (alive: boolean): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    stopWaiting();
    answer(alive);
  };
  const timer = setTimeout(() => finish(false), msLeft(deadline));
  const wait = (): void => {
    stopWaiting = waits.wait(attempt, () => finish(false));
  };
  const attempt = (): void => {
    if (settled) return;
    const voucher = lookup();
    if (voucher === 'gone') return finish(false);
    if (voucher === undefined) return wait();
    voucher.confirmAlive((alive) => {
      if (alive) return finish(true);
      // That connection died: ask the one that can answer now (a newer connection of the
      // same program), or wait for one to appear.
      if (lookup() !== voucher) attempt();
      else wait();
    });
  };
  attempt();
}

/** Questions waiting for a control connection that can answer them. `wake()` when one
 * appears, `close()` when none ever will. (Each question keeps its own deadline.) */
export class WaitsForVoucher {
  private readonly waiting = new Set<{ retry: () => void; giveUp: () => void }>();
  private closed = false;

  /** Keeps `retry` until the next wake(); `giveUp` if close() comes first. Returns a
   * function that forgets it (its question was answered some other way). */
  wait(retry: () => void, giveUp: () => void): () => void {
    if (this.closed) {
      giveUp();
      return () => {};
    }
    const entry = { retry, giveUp };
    this.waiting.add(entry);
    return () => this.waiting.delete(entry);
  }

  /** A control connection appeared or changed: every waiting question tries again. */
  wake(): void {
    const entries = [...this.waiting];
    this.waiting.clear();
    for (const entry of entries) entry.retry();
  }

  /** Nobody will ever answer: every waiting question (and any later one) gets no. */
  close(): void {
    this.closed = true;
    const entries = [...this.waiting];
    this.waiting.clear();
    for (const entry of entries) entry.giveUp();
  }
}
