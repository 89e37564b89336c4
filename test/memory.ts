// Memory measured after a forced full garbage collection, for tests that bound what the
// relay buffers or keeps: V8's gc() without --expose-gc on the command line, and the
// live-memory readings taken right after it.
import { setImmediate as nextTurn } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';

/** Returns V8's gc(): after a full collection, arrayBuffers counts live buffers only.
 * Array buffers are normally freed by a background sweeper after the collection, which
 * would leave garbage in the count at random; this turns that off for the process (node
 * --test runs each test file in a process of its own). */
export function loadGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping');
  const candidate: unknown = vm.runInNewContext('gc');
  if (typeof candidate !== 'function') throw new Error('cannot get gc() from V8');
  return candidate as () => void;
}

/** Live JS heap plus live array buffers (socket chunks), after two full collections. */
export function liveBytes(gc: () => void): number {
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** heapUsed after three full collections with event-loop turns between them: finalizers
 * and weak callbacks of one collection free more for the next. */
export async function heapAfterGc(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await nextTurn();
  }
  return process.memoryUsage().heapUsed;
}
