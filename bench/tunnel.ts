// burrow under test: the relay server and the burrow client, each in its own process
// (children.ts), with one tunnel per local service, and optionally one HTTP tunnel by name
// on the relay's HTTP port; optionally the client's inspector beside it (issue 17); the
// client reaches the relay over TCP, or over WebSocket on its HTTP port (issue 18).
import path from 'node:path';
import { BenchChild } from './children.ts';
import { HOST } from './io.ts';
import type { HttpTunnelArgs, ProcessStats } from './messages.ts';

export interface TunnelStats {
  relay: ProcessStats;
  client: ProcessStats;
}

export interface TunnelOptions {
  /** Profile both processes (node --cpu-prof) into `<cpuProfDir>/<role>/`. */
  cpuProfDir?: string | undefined;
  httpTunnel?: HttpTunnelArgs | undefined;
  /** The client starts its inspector (startInspector, port 0), which nobody opens. */
  inspector?: boolean;
  /** How the client reaches the relay: its control and data ports (default), or WebSocket
   * on its HTTP port; then the profiles go to `<cpuProfDir>/ws/<role>/`. */
  transport?: 'tcp' | 'ws';
}

export class TunnelProcesses {
  private constructor(
    private readonly relay: BenchChild,
    private readonly client: BenchChild,
    /** The HTTP tunnel by name, if start() was given one: the relay's HTTP port and the
     * Host header that routes to it. */
    readonly httpRoute: { port: number; host: string } | undefined,
  ) {}

  /** The public port of each tunnel, in the order of the `localPorts` given to start(). */
  get publicPorts(): number[] {
    return this.client.ports;
  }

  /** Starts the relay, then a client exposing each of `localPorts` through it, and with
   * `httpTunnel` an HTTP tunnel by name too (the relay then gets an HTTP port); with
   * `inspector`, the client runs its inspector (issue 17); with `transport: 'ws'` the relay
   * gets an HTTP port and the client reaches it there over WebSocket (issue 18). */
  static async start(localPorts: number[], options: TunnelOptions = {}): Promise<TunnelProcesses> {
    const { httpTunnel, inspector = false } = options;
    const ws = options.transport === 'ws';
    const cpuProfDir = ws && options.cpuProfDir ? path.join(options.cpuProfDir, 'ws') : options.cpuProfDir;
    const relay = await BenchChild.start({ role: 'relay', http: httpTunnel !== undefined || ws }, cpuProfDir);
    try {
      const [controlPort, dataPort, httpPort] = relay.ports;
      if (controlPort === undefined || dataPort === undefined)
        throw new Error('the relay process did not report its ports');
      if ((httpTunnel || ws) && !httpPort) throw new Error('the relay process did not report its HTTP port');
      const webSocketUrl = ws ? `ws://${HOST}:${httpPort}` : undefined;
      const args = { role: 'client', controlPort, dataPort, webSocketUrl, localPorts, httpTunnel, inspector } as const;
      const client = await BenchChild.start(args, cpuProfDir);
      const expected = localPorts.length + (httpTunnel ? 1 : 0);
      if (client.ports.length !== expected || (httpTunnel && client.ports.at(-1) !== httpPort)) {
        await client.close();
        throw new Error(
          `the client opened ${client.ports.length} tunnels (${client.ports.join(', ')}), expected ${expected}` +
            (httpTunnel ? `, the last on the relay's HTTP port ${httpPort}` : ''),
        );
      }
      const route = httpTunnel && httpPort ? { port: httpPort, host: `${httpTunnel.name}.localhost` } : undefined;
      return new TunnelProcesses(relay, client, route);
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

  /** Starts (`on`) or closes the client's inspector. */
  inspect(on: boolean): Promise<void> {
    return this.client.inspect(on);
  }

  /** Closes the client first (it says GOAWAY), then the relay. */
  async close(): Promise<void> {
    await this.client.close();
    await this.relay.close();
  }
}
