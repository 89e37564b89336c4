// The open-files limit, raised for the concurrency figure inside the bench only: the relay
// and the client each hold two sockets per tunneled connection. Raised on this process with
// prlimit(1), so every child started afterwards inherits it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** File descriptors a process needs besides its connections' sockets (stdio, IPC,
 * listeners, epoll, Node's own), with a margin. */
export const RESERVED_FDS = 100;

export interface FdLimit {
  /** The limit every process of the run has. */
  limit: number;
  /** The most connections each process can hold: 2 sockets each, plus RESERVED_FDS. */
  maxConnections: number;
  /** Why it is lower than asked, if it is. */
  note: string | undefined;
}

/** This process's soft open-files limit, from /proc/self/limits (Linux). */
function currentLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'latin1')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined ? undefined : soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
  } catch {
    return undefined;
  }
}

/** Makes room for `connections` connections per process if it can (root, or a hard limit
 * high enough), and says how many fit. */
export function raiseFdLimit(connections: number): FdLimit {
  const wanted = 2 * connections + RESERVED_FDS;
  const before = currentLimit();
  if (before === undefined)
    return { limit: Number.NaN, maxConnections: connections, note: 'open-files limit unknown (no /proc/self/limits)' };
  let failure: string | undefined;
  if (before < wanted) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${wanted}:${wanted}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 10_000,
      });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
      failure = stderr || (error as Error).message;
    }
  }
  const limit = currentLimit() ?? before;
  const fit = Math.floor((limit - RESERVED_FDS) / 2);
  if (fit >= connections) return { limit, maxConnections: connections, note: undefined };
  return {
    limit,
    maxConnections: Math.max(0, fit),
    note: `open-files limit ${limit} (raising it to ${wanted} failed: ${failure ?? 'unknown'}): ${fit} connections fit`,
  };
}
