// The burrow wire protocol: every line either side may send, as pure parse/format
// functions and the constants that bound them. docs/PROTOCOL.md is the prose version of
// this file; change both together.

import { helloOf, MAX_HELLO_WORDS, type Hello } from './extensions.ts';

// HELLO's words and what two peers agree on live in extensions.ts.
export { agreeOn, EXTENSIONS, formatHello, MAX_HELLO_WORDS, type Extension, type Hello } from './extensions.ts';

/** Where the server listens for control connections unless told otherwise. */
export const DEFAULT_CONTROL_PORT = 7835;
/** Where the server listens for data connections unless told otherwise. */
export const DEFAULT_DATA_PORT = 7836;
/** Longest line either side accepts, in bytes, not counting the line ending. A CONNECTION
 * line with two IPv6 addresses is under 200 bytes; 256 bounds what a peer can make us
 * buffer (same limit as bore's frames). */
export const MAX_LINE_LENGTH = 256;
/** Public ports handed out when no range is configured: every unprivileged port. */
export const DEFAULT_PORT_RANGE: PortRange = { min: 1024, max: 65535 };
/** How long a visitor waits (paused) for the client's data connection before it is closed. */
export const DEFAULT_VISITOR_TIMEOUT_MS = 10_000;
/** How long a data connection may take to complete its handshake (`ID` line and reply). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/** Each side sends `PING` this often on an established control connection. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
/** A control connection on which nothing arrived for this long is dead: three missed
 * heartbeats, so one lost or late packet is not enough (rathole uses 30 s / 40 s). */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 30_000;
/** How long the server keeps a dropped client's public port for it (see leases). */
export const DEFAULT_LEASE_GRACE_MS = 60_000;
/** How long a graceful shutdown waits for joined connections before closing them. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
export { KEEPALIVE_DELAY_MS } from './socket-options.ts';

export interface PortRange {
  min: number;
  max: number;
}

/** Stable reason words of `ERR` replies; clients may switch on them. */
export const ERR_REASONS = [
  'bad-line', // empty, not printable ASCII, or not single-space separated
  'line-too-long', // over MAX_LINE_LENGTH bytes; the connection is closed
  'unknown-verb', // a verb this port does not know
  'wrong-port', // a data-port line on the control port, or a control line on the data port
  'going-away', // an EXPOSE after GOAWAY (either way) on this connection: no new tunnels
  'bad-arguments', // a known verb with missing, extra or malformed fields
  'port-in-use', // the requested public port is taken
  'port-out-of-range', // the requested public port is outside the server's range
  'no-free-port', // every port in the range is taken
  'too-many-tunnels', // this control connection already holds the most tunnels allowed
  'server-full', // the server already holds the most tunnels it allows in all
  'too-many-connections', // this source address already has the most control connections allowed
  'too-many-errors', // this control connection sent too many refused lines; it is closed
  'unknown-id', // ID names no waiting visitor (never issued, expired or already used)
  'timeout', // the connection did not send its first line (EXPOSE or ID) in time, or did not authenticate in time
  'auth-required', // the server has a secret: AUTH and PROOF must come first, and every ID needs a proof
  'auth-failed', // the proof does not match: the client's secret is not the server's
  'auth-disabled', // the server has no secret, but the client offered to prove one
  'tls-required', // the server speaks TLS only, and the connection began in plain text
  'tls-not-enabled', // the connection began a TLS handshake, and the server does not speak TLS
  'bad-certificate', // mutual TLS: the client's certificate is missing or not signed by the client CA
] as const;
export type ErrReason = (typeof ERR_REASONS)[number];

/** A connection id or lease token as it travels: nanoid's alphabet, bounded length.
 * Opaque to the client. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** A verb without arguments that either side may send on a control connection. */
function signalOf(fields: string[]): Parsed<ControlSignal> | undefined {
  const [verb] = fields;
  if (verb !== 'PING' && verb !== 'PONG' && verb !== 'GOAWAY' && verb !== 'BYE') return undefined;
  return fields.length === 1 ? { ok: true, message: { verb } } : fail('bad-arguments', `usage: ${verb}`);
}
/** A decimal port number without sign or leading zeros. */
const PORT_PATTERN = /^(0|[1-9][0-9]{0,4})$/;
/** An address as CONNECTION carries it: `203.0.113.9:51234` or `[2001:db8::1]:51234`. */
const ADDRESS_PATTERN = /^([0-9.]{7,15}|\[[0-9A-Fa-f:.]{2,45}(%[A-Za-z0-9_.-]{1,32})?\]):(0|[1-9][0-9]{0,4})$/;
/** Printable ASCII: what every line must consist of. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Lines either side may send on a control connection: a heartbeat and its answer, the
 * notice of a graceful close, and (after it) "none of my joined connections is left". */
