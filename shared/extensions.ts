// Extensions: what a peer may switch on with HELLO beyond the base protocol, how a HELLO's
// words are read and written, and what two peers agree on. docs/PROTOCOL.md, *Extensions*.

/** What a peer may switch on with `HELLO`, beyond the base protocol (docs/PROTOCOL.md,
 * *Extensions*). A client offers the ones it speaks; the server answers with those it
 * speaks too, and from then on both use exactly that set.
 * - `ping`: PING/PONG both ways, and each side's receive deadline (heartbeats).
 * - `goaway`: GOAWAY both ways: "I am leaving on purpose; let what is joined finish";
 *   then BYE from each side once its joined connections have ended; the connection closes
 *   when both have said BYE.
 * - `id-reply`: the server answers every `ID` line with `OK` before the visitor's bytes.
 * - `fin-notice`: a FIN on a data connection is passed on only once the program that sent
 *   it has said so with `FIN <id>` on a control connection (needs `id-reply`, so that the
 *   server has paired the connection before the client's notice can come). Offered as
 *   `fin-notice=<instance>`: the sender's id, new for every process, so that after a
 *   reconnect only the same process can send notices for its old connections.
 * - `refuse`: the client may turn a visitor away with `REFUSE <id>`.
 * - `data-port`: the server names its data port (`data-port=<port>`), so that a client
 *   told only the control port dials the right one.
 * - `http`: the client may open HTTP tunnels reached by name (`HTTP`); only a server with
 *   an HTTP or HTTPS port agrees to it.
 * - `prewarm`: the client may open data connections before their CONNECTION, so that a
 *   visitor's dial-back skips the connect. The server answers `prewarm=<ms>`: each must
 *   still say its ID within that time of its connect. */
export const EXTENSIONS = [
  'ping',
  'goaway',
  'id-reply',
  'fin-notice',
  'refuse',
  'data-port',
  'http',
  'prewarm',
] as const;
export type Extension = (typeof EXTENSIONS)[number];
/** A HELLO word: an extension name (lower case, digits, dashes), optionally `=<token>`.
 * Unknown names are allowed (a newer peer may offer more) and simply not agreed to. */
const HELLO_WORD = /^([a-z][a-z0-9-]{0,31})(?:=([A-Za-z0-9_-]{1,64}))?$/;
/** Most words one HELLO may carry: bounds what a peer can make us parse. */
export const MAX_HELLO_WORDS = 16;

/** What a HELLO says: the extensions named, and the values some carry (`fin-notice`'s
 * instance). */
export interface Hello {
  extensions: string[];
  values: Record<string, string>;
}

/** The extensions of `offered` that are also in `supported`; `fin-notice` only with
 * `id-reply`. */
export function agreeOn(offered: readonly string[], supported: readonly Extension[] = EXTENSIONS): Set<Extension> {
  const agreed = new Set(supported.filter((extension) => offered.includes(extension)));
  if (!agreed.has('id-reply')) agreed.delete('fin-notice');
  return agreed;
}

/** The words of a HELLO line (after the verb) as names and values, or undefined if one is
 * malformed or there are too many. */
export function helloOf(words: readonly string[]): Hello | undefined {
  if (words.length > MAX_HELLO_WORDS) return undefined;
  const hello: Hello = { extensions: [], values: {} };
  for (const word of words) {
    const match = HELLO_WORD.exec(word);
    if (!match?.[1]) return undefined;
    hello.extensions.push(match[1]);
    if (match[2] !== undefined) hello.values[match[1]] = match[2];
  }
  return hello;
}
