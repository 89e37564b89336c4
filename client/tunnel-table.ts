// The client's tunnels: what it asked for, what the server gave it (public port and
// lease), and how to ask again on a new control link after a reconnect.
import { BurrowError } from '../shared/errors.ts';
import { hostPort, unbracket } from '../shared/protocol.ts';
import type { ControlLink, Opened } from './control.ts';
import type { LeaseFile } from './lease-file.ts';
import type { OpenTunnel, TunnelMove, TunnelRequest } from './types.ts';

/** A requested tunnel and what the server last gave it. */
interface Entry {
  request: TunnelRequest;
  tunnel: OpenTunnel | undefined;
  lease: string | undefined;
}

export class TunnelTable {
  /** Open tunnels in request order; the objects are updated in place when a port changes. */
  readonly open: OpenTunnel[] = [];
  private readonly entries: Entry[];

  constructor(
    requests: TunnelRequest[],
    private readonly serverHost: string,
    private readonly localHost: string,
    /** Where the leases of requested ports outlive this process, and the server's key in
     * it (`host:controlPort`). */
    private readonly kept?: { file: LeaseFile; server: string },
  ) {
    this.entries = requests.map((request) => ({ request, tunnel: undefined, lease: undefined }));
  }

  /** Exposes every tunnel on `link` at once; resolves with the tunnels whose port moved. */
  async exposeAll(link: ControlLink): Promise<TunnelMove[]> {
    const moves = await Promise.all(this.entries.map((entry) => this.expose(link, entry)));
    return moves.filter((move): move is TunnelMove => move !== undefined);
  }

  /** Exposes one entry on `link`, reclaiming its port with its lease if it has one. */
  private async expose(link: ControlLink, entry: Entry): Promise<TunnelMove | undefined> {
    const previous = entry.tunnel?.publicPort;
    const asked = entry.request.remotePort ?? 0;
    const record = (opened: Opened): void => this.record(entry, opened);
    // A requested port's lease from an earlier run: a crashed client gets its port back.
    const keptLease = previous === undefined && asked !== 0 ? this.kept?.file.get(this.kept.server, asked) : undefined;
    try {
      if (previous !== undefined && entry.lease !== undefined) {
        await link.expose({ localPort: entry.request.localPort, remotePort: previous, lease: entry.lease }, record);
      } else if (keptLease !== undefined) {
        await link.expose({ localPort: entry.request.localPort, remotePort: asked, lease: keptLease }, record);
      } else {
        await link.expose({ localPort: entry.request.localPort, remotePort: asked }, record);
      }
    } catch (error) {
      // Our old port is gone (lease expired and taken, or outside a restarted server's
      // new range): any port will do, unless the user asked for that one.
      const gone =
        error instanceof BurrowError && (error.reason === 'port-in-use' || error.reason === 'port-out-of-range');
      const lost = gone && previous !== undefined && asked === 0;
      if (!lost) throw error;
      await link.expose({ localPort: entry.request.localPort, remotePort: 0 }, record);
    }
    const tunnel = entry.tunnel;
    if (asked !== 0 && tunnel && tunnel.publicPort !== asked) {
      // A minimal server ignores the requested port (an extra field to it) and opens any.
      throw new BurrowError(
        'refused',
        `the server opened port ${tunnel.publicPort}, not the requested port ${asked}: it does not let clients choose their public port`,
      );
    }
    return tunnel && previous !== undefined && tunnel.publicPort !== previous
      ? { tunnel, previousPort: previous }
      : undefined;
  }

  /** The ports were freed on purpose (GOAWAY): their leases are worth nothing now. */
  forgetKeptLeases(): void {
    for (const { request, tunnel } of this.entries) {
      if (this.kept && request.remotePort && tunnel) this.kept.file.set(this.kept.server, tunnel.publicPort, undefined);
    }
  }

  /** Runs the moment an OK is read: the tunnel must be known before the next line. */
  private record(entry: Entry, { publicPort, lease }: Opened): void {
    entry.lease = lease;
    if (this.kept && entry.request.remotePort) this.kept.file.set(this.kept.server, publicPort, lease);
    const url = `tcp://${hostPort(this.serverHost, publicPort)}`;
    if (entry.tunnel) {
      entry.tunnel.publicPort = publicPort;
      entry.tunnel.url = url;
      return;
    }
    const { localPort, proxyProtocol } = entry.request;
    entry.tunnel = {
      localHost: entry.request.localHost === undefined ? this.localHost : unbracket(entry.request.localHost),
      localPort,
      publicPort,
      url,
    };
    if (proxyProtocol !== undefined) entry.tunnel.proxyProtocol = proxyProtocol;
    // Keep `open` in request order, whatever order the replies came in.
    this.open.splice(0, this.open.length, ...this.entries.flatMap((e) => (e.tunnel ? [e.tunnel] : [])));
  }
}
