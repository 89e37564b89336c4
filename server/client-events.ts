// What an operator wants to know about the clients of a relay: who connected from where,
// which tunnels they opened, what became of their ports when they left, and why they left.
// The server emits one 'client' event for each; the CLI prints a line for each.

export type ClientEvent =
  /** A control connection became a client: it authenticated (with a secret) or sent its
   * first HELLO or EXPOSE. A connection that never gets so far (a port scanner, a wrong
   * secret) is no client: it gets neither this nor `disconnected`. */
  | { kind: 'connected'; conn: string; address: string }
  /** A tunnel opened: `reclaimed` if the client took back its port with its lease. */
  | {
      kind: 'tunnel-opened';
      conn: string;
      address: string;
      publicPort: number;
      localPort: number;
      reclaimed: boolean;
      /** An HTTP tunnel's address (its public port is the relay's HTTP(S) port). */
      url?: string;
    }
  /** A client left without GOAWAY: its port is kept for its lease for `graceMs`. */
  | { kind: 'lease-kept'; address: string; publicPort: number; graceMs: number }
  /** Nobody came back for a leased port in time: it is free again. */
  | { kind: 'lease-expired'; address: string; publicPort: number }
  /** A client's control connection ended (its tunnels are closed by now): `why` in a few
   * words (`goaway`, `connection closed`, an ERR reason). */
  | { kind: 'disconnected'; conn: string; address: string; why: string; tunnels: number };

/** Passes events on to `deliver`, or holds them back while a change is under way, so that
 * listeners only ever see a change complete. */
export class ClientEventLog {
  /** Events reported during the change under way (see reportAfter). */
  private held: ClientEvent[] | undefined;

  constructor(private readonly deliver: (event: ClientEvent) => void) {}

  report(event: ClientEvent): void {
    if (this.held) this.held.push(event);
    else this.deliver(event);
  }

  /** Runs `change` (a client's teardown) holding back the events it reports, then reports
   * `first` and those: listeners see the state after the whole change, and the events in
   * the order an operator reads them (a client left, then what became of its ports). */
  reportAfter(first: ClientEvent | undefined, change: () => void): void {
    const outer = this.held;
    const held: ClientEvent[] = first ? [first] : [];
    this.held = held;
    try {
      change();
    } finally {
      this.held = outer;
      for (const event of held) this.report(event);
    }
  }
}
