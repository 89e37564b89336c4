// Every bound the server enforces, with its default. A public relay meets scanners and
// broken clients from its first hour: each resource a peer can make us hold has a ceiling
// here or a timer that clears it. docs/PROTOCOL.md lists them all.
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_LEASE_GRACE_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_VISITOR_TIMEOUT_MS,
} from '../shared/protocol.ts';

export interface Limits {
  /** Tunnels one control connection may hold; beyond: `ERR too-many-tunnels`. */
  maxTunnelsPerClient: number;
  /** Public ports the whole server may hold, tunnels and leases; beyond: `ERR server-full`. */
  maxTunnels: number;
  /** Public ports one source address may hold, tunnels and leases; beyond:
   * `ERR too-many-tunnels`. */
  maxTunnelsPerIp: number;
  /** Visitors waiting for their data connection on one tunnel; beyond: reset at once. */
  maxPendingPerTunnel: number;
  /** Visitors waiting on the whole server; beyond: reset at once. */
  maxPending: number;
  /** Visitor connections (waiting + joined) per tunnel; beyond: reset at once. */
  maxConnectionsPerTunnel: number;
  /** Control connections from one source IP; beyond: `ERR too-many-connections`, close. */
  maxClientsPerIp: number;
  /** Data connections from one source IP still in their handshake (before `ID` is
   * answered); beyond: `ERR too-many-connections`, close. */
  maxHandshakesPerIp: number;
  /** How long a visitor waits for its data connection before it is closed. */
  visitorTimeoutMs: number;
  /** How long a new control connection has for its first line, and a data connection
   * for its ID line; then `ERR timeout` and close. */
  handshakeTimeoutMs: number;
  /** The server sends `PING` this often on each control connection. */
  heartbeatIntervalMs: number;
  /** A control connection silent for this long is dead: `ERR timeout`, close. */
  heartbeatTimeoutMs: number;
  /** How long a dropped client's ports stay reserved for its lease (0: not at all). */
  leaseGraceMs: number;
  /** How long a graceful shutdown lets joined connections finish. */
  shutdownTimeoutMs: number;
}

// Why each default is what it is: docs/PROTOCOL.md, *Timeouts and limits*. In short, a
// demo that goes well must never meet one (a classroom behind one NAT, a chat app with a
// few hundred browsers, a load test of a thousand connections), while one client, one
// address or one scanner can never take the whole relay.
export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxTunnelsPerClient: 64,
  maxTunnels: 1024,
  // A classroom behind one NAT (60 people, a few tunnels each) fits; one address cannot
  // hoard more than a quarter of the server, leases included.
  maxTunnelsPerIp: 256,
  // A load test opens its connections all at once: they wait a moment each for their
  // dial-back. Waiting costs a socket and a timer, no buffer (the visitor is paused).
  maxPendingPerTunnel: 512,
  maxPending: 2048,
  // As many as a client serves at once by default (DEFAULT_MAX_CONNECTIONS).
  maxConnectionsPerTunnel: 1024,
  // A classroom behind one NAT shares an address; 64 clients still bounds one abuser.
  maxClientsPerIp: 64,
  // A client dials back for every waiting visitor of its tunnels at once: as many as
  // may wait on one tunnel.
  maxHandshakesPerIp: 512,
  visitorTimeoutMs: DEFAULT_VISITOR_TIMEOUT_MS,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  heartbeatIntervalMs: DEFAULT_HEARTBEAT_INTERVAL_MS,
  heartbeatTimeoutMs: DEFAULT_HEARTBEAT_TIMEOUT_MS,
  leaseGraceMs: DEFAULT_LEASE_GRACE_MS,
  shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
};

/** Refused lines a control connection may send before it is closed (`ERR too-many-errors`):
 * an honest client makes a few mistakes, not dozens. */
export const MAX_ERRORS_PER_CLIENT = 16;

/** Reply bytes a client may leave unread before we close its connection: far more than
 * an honest client ever has in flight (a reply is under 100 bytes). */
export const MAX_UNREAD_REPLY_BYTES = 256 * 1024;

/** Counts holders per key under a ceiling. A key leaves the map when its count drops to
 * zero, so the map never holds more keys than there are live holders. */
export class CountPerKey<Key> {
  private readonly counts = new Map<Key, number>();

  constructor(private readonly limit: number) {}

  /** Counts one more holder for `key`, unless that would pass the limit. */
  tryAdd(key: Key): boolean {
    if (this.get(key) >= this.limit) return false;
    this.force(key);
    return true;
  }

  /** Counts one more holder for `key` whatever the limit (a holder moving in). */
  force(key: Key): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  remove(key: Key): void {
    const count = this.get(key);
    if (count <= 1) this.counts.delete(key);
    else this.counts.set(key, count - 1);
  }

  get(key: Key): number {
    return this.counts.get(key) ?? 0;
  }

  /** How many keys have at least one holder. */
  get size(): number {
    return this.counts.size;
  }
}

/** What is held in all and per source address, each under its limit: public ports (leased
 * ones included), or HTTP names. */
export class Holdings {
  private held = 0;
  private readonly perAddress: CountPerKey<string>;

  constructor(
    private readonly max: number,
    maxPerAddress: number,
  ) {
    this.perAddress = new CountPerKey(maxPerAddress);
  }

  /** Counts one more for `address`, unless the whole (`'all'`) or the address is at its limit. */
  tryAdd(address: string): 'all' | 'address' | undefined {
    if (this.held >= this.max) return 'all';
    if (!this.perAddress.tryAdd(address)) return 'address';
    this.held++;
    return undefined;
  }

  remove(address: string): void {
    this.perAddress.remove(address);
    this.held--;
  }

  /** One held by `from` is `to`'s now (a lease reclaimed from another address): it stays
   * counted, even past `to`'s limit, since it is the same client's. */
  move(from: string, to: string): void {
    if (from === to) return;
    this.perAddress.remove(from);
    this.perAddress.force(to);
  }

  get size(): number {
    return this.held;
  }
}
