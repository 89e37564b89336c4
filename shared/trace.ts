// Trace events: the protocol as it happens, for `--trace`, the demo and tests.

export interface TraceEvent {
  /** Which program saw it. */
  side: 'server' | 'client';
  /** The connection it belongs to: `control#1`, `data#3`, `visitor#2`, ... */
  conn: string;
  /** A line sent or received, or a moment that is not a line (accepted, paired, closed). */
  kind: 'send' | 'recv' | 'event';
  /** The line without its newline, or a description of the moment. */
  text: string;
}

/** A line as traces show it: proofs left out, since a logged nonce and its proof let
 * anyone who reads the log test guesses of a weak secret offline. */
export function hideProofs(line: string): string {
  if (line.startsWith('PROOF ')) return 'PROOF <hidden>';
  const id = /^ID ([^ ]+) [^ ]+$/.exec(line);
  return id ? `ID ${id[1]} <hidden>` : line;
}

const ARROWS: Record<TraceEvent['kind'], string> = { send: '->', recv: '<-', event: '..' };

/** `[server] control#1 <- EXPOSE 3000` */
export function formatTrace(event: TraceEvent): string {
  return `[${event.side}] ${event.conn.padEnd(11)} ${ARROWS[event.kind]} ${event.text}`;
}
