// GOAWAY on the server (the `goaway` extension): either side may say it is leaving on
// purpose. The client's ports are freed at once (no lease), but its control connection
// stays while joined connections finish, since its heartbeat is what checks their FINs.
// Then each side says BYE once none of its joined connections is left, and the connection
// closes when both have.
import { formatSignal, type Extension } from '../shared/protocol.ts';
import type { Departures } from './departures.ts';

/** The control session, as its goodbye sees it. */
export interface LeavingSession {
  readonly extensions: ReadonlySet<Extension>;
  readonly clientInstance: string | undefined;
  readonly open: boolean;
  send(line: string): void;
  /** Closes the connection with `finalLine` sent first (empty: just a graceful FIN). */
  close(finalLine: string): void;
  /** Closes every tunnel and frees its port at once. */
  closeTunnels(): void;
}

export class Goodbye {
  /** The client said GOAWAY (or we did): its ports need no lease, and it gets no new tunnel. */
  leaving = false;
  private byeSent = false;
  private byeReceived = false;

  constructor(
    private readonly session: LeavingSession,
    private readonly departures: Departures,
  ) {}

  /** The server is shutting down: tell the client (so it reconnects later rather than
   * fail) and free its ports. A minimal client sees its connection end now. */
  sayGoAway(): void {
    this.leaving = true;
    if (!this.session.extensions.has('goaway')) return this.session.close('');
    this.session.send(formatSignal('GOAWAY'));
    this.heardGoAway();
  }

  /** Says BYE (once): none of our joined connections with this client is left. Both
   * BYEs said, the connection has done its last job. */
  bye(): void {
    if (!this.session.open || this.byeSent || !this.session.extensions.has('goaway')) return;
    this.byeSent = true;
    this.session.send(formatSignal('BYE'));
    if (this.byeReceived) this.session.close('');
  }

  heardBye(): void {
    this.byeReceived = true;
    if (this.byeSent) this.session.close('');
  }

  /** The session closed (for whatever reason): it no longer waits to say BYE. */
  closed(): void {
    this.departures.forget(this.session.clientInstance, this);
  }

  /** The client is leaving on purpose (or we are: a GOAWAY either way): free the ports
   * now, and say BYE once our joined connections with this client have ended. */
  heardGoAway(): void {
    this.leaving = true;
    this.session.closeTunnels();
    const { extensions, clientInstance } = this.session;
    this.departures.leave(extensions.has('fin-notice') ? clientInstance : undefined, this);
  }
}

/** Why a control connection ends, in a word or two, for the operator: the reason of the
 * ERR it ends with, or what ended it. */
export function whyClosed(finalLine: string | undefined, shuttingDown: boolean, leaving: boolean): string {
  if (finalLine?.startsWith('ERR ')) return finalLine.split(' ')[1]?.trimEnd() ?? 'error';
  if (shuttingDown) return 'server shutting down';
  if (leaving) return 'goaway';
  return 'connection closed';
}
