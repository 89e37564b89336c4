// The grammar of burrow's lines, as data: every verb, who sends it on which connection, and
// its arguments (GRAMMAR, below). parse() and format() read and write every line by it, so
// a verb or an argument is added here once. docs/PROTOCOL.md is the prose; the test
// test/protocol-doc.test.ts checks that both name the same verbs and reasons.

import { helloOf, MAX_HELLO_WORDS, type Hello } from './extensions.ts';

/** Longest line either side accepts, in bytes, not counting the line ending. A CONNECTION
 * line with two IPv6 addresses is under 200 bytes; 256 bounds what a peer can make us
 * buffer (same limit as bore's frames). */
export const MAX_LINE_LENGTH = 256;

/** Stable reason words of `ERR` replies; clients may switch on them. What each means:
 * docs/PROTOCOL.md, *Reasons*. */
// prettier-ignore
export const ERR_REASONS = [
  'bad-line', 'line-too-long', 'unknown-verb', 'wrong-port', 'going-away', 'bad-arguments', // a line not taken
  'port-in-use', 'port-out-of-range', 'no-free-port', // no public port for an EXPOSE
  'too-many-tunnels', 'server-full', 'too-many-connections', 'too-many-errors', // a limit reached
  'unknown-id', 'timeout', // no visitor waits for that ID; a line that came too late
  'auth-required', 'auth-failed', 'auth-disabled', // the shared secret
  'tls-required', 'tls-not-enabled', 'bad-certificate', // TLS
  'http-not-enabled', 'name-in-use', 'name-reserved', // HTTP tunnels by name
] as const;
export type ErrReason = (typeof ERR_REASONS)[number];

/** A line read: its message, or why it is refused (the words of the `ERR` a server answers). */
export type Parsed<T> = { ok: true; message: T } | { ok: false; reason: ErrReason; detail: string };

/** A kind of argument: what its field looks like, and how a value is read and written. */
interface Kind<T> {
  /** The value of a well-formed field, else undefined. */
  read(field: string): T | undefined;
  /** The field for a value. */
  write(value: T): string;
  /** Takes the rest of the line, spaces and all. */
  rest?: boolean;
  /** Only informs: a field that cannot be read is dropped, never a reason to refuse the line. */
  lenient?: boolean;
  /** The value that means "not given" (port 0: any port): nothing may follow it. */
  none?: T;
}

/** A decimal number without sign or leading zeros, from `min` to 65535. */
const portFrom = (min: number): Kind<number> => ({
  read: (field) =>
    /^(0|[1-9][0-9]{0,4})$/.test(field) && Number(field) >= min && Number(field) <= 65535 ? Number(field) : undefined,
  write: String,
});
/** Strings that are well-formed if they match `pattern`. */
const matching = (pattern: RegExp): Kind<string> => ({
  read: (field) => (pattern.test(field) ? field : undefined),
  write: String,
});

/** A port, 1-65535. */
const port = portFrom(1);
/** A port 1-65535 written in decimal (as `data-port=<port>` names one), else undefined. */
export const parsePort = (field: string | undefined): number | undefined =>
  field === undefined ? undefined : port.read(field);
/** Ids, lease tokens, nonces and proofs: nanoid's alphabet, 1-64 characters, opaque. */
const token = matching(/^[A-Za-z0-9_-]{1,64}$/);
/** `203.0.113.9:51234` or `[2001:db8::1]:51234` (with a `%zone` for link-local addresses). */
const address = {
  ...matching(/^([0-9.]{7,15}|\[[0-9A-Fa-f:.]{2,45}(%[A-Za-z0-9_.-]{1,32})?\]):(0|[1-9][0-9]{0,4})$/),
  lenient: true,
};
/** `-` for "not given" (read as ''), or a field of `kind`. */
const orDash = (kind: Kind<string>): Kind<string> => ({
  read: (field) => (field === '-' ? '' : kind.read(field)),
  write: (value) => (value === '' ? '-' : kind.write(value)),
});
/** A DNS label in lower case: what an HTTP tunnel is named (`NAME.relay.example.com`), and
 * each label of a certificate's host name. */
