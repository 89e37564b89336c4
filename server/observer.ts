// Everything the server reports about itself goes through one observer: traces (the
// protocol as it happens), running totals (metrics), and the operator's events (clients
// and refusals). The core calls a few typed methods; a trace text is built only when
// someone listens.
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import createDebug from 'debug';
import { hideSecrets, type TraceEvent } from '../shared/trace.ts';
import type { AuthReason } from './auth.ts';
import { ClientEventLog, type ClientEvent } from './client-events.ts';
import { ServerCounters } from './counters.ts';
import type { CertificateEvent, HttpPageEvent } from './http/options.ts';

const debug = createDebug('burrow:server');

/** Why a connection was turned away at the door (TLS) or at authentication. */
export type RefusalReason = 'tls-required' | 'tls-not-enabled' | 'tls-failed' | 'bad-certificate' | AuthReason;

/** A connection turned away for TLS or authentication: what an operator wants to see. */
export interface RefusedEvent {
  conn: string;
  /** The peer's address and port. */
  address: string;
  reason: RefusalReason;
  message: string;
}

export interface BurrowServerEvents {
  /** A client connected, opened a tunnel, left; a lease was kept or ran out. */
  client: [ClientEvent];
  trace: [TraceEvent];
  refused: [RefusedEvent];
  /** A visitor was joined to its client's data connection after waiting `waitMs`. */
  paired: [{ waitMs: number }];
  /** A request on the HTTP port that the relay answered itself (404, 502, ...). */
  page: [HttpPageEvent];
  /** An ACME certificate was issued or renewed for a name, or could not be. */
  certificate: [CertificateEvent];
}

export class ServerObserver {
  readonly counters = new ServerCounters();
  /** What clients did (the operator's log: see client-events.ts), held back while a
   * client's teardown is under way. */
  readonly clientEvents = new ClientEventLog((event) => this.emitClientEvent(event));

  constructor(private readonly emitter: EventEmitter<BurrowServerEvents>) {}

  /** Someone listens to traces: callers on a visitor's path check this before they build
   * a trace text, so that a relay nobody traces pays nothing for them. */
  get tracing(): boolean {
    return this.emitter.listenerCount('trace') > 0;
  }

  /** A moment on `conn` that is not a line (accepted, paired, closed). */
  event(conn: string, text: string): void {
    if (this.tracing) this.emitter.emit('trace', { side: 'server', conn, kind: 'event', text });
  }

  /** A line received on `conn`. */
  received(conn: string, line: string): void {
    if (this.tracing) this.emitter.emit('trace', { side: 'server', conn, kind: 'recv', text: hideSecrets(line) });
  }

  /** A line sent on `conn` (newline included or not), with a `note` for the trace. An ERR
   * counts towards the error totals by its reason, traced or not. */
  sent(conn: string, line: string, note?: string): void {
    if (line.startsWith('ERR ')) this.counters.error(line.split(' ')[1]?.trimEnd() ?? '');
    if (!this.tracing) return;
    const text = hideSecrets(line.trimEnd());
    this.emitter.emit('trace', { side: 'server', conn, kind: 'send', text: note ? `${text} (${note})` : text });
  }

  /** A visitor was joined after waiting `waitMs`. */
  paired(visitor: Socket, waitMs: number): void {
    this.counters.paired(visitor);
    this.emitter.emit('paired', { waitMs });
  }

  /** A connection turned away for TLS or authentication (the operator's log). */
  refused(conn: string, address: string, reason: RefusalReason, message: string): void {
    debug('%s from %s refused (%s): %s', conn, address, reason, message);
    this.event(conn, `refused (${reason}): ${message}`);
    this.emitter.emit('refused', { conn, address, reason, message });
  }

  /** An event is a report of a change already made: a listener that throws (a bug in a
   * library user's code) must not interrupt the change or the code that made it (a timer,
   * a socket's 'close', an EXPOSE in the reply queue), where it would leave ports open or
   * crash the relay. So its error is logged here, like any other trouble of one client
   * (as with any emit, listeners after the one that threw miss that one event). */
  private emitClientEvent(event: ClientEvent): void {
    debug('client event: %o', event);
    try {
      this.emitter.emit('client', event);
    } catch (error) {
      debug("a 'client' listener threw: %O", error);
    }
  }
}
