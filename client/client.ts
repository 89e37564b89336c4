// The client: keeps a control link to the server (control.ts) with every tunnel exposed on
// it (tunnel-table.ts), and answers each CONNECTION with a dial-back (connection.ts). When
// the link is lost it reconnects with backoff and reclaims its public ports with their
// leases. One AbortController, `stopping`, is how it cancels: every dial takes its signal
// (cancel.ts), and stop() aborts it. `startClient()` is the library entry point.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { nanoid } from 'nanoid';
import { LINGER_MS } from '../shared/control-lines.ts';
import { BurrowError } from '../shared/errors.ts';
import { OwnedSockets } from '../shared/owned-sockets.ts';
import { DEFAULT_DATA_PORT } from '../shared/protocol.ts';
import { backoffDelay, isPermanent } from './backoff.ts';
import { TIMED_OUT, within } from './cancel.ts';
import { Connections, type DataPort } from './connection.ts';
import { DataPortHooks } from './data-port-hooks.ts';
import { ControlLink } from './control.ts';
import { failure, trace, warn } from './report.ts';
import { checkDataPort, localServicesMissing } from './start-checks.ts';
import { clientTls, type ClientTls } from './tls.ts';
import { WebSocketDialer } from './websocket.ts';
import { TunnelTable } from './tunnel-table.ts';
import {
  withClientDefaults,
  type BurrowClientEvents,
  type ClientOptions,
  type ClientSettings,
  type OpenTunnel,
  type PhaseTap,
  type TunnelMove,
} from './types.ts';

export * from './types.ts';

export class BurrowClient extends EventEmitter<BurrowClientEvents> {
  /** Open tunnels, in the order they were requested (updated in place on reconnect). */
  readonly tunnels: OpenTunnel[];
  private readonly settings: ClientSettings;
  private readonly table: TunnelTable;
  /** Resolved once (a bad fingerprint throws here), used by the control and data dials. */
  private readonly tls: ClientTls | undefined;
  /** The control and data connections over WebSocket, when the server is a URL. */
  private readonly webSocket: WebSocketDialer | undefined;
  /** Visitor connections (local and data sockets): what close() lets finish. */
  private readonly sockets = new OwnedSockets();
  /** Control connections: they stay while the rest drains, to answer for its FINs. */
  private readonly controlSockets = new OwnedSockets();
  /** Aborted by stop(): no retries, no new visitors, no dial goes on. */
  private readonly stopping = new AbortController();
  private readonly connections: Connections;
  /** What the dial-backs use: TLS, the secret, fin-notice, prewarm. */
  private readonly hooks: DataPortHooks;
  /** This process, as `fin-notice` names it (see BurrowServer.instance). */
  private readonly instance = nanoid();
  private link: ControlLink | undefined;
  /** The current link has every tunnel open (a loss from here on means: reconnect). */
  private linkOpen = false;
  /** start() has resolved; until then a lost link is an error for start() to throw. */
  private started = false;
  private lostWhileStarting: BurrowError | undefined;
  /** The check of the data port, begun as soon as the first link knows which it is. */
  private startupCheck: Promise<void> | undefined;
  /** The data port as given, or as found at start where the one named does not answer. */
  private dataPort: number | undefined;
  private closing: Promise<void> | undefined;
  /** The body limits of those who capture requests (captureRequests). */
  private readonly captures: number[] = [];

