// How every part of the client reports: warnings and traces are the client's events
// (types.ts), so a part needs nothing but the client as an emitter.
import type { EventEmitter } from 'node:events';
import createDebug from 'debug';
import { BurrowError } from '../shared/errors.ts';
import { hideProofs, type TraceEvent } from '../shared/trace.ts';
import type { BurrowClientEvents } from './types.ts';

const debug = createDebug('burrow:client');

export type ClientEmitter = EventEmitter<BurrowClientEvents>;

export function warn(client: ClientEmitter, warning: BurrowError): void {
  debug('warning: %s', warning.message);
  client.emit('warning', warning);
}

/** One line or moment of connection `conn` (`control`, `data:<id>`); proofs hidden. */
export function trace(client: ClientEmitter, conn: string, kind: TraceEvent['kind'], text: string): void {
  if (client.listenerCount('trace') > 0)
    client.emit('trace', { side: 'client', conn, kind, text: kind === 'event' ? text : hideProofs(text) });
}

/** Whatever was thrown, as the BurrowError a user reads. */
export const failure = (error: unknown): BurrowError =>
  error instanceof BurrowError ? error : new BurrowError('closed', String(error), { cause: error });
