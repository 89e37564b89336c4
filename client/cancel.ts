// How the client cancels: one AbortController stands for "this client is stopping"
// (client.ts), and every dial and every wait of a dial-back takes its signal. A wait with
// a deadline of its own takes AbortSignal.timeout() too, through unlessAborted().
//
// Not AbortSignal.any([stopping, timeout]): on Node 20 each call leaves an entry on the
// long-lived signal, freed only when it aborts (about 60 bytes per dial, for the client's
// whole life).
import { once } from 'node:events';

/** Settles as `work` does, unless `signal` aborts first: then rejects with its reason
 * (`work` goes on; its owner cleans up after it). */
export async function unlessAborted<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  const settled = new AbortController();
  const aborted = async (): Promise<never> => {
    if (!signal.aborted) await once(signal, 'abort', { signal: settled.signal });
    throw signal.reason;
  };
  try {
    return await Promise.race([work, aborted()]);
  } finally {
    settled.abort(); // unhooks from `signal`
  }
}
