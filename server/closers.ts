// What was started on a server and closes with it (a metrics endpoint): run once, after
// the server's own ports and connections have closed.
import createDebug from 'debug';
import { describe } from '../shared/errors.ts';

const debug = createDebug('burrow:server');

export type Closer = () => Promise<void>;

export class Closers {
  /** Undefined once they have run: a closer added then runs at once. */
  private closers: Set<Closer> | undefined = new Set();

  /** Adds `closer`; returns the function that removes it. */
  add(closer: Closer): () => void {
    const { closers } = this;
    if (!closers) {
      void run(closer);
      return () => {};
    }
    closers.add(closer);
    return () => void closers.delete(closer);
  }

  /** Runs every closer (at most once each) and waits for them all. */
  async runAll(): Promise<void> {
    const closers = [...(this.closers ?? [])];
    this.closers = undefined;
    await Promise.all(closers.map(run));
  }
}

/** A closer's failure is logged, never thrown. */
async function run(closer: Closer): Promise<void> {
  try {
    await closer();
  } catch (error) {
    debug('closing a part started on the server: %s', describe(error));
  }
}
