// The replies of one control connection: they go out strictly in the order their lines
// arrived (each step waits for the last, even while an early EXPOSE is still binding its
// port), and refused lines are counted against an error budget.
import createDebug from 'debug';
import { formatErr } from '../shared/protocol.ts';
import { MAX_ERRORS_PER_CLIENT } from './limits.ts';

const debug = createDebug('burrow:server');

export interface ReplyTarget {
  readonly label: string;
  send(line: string): void;
  /** Closes the connection, with `finalLine` sent first (none: destroy it). */
  close(finalLine?: string): void;
}

export class Replies {
  private tail: Promise<void> = Promise.resolve();
  /** Refused lines, counted as they arrive and as their replies are sent (see refuse). */
  private refusedSeen = 0;
  private refusedInTurn = 0;
  /** Set once the connection is condemned: later lines are ignored, the close is queued. */
  failed = false;

  constructor(private readonly target: ReplyTarget) {}

  /** Runs `step` once every earlier step is done. */
  inOrder(step: () => unknown): void {
    this.tail = this.tail
      .then(async () => void (await step()))
      .catch((error: unknown) => {
        // Not a refusal we know how to word: log it and drop this client, not the server.
        debug('%s: %O', this.target.label, error);
        this.target.close();
      });
  }

  /** Answers a refused line in its turn; past the error budget the answer is
   * `too-many-errors` and the connection closes. */
  refuse(reply: string): void {
    // Counted on arrival too, so that a flood of bad lines stops being read at once
    // (at most the budget's worth of refusals can then wait in the queue).
    if (++this.refusedSeen > MAX_ERRORS_PER_CLIENT) this.failed = true;
    this.inOrder(() => this.refuseNow(reply));
  }

  /** Sends a refusal whose turn has come. Counting in turn (not on arrival) decides which
   * reply becomes `too-many-errors`: an EXPOSE refused only after binding counts in its
   * own place among pipelined lines. */
  refuseNow(reply: string): void {
    if (++this.refusedInTurn > MAX_ERRORS_PER_CLIENT) {
      this.failed = true;
      this.target.close(formatErr('too-many-errors', `more than ${MAX_ERRORS_PER_CLIENT} refused lines`));
    } else {
      this.target.send(reply);
    }
  }

  /** Stops reading and closes with `finalLine` once earlier replies have been sent. */
  fail(finalLine: string): void {
    if (this.failed) return;
    this.failed = true;
    this.inOrder(() => this.target.close(finalLine));
  }

  /** Resolves when every step queued so far is done. */
  settled(): Promise<void> {
    return this.tail;
  }
}
