// The visitors' connections, client side. Each CONNECTION the server announces is answered
// with a dial-back: dial the data port and the local service at the same time (a visitor
// pays for one dial, not two in a row), say `ID <id>` on the data connection, then join
// the two. At most maxConnections at once; the rest are turned away (turn-away.ts). What
// the server's extensions, TLS and the secret change comes in through the DataPort hooks.
import type net from 'node:net';
import type { FinNoticeHooks } from '../shared/fin-notices.ts';
import { deadlineIn, msLeft } from '../shared/deadline.ts';
import { BurrowError } from '../shared/errors.ts';
import { abortSocket, joinSockets, readFirstLine } from '../shared/pipe.ts';
import {
  formatId,
  hostPort,
  MAX_LINE_LENGTH,
  parseServerDataLine,
  type ConnectionMessage,
} from '../shared/protocol.ts';
import { describeProxyHeader, parseEndpoint, proxyHeader } from '../shared/proxy-header.ts';
import { dial, type DialOptions } from './dial.ts';
import { onAbort } from './cancel.ts';
import { idRefusal } from './refusals.ts';
import { closedEvent, failure, phase, trace, tracing, warn, type ClientEmitter } from './report.ts';
import type { ClientTls } from './tls.ts';
import type { WarmData } from './warm-data.ts';
import type { WebSocketDialer } from './websocket.ts';
import type { TunnelTable } from './tunnel-table.ts';
import { TurnAwayWarnings } from './turn-away.ts';
import type { ClientSettings, ConnectionEvent, ConnectionTotals, OpenTunnel, PhaseEvent, PhaseTap } from './types.ts';
import { LocalHttp } from './http/local.ts';

export type { ConnectionTotals } from './types.ts';

/** The server's data port, and how to speak there. */
export interface DataPort {
  host: string;
  port: number;
  /** TLS, as to the control port. */
  tls: ClientTls | undefined;
  /** Over WebSocket, as to the control port. */
  webSocket: WebSocketDialer | undefined;
  /** The proof of our secret for a visitor's `ID` line, if we have a secret. */
  proof: ((id: string) => string) | undefined;
  /** The server answers `ID` with `OK` (id-reply): wait for it before piping. */
  idReply: boolean;
  /** With fin-notice: takes the data connection of one visitor (by id) until `done()`.
   * The server's FIN reaches the local service only once its notice has come (else it may
   * be its operating system closing up after a crash), and ours is followed by our own. */
  finNotice: ((id: string) => FinNoticeHooks) | undefined;
  /** With prewarm: data connections opened ahead, one of which a visitor may take. */
  warm: WarmData | undefined;
}

type Trace = (kind: 'send' | 'recv' | 'event', text: string) => void;

/** A visitor's data connection: one opened ahead if one is idle (prewarm), else a fresh
 * dial (TLS or WebSocket, as the control connection); then one more is opened ahead for
 * the next visitor, after ours, which so connects first. */
function dataConnection(server: DataPort, how: DialOptions, say: Trace): Promise<net.Socket> {
  const warm = server.warm?.take();
  if (warm) say('event', 'on a data connection opened ahead (prewarm)');
  const { tls, webSocket } = server;
  const dialed = warm ? Promise.resolve(warm) : dial('data port', server.host, server.port, { ...how, tls, webSocket });
  server.warm?.refill();
  return dialed;
}

/** The trace of a FIN passed on, by side: `a` is the local service, `b` the data connection. */
const HALF_CLOSED = {
  a: 'the local service half-closed (FIN); passed on',
  b: 'the visitor half-closed (FIN); passed on to the local service',
};

export class Connections {
  /** Visitors being dialed back or joined. */
  private count = 0;
  private readonly turnAway: TurnAwayWarnings;
  /** Body bytes the request events carry of each HTTP request and response (0: no
   * headers or bodies at all): set while someone captures them. */
  captureLimit = 0;
  /** Who takes each moment of each visitor connection directly (BurrowClient.tapPhases). */
  readonly phaseTaps: PhaseTap[] = [];
  /** Each HTTP tunnel's requests, as they reach its local service. */
  private readonly localHttp = new Map<OpenTunnel, LocalHttp>();

  constructor(
    private readonly client: ClientEmitter,
    private readonly table: TunnelTable,
    private readonly settings: Pick<ClientSettings, 'maxConnections' | 'handshakeTimeoutMs'>,
    /** The client's: once aborted, visitors are turned away and dial-backs not joined yet
     * are cut (joined ones are the client's to drain). */
    private readonly signal: AbortSignal,
    /** Registers every socket, as soon as it exists, with those close() lets finish. */
    private readonly track: (socket: net.Socket) => void,
    /** A visitor has gone: the client may owe the server a BYE now. */
    private readonly onGone: () => void,
  ) {
    this.turnAway = new TurnAwayWarnings(settings.maxConnections, (warning) => warn(client, warning), signal);
  }

