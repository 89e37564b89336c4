// Prints the events of cli/output.ts, as text or as JSON lines, so that cli/run.ts says
// what happened once and never asks which mode it is in.
import { jsonLine, textLines, type OutputEvent } from './output.ts';
import { throttled } from './throttle.ts';

export interface Reporter {
  print(event: OutputEvent): void;
  /** The start lines (listening, tunnels) are out. With --json, whatever was printed before
   * (the short-secret warning, the handshake's trace) waited for them and follows now. */
  started(): void;
}

export interface ReporterOptions {
  json: boolean;
  /** Colour traces (text only). */
  colour: boolean;
  stdout(text: string): void;
  stderr(text: string): void;
  now?: () => Date;
}

/** What throttle.ts is asked to pass: the event itself is in `held` (a line it passes is
 * this token; any other line is its own note about lines held back). */
const PASS = '\0event';
/** With --json, these come first; an error ends the start, so what waited goes out before it. */
const START = new Set<OutputEvent['event']>(['listening', 'tunnel', 'error']);

export function createReporter(options: ReporterOptions): Reporter {
  const now = options.now ?? (() => new Date());
  const write = (event: OutputEvent, at: Date): void => {
    if (options.json) {
      options.stdout(`${jsonLine(event, at)}\n`);
      return;
    }
    for (const { stream, line } of textLines(event, at, options.colour)) options[stream](`${line}\n`);
  };

  let waiting: Array<{ event: OutputEvent; at: Date }> | undefined = options.json ? [] : undefined;
  const flush = (): void => {
    const queued = waiting ?? [];
    waiting = undefined;
    for (const { event, at } of queued) write(event, at);
  };
  const out = (event: OutputEvent): void => {
    const at = now();
    if (waiting && !START.has(event.event)) waiting.push({ event, at });
    else {
      if (event.event === 'error') flush();
      write(event, at);
    }
  };

  /** A cap of `perMinute` (10 unless said), for events that may repeat without end (a
   * scanner, a dead local service, a flood of clients); throttle.ts's notes about what it
   * held back become "throttled" events. */
  const capped = (perMinute = 10): ((event: OutputEvent) => void) => {
    let held: OutputEvent | undefined;
    const onLine = (line: string): void => {
      if (line !== PASS) out({ event: 'throttled', message: line });
      else if (held) out(held);
    };
    const gate = throttled(onLine, perMinute, 60_000, () => now().getTime());
    return (event) => {
      held = event;
      gate(PASS);
    };
  };
  // Client events and the relay's own HTTP pages: a line for each, but a flood of clients
  // (or a scanner asking for names that do not exist) must not flood the log.
  const caps: Partial<Record<OutputEvent['event'], (event: OutputEvent) => void>> = {
    refused: capped(),
    warning: capped(),
    client: capped(60),
    page: capped(60),
  };

  return {
    print: (event) => (caps[event.event] ?? out)(event),
    started: flush,
  };
}
