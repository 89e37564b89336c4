// How a visitor of one control link reaches the server's data port. TLS or WebSocket, the
// secret's proof, id-reply, fin-notice and prewarm enter the dial-back (connection.ts)
// only through the hooks built here: once per link (and port), shared by its visitors.
import type { Socket } from 'node:net';
import { FinNotices, type Reach } from '../shared/fin-notices.ts';
import { dataProof } from '../shared/secret.ts';
import type { DataPort } from './connection.ts';
import type { ControlLink } from './control.ts';
import { dial } from './dial.ts';
import type { ClientTls } from './tls.ts';
import type { ClientSettings } from './types.ts';
import { WarmData } from './warm-data.ts';
import type { WebSocketDialer } from './websocket.ts';

/** What the hooks use of the client. */
export interface HookParts {
  readonly settings: Pick<ClientSettings, 'server' | 'secret' | 'handshakeTimeoutMs' | 'heartbeatTimeoutMs'>;
  readonly tls: ClientTls | undefined;
  readonly webSocket: WebSocketDialer | undefined;
  /** The client's: aborted when it stops. */
  readonly signal: AbortSignal;
  /** Registers every socket with those close() lets finish. */
  readonly track: (socket: Socket) => void;
  /** The control link in use now (a newer one after a reconnect). */
  readonly currentLink: () => ControlLink | undefined;
}

export class DataPortHooks {
  /** FIN notices, both ways (fin-notice), for every link of this client. */
  private readonly finNotices: FinNotices;
  /** The hooks last built, and for which link. */
  private last: { link: ControlLink; hooks: DataPort } | undefined;
  /** Data connections opened ahead for the last link (prewarm), if it agreed. */
  private warm: WarmData | undefined;

  constructor(private readonly parts: HookParts) {
    this.finNotices = new FinNotices(parts.settings.heartbeatTimeoutMs);
  }

  /** The hooks for the visitors of `link`, whose data port is `port`. */
  for(link: ControlLink, port: number): DataPort {
    if (this.last?.link === link && this.last.hooks.port === port) return this.last.hooks;
    const { settings, tls, webSocket } = this.parts;
    const { secret } = settings;
    this.warm?.close();
    this.warm = this.warmFor(link, port);
    const hooks: DataPort = {
      host: settings.server,
      port,
      tls,
      webSocket,
      proof: secret === undefined ? undefined : (id) => dataProof(secret, id),
      idReply: link.speaks('id-reply'),
      finNotice: this.finNoticeFor(link),
      warm: this.warm,
    };
    this.last = { link, hooks };
    return hooks;
  }

  /** `link` is gone: what was opened ahead for it goes too (its relay may be gone). */
  linkLost(link: ControlLink): void {
    if (this.last?.link === link) this.warm?.close();
  }

  /** The client stops: nothing more is opened ahead. */
  stopWarming(): void {
    this.warm?.close();
  }

  /** The server said `FIN <id>` (fin-notice), as the server process `instance`. */
  finReceived(id: string, instance: string | undefined): void {
    this.finNotices.received(id, instance);
  }

  /** A link agreed with its server: FIN notices go both ways again. */
  linkAgreed(): void {
    this.finNotices.wake();
  }

  /** The client has closed: no FIN notice is awaited any more. */
  close(): void {
    this.finNotices.close();
  }

  /** prewarm, if `link` agreed to it: data connections dialed as a visitor's would be. */
  private warmFor(link: ControlLink, port: number): WarmData | undefined {
    const { prewarmMs } = link.agreement ?? {};
    if (prewarmMs === undefined || !link.speaks('prewarm')) return undefined;
    const { settings, tls, webSocket, signal } = this.parts;
    const options = { timeoutMs: settings.handshakeTimeoutMs, signal, track: this.parts.track, tls, webSocket };
    return new WarmData(() => dial('data port', settings.server, port, options), prewarmMs);
  }

  /** fin-notice, for the visitors of `link`: a FIN from the server reaches the local
   * service only once the server has sent `FIN <id>` for it, since a crashed server's
   * operating system sends a FIN too; and ours is followed by our notice. Notices go over
   * the link the visitor came on or, after a reconnect, over a new link if it reached the
   * same server process; a restarted server is gone. */
  private finNoticeFor(link: ControlLink): DataPort['finNotice'] {
    const instance = link.agreement?.instance;
    if (!link.speaks('fin-notice') || instance === undefined) return undefined;
    const reach = (): Reach => {
      const current = this.parts.currentLink();
      if (current === link) return link.open ? link : undefined;
      if (!current?.open || !current.agreement) return undefined;
      return current.agreement.instance === instance ? current : 'gone';
    };
    return (id) => this.finNotices.track(id, instance, reach);
  }
}