export const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const dnsLabel = matching(DNS_LABEL);
/** An HTTP tunnel's address, scheme, host and port only: `https://demo.relay.example.com`. */
const url = { ...matching(/^https?:\/\/[a-z0-9.-]{1,200}(:[1-9][0-9]{0,4})?$/), lenient: true };
/** Free text for humans: cleaned (printable ASCII, single spaces) when written. */
const text: Kind<string> = {
  read: (rest) => rest,
  write: (detail) =>
    detail
      .replace(/[^\x20-\x7e]/g, '?')
      .replace(/ +/g, ' ')
      .trim(),
  rest: true,
};
/** HELLO's words: extension names, some with a value (`fin-notice=<instance>`). */
const extensions: Kind<Hello> = {
  read: (rest) => helloOf(rest === '' ? [] : rest.split(' ')),
  write: ({ extensions, values }) =>
    extensions.map((name) => (values[name] === undefined ? name : `${name}=${values[name]}`)).join(' '),
  rest: true,
};

/** Every argument, by the name it has on every line it appears on (and in the message read
 * from it): its kind, and how a usage text shows it if not as `<name>`. */
// prettier-ignore
const ARGUMENTS = {
  localPort:   [port, '<localPort 1-65535>'],
  remotePort:  [{ ...portFrom(0), none: 0 }, '<remotePort 0-65535>'], // 0: any port; no lease after it
  publicPort:  [port],
  id:          [token],
  lease:       [token],
  wantedName:  [orDash(dnsLabel), '<name: a DNS label, or - for any>'],
  name:        [{ ...dnsLabel, lenient: true }], // informs the client; a newer server may put something else here
  nameLease:   [orDash(token), '<lease, or ->'],
  auth:        [token, '<auth: base64url SHA-256 of user:password>'],
  url:         [url],
  nonce:       [token],
  proof:       [token],
  visitor:     [address, '<visitor address:port>'],
  destination: [address, '<destination address:port>'],
  reason:      [matching(/./)], // any word: a client keeps the reasons a newer server adds
  detail:      [text],
  extensions:  [extensions, `[<extension>[=<token>]...] (at most ${MAX_HELLO_WORDS} lower-case words)`],
} satisfies Record<string, readonly [Kind<unknown>, string?]>;

/** Who sends a line. */
type Side = 'client' | 'server';
type Sender = Side | 'both';
/** Where a line travels: the control port, the data port, or `auth`: the control port while
 * the client waits for the answer to AUTH or PROOF (it then reads only the rows marked so). */
type Where = 'control' | 'auth' | 'data';
/** An argument in a row: `name?` is optional (and so is every one after it). */
type Spec = keyof typeof ARGUMENTS | `${keyof typeof ARGUMENTS}?`;
/** One row of the grammar; `refusal`, when given, replaces the usage text of a refused line. */
type Row = readonly [verb: string, from: Sender, on: readonly Where[], args: readonly Spec[], refusal?: string];

/** Every line of the protocol, one form per row: the verb, who sends it, where, and its
 * arguments in order. A client's line whose fields do not fit its row is refused
 * (`bad-arguments`), so that a client learns of its mistakes. A server's line may carry
 * fields after its arguments, which the client ignores, so that a newer server may add one
 * (the base rule, docs/PROTOCOL.md); its arguments must still be well formed. */
// prettier-ignore
export const GRAMMAR = [
  // verb        sent by   on                            arguments
  ['HELLO',      'both',   ['control'],                  ['extensions']],
  ['EXPOSE',     'client', ['control'],                  ['localPort', 'remotePort?', 'lease?']],
  ['HTTP',       'client', ['control'],                  ['localPort', 'wantedName?', 'nameLease?', 'auth?']], // http
  ['AUTH',       'client', ['control'],                  []],
  ['PROOF',      'client', ['control'],                  ['proof']],
  ['REFUSE',     'client', ['control'],                  ['id']],
  ['FIN',        'both',   ['control'],                  ['id']], // fin-notice
  ['ID',         'client', ['data'],                     ['id', 'proof?']],
  ['OK',         'server', ['control'],                  ['publicPort', 'lease?', 'url?']], // to EXPOSE, HTTP
  ['OK',         'server', ['auth'],                     []], // to PROOF
  ['OK',         'server', ['data'],                     []], // to ID (id-reply)
  ['CONNECTION', 'server', ['control'],                  ['id', 'publicPort?', 'visitor?', 'destination?', 'name?']],
  ['CHALLENGE',  'server', ['auth'],                     ['nonce']],
  ['ERR',        'server', ['control', 'auth', 'data'],  ['reason', 'detail'], 'ERR needs a reason'],
  ['PING',       'both',   ['control', 'auth'],          []],
  ['PONG',       'both',   ['control', 'auth'],          []],
  ['GOAWAY',     'both',   ['control', 'auth'],          []],
  ['BYE',        'both',   ['control', 'auth'],          []],
] as const satisfies readonly Row[];
export type Verb = (typeof GRAMMAR)[number][0];

