// The relay server under test, either in this process or in a child process
// (bench/relay-child.ts, driven over IPC), behind one interface.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer, type BurrowServer } from '../index.ts';
import { HOST } from './io.ts';
import { isFromRelay, type FromRelay, type RelayReport, type ToRelay } from './relay-messages.ts';

export interface Relay {
  readonly where: 'in-process' | 'child-process';
  readonly controlPort: number;
  readonly dataPort: number;
  /** Starts a measurement window in the relay process (no-op in process). */
  reset(): Promise<void>;
  /** Ends it: the relay process's numbers, or undefined in process. */
  report(): Promise<RelayReport | undefined>;
  close(): Promise<void>;
}

export function startRelay(inChildProcess: boolean): Promise<Relay> {
  return inChildProcess ? childProcessRelay() : inProcessRelay();
}

async function inProcessRelay(): Promise<Relay> {
  const server: BurrowServer = await startServer({ controlPort: 0, dataPort: 0, bind: HOST });
  return {
    where: 'in-process',
    controlPort: server.controlPort,
    dataPort: server.dataPort,
    reset: () => Promise.resolve(),
    report: () => Promise.resolve(undefined),
    close: () => server.close(),
  };
}

/** Waits for the child's next message of `type`, at most `ms`. */
function nextMessage<T extends FromRelay['type']>(child: ChildProcess, type: T, ms: number): Promise<Extract<FromRelay, { type: T }>> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: unknown): void => {
      if (!isFromRelay(message) || message.type !== type) return;
      cleanup();
      resolve(message as Extract<FromRelay, { type: T }>);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`relay process exited (code ${code}) while waiting for '${type}'`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`relay process sent no '${type}' within ${ms} ms`));
    }, ms);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function childProcessRelay(): Promise<Relay> {
  const script = fileURLToPath(new URL('./relay-child.ts', import.meta.url));
  const child = fork(script, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  };
  child.on('error', (error) => process.stderr.write(`relay process: ${error.message}\n`));
  /** Sends a request and waits for its answer; rejects if the relay process is gone. */
  const ask = <T extends FromRelay['type']>(message: ToRelay, reply: T): Promise<Extract<FromRelay, { type: T }>> => {
    if (!child.connected) return Promise.reject(new Error('the relay process is gone'));
    const answer = nextMessage(child, reply, 10_000);
    child.send(message, () => {}); // a failed send surfaces as 'exit' or the deadline
    return answer;
  };
  let ready;
  try {
    ready = await nextMessage(child, 'ready', 20_000);
  } catch (error) {
    kill();
    throw error;
  }
  return {
    where: 'child-process',
    controlPort: ready.controlPort,
    dataPort: ready.dataPort,
    reset: async () => {
      await ask({ type: 'reset' }, 'reset-done');
    },
    report: () => ask({ type: 'report' }, 'report'),
    close: async () => {
      if (child.connected) child.send({ type: 'close' }, () => {});
      const timer = setTimeout(kill, 10_000); // it closes itself; this is only the backstop
      await exited;
      clearTimeout(timer);
    },
  };
}
