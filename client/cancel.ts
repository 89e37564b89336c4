// How the client cancels: one AbortController stands for "this client is stopping"
// (client.ts), and every dial and every wait of a dial-back takes its signal.
//
// A signal gets one 'abort' listener for all of its waits in flight (onAbort), not one
// each: Node's EventTarget walks its whole listener list on every add and remove, and a
// busy client has thousands of dial-backs in flight. A dial's deadline is a timer cleared
// when the wait is over: not AbortSignal.timeout(), whose timer cannot be cleared and lives
// on until it fires; not AbortSignal.any(), which on Node 20 leaves an entry on the
// long-lived signal for every call.
import type net from 'node:net';

const hooksOf = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `cut` when `signal` aborts (at once if it has), unless the returned function has
 * been called first. */
export function onAbort(signal: AbortSignal, cut: () => void): () => void {
  if (signal.aborted) {
    cut();
    return () => {};
  }
  const hooks = hooksOf.get(signal) ?? hooksFor(signal);
  hooks.add(cut);
  return () => void hooks.delete(cut);
}

/** The hooks of `signal`, made on its first wait, with the one listener that calls them. */
function hooksFor(signal: AbortSignal): Set<() => void> {
  const hooks = new Set<() => void>();
  signal.addEventListener('abort', () => hooks.forEach((hook) => hook()), { once: true });
  hooksOf.set(signal, hooks);
  return hooks;
}

/** Why waitFor() gave up, when it was not an 'error' of the socket: one error each, made
 * once (their stacks say nothing; the caller words the failure). */
export const TIMED_OUT = new Error('timed out');
export const CLOSED = new Error('closed');

/** Waits for `event` on `socket`. Rejects with the socket's error, with CLOSED if it
 * closes first (the client stopping destroys it), or with TIMED_OUT after `ms` (then the
 * socket is destroyed). Written out rather than with events.once: every dial passes here,
 * and this is the cheapest wait for three outcomes (bench/README.md, issue 15). */
export function waitFor(socket: net.Socket, event: string, signal: AbortSignal, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error): void => {
      clearTimeout(timer);
      release();
      socket.off(event, onEvent);
      socket.off('error', settle);
      socket.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onEvent = (): void => settle();
    const onClose = (): void => settle(CLOSED);
    const timer = setTimeout(() => {
      settle(TIMED_OUT);
      socket.destroy();
    }, ms);
    const release = onAbort(signal, () => socket.destroy());
    socket.once(event, onEvent);
    socket.once('error', settle);
    socket.once('close', onClose);
  });
}

/** Settles as `work` does, or rejects with TIMED_OUT after `ms` (`work` goes on; its owner
 * cleans up after it). The timer is cleared either way. */
export async function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
