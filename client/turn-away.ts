// Visitors the client turns away because it already serves its most connections at once.
// A load test can bring thousands a second: the first one is reported at once, the rest
// are counted and reported together at most once per window, so the warning never floods.
import { BurrowError } from '../shared/errors.ts';

/** One summary warning per window at most. */
export const TURN_AWAY_WINDOW_MS = 10_000;

export class TurnAwayWarnings {
  /** Turned away since the last warning: reset at the server (REFUSE), or only ignored
   * (a server that cannot be told; those visitors wait for its timeout). */
  private refused = 0;
  private ignored = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly limit: number,
    private readonly warn: (warning: BurrowError) => void,
    private readonly windowMs = TURN_AWAY_WINDOW_MS,
  ) {}

  /** One more visitor turned away; `refused`: the server was told to reset it. */
  count(refused: boolean): void {
    if (this.closed) return;
    if (refused) this.refused++;
    else this.ignored++;
    if (this.timer === undefined) {
      this.report(); // the first of a burst at once
      this.timer = setTimeout(() => this.endWindow(), this.windowMs);
    }
  }

  /** Stops reporting (the client is closing); what was held back is dropped. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private endWindow(): void {
    this.timer = undefined;
    if (this.refused + this.ignored === 0) return;
    this.report();
    this.timer = setTimeout(() => this.endWindow(), this.windowMs); // keep the pace
  }

  private report(): void {
    const parts: string[] = [];
    if (this.refused > 0) parts.push(`turned away ${visitors(this.refused)} (reset at once)`);
    if (this.ignored > 0)
      parts.push(
        `ignored ${visitors(this.ignored)} (this server cannot be told to reset them: they wait for its timeout)`,
      );
    this.refused = 0;
    this.ignored = 0;
    this.warn(
      new BurrowError(
        'over-limit',
        `${parts.join('; ')}: already serving ${this.limit} connections, the most allowed at once (maxConnections)`,
      ),
    );
  }
}

const visitors = (count: number): string => (count === 1 ? '1 visitor' : `${count} visitors`);
