// What the server refused, as an error a user can act on: the reasons a user fixes on
// their side (the secret, TLS, swapped ports) get a sentence that says how; the others
// keep the server's words.
import { BurrowError } from '../shared/errors.ts';

const ADVICE: Record<string, string> = {
  'auth-required': 'the server requires a secret: give this client the same secret as the server (`secret`)',
  'auth-failed': "the server rejected our secret: it is not the server's secret",
  'auth-disabled':
    'the server has no secret, but this client was given one: check that this is the right server, or drop the secret',
  'tls-required':
    'the server speaks TLS only: connect with `tls` (and `tls.ca` or `tls.fingerprint` for a self-signed certificate)',
  'bad-certificate': 'the server requires a client certificate signed by its client CA: pass `tls.cert` and `tls.key`',
};

/** `context` says what was refused: `server refused to expose port 3000`. */
export function refusal(reason: string, detail: string, context: string): BurrowError {
  const advice = ADVICE[reason];
  // The server's detail says which case it is (e.g. "none presented" or "not signed by the
  // client CA"), so it stays in the message.
  const message =
    advice === undefined
      ? `${context}: ${detail || reason} (${reason})`
      : `${advice} (${reason}${detail ? `: ${detail}` : ''})`;
  return new BurrowError('refused', message, { reason });
}

/** The server's ERR to our `ID` line on the data port at `where`. */
export function idRefusal(reason: string, detail: string, id: string, where: string): BurrowError {
  const message =
    reason === 'wrong-port'
      ? `${where} is a burrow server's control port, not its data port: are the control and data ports swapped?`
      : `server refused connection ${id}: ${reason}${detail ? ` (${detail})` : ''}`;
  return new BurrowError('refused', message, { reason });
}