  /** No visitor is being dialed back or joined. */
  get none(): boolean {
    return this.count === 0;
  }

  /** Answers one CONNECTION. `server`: how to reach the data port; `refuse` turns the
   * visitor away at once (false if this server cannot be told). */
  serve(message: ConnectionMessage, server: DataPort, refuse: (id: string) => boolean): void {
    const { id, visitor } = message;
    if (this.signal.aborted) return void refuse(id); // we said GOAWAY, and the server should know
    const tunnel = this.table.tunnelFor(message);
    if (tunnel instanceof BurrowError) {
      warn(this.client, tunnel);
      return void refuse(id);
    }
    // Each CONNECTION costs two sockets here: a flood must not exhaust this machine. The
    // server resets the visitor at once if it can be told; otherwise its wait runs out there.
    if (this.count >= this.settings.maxConnections) return this.turnAway.count(refuse(id));
    this.count++;
    const event: ConnectionEvent = visitor === undefined ? { id, tunnel } : { id, tunnel, visitor };
    const conn = `data:${id.slice(0, 6)}`;
    const say: Trace = (kind, text) => trace(this.client, conn, kind, text);
    const started = Date.now();
    this.phase(id, 'announced', tunnel.url);
    if (tunnel.name !== undefined) return this.serveHttp(message, tunnel, server, say);
    // From now: the server's notice may come before its OK does.
    const notice = server.finNotice?.(id);
    this.dialBack(message, event, server, say, notice)
      .then(
        (totals) => {
          if (tracing(this.client)) {
            const counts = `${totals.bytesIn} bytes in (from the visitor), ${totals.bytesOut} bytes out`;
            say('event', `${totals.aborted ? 'reset' : 'closed'}: ${counts}, ${totals.durationMs} ms`);
          }
          this.phase(id, 'closed', totals.aborted ? 'reset' : undefined);
          this.client.emit('connection-close', closedEvent(event, totals, false));
        },
        (error: unknown) => {
          const problem = failure(error);
          say('event', `failed: ${problem.message}`);
          this.phase(id, 'failed', problem.message);
          if (this.signal.aborted) return;
          warn(this.client, problem);
          // The visitor's connection log shows it too: it came, and was turned away.
          if (problem.code !== 'local-unavailable') return;
          const totals = { bytesIn: 0, bytesOut: 0, durationMs: Date.now() - started, aborted: true };
          this.client.emit('connection-close', closedEvent(event, totals, true));
        },
      )
      .finally(() => {
        notice?.done();
        this.count--;
        this.onGone();
      });
  }

  /** An HTTP tunnel's dial-back: a data connection that carries that tunnel's requests,
   * one after another, until the relay closes it (see http/local.ts). */
  private serveHttp({ id }: ConnectionMessage, tunnel: OpenTunnel, server: DataPort, say: Trace): void {
    let local = this.localHttp.get(tunnel);
    if (!local) {
      local = new LocalHttp(
        tunnel,
        (request) => this.client.emit('request', request),
        () => this.captureLimit,
      );
      this.localHttp.set(tunnel, local);
    }
    const serving = local;
    const { handshakeTimeoutMs: timeoutMs } = this.settings;
    dataConnection(server, { timeoutMs, signal: this.signal, track: this.track }, say)
      .then((socket) => this.handshake(socket, id, server, say, timeoutMs))
      .then((data) => {
        say('event', `carries requests for ${tunnel.url}`);
        this.phase(id, 'joined', `carries the requests of ${tunnel.url}`);
        return serving.serve(data);
      })
      .then(() => this.phase(id, 'closed'))
      .catch((error: unknown) => {
        say('event', `failed: ${failure(error).message}`);
        this.phase(id, 'failed', failure(error).message);
        if (!this.signal.aborted) warn(this.client, failure(error));
      })
      .finally(() => {
        this.count--;
        this.onGone();
      });
  }

  /** A moment of visitor connection `id`: to the taps, and as a `phase` event to whoever
   * listens (report.ts); with neither, nothing is built. */
  private phase(id: string, name: PhaseEvent['phase'], detail?: string): void {
    const taps = this.phaseTaps;
    if (taps.length > 0) {
      const at = Date.now();
      for (const tap of taps) tap(id, name, at, detail);
    }
    phase(this.client, id, name, detail);
  }

  /** Closes what the HTTP tunnels keep open towards their local services. */
  close(): void {
    for (const local of this.localHttp.values()) local.close();
    this.localHttp.clear();
  }

