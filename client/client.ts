// The client: keeps a control link to the server (client/control.ts), one tunnel per
// exposed local port, and a dial-back for every CONNECTION. When the link is lost it
// reconnects with backoff and reclaims its public ports with their leases.
// `startClient()` is the library entry point.
import { deadlineIn } from '../shared/deadline.ts';
import { EventEmitter, setMaxListeners } from 'node:events';
import type net from 'node:net';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { confirmAcrossReconnects, WaitsForVoucher, type Answer, type Voucher } from '../shared/alive-check.ts';
import { LINGER_MS } from '../shared/control-lines.ts';
import { BurrowError } from '../shared/errors.ts';
import {
  DEFAULT_CONTROL_PORT,
  DEFAULT_DATA_PORT,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  hostPort,
  unbracket,
  type ConnectionMessage,
} from '../shared/protocol.ts';
import { parseEndpoint, proxyHeader } from '../shared/proxy-header.ts';
import { hideProofs, type TraceEvent } from '../shared/trace.ts';
import { backoffDelay, isPermanent } from './backoff.ts';
import { dialBack } from './connection.ts';
import { checkDataPort, localServicesMissing } from './start-checks.ts';
import { ControlLink } from './control.ts';
import { LeaseFile } from './lease-file.ts';
import { TunnelTable } from './tunnel-table.ts';
import { TurnAwayWarnings } from './turn-away.ts';
import { clientTls, type ClientTls } from './tls.ts';
import { OwnedSockets } from '../shared/owned-sockets.ts';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  type BurrowClientEvents,
  type ClientOptions,
  type ConnectionEvent,
  type OpenTunnel,
  type TunnelMove,
} from './types.ts';

export * from './types.ts';

const debug = createDebug('burrow:client');

