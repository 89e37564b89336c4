// The local services (sink, source, echo, http) in their own process, so that direct
// means what it does in real life: the visitor and the service are different programs,
// and every byte crosses from one process to another at least once.
import { BenchChild } from './children.ts';
import { SERVICES, type ProcessStats, type ServiceName } from './messages.ts';

export class ServicesProcess {
  private constructor(
    private readonly child: BenchChild,
    readonly ports: Record<ServiceName, number>,
  ) {}

  static async start(): Promise<ServicesProcess> {
    const child = await BenchChild.start({ role: 'services' });
    const ports = Object.fromEntries(SERVICES.map((name, i) => [name, child.ports[i] ?? 0])) as Record<
      ServiceName,
      number
    >;
    if (SERVICES.some((name) => ports[name] === 0)) {
      await child.close();
      throw new Error('the services process did not report its ports');
    }
    return new ServicesProcess(child, ports);
  }

  stats(gc = false): Promise<ProcessStats> {
    return this.child.stats(gc);
  }

  close(): Promise<void> {
    return this.child.close();
  }
}
