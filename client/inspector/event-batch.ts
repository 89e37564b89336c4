// The client's events and the moments of its visitor connections, kept as they come and
// handed on in batches. With nobody watching, each costs the client a few stores here (a
// moment not even an object: see BurrowClient.tapPhases); what the history then does with
// them (find the record, write its timeline) runs later in one loop, over memory that loop
// keeps warm. Done a little at a time between the client's own work, each piece found its
// memory cold (bench/README.md, figure 8).
import type { PhaseEvent } from '../types.ts';

type Phase = PhaseEvent['phase'];

/** Where a batch goes: each event or moment, in the order they came. */
export interface BatchTarget<Event> {
  event(event: Event): void;
  phase(id: string, phase: Phase, at: number, detail: string | undefined): void;
}

export class EventBatch<Event> {
  // Entry i is an event if events[i] is set, else a moment: ids[i], phases[i], ... .
  private readonly events: (Event | undefined)[];
  private readonly ids: string[];
  private readonly phases: Phase[];
  private readonly details: (string | undefined)[];
  /** Each moment's time (ms since the epoch). */
  private readonly times: Float64Array;
  private count = 0;

  constructor(
    private readonly size: number,
    private readonly target: BatchTarget<Event>,
  ) {
    this.events = new Array<Event | undefined>(size).fill(undefined);
    this.ids = new Array<string>(size).fill('');
    this.phases = new Array<Phase>(size).fill('closed');
    this.details = new Array<string | undefined>(size).fill(undefined);
    this.times = new Float64Array(size);
  }

  /** Keeps `event`; a full batch is handed on at once (so at most `size` are kept). */
  push(event: Event): void {
    this.events[this.count] = event;
    this.added();
  }

  /** Keeps one moment of connection `id`, as its four values. */
  pushPhase(id: string, phase: Phase, at: number, detail: string | undefined): void {
    const i = this.count;
    this.ids[i] = id;
    this.phases[i] = phase;
    this.times[i] = at;
    this.details[i] = detail;
    this.added();
  }

  /** Hands on everything kept, in order, each once. If handling one throws, the rest are
   * still handed on, and then the first error is thrown. */
  flush(): void {
    const count = this.count;
    this.count = 0; // first: what is handed on now is not handed on again
    let failed = false;
    let failure: unknown;
    for (let i = 0; i < count; i++) {
      try {
        this.handOn(i);
      } catch (error) {
        if (!failed) [failed, failure] = [true, error];
      }
    }
    if (failed) throw failure;
  }

  private handOn(i: number): void {
    const event = this.events[i];
    if (event !== undefined) {
      this.events[i] = undefined;
      return this.target.event(event);
    }
    const id = this.ids[i] ?? '';
    const detail = this.details[i];
    this.ids[i] = '';
    this.details[i] = undefined;
    this.target.phase(id, this.phases[i] ?? 'closed', this.times[i] ?? 0, detail);
  }

  /** Forgets everything kept. */
  clear(): void {
    this.events.fill(undefined, 0, this.count);
    this.ids.fill('', 0, this.count);
    this.details.fill(undefined, 0, this.count);
    this.count = 0;
  }

  private added(): void {
    if (++this.count === this.size) this.flush();
  }
}
