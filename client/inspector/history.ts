// What the inspector shows, kept from the client's events: the last N visitor connections
// (each with the timeline of its rendezvous) and the last N requests of HTTP tunnels (with
// headers and the start of each body). Bounded: the oldest record goes when a new one
// would pass the limit. Subscribers (the live page) hear of each change as it happens;
// with none, the events wait in a batch (event-batch.ts) until a reader of the history
// or a full batch folds them in.
import type { BurrowClient } from '../client.ts';
import type { CapturedExchange, ConnectionClosed, ConnectionEvent, PhaseEvent, RequestEvent } from '../types.ts';
import createDebug from 'debug';
import { describe } from '../../shared/errors.ts';
import { hostPort } from '../../shared/protocol.ts';
import { ConnectionRing, type KeptConnection } from './connection-ring.ts';
import { Bounded } from './bounded.ts';
import { EventBatch } from './event-batch.ts';

export type { ConnectionRecord } from './connection-ring.ts';

export interface RequestRecord extends Omit<RequestEvent, 'tunnel' | 'exchange'> {
  /** A number, new for every request this inspector saw. */
  id: number;
  url: string;
  /** When it was answered (ms since the epoch). */
  at: number;
  exchange?: CapturedExchange;
}

/** What one tunnel has carried since the inspector started. */
export interface TunnelTotals {
  connections: number;
  requests: number;
  bytesIn: number;
  bytesOut: number;
}

export type Change =
  { kind: 'connection'; record: KeptConnection } | { kind: 'request'; record: RequestRecord } | { kind: 'tunnels' };

/** The client's events about connections that the history batches (with the moments of
 * its connections, which it takes directly: BurrowClient.tapPhases). Requests are recorded
 * at once: they carry captured bodies, and a batch of them would keep up to a thousand
 * more bodies alive than the history's own limit. */
type Recorded = ConnectionEvent | ConnectionClosed;

const debug = createDebug('burrow:inspector');

/** Events kept before they are folded in: about 100 visitor connections' worth. */
const BATCH = 1024;

