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
  /** Running while a window is open: what comes meanwhile is reported when it ends. */
  private window: NodeJS.Timeout | undefined;

  constructor(
    private readonly limit: number,
    private readonly warn: (warning: BurrowError) => void,
    /** The client's: once it stops, nothing more is reported (what was held back is dropped). */
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => clearTimeout(this.window), { once: true });
  }

  /** One more visitor turned away; `refused`: the server was told to reset it. */
  count(refused: boolean): void {
    if (this.signal.aborted) return;
    if (refused) this.refused++;
    else this.ignored++;
    if (this.window === undefined) this.report(); // the first of a burst at once
  }

  /** Reports what was counted, if anything, and opens the next window. */
  private report(): void {
    this.window = undefined;
    if (this.refused + this.ignored === 0) return;
    const parts: string[] = [];
    if (this.refused > 0) parts.push(`turned away ${visitors(this.refused)} (reset at once)`);
    const wait = 'this server cannot be told to reset them: they wait for its timeout';
    if (this.ignored > 0) parts.push(`ignored ${visitors(this.ignored)} (${wait})`);
    this.refused = 0;
    this.ignored = 0;
    const limit = `already serving ${this.limit} connections, the most allowed at once (maxConnections)`;
    this.warn(new BurrowError('over-limit', `${parts.join('; ')}: ${limit}`));
    this.window = setTimeout(() => this.report(), TURN_AWAY_WINDOW_MS); // keep the pace
  }
}

const visitors = (count: number): string => (count === 1 ? '1 visitor' : `${count} visitors`);
