// The bench process's side of its child processes (child.ts): start one, ask it for its
// numbers, close it; every wait has a deadline, and killChildren() ends whatever is left
// (on failure, SIGINT or exit).
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFromChild, type ChildArgs, type FromChild, type ProcessStats, type Role } from './messages.ts';

const SCRIPT = fileURLToPath(new URL('./child.ts', import.meta.url));
const START_MS = 30_000;
const ANSWER_MS = 10_000;
const EXIT_MS = 10_000;

/** Every child started and not yet exited. */
const live = new Set<ChildProcess>();

/** Kills every child still running (synchronous: usable in an 'exit' handler). */
export function killChildren(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Waits for the first message from `child` that `pick` accepts, at most `ms`; rejects on
 * a `failed` message or if the child exits. */
function nextMessage<T>(
  child: ChildProcess,
  what: string,
  ms: number,
  pick: (message: FromChild) => T | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: unknown): void => {
      if (!isFromChild(message)) return;
      if (message.type === 'failed') {
        cleanup();
        reject(new Error(`${what}: ${message.message}`));
        return;
      }
      const picked = pick(message);
      if (picked === undefined) return;
      cleanup();
      resolve(picked);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${what}: the process exited (${signal ?? `code ${code}`})`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export class BenchChild {
  private nextId = 0;
  private readonly exited: Promise<void>;

  private constructor(
    readonly role: Role,
    private readonly child: ChildProcess,
    /** See FromChild 'ready'. */
    readonly ports: number[],
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  /** Starts `node --expose-gc --import tsx child.ts` and waits until it is ready. With
   * `cpuProfDir`, adds --cpu-prof into `cpuProfDir/<role>/`: Node names each profile
   * CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile, thread 0 being the main thread (the
   * others are tsx's module loader). */
  static async start(args: ChildArgs, cpuProfDir?: string): Promise<BenchChild> {
    const profile =
      cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.join(cpuProfDir, args.role)}`];
    const child = fork(SCRIPT, [JSON.stringify(args)], {
      execArgv: ['--expose-gc', ...profile, '--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    live.add(child);
    child.once('exit', () => live.delete(child));
    child.on('error', (error) => process.stderr.write(`bench ${args.role} process: ${error.message}\n`));
    try {
      const ports = await nextMessage(child, `starting the ${args.role} process`, START_MS, (message) =>
        message.type === 'ready' ? message.ports : undefined,
      );
      return new BenchChild(args.role, child, ports);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** Its CPU time, RSS and open fds now (after two full GCs if `gc`). */
  stats(gc = false): Promise<ProcessStats> {
    if (!this.child.connected) return Promise.reject(new Error(`the ${this.role} process is gone`));
    const id = ++this.nextId;
    const answer = nextMessage(this.child, `${this.role} stats`, ANSWER_MS, (message) =>
      message.type === 'stats' && message.id === id ? message.stats : undefined,
    );
    this.child.send({ type: 'stats', id, gc }, () => {}); // a failed send surfaces as 'exit' or the deadline
    return answer;
  }

  /** Starts (`on`) or closes the client's inspector; resolves once it has. */
  async inspect(on: boolean): Promise<void> {
    if (!this.child.connected) throw new Error(`the ${this.role} process is gone`);
    const id = ++this.nextId;
    const answer = nextMessage(this.child, `${this.role} inspector`, ANSWER_MS, (message) =>
      message.type === 'inspector' && message.id === id ? message : undefined,
    );
    this.child.send({ type: 'inspector', id, on }, () => {});
    const { failed } = await answer;
    if (failed !== undefined) throw new Error(`${this.role} inspector: ${failed}`);
  }

  /** Asks it to close and exit (so a --cpu-prof profile gets written); kills it if it has
   * not exited within EXIT_MS. */
  async close(): Promise<void> {
    if (this.child.connected) this.child.send({ type: 'close' }, () => {});
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}
