// What the load generator talks to: the sink, source and echo services, the relay and a
// burrow client with one tunnel for each service. Gives the ports of each side, and
// closes whatever it got to start, even after a failure.
import { startClient, type BurrowClient } from '../index.ts';
import { HOST } from './io.ts';
import { startRelay, type Relay } from './relay.ts';
import type { Ports, Side } from './results.ts';
import { echo, listenService, sink, source, type Service } from './services.ts';

export class Harness {
  private readonly services: Service[] = [];
  private relay: Relay | undefined;
  private client: BurrowClient | undefined;

  /** Starts everything; the relay in a child process if `relayInChildProcess`. */
  async start(relayInChildProcess: boolean): Promise<{ relay: Relay; ports: Record<Side, Ports> }> {
    const sinkService = await listenService('sink', sink);
    this.services.push(sinkService);
    const sourceService = await listenService('source', source);
    this.services.push(sourceService);
    const echoService = await listenService('echo', echo);
    this.services.push(echoService);
    const relay = await startRelay(relayInChildProcess);
    this.relay = relay;
    const client = await startClient({
      tunnels: [{ localPort: sinkService.port }, { localPort: sourceService.port }, { localPort: echoService.port }],
      server: HOST,
      localHost: HOST,
      controlPort: relay.controlPort,
      dataPort: relay.dataPort,
    });
    this.client = client;
    const [sinkTunnel, sourceTunnel, echoTunnel] = client.tunnels;
    if (!sinkTunnel || !sourceTunnel || !echoTunnel) throw new Error('the server did not open three tunnels');
    client.on('warning', (warning) => process.stderr.write(`burrow client warning: ${warning.message}\n`));
    const ports: Record<Side, Ports> = {
      direct: { sink: sinkService.port, source: sourceService.port, echo: echoService.port },
      tunnel: { sink: sinkTunnel.publicPort, source: sourceTunnel.publicPort, echo: echoTunnel.publicPort },
    };
    return { relay, ports };
  }

  /** Closes the client, then the relay, then the services (those that were started). */
  async close(): Promise<void> {
    await this.client?.close();
    await this.relay?.close();
    for (const service of this.services) await service.close();
  }
}