export class History {
  readonly #connections: ConnectionRing;
  readonly #requests: Bounded<number, RequestRecord>;
  readonly #totals = new Map<string, TunnelTotals>();
  readonly #batch = new EventBatch<Recorded>(BATCH, {
    event: (event) => this.record(event),
    phase: (id, phase, at, detail) => this.onPhase(id, phase, at, detail),
  });
  /** Connection state of the client, as the tunnels view shows it. */
  state: 'connected' | 'reconnecting' | 'closed' = 'connected';
  private nextRequest = 1;
  private readonly listeners = new Set<(change: Change) => void>();
  private readonly detach: () => void;

  constructor(client: BurrowClient, max: number) {
    this.#connections = new ConnectionRing(max);
    this.#requests = new Bounded(max);
    const take = (event: Recorded): void => this.take(event);
    const takeRequest = (event: RequestEvent): void => {
      try {
        this.onRequest(event);
      } catch (error) {
        this.failed(error);
      }
    };
    const state = (next: History['state']) => (): void => {
      this.settle();
      this.state = next;
      this.emit({ kind: 'tunnels' });
    };
    const untap = client.tapPhases((id, phase, at, detail) => this.takePhase(id, phase, at, detail));
    const handlers = {
      connection: take,
      'connection-close': take,
      request: takeRequest,
      disconnected: state('reconnecting'),
      reconnected: state('connected'),
      close: state('closed'),
    } as const;
    for (const [event, handler] of Object.entries(handlers)) client.on(event as 'connection', handler as () => void);
    this.detach = () => {
      untap();
      for (const [event, handler] of Object.entries(handlers)) client.off(event as 'connection', handler as () => void);
    };
  }

  /** The last connections, with every event so far folded in. */
  get connections(): ConnectionRing {
    this.settle();
    return this.#connections;
  }

  /** The last requests, by id, with every event so far folded in. */
  get requests(): Bounded<number, RequestRecord> {
    this.settle();
    return this.#requests;
  }

  /** Totals by tunnel URL, with every event so far folded in. */
  get totals(): ReadonlyMap<string, TunnelTotals> {
    this.settle();
    return this.#totals;
  }

  /** Calls `listener` on each change from now on; returns the function that stops it. */
  subscribe(listener: (change: Change) => void): () => void {
    this.settle(); // what came before is not news
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  close(): void {
    this.detach();
    this.listeners.clear();
    this.#batch.clear();
  }

  /** An event of the client: recorded now if someone watches live, else kept for later. */
  private take(event: Recorded): void {
    try {
      if (this.listeners.size === 0) return this.#batch.push(event);
      this.#batch.flush();
      this.record(event);
    } catch (error) {
      this.failed(error);
    }
  }

  /** A moment of a visitor connection (BurrowClient.tapPhases), as take() does events. */
  private takePhase(id: string, phase: PhaseEvent['phase'], at: number, detail: string | undefined): void {
    try {
      if (this.listeners.size === 0) return this.#batch.pushPhase(id, phase, at, detail);
      this.#batch.flush();
      this.onPhase(id, phase, at, detail);
    } catch (error) {
      this.failed(error);
    }
  }

  /** Folds in everything kept. */
  private settle(): void {
    try {
      this.#batch.flush();
    } catch (error) {
      this.failed(error);
    }
  }

  /** The history's own bookkeeping failed: logged, and never thrown into the client's
   * connections, which call take(), takePhase() and onRequest(). */
  private failed(error: unknown): void {
    debug('history: %s', describe(error));
  }

  /** Folds one event in. */
  private record(event: Recorded): void {
    if ('bytesIn' in event) this.onClosed(event);
    else this.onJoined(event);
  }

  private onJoined({ id, visitor }: ConnectionEvent): void {
    const record = this.#connections.get(id);
    if (!record) return;
    if (visitor !== undefined) record.visitor = visitor;
    this.changed(record);
  }

  private onPhase(id: string, phase: PhaseEvent['phase'], at: number, detail: string | undefined): void {
    const record = phase === 'announced' ? this.#connections.open(id, detail ?? '', at) : this.#connections.get(id);
    if (!record) return;
    if (phase === 'joined' && detail !== undefined && !detail.startsWith('carries')) record.local = detail;
    record.addStep(phase, at, detail);
    if (phase === 'joined') record.state = 'open';
    if (phase === 'failed') {
      record.state = 'failed';
      record.ending = 'failed';
    }
    if (phase === 'closed' && record.state !== 'failed') record.state = 'closed';
    this.changed(record);
  }

  /** Adds one connection or request, and its bytes, to the totals of the tunnel at `url`. */
  private count(url: string, kind: 'connections' | 'requests', bytesIn: number, bytesOut: number): void {
    let totals = this.#totals.get(url);
    if (!totals) this.#totals.set(url, (totals = { connections: 0, requests: 0, bytesIn: 0, bytesOut: 0 }));
    totals[kind]++;
    totals.bytesIn += bytesIn;
    totals.bytesOut += bytesOut;
  }

  private onClosed(event: ConnectionClosed): void {
    const { url } = event.tunnel;
    this.count(url, 'connections', event.bytesIn, event.bytesOut);
    const record = this.#connections.get(event.id);
    if (!record) return;
    record.url = event.tunnel.url;
    record.local = hostPort(event.tunnel.localHost, event.tunnel.localPort);
    if (event.visitor !== undefined) record.visitor = event.visitor;
    record.bytesIn = event.bytesIn;
    record.bytesOut = event.bytesOut;
    record.durationMs = event.durationMs;
    record.state = event.localUnavailable ? 'failed' : 'closed';
    record.ending = event.localUnavailable ? 'local-refused' : event.aborted ? 'reset' : 'fin';
    this.changed(record);
  }

  private onRequest(event: RequestEvent): void {
    const { tunnel, bytesIn, bytesOut } = event;
    // One literal, as for connections: every request comes through here.
    const record: RequestRecord = {
      method: event.method,
      path: event.path,
      visitor: event.visitor,
      status: event.status,
      durationMs: event.durationMs,
      bytesIn,
      bytesOut,
      aborted: event.aborted,
      id: this.nextRequest++,
      url: tunnel.url,
      at: Date.now(),
      exchange: event.exchange,
    };
    this.count(tunnel.url, 'requests', bytesIn, bytesOut);
    this.#requests.set(record.id, record);
    if (this.listeners.size > 0) this.emit({ kind: 'request', record });
  }

  /** Tells subscribers (the live pages) that `record` changed; with none open, nothing is
   * built. */
  private changed(record: KeptConnection): void {
    if (this.listeners.size > 0) this.emit({ kind: 'connection', record });
  }

  private emit(change: Change): void {
    for (const listener of this.listeners) listener(change);
  }
}
