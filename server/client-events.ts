// What an operator wants to know about the clients of a relay: who connected from where,
// which tunnels they opened, what became of their ports when they left, and why they left.
// The server emits one 'client' event for each; the CLI prints a line for each.

export type ClientEvent =
  /** A control connection passed the door (TLS, if any) and may now speak. */
  | { kind: 'connected'; conn: string; address: string }
  /** A tunnel opened: `reclaimed` if the client took back its port with its lease. */
  | { kind: 'tunnel-opened'; conn: string; address: string; publicPort: number; localPort: number; reclaimed: boolean }
  /** A client left without GOAWAY: its port is kept for its lease for `graceMs`. */
  | { kind: 'lease-kept'; address: string; publicPort: number; graceMs: number }
  /** Nobody came back for a leased port in time: it is free again. */
  | { kind: 'lease-expired'; address: string; publicPort: number }
  /** A control connection ended: `why` in a few words (`goaway`, `closed`, an ERR reason). */
  | { kind: 'disconnected'; conn: string; address: string; why: string; tunnels: number };