export class BurrowClient extends EventEmitter<BurrowClientEvents> {
  /** Open tunnels, in the order they were requested (updated in place on reconnect). */
  readonly tunnels: OpenTunnel[];
  private readonly table: TunnelTable;
  private readonly serverHost: string;
  private readonly tls: ClientTls | undefined;
  /** Visitor connections (local and data sockets): what close() lets finish. */
  private readonly sockets = new OwnedSockets();
  /** Control connections: they stay while the rest drains, to answer for its FINs. */
  private readonly controlSockets = new OwnedSockets();
  /** This process, as `fin-check` names it (see BurrowServer.instance). */
  private readonly instance = nanoid();
  /** Server FINs waiting for the control connection to come back. */
  private readonly finWaits = new WaitsForVoucher();
  private link: ControlLink | undefined;
  /** The current link has every tunnel open (a loss from here on means: reconnect). */
  private linkOpen = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Visitor connections being dialed or joined. */
  private connections = 0;
  /** No more serving: close(), destroy(), or the server lost for good. */
  private stopped = false;
  /** start() has resolved; until then a lost link is an error for start() to throw. */
  private started = false;
  private lostWhileStarting: BurrowError | undefined;
  /** Aborted by stop(): cuts dial-backs that are not joined yet. */
  private readonly stopping = new AbortController();
  private readonly turnAway: TurnAwayWarnings;
  /** The check of the data port, begun as soon as the first link knows which it is. */
  private startupCheck: Promise<void> | undefined;
  /** The default data port, found at start to answer where the named one does not. */
  private forwardedDataPort: number | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: ClientOptions) {
    super();
    this.serverHost = unbracket(options.server ?? 'localhost');
    // One 'abort' listener per dial-back in flight (up to maxConnections): not a leak.
    setMaxListeners(0, this.stopping.signal);
    // Resolved once (a bad fingerprint throws here), used by the control and data dials.
    this.tls = options.tls ? clientTls(options.tls, this.serverHost) : undefined;
    const file =
      options.leaseFile === undefined ? undefined : new LeaseFile(options.leaseFile, (warning) => this.warn(warning));
    const kept = file && { file, server: hostPort(this.serverHost, options.controlPort ?? DEFAULT_CONTROL_PORT) };
    this.table = new TunnelTable(options.tunnels, this.serverHost, unbracket(options.localHost ?? 'localhost'), kept);
    this.tunnels = this.table.open;
    this.turnAway = new TurnAwayWarnings(options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, (warning) =>
      this.warn(warning),
    );
  }

  /** Connects, exposes every requested port, and resolves once all are open. Rejects with
   * a BurrowError (`unreachable`, `refused`, `timeout`, `closed`, `protocol`) and leaves
   * nothing open if any step fails. */
  async start(): Promise<void> {
    try {
      // The data port is checked as soon as the server's HELLO says which one it is, so
      // the check comes before any dial-back (whose connections a server sees in order).
      await this.openLink('release');
      await this.startupCheck;
      await this.checkLocalServices();
      // A link lost during the checks fails the start (whoever awaits start() hears it),
      // rather than being retried behind its back.
      if (this.lostWhileStarting) throw this.lostWhileStarting;
      this.started = true;
    } catch (error) {
      // Graceful, so the GOAWAY reaches the server; nothing joined yet, so it is quick.
      await this.close();
      throw error;
    }
  }

  /** Graceful close: tells the server (which frees our ports at once), stops taking
   * visitors, lets joined connections finish for up to `shutdownTimeoutMs`, then closes
   * them. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop(undefined);
      await this.sockets.close(this.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
      // The control connection stayed to vouch for the FINs of what was draining; it
      // closes once both sides have said BYE.
      if (this.link?.extensions.has('goaway')) await this.link.closedWithin(2 * LINGER_MS);
      this.link?.finish();
      this.finWaits.close();
      await this.controlSockets.close(2 * LINGER_MS);
    })();
    return this.closing;
  }

  /** Like close(), but ends joined connections at once. */
  destroy(): Promise<void> {
    const closing = this.close();
    this.sockets.stopDraining();
    this.controlSockets.stopDraining();
    return closing;
  }

  /** Opens a control link and (re-)exposes every tunnel on it; throws on any refusal. A
   * tunnel whose lease no longer holds gets a new public port, unless the user asked for
   * a specific one. Returns the tunnels whose public port changed. */
  private async openLink(onFailure: 'release' | 'keep'): Promise<TunnelMove[]> {
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const link = new ControlLink(
      {
        instance: this.instance,
        host: this.serverHost,
        port: this.options.controlPort ?? DEFAULT_CONTROL_PORT,
        connectTimeoutMs: timeoutMs,
        heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
        heartbeatTimeoutMs: this.options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
        secret: this.options.secret,
        tls: this.tls,
      },
      {
        onConnection: (message) => this.onConnection(link, message),
        onWarning: (warning) => this.warn(warning),
        onLost: (error, goAway) => this.onLost(link, error, goAway),
        trace: (kind, text) => this.trace('control', kind, text),
        track: (socket) => this.controlSockets.add(socket),
        onAgreed: () => {
          this.finWaits.wake();
          this.startupCheck ??= this.checkDataPort(link);
          this.startupCheck.catch(() => {}); // awaited by start(); only the first link's
        },
        onGoAway: () => this.byeWhenIdle(),
      },
    );
    this.link = link;
    this.linkOpen = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BurrowError('timeout', `the server did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      // One deadline for the whole exchange; every EXPOSE goes out at once.
      return await Promise.race([
        (async () => {
          await link.connect();
          const moves = await this.table.exposeAll(link);
          if (!link.open) throw new BurrowError('closed', 'the server closed the connection');
          if (!link.knowsHello && this.tunnels.length > 1) {
            // Its CONNECTION <id> cannot say which tunnel a visitor came to.
            throw new BurrowError(
              'protocol',
              'this server speaks only the base protocol, which cannot say which tunnel a visitor is for: expose one port per client',
            );
          }
          this.linkOpen = true;
          return moves;
        })(),
        deadline,
      ]);
    } catch (error) {
      // A failed start gives up: say GOAWAY so the server frees the ports it did open.
      // A failed retry tries again soon: drop the link so those ports stay leased to us.
      if (onFailure === 'release') link.goAway();
      else link.close();
      throw error;
    } finally {
      clearTimeout(timer);
      deadline.catch(() => {}); // settled or not, nobody waits for it any more
    }
  }

  private onLost(link: ControlLink, error: BurrowError, goAway: boolean): void {
    // A link lost while still opening is handled by whoever awaits openLink().
    if (this.stopped || link !== this.link || !this.linkOpen) return;
    this.linkOpen = false;
    if (!this.started) {
      this.lostWhileStarting = error;
      return;
    }
    this.emit('disconnected', error);
    if (!this.options.reconnect) {
      this.stop(error);
      return;
    }
    // A server that said GOAWAY is restarting: start the backoff one step in.
    this.retry(goAway ? 1 : 0, 1);
  }

  /** Schedules reconnect attempt number `attempt` (1-based, for events). */
  private retry(step: number, attempt: number): void {
    const backoff = typeof this.options.reconnect === 'object' ? this.options.reconnect : {};
    const delayMs = backoffDelay(step, backoff);
    this.emit('reconnecting', { attempt, delayMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.openLink('keep').then(
        (moved) => {
          if (!this.stopped) this.emit('reconnected', { moved });
        },
        (error: unknown) => {
          if (this.stopped) return;
          const failure =
            error instanceof BurrowError ? error : new BurrowError('closed', String(error), { cause: error });
          if (isPermanent(failure)) return this.stop(failure);
          this.warn(failure);
          this.retry(step + 1, attempt + 1);
        },
      );
    }, delayMs);
  }

  private onConnection(link: ControlLink, { id, publicPort, visitor, destination }: ConnectionMessage): void {
    if (this.stopped) {
      link.refuse(id); // we said GOAWAY: no new visitors, and the server should know
      return;
    }
    // A minimal server names only the id: then it can only mean our one tunnel.
    const tunnel =
      publicPort === undefined
        ? this.tunnels.length === 1
          ? this.tunnels[0]
          : undefined
        : this.tunnels.find((t) => t.publicPort === publicPort);
    if (!tunnel) {
      const which =
        publicPort === undefined
          ? 'without a public port, and we have several tunnels'
          : `for public port ${publicPort}, which is not one of our tunnels`;
      this.warn(new BurrowError('protocol', `CONNECTION ${which}`));
      link.refuse(id);
      return;
    }
    const limit = this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.connections >= limit) {
      // Each CONNECTION costs two sockets here: a flood must not exhaust this machine.
      // The server resets the visitor at once if it can be told (REFUSE); otherwise its
      // wait for a dial-back runs out there.
      this.turnAway.count(link.refuse(id));
      return;
    }
    this.connections++;
    const conn = `data:${id.slice(0, 6)}`;
    const event: ConnectionEvent = visitor === undefined ? { id, tunnel } : { id, tunnel, visitor };
    // Until it is joined, a dial-back is not a connection close() waits for: stop() cuts it.
    const dialing: net.Socket[] = [];
    let joined = false;
    const cut = (): void => {
      if (!joined) for (const socket of dialing) socket.destroy();
    };
    this.stopping.signal.addEventListener('abort', cut, { once: true });
    const started = Date.now();
    dialBack({
      id,
      serverHost: this.serverHost,
      dataPort: this.dataPortOf(link),
      localHost: tunnel.localHost,
      localPort: tunnel.localPort,
      proxyHeader:
        tunnel.proxyProtocol && proxyHeader(tunnel.proxyProtocol, parseEndpoint(visitor), parseEndpoint(destination)),
      timeoutMs: this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      secret: this.options.secret,
      tls: this.tls,
      idReply: link.extensions.has('id-reply'),
      // The server's FIN may be its operating system closing up after a crash: pass it on
      // to the local service only once the server has proved it is alive (fin-check).
      confirmEnd: link.extensions.has('fin-check') ? (answer) => this.confirmServerAlive(link, answer) : undefined,
      track: (socket) => {
        dialing.push(socket);
        this.track(socket);
      },
      trace: (kind, text) => this.trace(conn, kind, text),
      onJoined: () => {
        joined = true;
        this.emit('connection', event);
      },
    })
      .then(
        (totals) => {
          const how = totals.aborted ? 'reset' : 'closed';
          this.trace(
            conn,
            'event',
            `${how}: ${totals.bytesIn} bytes in (from the visitor), ${totals.bytesOut} bytes out, ${totals.durationMs} ms`,
          );
          this.emit('connection-close', { ...event, ...totals });
        },
        (error: unknown) => {
          const failure =
            error instanceof BurrowError ? error : new BurrowError('closed', String(error), { cause: error });
          this.trace(conn, 'event', `failed: ${failure.message}`);
          if (this.stopped) return;
          this.warn(failure);
          // The visitor's connection log shows it too: it came, and was turned away.
          if (failure.code === 'local-unavailable') {
            this.emit('connection-close', {
              ...event,
              bytesIn: 0,
              bytesOut: 0,
              durationMs: Date.now() - started,
              aborted: true,
              localUnavailable: true,
            });
          }
        },
      )
      .finally(() => {
        this.stopping.signal.removeEventListener('abort', cut);
        this.connections--;
        this.byeWhenIdle();
      });
  }

  /** After a GOAWAY either way, says BYE once none of our joined connections needs the
   * control connection's heartbeat to check a FIN (at once if there are none). */
  private byeWhenIdle(): void {
    if (this.connections === 0 && (this.stopped || this.link?.serverLeaving)) this.link?.bye();
  }

  /** The server's data port: as configured, else as the server named it, else 7836. */
  private dataPortOf(link: ControlLink | undefined): number {
    return this.options.dataPort ?? this.forwardedDataPort ?? link?.serverDataPort ?? DEFAULT_DATA_PORT;
  }

  /** At start: see start-checks.ts. */
  private async checkDataPort(link: ControlLink): Promise<void> {
    const timeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const named = link.serverDataPort;
    const port = this.dataPortOf(link);
    const controlPort = this.options.controlPort ?? DEFAULT_CONTROL_PORT;
    const reached = await checkDataPort({
      host: this.serverHost,
      port,
      controlPort,
      given: this.options.dataPort !== undefined,
      named: named !== undefined,
      timeoutMs,
      track: (s) => this.track(s),
    });
    if (reached === port) return;
    // Kept for this client's life: a port forward does not move when the relay restarts.
    this.forwardedDataPort = reached;
    this.warn(
      new BurrowError(
        'unreachable',
        `the server names data port ${port}, which does not answer here; ${reached} does, so using it (behind a port forward? give --data-port ${reached} to say so)`,
      ),
    );
  }

  private async checkLocalServices(): Promise<void> {
    for (const warning of await localServicesMissing(this.tunnels)) this.warn(warning);
  }

  /** Asks the server that `link` reached whether it is alive: over `link`, or after a
   * reconnect over the new control connection if it reached the same server process. One
   * that reached a restarted server cannot vouch: the old one is gone. */
  private confirmServerAlive(link: ControlLink, answer: Answer): void {
    const deadline = deadlineIn(this.options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS);
    const lookup = (): Voucher | 'gone' | undefined => {
      const current = this.link;
      if (current === link) return link.open ? link : undefined;
      if (!current?.open || !current.agreedYet) return undefined;
      const same = link.serverInstance !== undefined && current.serverInstance === link.serverInstance;
      return same ? current : 'gone';
    };
    confirmAcrossReconnects(lookup, this.finWaits, deadline, answer);
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
  }

  /** Stops serving: no retries, no new visitors; the link says GOAWAY when we leave on
   * purpose. Joined connections keep flowing (close() drains them). */
  private stop(error: BurrowError | undefined): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.turnAway.close();
    this.stopping.abort();
    if (error) this.link?.close();
    else {
      this.link?.goAway();
      this.table.forgetKeptLeases(); // GOAWAY frees our ports: no lease to come back with
      this.byeWhenIdle();
    }
    this.trace('control', 'event', error ? `closed: ${error.message}` : 'closed');
    this.emit('close', error);
  }

  private warn(error: BurrowError): void {
    debug('warning: %s', error.message);
    this.emit('warning', error);
  }

  private trace(conn: string, kind: TraceEvent['kind'], text: string): void {
    if (this.listenerCount('trace') > 0)
      this.emit('trace', { side: 'client', conn, kind, text: kind === 'event' ? text : hideProofs(text) });
  }
}

/** Creates a client, connects and exposes its tunnels. */
export async function startClient(options: ClientOptions): Promise<BurrowClient> {
  const client = new BurrowClient(options);
  await client.start();
  return client;
}
