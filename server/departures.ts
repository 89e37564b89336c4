// Clients leaving (GOAWAY, from either side) while joined connections are still open.
// Their control connection stays until those have ended, because it carries their FIN
// notices (fin-notice). Each side says BYE once none of its joined connections
// with the other is left; the connection closes when both have.
import { CountPerKey } from './limits.ts';

/** What a departing control session is to this registry. */
export interface Departing {
  /** Says BYE (once): none of our joined connections with this client is left. */
  bye(): void;
}

export class Departures {
  /** Joined data connections per client process (its `fin-notice` instance). */
  private readonly joined = new CountPerKey<string>(Number.POSITIVE_INFINITY);
  private readonly leaving = new Map<string, Set<Departing>>();

  /** A connection of the client process `instance` was joined. */
  started(instance: string): void {
    this.joined.force(instance);
  }

  /** A joined connection of `instance` has ended: its last one lets departing sessions say BYE. */
  ended(instance: string): void {
    this.joined.remove(instance);
    if (this.joined.get(instance) > 0) return;
    const sessions = this.leaving.get(instance);
    this.leaving.delete(instance);
    for (const session of sessions ?? []) session.bye();
  }

  /** `session` is leaving: it says BYE once `instance` has no joined connection (now, if it
   * has none, or if the client never named its process: then nothing is checked). */
  leave(instance: string | undefined, session: Departing): void {
    if (instance === undefined || this.joined.get(instance) === 0) return session.bye();
    const sessions = this.leaving.get(instance) ?? new Set();
    sessions.add(session);
    this.leaving.set(instance, sessions);
  }

  /** `session` closed (for whatever reason): forget it. */
  forget(instance: string | undefined, session: Departing): void {
    if (instance === undefined) return;
    const sessions = this.leaving.get(instance);
    sessions?.delete(session);
    if (sessions?.size === 0) this.leaving.delete(instance);
  }
}
