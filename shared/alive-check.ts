// "Is the program at the other end of this control connection still alive?", answered
// with the heartbeat that is already there: a question is answered yes once the peer has
// answered a PING sent after it was asked. Questions asked together ride on one PING, so
// a burst of them costs one line each way, not one per question.
//
// Why it matters: a client that reclaims its public port by its lease while the old
// control connection still holds it takes the port only if that connection does not
// answer (a zombie of a crashed process; see public-ports.ts).

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