  constructor(options: ClientOptions) {
    super();
    const settings = withClientDefaults(options);
    this.settings = settings;
    this.dataPort = settings.dataPort;
    const tls = settings.tls ? clientTls(settings.tls, settings.server) : undefined;
    this.webSocket = settings.webSocket && new WebSocketDialer(settings.webSocket, tls);
    this.tls = this.webSocket ? undefined : tls; // over WebSocket, TLS is the wss:// URL's
    this.table = new TunnelTable(settings, (warning) => warn(this, warning));
    this.tunnels = this.table.open;
    const track = (socket: Socket): void => this.sockets.add(socket);
    this.connections = new Connections(this, this.table, settings, this.stopping.signal, track, () =>
      this.byeWhenIdle(),
    );
    this.hooks = new DataPortHooks({
      settings,
      tls: this.tls,
      webSocket: this.webSocket,
      signal: this.stopping.signal,
      track,
      currentLink: () => this.link,
    });
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
      for (const warning of await localServicesMissing(this.tunnels)) warn(this, warning);
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

  /** From now on, each `request` event of an HTTP tunnel carries its headers and the first
   * `maxBodyBytes` of each body (`exchange`), for whoever shows them (the inspector).
   * Returns the function that stops it; the largest limit asked for holds meanwhile. */
  captureRequests(maxBodyBytes: number): () => void {
    const limit = Math.max(1, Math.floor(maxBodyBytes));
    this.captures.push(limit);
    this.connections.captureLimit = Math.max(...this.captures);
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      this.captures.splice(this.captures.indexOf(limit), 1);
      this.connections.captureLimit = this.captures.length === 0 ? 0 : Math.max(...this.captures);
    };
  }

  /** From now on, calls `tap` at each moment of each visitor connection (the `phase`
   * events' moments, without an event object or emit() each: a tap costs the client a
   * call). Returns the function that stops it. */
  tapPhases(tap: PhaseTap): () => void {
    const taps = this.connections.phaseTaps;
    taps.push(tap);
    return () => {
      const at = taps.indexOf(tap);
      if (at >= 0) taps.splice(at, 1);
    };
  }

  /** Graceful close: tells the server (which frees our ports at once), stops taking
   * visitors, lets joined connections finish for up to `shutdownTimeoutMs`, then closes
   * them. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop(undefined);
      await this.sockets.close(this.settings.shutdownTimeoutMs);
      // The control connection stayed to vouch for the FINs of what was draining; it
      // closes once both sides have said BYE.
      if (this.link?.speaks('goaway')) await this.link.closedWithin(2 * LINGER_MS);
      this.link?.finish();
      this.connections.close();
      this.hooks.close();
      await this.controlSockets.close(2 * LINGER_MS);
      this.webSocket?.close();
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
    const link: ControlLink = new ControlLink(this, this.settings, {
      instance: this.instance,
      tls: this.tls,
      webSocket: this.webSocket,
      track: (socket) => this.controlSockets.add(socket),
      onConnection: (message) => this.connections.serve(message, this.dataPortFor(link), (id) => link.refuse(id)),
      onFin: (id, instance) => this.hooks.finReceived(id, instance),
      onAgreed: () => {
        this.hooks.linkAgreed(); // FIN notices go both ways again
        // Over WebSocket there is no data port of its own to check.
        this.startupCheck ??= this.webSocket ? Promise.resolve() : this.checkDataPort(link);
        this.startupCheck.catch(() => {}); // awaited by start(); only the first link's
      },
      onGoAway: () => this.byeWhenIdle(),
      onLost: (error, goAway) => this.onLost(link, error, goAway),
    });
    this.link = link;
    this.linkOpen = false;
    // One deadline for the whole exchange; every EXPOSE goes out at once.
    const timeoutMs = this.settings.connectTimeoutMs;
    try {
      return await within(this.exposeOn(link), timeoutMs);
    } catch (error) {
      // A failed start gives up: say GOAWAY so the server frees the ports it did open.
      // A failed retry tries again soon: drop the link so those ports stay leased to us.
      if (onFailure === 'release') link.goAway();
      else link.close();
      throw error === TIMED_OUT
        ? new BurrowError('timeout', `the server did not answer within ${timeoutMs} ms`)
        : error;
    }
  }

  private async exposeOn(link: ControlLink): Promise<TunnelMove[]> {
    await link.connect(this.stopping.signal);
    if (this.settings.tunnels.some((request) => request.http)) {
      // HTTP tunnels need the `http` extension: wait for the answer to our HELLO first.
      await link.whenAgreed();
      if (link.open && !link.speaks('http')) {
        const where = `${this.settings.server}:${this.settings.controlPort}`;
        throw new BurrowError('refused', `the server at ${where} serves no HTTP tunnels (it has no HTTP port)`, {
          reason: 'http-not-enabled',
        });
      }
    }
    const moves = await this.table.exposeAll(link.requests);
    if (!link.open) throw new BurrowError('closed', 'the server closed the connection');
    if (!link.agreement?.answered && this.tunnels.length > 1) {
      // Its CONNECTION <id> cannot say which tunnel a visitor came to.
      throw new BurrowError(
        'protocol',
        'this server speaks only the base protocol, which cannot say which tunnel a visitor is for: expose one port per client',
      );
    }
    this.linkOpen = true;
    return moves;
  }

  private onLost(link: ControlLink, error: BurrowError, goAway: boolean): void {
    this.hooks.linkLost(link);
    // A link lost while still opening is handled by whoever awaits openLink().
    if (this.stopping.signal.aborted || link !== this.link || !this.linkOpen) return;
    this.linkOpen = false;
    if (!this.started) {
      this.lostWhileStarting = error;
      return;
    }
    this.emit('disconnected', error);
    if (!this.settings.reconnect) return this.stop(error);
    // A server that said GOAWAY is restarting: start the backoff one step in.
    void this.reconnect(goAway ? 1 : 0);
  }

  /** Opens a new link after growing delays until one opens, a refusal is final, or the
   * client stops. */
  private async reconnect(firstStep: number): Promise<void> {
    const backoff = typeof this.settings.reconnect === 'object' ? this.settings.reconnect : {};
    for (let attempt = 1; ; attempt++) {
      const delayMs = backoffDelay(firstStep + attempt - 1, backoff);
      this.emit('reconnecting', { attempt, delayMs });
      let moved: TunnelMove[];
      try {
        await sleep(delayMs, undefined, { signal: this.stopping.signal });
        moved = await this.openLink('keep');
      } catch (error) {
        if (this.stopping.signal.aborted) return;
        const problem = failure(error);
        if (isPermanent(problem)) return this.stop(problem);
        warn(this, problem);
        continue;
      }
      if (!this.stopping.signal.aborted) this.emit('reconnected', { moved });
      return;
    }
  }