export type ControlSignal = { verb: 'PING' } | { verb: 'PONG' } | { verb: 'GOAWAY' } | { verb: 'BYE' };
/** Lines a client sends on its control connection. `lease` proves the client held
 * `remotePort` before (the token from that tunnel's OK). AUTH and PROOF authenticate the
 * connection when the server has a secret. */
export type ClientControlMessage =
  | HelloMessage
  | { verb: 'EXPOSE'; localPort: number; remotePort: number; lease?: string }
  | { verb: 'REFUSE'; id: string }
  | { verb: 'AUTH' }
  | { verb: 'PROOF'; proof: string }
  | ControlSignal;
/** `HELLO <extension>...`: the client's offer (its first line), or the server's answer. */
export type HelloMessage = { verb: 'HELLO' } & Hello;
/** A visitor arrived: `visitor` is its address, `destination` the server's address and
 * public port it connected to (both `addr:port`, IPv6 in brackets). A minimal server
 * sends the id alone. */
export type ConnectionMessage = {
  verb: 'CONNECTION';
  id: string;
  publicPort?: number;
  visitor?: string;
  destination?: string;
};
/** Lines a server sends on a control connection. */
export type ServerControlMessage =
  HelloMessage | { verb: 'OK'; publicPort: number; lease?: string } | ConnectionMessage | ErrMessage | ControlSignal;
/** What the server answers while a control connection authenticates: the challenge to
 * AUTH, then OK (or ERR) to PROOF. */
export type ServerAuthMessage = { verb: 'CHALLENGE'; nonce: string } | { verb: 'OK' } | ErrMessage | ControlSignal;
/** The line a client sends first on a data connection; `proof` when the server has a secret. */
export type ClientDataMessage = { verb: 'ID'; id: string; proof?: string };
/** The line a server answers on a data connection before piping starts (or it closes). */
export type ServerDataMessage = { verb: 'OK' } | ErrMessage;
/** An error reply. The client keeps unknown reasons as they are (newer servers may add some). */
export type ErrMessage = { verb: 'ERR'; reason: string; detail: string };

export type Parsed<T> = { ok: true; message: T } | { ok: false; reason: ErrReason; detail: string };

function fail(reason: ErrReason, detail: string): { ok: false; reason: ErrReason; detail: string } {
  return { ok: false, reason, detail };
}

/** Splits a line into fields after the checks every line must pass. */
function fieldsOf(rawLine: string): Parsed<string[]> {
  const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
  if (line.length > MAX_LINE_LENGTH) return fail('line-too-long', `limit is ${MAX_LINE_LENGTH} bytes`);
  if (line.length === 0) return fail('bad-line', 'empty line');
  if (!PRINTABLE_ASCII.test(line)) return fail('bad-line', 'not printable ASCII');
  const fields = line.split(' ');
  if (fields.includes('')) return fail('bad-line', 'fields must be separated by single spaces');
  return { ok: true, message: fields };
}

/** A port 1-65535 written in decimal (as `data-port=<port>` names one), else undefined. */
export const parsePort = (field: string | undefined): number | undefined => portOf(field, false);

/** Parses a port field; `allowZero` for "any port". */
function portOf(field: string | undefined, allowZero: boolean): number | undefined {
  if (field === undefined || !PORT_PATTERN.test(field)) return undefined;
  const port = Number(field);
  if (port > 65535 || (port === 0 && !allowZero)) return undefined;
  return port;
}

function parseHello(words: string[]): Parsed<HelloMessage> {
  const hello = helloOf(words);
  if (!hello)
    return fail(
      'bad-arguments',
      `usage: HELLO [<extension>[=<token>]...] (at most ${MAX_HELLO_WORDS} lower-case words)`,
    );
  return { ok: true, message: { verb: 'HELLO', ...hello } };
}

function parseErr(fields: string[]): Parsed<ErrMessage> {
  const [, reason, ...rest] = fields;
  if (reason === undefined) return fail('bad-arguments', 'ERR needs a reason');
  return { ok: true, message: { verb: 'ERR', reason, detail: rest.join(' ') } };
}

/** `EXPOSE <localPort> [<remotePort> [<lease>]]` — remotePort 0 or absent means "any";
 * a lease needs a real remotePort. Also `HELLO [<extension>...]`, `AUTH`, `PROOF <proof>`,
 * `REFUSE <id>`, `PING`, `PONG`, `GOAWAY`. */
