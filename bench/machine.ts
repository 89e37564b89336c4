// What ran the bench (CPU, cores, Node, kernel, date, commit), and how busy the rest of
// the machine was meanwhile, so the report can say when its numbers are disturbed.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { nowNs } from './io.ts';
import type { MachineInfo, Quietness } from './results.ts';

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return undefined;
  }
}

export function machineInfo(): MachineInfo {
  const commit = git(['rev-parse', '--short', 'HEAD']) ?? 'unknown';
  const dirty = (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '';
  return {
    date: new Date().toISOString(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    commit: dirty ? `${commit} (with uncommitted changes)` : commit,
  };
}

/** CPU time of the whole machine so far (all CPUs, every process), µs. */
function machineBusyUs(): number {
  return os
    .cpus()
    .reduce((sum, cpu) => sum + (cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq) * 1000, 0);
}

/** CPU time of this process plus every child it has waited for (wrk, and the relay,
 * client and echo processes once they exited), µs: fields 14-17 of /proc/self/stat. */
function ownAndChildrenUs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the ')' field 3 (state) is index 0: utime, stime, cutime, cstime are 14-17.
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return Number.isFinite(ticks) ? ticks * (1e6 / 100) : undefined; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** Steal and total ticks of all CPUs so far (/proc/stat), or undefined. */
function stealTicks(): { steal: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (line.startsWith('cpu ') && fields.length === 8 && fields.every(Number.isFinite)) {
      return { steal: fields[7] ?? 0, total: fields.reduce((sum, x) => sum + x, 0) };
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/** Starts watching the machine. Call stop() once every child has exited, so that all of
 * their CPU time counts as the bench's own. */
export function watchMachine(): { stop(): Quietness | undefined } {
  const loadAverageAtStart = os.loadavg()[0] ?? Number.NaN;
  const wallStart = nowNs();
  const busyStart = machineBusyUs();
  const ownStart = ownAndChildrenUs();
  const stealStart = stealTicks();
  return {
    stop: () => {
      const ownEnd = ownAndChildrenUs();
      if (ownStart === undefined || ownEnd === undefined) return undefined;
      const wallUs = (nowNs() - wallStart) / 1e3;
      const otherUs = machineBusyUs() - busyStart - (ownEnd - ownStart);
      const stealEnd = stealTicks();
      const cpus = os.availableParallelism();
      const stolen =
        stealStart && stealEnd && stealEnd.total > stealStart.total
          ? ((stealEnd.steal - stealStart.steal) / (stealEnd.total - stealStart.total)) * cpus
          : undefined;
      return {
        wallSeconds: wallUs / 1e6,
        otherProcessesCpus: Math.max(0, otherUs / wallUs),
        stolenCpus: stolen,
        loadAverageAtStart,
      };
    },
  };
}
