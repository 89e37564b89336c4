// The inspector's requests by id: the last N, oldest dropped first.

/** Records by key, oldest first, at most `max`. */
export class Bounded<Key, Value> {
  private readonly entries = new Map<Key, Value>();

  constructor(private readonly max: number) {}

  set(key: Key, value: Value): void {
    this.entries.set(key, value);
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  get(key: Key): Value | undefined {
    return this.entries.get(key);
  }

  /** Newest first. */
  list(): Value[] {
    return [...this.entries.values()].reverse();
  }

  get size(): number {
    return this.entries.size;
  }
}