export function parseClientControlLine(line: string): Parsed<ClientControlMessage> {
  const parsed = fieldsOf(line);
  if (!parsed.ok) return parsed;
  const signal = signalOf(parsed.message);
  if (signal) return signal;
  const [verb, ...args] = parsed.message;
  if (verb === 'HELLO') return parseHello(args);
  if (verb === 'AUTH')
    return args.length === 0 ? { ok: true, message: { verb } } : fail('bad-arguments', 'usage: AUTH');
  if (verb === 'REFUSE') {
    const [id] = args;
    if (args.length !== 1 || id === undefined || !ID_PATTERN.test(id))
      return fail('bad-arguments', 'usage: REFUSE <id>');
    return { ok: true, message: { verb, id } };
  }
  if (verb === 'PROOF') {
    const [proof] = args;
    if (args.length !== 1 || proof === undefined || !ID_PATTERN.test(proof))
      return fail('bad-arguments', 'usage: PROOF <proof>');
    return { ok: true, message: { verb, proof } };
  }
  if (verb === 'ID') return fail('wrong-port', 'this is the control port: ID belongs on the data port');
  if (verb !== 'EXPOSE') return fail('unknown-verb', `${verb} is not a control verb`);
  const localPort = portOf(args[0], false);
  const remotePort = args[1] === undefined ? 0 : portOf(args[1], true);
  const lease = args[2];
  const leaseOk = lease === undefined || (ID_PATTERN.test(lease) && remotePort !== 0);
  if (args.length < 1 || args.length > 3 || localPort === undefined || remotePort === undefined || !leaseOk) {
    return fail('bad-arguments', 'usage: EXPOSE <localPort 1-65535> [<remotePort 0-65535> [<lease>]]');
  }
  const message: ClientControlMessage = { verb, localPort, remotePort };
  if (lease !== undefined) message.lease = lease;
  return { ok: true, message };
}

/** `OK <publicPort> [<lease>]`, `CONNECTION <id> [<publicPort> [<visitor> [<destination>]]]`,
 * `HELLO [<extension>...]`, `ERR <reason> [<detail>]`, `PING`, `PONG` or `GOAWAY`. */
export function parseServerControlLine(line: string): Parsed<ServerControlMessage> {
  const parsed = fieldsOf(line);
  if (!parsed.ok) return parsed;
  const fields = parsed.message;
  const signal = signalOf(fields);
  if (signal) return signal;
  const [verb, first, second] = fields;
  switch (verb) {
    case 'OK': {
      // Fields after the lease are ignored: a later server may add one (the base rule).
      const publicPort = portOf(first, false);
      const leaseOk = second === undefined || ID_PATTERN.test(second);
      if (publicPort === undefined || !leaseOk) return fail('bad-arguments', 'usage: OK <publicPort> [<lease>]');
      return { ok: true, message: second === undefined ? { verb, publicPort } : { verb, publicPort, lease: second } };
    }
    case 'HELLO':
      return parseHello(fields.slice(1));
    case 'CONNECTION': {
      // A minimal server sends the id alone: the client then knows its one tunnel.
      const publicPort = second === undefined ? undefined : portOf(second, false);
      if (first === undefined || !ID_PATTERN.test(first) || (second !== undefined && publicPort === undefined)) {
        return fail(
          'bad-arguments',
          'usage: CONNECTION <id> [<publicPort> [<visitor address:port> [<destination address:port>]]]',
        );
      }
      // The addresses only inform the client (its log, a PROXY header): one it cannot read
      // is dropped, never a reason to end the session. Fields after them are ignored, so a
      // later server can add one without breaking this client.
      const [visitor, destination] = [fields[3], fields[4]].map((field) =>
        field !== undefined && ADDRESS_PATTERN.test(field) ? field : undefined,
      );
      const message: ConnectionMessage = { verb, id: first };
      if (publicPort !== undefined) message.publicPort = publicPort;
      if (visitor !== undefined) message.visitor = visitor;
      if (destination !== undefined) message.destination = destination;
      return { ok: true, message };
    }
    case 'ERR':
      return parseErr(fields);
    default:
      return fail('unknown-verb', `${verb} is not a server control verb`);
  }
}

/** `CHALLENGE <nonce>`, `OK`, `ERR <reason> [<detail>]`, `PING`, `PONG` or `GOAWAY`: what
 * the client may read while it authenticates. */
export function parseServerAuthLine(line: string): Parsed<ServerAuthMessage> {
  const parsed = fieldsOf(line);
  if (!parsed.ok) return parsed;
  const fields = parsed.message;
  const signal = signalOf(fields);
  if (signal) return signal;
  const [verb, first] = fields;
  switch (verb) {
    case 'CHALLENGE':
      if (fields.length !== 2 || first === undefined || !ID_PATTERN.test(first))
        return fail('bad-arguments', 'usage: CHALLENGE <nonce>');
      return { ok: true, message: { verb, nonce: first } };
    case 'OK':
      return fields.length === 1 ? { ok: true, message: { verb } } : fail('bad-arguments', 'usage: OK');
    case 'ERR':
      return parseErr(fields);
    default:
      return fail('unknown-verb', `${verb} is not an authentication reply`);
  }
}

