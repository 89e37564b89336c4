// Our HELLO, and what the server's first line says about it. A burrow server answers with
// the extensions both of us speak; a minimal one ignores HELLO (the base protocol asks it
// to), so its first line is already the answer to what we sent next, and nothing is
// agreed. A first line that no burrow server sends means we reached the wrong port.
import { BurrowError } from '../shared/errors.ts';
import {
  agreeOn,
  EXTENSIONS,
  formatHello,
  parsePort,
  parseServerControlLine,
  type Extension,
} from '../shared/protocol.ts';

/** What the answer to our HELLO settled for one control connection. */
export interface Agreement {
  /** The extensions both sides speak; none with a minimal server. */
  extensions: ReadonlySet<Extension>;
  /** The server answered HELLO: it knows more than the base protocol (and names the
   * public port in every CONNECTION). */
  answered: boolean;
  /** Which server process this is (its `fin-notice=<instance>`), if it says. */
  instance: string | undefined;
  /** The data port the server named (`data-port=<port>`), if it did. */
  dataPort: number | undefined;
  /** With `prewarm=<ms>`: how long a data connection opened ahead may wait for its ID. */
  prewarmMs: number | undefined;
}

const NOTHING_AGREED: Agreement = {
  extensions: new Set(),
  answered: false,
  instance: undefined,
  dataPort: undefined,
  prewarmMs: undefined,
};

/** Our offer: every extension, and this process's id for `fin-notice`. */
export const helloLine = (instance: string): string => formatHello(EXTENSIONS, { 'fin-notice': instance });

/** Reads the server's first line (`where` is its control port): what was agreed, and
 * whether the line was the answer (else it answers our next request); or an error if
 * this is not a burrow control port. */
export function readHelloAnswer(line: string, where: string): BurrowError | { agreement: Agreement; answer: boolean } {
  const parsed = parseServerControlLine(line);
  const wrong = notOurControlPort(line, parsed, where);
  if (wrong) return wrong;
  if (!parsed.ok) return { agreement: NOTHING_AGREED, answer: false };
  const message = parsed.message;
  if (message.verb !== 'HELLO') {
    // A server that refuses unknown verbs instead of ignoring them: no extensions either.
    const refused = message.verb === 'ERR' && message.reason === 'unknown-verb';
    return { agreement: NOTHING_AGREED, answer: refused };
  }
  const extensions = agreeOn(message.extensions);
  const instance = extensions.has('fin-notice') ? message.values['fin-notice'] : undefined;
  const dataPort = extensions.has('data-port') ? parsePort(message.values['data-port']) : undefined;
  const prewarm = extensions.has('prewarm') ? message.values.prewarm : undefined;
  // Milliseconds, 1 ms to about 11 days; anything else: no connections opened ahead.
  const prewarmMs = prewarm !== undefined && /^[1-9][0-9]{0,8}$/.test(prewarm) ? Number(prewarm) : undefined;
  return { agreement: { extensions, answered: true, instance, dataPort, prewarmMs }, answer: true };
}

/** Why the first line from the server shows this is not a burrow control port, in a
 * person's words, or undefined if it may well be one. */
function notOurControlPort(
  line: string,
  parsed: ReturnType<typeof parseServerControlLine>,
  where: string,
): BurrowError | undefined {
  if (parsed.ok && parsed.message.verb === 'ERR' && parsed.message.reason === 'wrong-port') {
    return new BurrowError(
      'refused',
      `${where} is a burrow server's data port, not its control port: are the control and data ports swapped?`,
      { reason: 'wrong-port' },
    );
  }
  if (parsed.ok || parsed.reason !== 'unknown-verb') return undefined;
  const said = line.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
  const what = /^HTTP\/[0-9]/.test(line)
    ? "answers HTTP, not burrow: it is a web server, not a burrow server's control port"
    : line.startsWith('SSH-')
      ? "is an SSH server, not a burrow server's control port"
      : `does not speak burrow: it answered "${said}"`;
  return new BurrowError('protocol', `${where} ${what}`);
}
