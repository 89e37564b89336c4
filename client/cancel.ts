// How the client cancels: one AbortController stands for "this client is stopping"
// (client.ts), and every dial and every wait of a dial-back takes its signal.
//
// A dial's wait has a deadline of its own: a timer, cleared when the wait is over, that
// destroys the socket with TIMED_OUT. Not AbortSignal.timeout(): its timer cannot be
// cleared and lives on until it fires (a timer and its memory per dial, for seconds). Not
// AbortSignal.any(): on Node 20 each call leaves an entry on the long-lived signal, freed
// only when that one aborts.
import { once } from 'node:events';
import type net from 'node:net';

/** The error a socket is destroyed with when its waitFor() runs out of time. */
export const TIMED_OUT = new Error('timed out');

/** Waits for `event` on `socket` (an 'error' rejects with it), unless `signal` aborts first
 * (rejects with its reason) or `ms` pass (the socket is destroyed, with TIMED_OUT). */
export async function waitFor(socket: net.Socket, event: string, signal: AbortSignal, ms: number): Promise<void> {
  const timer = setTimeout(() => socket.destroy(TIMED_OUT), ms);
  try {
    await once(socket, event, { signal });
  } catch (error) {
    throw signal.aborted ? signal.reason : error;
  } finally {
    clearTimeout(timer);
  }
}

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