  /** How a visitor of `link` reaches the server's data port (see data-port-hooks.ts). */
  private dataPortFor(link: ControlLink): DataPort {
    return this.hooks.for(link, this.dataPort ?? link.agreement?.dataPort ?? DEFAULT_DATA_PORT);
  }

  /** At start: see start-checks.ts. A port forward does not move when the relay restarts,
   * so a port found here is kept for this client's life. */
  private async checkDataPort(link: ControlLink): Promise<void> {
    const forwarded = await checkDataPort(this.settings, {
      port: this.dataPortFor(link).port,
      named: link.agreement?.dataPort !== undefined,
      signal: this.stopping.signal,
      track: (socket) => this.sockets.add(socket),
      warn: (warning) => warn(this, warning),
    });
    if (forwarded !== undefined) this.dataPort = forwarded;
  }

  /** After a GOAWAY either way, says BYE once none of our joined connections needs the
   * control connection's heartbeat to check a FIN (at once if there are none). */
  private byeWhenIdle(): void {
    const leaving = this.stopping.signal.aborted || this.link?.serverLeaving;
    if (this.connections.none && leaving) this.link?.bye();
  }

  /** Stops serving: no retries, no new visitors; the link says GOAWAY when we leave on
   * purpose. Joined connections keep flowing (close() drains them). */
  private stop(error: BurrowError | undefined): void {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort(new BurrowError('closed', 'the client is closing'));
    this.hooks.stopWarming();
    if (error) this.link?.close();
    else {
      this.link?.goAway();
      this.table.forgetKeptLeases(); // GOAWAY frees our ports: no lease to come back with
      this.byeWhenIdle();
    }
    trace(this, 'control', 'event', error ? `closed: ${error.message}` : 'closed');
    this.emit('close', error);
  }
}

/** Creates a client, connects and exposes its tunnels. */
export async function startClient(options: ClientOptions): Promise<BurrowClient> {
  const client = new BurrowClient(options);
  await client.start();
  return client;
}
