// The burrow wire protocol, as the rest of burrow uses it: the constants that bound it, the
// messages each side reads, and one function per line to read or write. The lines
// themselves are defined once, as a table, in grammar.ts; docs/PROTOCOL.md is the prose.

import { format, parse, parsePort, type ErrReason, type Parsed } from './grammar.ts';
import type { Hello } from './extensions.ts';

export { DNS_LABEL, ERR_REASONS, MAX_LINE_LENGTH, parsePort, type ErrReason, type Parsed } from './grammar.ts';
// HELLO's words and what two peers agree on live in extensions.ts.
export { agreeOn, EXTENSIONS, MAX_HELLO_WORDS, type Extension, type Hello } from './extensions.ts';
export { KEEPALIVE_DELAY_MS } from './socket-options.ts';

/** Where the server listens for control connections unless told otherwise. */
export const DEFAULT_CONTROL_PORT = 7835;
/** Where the server listens for data connections unless told otherwise. */
export const DEFAULT_DATA_PORT = 7836;
/** Public ports handed out when no range is configured: every unprivileged port. */
export const DEFAULT_PORT_RANGE: PortRange = { min: 1024, max: 65535 };
/** How long a visitor waits (paused) for the client's data connection before it is closed. */
export const DEFAULT_VISITOR_TIMEOUT_MS = 10_000;
/** How long a data connection may take to complete its handshake (`ID` line and reply). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/** Over WebSocket, the relay's two ports are these paths of its HTTP(S) port (docs/PROTOCOL.md,
 * "Over WebSocket"). */
export const WEBSOCKET_PATHS = { control: '/_burrow/control', data: '/_burrow/data' } as const;
/** The port a WebSocket stands for. */
export type RelayPort = keyof typeof WEBSOCKET_PATHS;
/** Over WebSocket, each side pings this often (docs/PROTOCOL.md, "Over WebSocket"). */
export const DEFAULT_WEBSOCKET_PING_MS = 25_000;
/** Each side sends `PING` this often on an established control connection. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
/** A control connection on which nothing arrived for this long is dead: three missed
 * heartbeats, so one lost or late packet is not enough (rathole uses 30 s / 40 s). */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 30_000;
/** How long the server keeps a dropped client's public port for it (see leases). */
export const DEFAULT_LEASE_GRACE_MS = 60_000;
/** How long a graceful shutdown waits for joined connections before closing them. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

export interface PortRange {
  min: number;
  max: number;
}

// The messages: the same lines as the grammar's rows, as types (test/protocol.test.ts
// checks each shape).

/** Lines either side may send on a control connection: a heartbeat and its answer, the
 * notice of a graceful close, and (after it) "none of my joined connections is left". */
export type ControlSignal = { verb: 'PING' } | { verb: 'PONG' } | { verb: 'GOAWAY' } | { verb: 'BYE' };
/** `FIN <id>` (fin-notice): "the FIN on data connection `id` was mine, and it is sent";
 * either side sends it. */
export type FinMessage = { verb: 'FIN'; id: string };
/** Lines a client sends on its control connection. `lease` proves the client held
 * `remotePort` before (the token from that tunnel's OK). AUTH and PROOF authenticate the
 * connection when the server has a secret. */
export type ClientControlMessage =
  | HelloMessage
  | ExposeMessage
  | HttpMessage
  | { verb: 'REFUSE'; id: string }
  | { verb: 'AUTH' }
  | { verb: 'PROOF'; proof: string }
  | FinMessage
  | ControlSignal;
/** `EXPOSE <localPort> [<remotePort> [<lease>]]`: a TCP tunnel on a public port. */
export type ExposeMessage = { verb: 'EXPOSE'; localPort: number; remotePort: number; lease?: string };
/** `HTTP <localPort> [<name> [<lease> [<auth>]]]` (the `http` extension): an HTTP tunnel
 * reached by name. '' (a `-` on the wire) or absent: any name, no lease. `auth` is the
 * base64url SHA-256 of `user:password` that visitors must send (HTTP basic auth). */
export type HttpMessage = { verb: 'HTTP'; localPort: number; wantedName?: string; nameLease?: string; auth?: string };
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
  /** The HTTP tunnel's name: it shares its public port with every other HTTP tunnel. */
  name?: string;
};
/** Lines a server sends on a control connection. */
export type ServerControlMessage =
  | HelloMessage
  | { verb: 'OK'; publicPort: number; lease?: string; url?: string }
  | ConnectionMessage
  | ErrMessage
  | FinMessage
  | ControlSignal;
