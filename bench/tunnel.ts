// burrow under test: the relay server and the burrow client, each in its own process
// (children.ts), with one tunnel per local service.
import { BenchChild } from './children.ts';
import type { ProcessStats } from './messages.ts';

export interface TunnelStats {
  relay: ProcessStats;
  client: ProcessStats;
}

export class TunnelProcesses {
  private constructor(
    private readonly relay: BenchChild,
    private readonly client: BenchChild,
  ) {}

  /** The public port of each tunnel, in the order of the `localPorts` given to start(). */
  get publicPorts(): number[] {
    return this.client.ports;
  }

  /** Starts the relay, then a client exposing each of `localPorts` through it. */
  static async start(localPorts: number[], cpuProfDir?: string): Promise<TunnelProcesses> {
    const relay = await BenchChild.start({ role: 'relay' }, cpuProfDir);
    try {
      const [controlPort, dataPort] = relay.ports;
      if (controlPort === undefined || dataPort === undefined)
        throw new Error('the relay process did not report its ports');
      const client = await BenchChild.start({ role: 'client', controlPort, dataPort, localPorts }, cpuProfDir);
      if (client.ports.length !== localPorts.length) {
        await client.close();
        throw new Error(`the client opened ${client.ports.length} tunnels, expected ${localPorts.length}`);
      }
      return new TunnelProcesses(relay, client);
    } catch (error) {
      await relay.close();
      throw error;
    }
  }

  /** Both processes' numbers now (after full GCs if `gc`). */
  async stats(gc = false): Promise<TunnelStats> {
    const [relay, client] = await Promise.all([this.relay.stats(gc), this.client.stats(gc)]);
    return { relay, client };
  }

  /** Closes the client first (it says GOAWAY), then the relay. */
  async close(): Promise<void> {
    await this.client.close();
    await this.relay.close();
  }
}
