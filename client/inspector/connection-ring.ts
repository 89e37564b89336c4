// The inspector's last N visitor connections, kept so that a client with nobody watching
// pays next to nothing for them: the N records are made once and then reused round a
// ring, and a record keeps its timeline in flat arrays, not an object per step. A visitor
// costs writes into memory the client already has, instead of a dozen new objects that
// outlive the garbage collector's young generation and must be copied and later swept.
// The objects a page reads (ConnectionRecord) are built only when it asks (toJSON).
import type { PhaseEvent } from '../types.ts';

type Phase = PhaseEvent['phase'];

/** One step of a connection's timeline, as the API and the page show it. */
export interface TimelineStep {
  phase: Phase;
  at: number;
  detail?: string;
}

/** One visitor connection, as the API and the page show it. */
export interface ConnectionRecord {
  id: string;
  /** The tunnel's address and its local service. */
  url: string;
  local: string;
  /** The visitor's address as the relay saw it, once known. */
  visitor?: string;
  /** When the relay's CONNECTION arrived (ms since the epoch). */
  startedAt: number;
  state: 'opening' | 'open' | 'closed' | 'failed';
  /** How it ended: a clean close (FIN both ways), a reset, or the local service refused. */
  ending?: 'fin' | 'reset' | 'local-refused' | 'failed';
  bytesIn: number;
  bytesOut: number;
  durationMs?: number;
  /** Each moment of the rendezvous and after, in order. */
  timeline: TimelineStep[];
}

/** Most timeline steps one connection keeps (a connection only has a dozen). */
const MAX_STEPS = 32;

/** A ConnectionRecord in a slot of the ring: its fields are written as events come, and
 * the whole is reset when the slot is reused for a newer connection. */
export class KeptConnection {
  id = '';
  url = '';
  local = '';
  visitor: string | undefined = undefined;
  startedAt = 0;
  state: ConnectionRecord['state'] = 'opening';
  ending: ConnectionRecord['ending'] = undefined;
  bytesIn = 0;
  bytesOut = 0;
  durationMs: number | undefined = undefined;
  // The timeline, step i in index i of each; entries past `steps` are stale, not read.
  readonly #phases: Phase[] = [];
  readonly #ats: number[] = [];
  readonly #details: (string | undefined)[] = [];
  #steps = 0;

  /** Makes this slot the record of a new connection. */
  reset(id: string, url: string, startedAt: number): void {
    this.id = id;
    this.url = url;
    this.local = '';
    this.visitor = undefined;
    this.startedAt = startedAt;
    this.state = 'opening';
    this.ending = undefined;
    this.bytesIn = 0;
    this.bytesOut = 0;
    this.durationMs = undefined;
    this.#steps = 0;
  }

  addStep(phase: Phase, at: number, detail: string | undefined): void {
    const step = this.#steps;
    if (step >= MAX_STEPS) return;
    this.#phases[step] = phase;
    this.#ats[step] = at;
    this.#details[step] = detail;
    this.#steps = step + 1;
  }

  get timeline(): TimelineStep[] {
    const steps: TimelineStep[] = [];
    for (let i = 0; i < this.#steps; i++) {
      const phase = this.#phases[i];
      const at = this.#ats[i];
      const detail = this.#details[i];
      if (phase === undefined || at === undefined) break; // never: steps are written in order
      steps.push(detail === undefined ? { phase, at } : { phase, at, detail });
    }
    return steps;
  }

  /** What JSON.stringify() writes: the record as the API documents it. */
  toJSON(): ConnectionRecord {
    const { id, url, local, visitor, startedAt, state, ending, bytesIn, bytesOut, durationMs } = this;
    return {
      id,
      url,
      local,
      visitor,
      startedAt,
      state,
      ending,
      bytesIn,
      bytesOut,
      durationMs,
      timeline: this.timeline,
    };
  }
}

/** The last `max` connections, by id. */
export class ConnectionRing {
  /** The slots; once all `max` are made, `oldest` is the one reused next. */
  private readonly slots: KeptConnection[] = [];
  private oldest = 0;
  private readonly byId = new Map<string, KeptConnection>();
  private readonly max: number;

  constructor(max: number) {
    this.max = Math.max(1, max);
  }

  /** The record of a new connection, in a new slot or the oldest one's. */
  open(id: string, url: string, startedAt: number): KeptConnection {
    let slot = this.slots.length < this.max ? undefined : this.slots[this.oldest];
    if (slot === undefined) {
      slot = new KeptConnection();
      this.slots.push(slot);
    } else {
      this.oldest = (this.oldest + 1) % this.max;
      // Only if the id still names this slot (an id seen twice names the newer one).
      if (this.byId.get(slot.id) === slot) this.byId.delete(slot.id);
    }
    slot.reset(id, url, startedAt);
    this.byId.set(id, slot);
    return slot;
  }

  get(id: string): KeptConnection | undefined {
    return this.byId.get(id);
  }

  /** Newest first. */
  list(): KeptConnection[] {
    const count = this.slots.length;
    const newestFirst: KeptConnection[] = [];
    for (let i = 1; i <= count; i++) {
      const slot = this.slots[(this.oldest - i + count) % count];
      if (slot !== undefined) newestFirst.push(slot);
    }
    return newestFirst;
  }

  get size(): number {
    return this.slots.length;
  }
}