/** What the server answers while a control connection authenticates: the challenge to
 * AUTH, then OK (or ERR) to PROOF. */
export type ServerAuthMessage = { verb: 'CHALLENGE'; nonce: string } | { verb: 'OK' } | ErrMessage | ControlSignal;
/** The line a client sends first on a data connection; `proof` when the server has a secret. */
export type ClientDataMessage = { verb: 'ID'; id: string; proof?: string };
/** The line a server answers on a data connection before piping starts (or it closes). */
export type ServerDataMessage = { verb: 'OK' } | ErrMessage;
/** An error reply. The client keeps unknown reasons as they are (newer servers may add some). */
export type ErrMessage = { verb: 'ERR'; reason: string; detail: string };

// Reading: each side, each port. The grammar's rows and the types above describe the same
// lines; the casts say so.
export const parseClientControlLine = (line: string): Parsed<ClientControlMessage> =>
  parse(line, 'client', 'control', 'a control verb') as Parsed<ClientControlMessage>;
export const parseServerControlLine = (line: string): Parsed<ServerControlMessage> =>
  parse(line, 'server', 'control', 'a server control verb') as Parsed<ServerControlMessage>;
/** What the client may read while it authenticates. */
export const parseServerAuthLine = (line: string): Parsed<ServerAuthMessage> =>
  parse(line, 'server', 'auth', 'an authentication reply') as Parsed<ServerAuthMessage>;
export const parseClientDataLine = (line: string): Parsed<ClientDataMessage> =>
  parse(line, 'client', 'data', 'a data verb') as Parsed<ClientDataMessage>;
export const parseServerDataLine = (line: string): Parsed<ServerDataMessage> =>
  parse(line, 'server', 'data', 'a server data verb') as Parsed<ServerDataMessage>;

// Writing: each returns one complete line, newline included. An argument left out (or a
// remotePort of 0, "any") ends the line there.
export const formatHello = (extensions: Iterable<string>, values: Record<string, string> = {}): string =>
  format('HELLO', { extensions: [...extensions], values });
export const formatExpose = (localPort: number, remotePort = 0, lease?: string): string =>
  format('EXPOSE', localPort, remotePort, lease);
/** Trailing fields not given are left out; a name or lease not given before a later field is `-`. */
export const formatHttp = (localPort: number, wantedName = '', nameLease = '', auth?: string): string =>
  auth !== undefined
    ? format('HTTP', localPort, wantedName, nameLease, auth)
    : nameLease !== ''
      ? format('HTTP', localPort, wantedName, nameLease)
      : format('HTTP', localPort, wantedName === '' ? undefined : wantedName);
export const formatAuth = (): string => format('AUTH');
export const formatProof = (proof: string): string => format('PROOF', proof);
export const formatRefuse = (id: string): string => format('REFUSE', id);
export const formatFin = (id: string): string => format('FIN', id);
export const formatId = (id: string, proof?: string): string => format('ID', id, proof);
/** `OK` (to PROOF or ID), `OK <publicPort> [<lease>]` (to EXPOSE), or `OK <publicPort> <lease> <url>` (to HTTP). */
export const formatOk = (publicPort?: number, lease?: string, url?: string): string =>
  format('OK', publicPort, lease, url);
/** `destination` (the server's address and port the visitor connected to) is only sent
 * after a `visitor`. */
export const formatConnection = (
  id: string,
  publicPort: number,
  visitor?: string,
  destination?: string,
  name?: string,
): string => format('CONNECTION', id, publicPort, visitor, destination, name);
export const formatChallenge = (nonce: string): string => format('CHALLENGE', nonce);
/** The detail is cleaned so that an ERR line is always a valid, bounded line. */
export const formatErr = (reason: ErrReason, detail = ''): string => format('ERR', reason, detail);
export const formatSignal = (verb: ControlSignal['verb']): string => format(verb);

/** Parses `LO-HI` as used by `--port-range`. */
export function parsePortRange(text: string): PortRange | undefined {
  const match = /^([0-9]+)-([0-9]+)$/.exec(text.trim());
  const [min, max] = [parsePort(match?.[1]), parsePort(match?.[2])];
  return min !== undefined && max !== undefined && min <= max ? { min, max } : undefined;
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