/** The rows, ready to read and write lines with. */
const FORMS = GRAMMAR.map(([verb, from, on, specs, refusal]: Row) => {
  const args = specs.map((spec) => {
    const name = spec.replace('?', '') as keyof typeof ARGUMENTS;
    const [kind, label = `<${name}>`]: readonly [Kind<unknown>, string?] = ARGUMENTS[name];
    return { name, kind, label, optional: spec.endsWith('?') };
  });
  // `usage: EXPOSE <localPort 1-65535> [<remotePort 0-65535> [<lease>]]`: each optional
  // argument brackets itself and the ones after it.
  const usage = args.reduceRight(
    (tail, { label, optional }) => ' ' + (optional ? `[${label}${tail}]` : label + tail),
    '',
  );
  return { verb, from, on, args, refusal: refusal ?? `usage: ${verb}${usage}` };
});
type Form = (typeof FORMS)[number];

const fail = (reason: ErrReason, detail: string): Parsed<never> => ({ ok: false, reason, detail });

/** The fields of a line, after the checks every line must pass whatever its verb. */
function fieldsOf(rawLine: string): Parsed<string[]> {
  const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
  if (line.length > MAX_LINE_LENGTH) return fail('line-too-long', `limit is ${MAX_LINE_LENGTH} bytes`);
  if (line.length === 0) return fail('bad-line', 'empty line');
  if (!/^[\x20-\x7e]*$/.test(line)) return fail('bad-line', 'not printable ASCII');
  const fields = line.split(' ');
  if (fields.includes('')) return fail('bad-line', 'fields must be separated by single spaces');
  return { ok: true, message: fields };
}

const sends = (form: Form, from: Sender, on: Where): boolean =>
  (form.from === from || form.from === 'both') && form.on.includes(on);

/** Reads a line `from` one side on one port; `expected` names what an unknown verb is not. */
export function parse(line: string, from: Side, on: Where, expected: string): Parsed<{ verb: string }> {
  const fields = fieldsOf(line);
  if (!fields.ok) return fields;
  const [verb = '', ...args] = fields.message;
  const form = FORMS.find((form) => form.verb === verb && sends(form, from, on));
  if (form) {
    const message = argsOf(form, args, from === 'server');
    return message ? { ok: true, message } : fail('bad-arguments', form.refusal);
  }
  // A client line that belongs on the other port: the client has swapped its ports.
  const other = on === 'data' ? 'control' : 'data';
  if (from === 'client' && FORMS.some((form) => form.verb === verb && sends(form, from, other)))
    return fail('wrong-port', `this is the ${on} port: ${verb} belongs on the ${other} port`);
  return fail('unknown-verb', `${verb} is not ${expected}`);
}

/** The message of a known verb, or undefined if its arguments do not fit its row; with
 * `extraAllowed`, fields after its arguments are ignored. */
function argsOf(form: Form, fields: string[], extraAllowed: boolean): { verb: string } | undefined {
  const message: Record<string, unknown> & { verb: string } = { verb: form.verb };
  let next = 0;
  for (const { name, kind, optional } of form.args) {
    const field = kind.rest ? fields.slice(next).join(' ') : fields[next];
    if (field === undefined) {
      if (!optional) return undefined;
      if (kind.none !== undefined) message[name] = kind.none;
      break;
    }
    next = kind.rest ? fields.length : next + 1;
    const value = kind.read(field);
    if (value === undefined) {
      if (kind.lenient) continue;
      return undefined;
    }
    // HELLO's words come as extensions and values, straight into the message.
    if (kind === extensions) Object.assign(message, value);
    else message[name] = value;
    if (value === kind.none) break; // `EXPOSE 3000 0 <lease>`: a lease for "any port" is refused
  }
  return next === fields.length || extraAllowed ? message : undefined;
}

/** One complete line, newline included: the verb and the values of its arguments, in order,
 * up to the first one not given. A verb with several rows (OK) is written by its first. */
export function format(verb: Verb, ...values: unknown[]): string {
  const args = FORMS.find((form) => form.verb === verb)?.args ?? [];
  const fields: string[] = [verb];
  for (const [i, { kind }] of args.entries()) {
    const value = values[i];
    if (value === undefined || value === kind.none) break;
    const field = kind.write(value);
    if (field === '' && kind.rest) break; // no detail, no extensions: no field
    fields.push(field);
  }
  const line = fields.join(' ');
  // Free text is what can make a line too long: it is cut to fit, never a token.
  return `${args.some(({ kind }) => kind === text) ? line.slice(0, MAX_LINE_LENGTH).trimEnd() : line}\n`;
}
