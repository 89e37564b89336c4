// A deadline is a Date.now() value. One helper computes the time left, so that every
// step of a handshake (first byte, TLS, first line) shares one budget counted from accept.

export type Deadline = number;

/** The deadline `ms` from now. */
export const deadlineIn = (ms: number): Deadline => Date.now() + ms;

/** Milliseconds left until `deadline`, at least 1: a timer still fires, after I/O already
 * queued, rather than never. */
export const msLeft = (deadline: Deadline): number => Math.max(1, deadline - Date.now());
