// The relay server in its own process (bench.ts --relay-process): started by fork(),
// controlled over IPC, so its memory and CPU can be reported apart from the load
// generator's. Exits by itself when told to close or when the parent goes away.
import { startServer } from '../index.ts';
import { type FromRelay, isToRelay } from './relay-messages.ts';
import { MemoryPeak, memoryNow, settleMemory } from './stats.ts';

const send = (message: FromRelay): void => {
  process.send?.(message);
};

const server = await startServer({ controlPort: 0, dataPort: 0, bind: '127.0.0.1' });
const peak = new MemoryPeak();
let cpuStart = process.cpuUsage();
let closing = false;

const shutdown = async (): Promise<void> => {
  if (closing) return;
  closing = true;
  peak.stop();
  await server.close();
  if (process.connected) process.disconnect?.();
};

process.on('message', (message: unknown) => {
  if (!isToRelay(message)) return;
  switch (message.type) {
    case 'reset':
      void settleMemory().then(() => {
        peak.start();
        cpuStart = process.cpuUsage();
        send({ type: 'reset-done' });
      });
      break;
    case 'report': {
      const cpu = process.cpuUsage(cpuStart);
      const total = process.cpuUsage();
      const top = peak.stop();
      const now = memoryNow();
      send({
        type: 'report',
        ...now,
        peakRss: top.rss,
        peakArrayBuffers: top.arrayBuffers,
        liveArrayBuffers: peak.liveArrayBuffers ?? null,
        cpuUs: cpu.user + cpu.system,
        totalCpuUs: total.user + total.system,
      });
      break;
    }
    case 'close':
      void shutdown();
      break;
  }
});
process.once('disconnect', () => void shutdown());

await settleMemory();
send({ type: 'ready', controlPort: server.controlPort, dataPort: server.dataPort });
