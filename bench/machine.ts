// How busy the rest of the machine was during the run: CPU time of other processes,
// hypervisor steal and the load average, so the report can say when numbers are disturbed.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { round } from './format.ts';
import { nowNs } from './io.ts';
import type { Relay } from './relay.ts';
import type { Machine } from './results.ts';

/** CPU time of the whole machine so far (all CPUs, every process), in µs. */
function machineBusyUs(): number {
  return os.cpus().reduce((sum, cpu) => sum + (cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq) * 1000, 0);
}

/** Steal and total ticks of all CPUs so far (Linux /proc/stat), or undefined. */
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

/** CPU time of this process plus the relay process so far, in µs. */
async function ownCpuUs(relay: Relay): Promise<number> {
  const self = process.cpuUsage();
  const child = await relay.report();
  return self.user + self.system + (child?.totalCpuUs ?? 0);
}

export interface MachineWatch {
  /** The machine's figures from the start of the watch until now. */
  stop(): Promise<Machine>;
}

/** Starts watching the machine; the relay's CPU time counts as ours, not as others'. */
export async function watchMachine(relay: Relay): Promise<MachineWatch> {
  const loadAverageAtStart = os.loadavg()[0] ?? Number.NaN;
  const wallStart = nowNs();
  const machineStart = machineBusyUs();
  const stealStart = stealTicks();
  const ownStart = await ownCpuUs(relay);
  return {
    stop: async () => {
      const wallUs = (nowNs() - wallStart) / 1_000;
      const otherUs = machineBusyUs() - machineStart - ((await ownCpuUs(relay)) - ownStart);
      const stealEnd = stealTicks();
      const stolenCpus =
        stealStart && stealEnd && stealEnd.total > stealStart.total
          ? round(((stealEnd.steal - stealStart.steal) / (stealEnd.total - stealStart.total)) * os.availableParallelism(), 2)
          : undefined;
      return {
        cpus: os.availableParallelism(),
        loadAverageAtStart: round(loadAverageAtStart, 2),
        otherProcessesCpus: round(Math.max(0, otherUs / wallUs), 2),
        stolenCpus,
        wallSeconds: round(wallUs / 1e6, 1),
      };
    },
  };
}