/** What a client sends on the control port: on the data port, a sign of swapped ports. */
const CONTROL_VERBS = new Set(['HELLO', 'EXPOSE', 'AUTH', 'PROOF', 'REFUSE', 'PING', 'PONG', 'GOAWAY', 'BYE']);

/** `ID <id> [<proof>]` */
export function parseClientDataLine(line: string): Parsed<ClientDataMessage> {
  const parsed = fieldsOf(line);
  if (!parsed.ok) return parsed;
  const [verb, id, proof, ...extra] = parsed.message;
  if (verb !== undefined && CONTROL_VERBS.has(verb))
    return fail('wrong-port', `this is the data port: ${verb} belongs on the control port`);
  if (verb !== 'ID') return fail('unknown-verb', `${verb} is not a data verb`);
  const proofOk = proof === undefined || ID_PATTERN.test(proof);
  if (id === undefined || extra.length > 0 || !ID_PATTERN.test(id) || !proofOk)
    return fail('bad-arguments', 'usage: ID <id> [<proof>]');
  return { ok: true, message: proof === undefined ? { verb, id } : { verb, id, proof } };
}

/** `OK` or `ERR <reason> [<detail>]` */
export function parseServerDataLine(line: string): Parsed<ServerDataMessage> {
  const parsed = fieldsOf(line);
  if (!parsed.ok) return parsed;
  const fields = parsed.message;
  if (fields[0] === 'OK') return { ok: true, message: { verb: 'OK' } }; // later fields: ignored
  if (fields[0] === 'ERR') return parseErr(fields);
  return fail('unknown-verb', `${fields[0]} is not a server data verb`);
}

// Formatters: each returns one complete line, newline included.
export function formatExpose(localPort: number, remotePort = 0, lease?: string): string {
  if (remotePort === 0) return `EXPOSE ${localPort}\n`;
  return lease === undefined ? `EXPOSE ${localPort} ${remotePort}\n` : `EXPOSE ${localPort} ${remotePort} ${lease}\n`;
}
export function formatOk(publicPort?: number, lease?: string): string {
  if (publicPort === undefined) return 'OK\n';
  return lease === undefined ? `OK ${publicPort}\n` : `OK ${publicPort} ${lease}\n`;
}
export const formatSignal = (verb: ControlSignal['verb']): string => `${verb}\n`;
export const formatRefuse = (id: string): string => `REFUSE ${id}\n`;
/** `destination` (the server's address and port the visitor connected to) is only sent
 * after a `visitor`. */
export function formatConnection(id: string, publicPort: number, visitor?: string, destination?: string): string {
  if (visitor === undefined) return `CONNECTION ${id} ${publicPort}\n`;
  return destination === undefined
    ? `CONNECTION ${id} ${publicPort} ${visitor}\n`
    : `CONNECTION ${id} ${publicPort} ${visitor} ${destination}\n`;
}

/** `address:port` as a CONNECTION line carries it (IPv6 in brackets), or undefined if the
 * socket no longer knows its peer. */
export function formatAddress(address: string | undefined, port: number | undefined): string | undefined {
  if (address === undefined || port === undefined) return undefined;
  return hostPort(address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address, port);
}

/** A host as a user may type it after seeing `[::1]:41234`: an IPv6 address without its
 * brackets; anything else unchanged. */
export const unbracket = (host: string): string =>
  /^\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[^\]]*)?)\]$/.exec(host)?.[1] ?? host;

/** `host:port`, with an IPv6 host in brackets. */
export const hostPort = (host: string, port: number): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
export const formatId = (id: string, proof?: string): string =>
  proof === undefined ? `ID ${id}\n` : `ID ${id} ${proof}\n`;
export const formatAuth = (): string => 'AUTH\n';
export const formatChallenge = (nonce: string): string => `CHALLENGE ${nonce}\n`;
export const formatProof = (proof: string): string => `PROOF ${proof}\n`;
/** The detail is cleaned so that an ERR line is always a valid, bounded line. */
export function formatErr(reason: ErrReason, detail = ''): string {
  const clean = detail
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/ +/g, ' ')
    .trim();
  const line = clean === '' ? `ERR ${reason}` : `ERR ${reason} ${clean}`;
  return `${line.slice(0, MAX_LINE_LENGTH).trimEnd()}\n`;
}

/** Parses `LO-HI` as used by `--port-range`. */
export function parsePortRange(text: string): PortRange | undefined {
  const match = /^([0-9]+)-([0-9]+)$/.exec(text.trim());
  if (!match) return undefined;
  const min = portOf(match[1], false);
  const max = portOf(match[2], false);
  if (min === undefined || max === undefined || min > max) return undefined;
  return { min, max };
}