  /** Resolves when the connection has closed; rejects (with nothing left open) if it could
   * not be set up: `local-unavailable`, `unreachable`, `refused`, `timeout`, ... */
  private async dialBack(
    { visitor, destination }: ConnectionMessage,
    event: ConnectionEvent,
    server: DataPort,
    say: Trace,
    notice: FinNoticeHooks | undefined,
  ): Promise<ConnectionTotals> {
    const { id, tunnel } = event;
    const started = Date.now();
    const { handshakeTimeoutMs: timeoutMs } = this.settings;
    const deadline = deadlineIn(timeoutMs);
    const how = { timeoutMs, signal: this.signal, track: this.track };
    const [local, data] = await Promise.allSettled([
      dial('local service', tunnel.localHost, tunnel.localPort, how),
      // One deadline for connect + answer: the handshake gets what the connect left over.
      dataConnection(server, how, say).then((socket) => this.handshake(socket, id, server, say, msLeft(deadline))),
    ]);
    if (local.status === 'rejected' || data.status === 'rejected') {
      // Reset (not FIN) the half that worked: the server then resets the visitor, who sees
      // the same abrupt close it would get from a refused local port.
      if (local.status === 'fulfilled') local.value.destroy();
      if (data.status === 'fulfilled') abortSocket(data.value);
      throw local.status === 'rejected' ? local.reason : (data as PromiseRejectedResult).reason;
    }
    if (this.signal.aborted || local.value.destroyed || data.value.destroyed) {
      // The client was closed while we dialed, or a side is gone already: nothing to join.
      abortSocket(data.value);
      local.value.destroy();
      throw new BurrowError('closed', `connection ${id} closed before it was joined`);
    }
    if (tunnel.proxyProtocol) {
      // The visitor's address, for a local service that asked for it (PROXY protocol).
      const header = proxyHeader(tunnel.proxyProtocol, parseEndpoint(visitor), parseEndpoint(destination));
      local.value.write(header);
      say('event', `sent the local service a PROXY header: ${describeProxyHeader(header)}`);
    }
    if (tracing(this.client)) say('event', `joined to ${hostPort(tunnel.localHost, tunnel.localPort)}; piping`);
    this.phase(id, 'joined', hostPort(tunnel.localHost, tunnel.localPort));
    this.client.emit('connection', event);
    const totals = await joinSockets(local.value, data.value, {
      onHalfClose: (from) => {
        say('event', HALF_CLOSED[from]);
        this.phase(id, from === 'a' ? 'local-fin' : 'visitor-fin');
        // Our FIN (the local service's, passed on): noticed once it is in the kernel's hands.
        if (from === 'a' && notice) data.value.once('finish', notice.sent);
      },
      // The server's FIN passes on only once the server has sent its notice (fin-notice).
      confirmEnd:
        notice &&
        ((from, proceed) => {
          if (from === 'a') return proceed(true);
          say('event', 'the server half-closed (FIN); waiting for its FIN notice before passing it on');
          notice.confirm((chosen) => {
            if (!chosen)
              say(
                'event',
                'no FIN notice from the server: resetting the local connection instead of passing on its FIN',
              );
            proceed(chosen);
          });
        }),
    });
    // toA counts only what joinSockets wrote (and the kernel took): the PROXY header, written
    // before the join, is not the visitor's and is not in it.
    return { bytesOut: totals.fromA, bytesIn: totals.toA, durationMs: Date.now() - started, aborted: totals.aborted };
  }

  /** Sends `ID <id>` and (with id-reply) waits for `OK`; after it, every byte on the socket
   * is the visitor's. */
  private async handshake(
    data: net.Socket,
    id: string,
    server: DataPort,
    say: Trace,
    timeoutMs: number,
  ): Promise<net.Socket> {
    try {
      this.phase(id, 'dialed');
      const idLine = formatId(id, server.proof?.(id));
      say('send', idLine.trimEnd());
      data.write(idLine);
      this.phase(id, 'id-sent');
      if (!server.idReply) return data; // a minimal server pipes at once, with no answer
      // The client stopping cuts the wait: the socket closes, and readFirstLine rejects.
      const release = onAbort(this.signal, () => data.destroy());
      const line = await readFirstLine(data, { maxLength: MAX_LINE_LENGTH, timeoutMs }).finally(release);
      say('recv', line);
      const parsed = parseServerDataLine(line);
      if (!parsed.ok) throw new BurrowError('protocol', `server sent an invalid reply to ID: ${parsed.detail}`);
      if (parsed.message.verb === 'OK') {
        this.phase(id, 'paired');
        return data;
      }
      const { reason, detail } = parsed.message;
      throw idRefusal(reason, detail, id, hostPort(server.host, server.port));
    } catch (error) {
      data.destroy();
      throw error;
    }
  }
}
