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

/** A line as traces show it, with its secrets left out: proofs (a logged nonce and its
 * proof let anyone who reads the log test guesses of a weak secret offline) and lease
 * tokens (one lets its holder take the port while it is under lease). */
export function hideSecrets(line: string): string {
  if (line.startsWith('PROOF ')) return 'PROOF <hidden>';
  const id = /^ID ([^ ]+) [^ ]+$/.exec(line);
  if (id) return `ID ${id[1]} <hidden>`;
  const ok = /^OK ([0-9]+) [^ ]+/.exec(line);
  if (ok) return `OK ${ok[1]} <lease>`;
  const expose = /^EXPOSE ([0-9]+) ([0-9]+) [^ ]+/.exec(line);
  return expose ? `EXPOSE ${expose[1]} ${expose[2]} <lease>` : line;
}

const ARROWS: Record<TraceEvent['kind'], string> = { send: '->', recv: '<-', event: '..' };

/** ANSI SGR sequences; `--trace` uses them only on a terminal (cli/output.ts useColour). */
const SGR = {
  reset: '\x1b[0m',
  dim: '\x1b[2m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  magenta: '\x1b[35m',
  cyan: '\x1b[36m',
} as const;
const SIDE_COLOUR: Record<TraceEvent['side'], string> = { server: SGR.magenta, client: SGR.cyan };
const ARROW_COLOUR: Record<TraceEvent['kind'], string> = { send: SGR.green, recv: SGR.yellow, event: SGR.dim };

const paint = (colour: string, text: string): string => `${colour}${text}${SGR.reset}`;

/** Control characters shown as `\xNN`: a received line is the peer's bytes (decoded as
 * latin1), and its escape sequences must not reach the terminal of whoever reads the trace. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it escapes
const CONTROL_CHARACTERS = /[\x00-\x1f\x7f-\x9f]/g;
const visible = (text: string): string =>
  text.replace(CONTROL_CHARACTERS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export interface TraceFormat {
  /** ANSI colours: the side, the arrow (`->` green, `<-` yellow), moments dim. Default off. */
  colour?: boolean;
}

/** `[server] control#1 <- EXPOSE 3000` */
export function formatTrace(event: TraceEvent, { colour = false }: TraceFormat = {}): string {
  const side = `[${event.side}]`;
  const conn = event.conn.padEnd(14); // `visitor:<id>`, the longest label, lines up
  const arrow = ARROWS[event.kind];
  const text = visible(event.text);
  if (!colour) return `${side} ${conn} ${arrow} ${text}`;
  const tail =
    event.kind === 'event'
      ? paint(ARROW_COLOUR.event, `${arrow} ${text}`)
      : `${paint(ARROW_COLOUR[event.kind], arrow)} ${text}`;
  return `${paint(SIDE_COLOUR[event.side], side)} ${conn} ${tail}`;
}
