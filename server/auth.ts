// Who may use the relay: the shared-secret check of control and data connections.
// Without a secret everyone may (an open relay); with one, a control connection must
// answer a fresh challenge (AUTH, CHALLENGE, PROOF) before EXPOSE, and every data
// connection must carry a proof over its id.
import { controlProof, dataProof, newNonce, sameToken } from '../shared/secret.ts';
import { formatChallenge, formatErr, formatOk } from '../shared/protocol.ts';

export type AuthReason = 'auth-required' | 'auth-failed' | 'auth-disabled';

/** The answer to an AUTH or PROOF line: the line to send and, if it is a refusal, why
 * (the connection then closes after the line). */
export interface AuthAnswer {
  line: string;
  refused?: { reason: AuthReason; detail: string };
}

/** The authentication state of one control connection. */
export class ControlAuth {
  /** The challenge sent in answer to AUTH, until PROOF answers it. */
  private nonce: string | undefined;
  private done: boolean;

  constructor(private readonly secret: string | undefined) {
    this.done = secret === undefined; // nothing to prove on an open relay
  }

  /** May the connection EXPOSE yet? */
  get authenticated(): boolean {
    return this.done;
  }

  answerAuth(): AuthAnswer {
    if (this.secret === undefined) return refusal('auth-disabled', 'this server has no secret');
    if (this.done || this.nonce !== undefined) return refusal('auth-required', 'AUTH comes once, first');
    this.nonce = newNonce();
    return { line: formatChallenge(this.nonce) };
  }

  answerProof(proof: string): AuthAnswer {
    if (this.secret === undefined) return refusal('auth-disabled', 'this server has no secret');
    if (this.done || this.nonce === undefined) return refusal('auth-required', 'PROOF answers the CHALLENGE to AUTH');
    // One attempt per connection (and per nonce): a guesser must reconnect for each try.
    if (!sameToken(proof, controlProof(this.secret, this.nonce))) return refusal('auth-failed', 'wrong secret');
    this.done = true;
    return { line: formatOk() };
  }
}

/** Checks the proof of an `ID` line: undefined if the connection may proceed, else the
 * refusal to close it with. Checked before the id is looked up, so a connection without
 * the secret can neither take a visitor nor learn whether its id exists. */
export function checkDataProof(secret: string | undefined, id: string, proof: string | undefined): Refusal | undefined {
  if (secret === undefined)
    return proof === undefined ? undefined : refusal('auth-disabled', 'this server has no secret');
  if (proof === undefined) return refusal('auth-required', 'this server requires a proof: ID <id> <proof>');
  return sameToken(proof, dataProof(secret, id)) ? undefined : refusal('auth-failed', 'wrong secret');
}

type Refusal = Required<AuthAnswer>;
const refusal = (reason: AuthReason, detail: string): Refusal => ({
  line: formatErr(reason, detail),
  refused: { reason, detail },
});

/** The refusal of a line that needs authentication first. */
export const AUTH_REQUIRED = refusal(
  'auth-required',
  'this server requires a secret; authenticate with AUTH and PROOF first',
);
