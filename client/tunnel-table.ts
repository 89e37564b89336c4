// The client's tunnels: what it asked for, what the server gave it (public port and
// lease), and how to ask again on a new control link after a reconnect.
import { BurrowError } from '../shared/errors.ts';
import { hostPort, unbracket } from '../shared/protocol.ts';
import type { Opened, Requests } from './requests.ts';
import { LeaseFile } from './lease-file.ts';
import type { ClientSettings, HttpTunnelOptions, OpenTunnel, TunnelMove, TunnelRequest } from './types.ts';
import { authToken } from '../shared/http-headers.ts';

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

  /** Where the leases of requested ports outlive this process. */
  private readonly leaseFile: LeaseFile | undefined;
  /** The server's key in the lease file (`host:controlPort`). */
  private readonly leaseKey: string;

  constructor(
    private readonly settings: Pick<ClientSettings, 'tunnels' | 'server' | 'controlPort' | 'localHost' | 'leaseFile'>,
    warn: (warning: BurrowError) => void,
  ) {
    this.entries = settings.tunnels.map((request) => ({ request, tunnel: undefined, lease: undefined }));
    this.leaseFile = settings.leaseFile === undefined ? undefined : new LeaseFile(settings.leaseFile, warn);
    this.leaseKey = hostPort(settings.server, settings.controlPort);
  }

  /** Exposes every tunnel at once on the control link of `requests`; resolves with the
   * tunnels whose port moved. */
  async exposeAll(requests: Requests): Promise<TunnelMove[]> {
    const moves = await Promise.all(this.entries.map((entry) => this.expose(requests, entry)));
    return moves.filter((move): move is TunnelMove => move !== undefined);
  }

  /** Exposes one entry, reclaiming its port with its lease if it has one. */
  private async expose(requests: Requests, entry: Entry): Promise<TunnelMove | undefined> {
    if (entry.request.http) return this.exposeHttp(requests, entry, entry.request.http);
    const previous = entry.tunnel?.publicPort;
    const asked = entry.request.remotePort ?? 0;
    const { localPort } = entry.request;
    const record = (opened: Opened): void => this.record(entry, opened);
    // After a reconnect: our port, with its lease. At start: a requested port's lease from
    // an earlier run, so that a crashed client gets its port back.
    const lease =
      previous !== undefined ? entry.lease : asked === 0 ? undefined : this.leaseFile?.get(this.leaseKey, asked);
    const remotePort = previous !== undefined && lease !== undefined ? previous : asked;
    try {
      await requests.expose({ localPort, remotePort, lease }, record);
    } catch (error) {
      // Our old port is gone (lease expired and taken, or outside a restarted server's
      // new range): any port will do, unless the user asked for that one.
      const gone =
        error instanceof BurrowError && (error.reason === 'port-in-use' || error.reason === 'port-out-of-range');
      const lost = gone && previous !== undefined && asked === 0;
      if (!lost) throw error;
      await requests.expose({ localPort, remotePort: 0 }, record);
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

  /** Opens an HTTP tunnel: its name (the one asked for, or the one it had before a
   * reconnect), with its lease if it has one. A random name whose lease ran out is
   * replaced by a new one; a name the user asked for is not. */
  private async exposeHttp(
    requests: Requests,
    entry: Entry,
    options: HttpTunnelOptions | true,
  ): Promise<TunnelMove | undefined> {
    const { name: asked = '', auth } = options === true ? {} : options;
    const previous = entry.tunnel;
    // record() updates the tunnel in place: what it was is kept here.
    const previousUrl = previous?.url;
    const name = previous?.name ?? asked;
    const lease = previous
      ? entry.lease
      : asked === ''
        ? undefined
        : this.leaseFile?.get(this.leaseKey, `http:${asked}`);
    const http = { name, auth: auth === undefined ? undefined : authToken(auth) };
    const expose = { localPort: entry.request.localPort, remotePort: 0 };
    const record = (opened: Opened): void => this.record(entry, opened);
    try {
      await requests.expose({ ...expose, lease, http }, record);
    } catch (error) {
      const lost = error instanceof BurrowError && error.reason === 'name-in-use' && previous && asked === '';
      if (!lost) throw error;
      await requests.expose({ ...expose, http: { ...http, name: '' } }, record);
    }
    const tunnel = entry.tunnel;
    if (!tunnel || previousUrl === undefined || previousUrl === tunnel.url) return undefined;
    return { tunnel, previousPort: tunnel.publicPort, previousUrl };
  }

  /** The tunnel a CONNECTION is for, or why it is none of ours. An HTTP tunnel is named
   * (its public port is shared); a minimal server names only the id: then it can only
   * mean our one tunnel. */
  tunnelFor({
    publicPort,
    name,
  }: {
    publicPort?: number | undefined;
    name?: string | undefined;
  }): OpenTunnel | BurrowError {
    const tunnel = this.open.find((t) =>
      name !== undefined
        ? t.name === name
        : publicPort === undefined
          ? this.open.length === 1
          : t.publicPort === publicPort && t.name === undefined,
    );
    if (tunnel) return tunnel;
    const which =
      name !== undefined
        ? `for the HTTP tunnel ${name}, which is not one of ours`
        : publicPort === undefined
          ? 'without a public port, and we have several tunnels'
          : `for public port ${publicPort}, which is not one of our tunnels`;
    return new BurrowError('protocol', `CONNECTION ${which}`);
  }

  /** The ports were freed on purpose (GOAWAY): their leases are worth nothing now. */
  forgetKeptLeases(): void {
    for (const { request, tunnel } of this.entries) {
      if (request.remotePort && tunnel) this.leaseFile?.set(this.leaseKey, tunnel.publicPort, undefined);
      const asked = request.http === true ? undefined : request.http?.name;
      if (asked && tunnel) this.leaseFile?.set(this.leaseKey, `http:${asked}`, undefined);
    }
  }

  /** Runs the moment an OK is read: the tunnel must be known before the next line. */
  private record(entry: Entry, opened: Opened): void {
    const { publicPort, lease } = opened;
    entry.lease = lease;
    const url = opened.url ?? `tcp://${hostPort(this.settings.server, publicPort)}`;
    const name = opened.url === undefined ? undefined : new URL(opened.url).hostname.split('.')[0];
    const { http } = entry.request;
    if (entry.request.remotePort) this.leaseFile?.set(this.leaseKey, publicPort, lease);
    if (http !== undefined && http !== true && http.name)
      this.leaseFile?.set(this.leaseKey, `http:${http.name}`, lease);
    if (entry.tunnel) {
      entry.tunnel.publicPort = publicPort;
      entry.tunnel.url = url;
      if (name !== undefined) entry.tunnel.name = name;
      return;
    }
    const { localPort, proxyProtocol } = entry.request;
    entry.tunnel = {
      localHost: entry.request.localHost === undefined ? this.settings.localHost : unbracket(entry.request.localHost),
      localPort,
      publicPort,
      url,
    };
    // A PROXY header is for a TCP service: an HTTP tunnel's service reads X-Forwarded-For.
    if (proxyProtocol !== undefined && http === undefined) entry.tunnel.proxyProtocol = proxyProtocol;
    if (name !== undefined) {
      entry.tunnel.name = name;
      entry.tunnel.http = http === true || http === undefined ? {} : http;
    }
    // Keep `open` in request order, whatever order the replies came in.
    this.open.splice(0, this.open.length, ...this.entries.flatMap((e) => (e.tunnel ? [e.tunnel] : [])));
  }
}
