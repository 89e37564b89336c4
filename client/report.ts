// How every part of the client reports: warnings and traces are the client's events
// (types.ts), so a part needs nothing but the client as an emitter.
import type { EventEmitter } from 'node:events';
import createDebug from 'debug';
import { BurrowError } from '../shared/errors.ts';
import { hideSecrets, type TraceEvent } from '../shared/trace.ts';
import type { BurrowClientEvents, ConnectionClosed, ConnectionEvent, ConnectionTotals, PhaseEvent } from './types.ts';

const debug = createDebug('burrow:client');

export type ClientEmitter = EventEmitter<BurrowClientEvents>;

export function warn(client: ClientEmitter, warning: BurrowError): void {
  debug('warning: %s', warning.message);
  client.emit('warning', warning);
}

/** Someone listens to traces: a visitor's path checks this before it builds a trace text,
 * so that a client nobody traces pays nothing for them. */
export const tracing = (client: ClientEmitter): boolean => client.listenerCount('trace') > 0;

/** One line or moment of connection `conn` (`control`, `data:<id>`); secrets hidden. */
export function trace(client: ClientEmitter, conn: string, kind: TraceEvent['kind'], text: string): void {
  if (tracing(client))
    client.emit('trace', { side: 'client', conn, kind, text: kind === 'event' ? text : hideSecrets(text) });
}

/** A moment of visitor connection `id`, for whoever draws its timeline (the inspector);
 * nothing is built when nobody listens. */
export function phase(client: ClientEmitter, id: string, name: PhaseEvent['phase'], detail?: string): void {
  if (client.listenerCount('phase') === 0) return;
  client.emit(
    'phase',
    detail === undefined ? { id, phase: name, at: Date.now() } : { id, phase: name, at: Date.now(), detail },
  );
}

/** A visitor connection's end, for `connection-close`: one literal with every field. An
 * object spread would give each event a hidden class of its own (Node 20), and every
 * listener's reads of it would then miss V8's caches: 4 µs a connection in the inspector. */
export function closedEvent(
  event: ConnectionEvent,
  totals: ConnectionTotals,
  localUnavailable: boolean,
): ConnectionClosed {
  const { id, tunnel, visitor } = event;
  const { bytesIn, bytesOut, durationMs, aborted } = totals;
  return { id, tunnel, visitor, bytesIn, bytesOut, durationMs, aborted, localUnavailable };
}

/** Whatever was thrown, as the BurrowError a user reads. */
export const failure = (error: unknown): BurrowError =>
  error instanceof BurrowError ? error : new BurrowError('closed', String(error), { cause: error });
