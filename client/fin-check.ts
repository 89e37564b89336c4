// fin-check, client side: a FIN from the server reaches the local service only once the
// server has proved it is alive, since a crashed server's operating system sends one too.
// The question goes to the control link the visitor came on or, after a reconnect, to a
// new link if it reached the same server process; a restarted server cannot vouch.
import { confirmAcrossReconnects, WaitsForVoucher, type Answer, type Voucher } from '../shared/alive-check.ts';
import { deadlineIn } from '../shared/deadline.ts';
import type { ControlLink } from './control.ts';

export class FinCheck {
  /** Questions waiting for the control connection to come back. */
  private readonly waits = new WaitsForVoucher();

  constructor(
    private readonly currentLink: () => ControlLink | undefined,
    /** Longest wait for an answer (the heartbeat timeout): then the answer is no. */
    private readonly timeoutMs: number,
  ) {}

  /** Answers whether the server process that `link` reached is alive. */
  confirm(link: ControlLink, answer: Answer): void {
    const lookup = (): Voucher | 'gone' | undefined => {
      const current = this.currentLink();
      if (current === link) return link.open ? link : undefined;
      if (!current?.open || !current.agreement) return undefined;
      const instance = link.agreement?.instance;
      return instance !== undefined && current.agreement.instance === instance ? current : 'gone';
    };
    confirmAcrossReconnects(lookup, this.waits, deadlineIn(this.timeoutMs), answer);
  }

  /** A link has agreed on its extensions: the questions waiting try again. */
  linkAgreed(): void {
    this.waits.wake();
  }

  /** The client has closed: nobody will answer. */
  close(): void {
    this.waits.close();
  }
}
