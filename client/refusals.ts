// What the server said, as an error a user can act on: an ERR (the reasons a user fixes on
// their side, the secret or TLS, get a sentence that says how; the others keep the
// server's words), or a first line showing the port is not a burrow control port at all.
import { BurrowError } from '../shared/errors.ts';
import type { parseServerControlLine } from '../shared/protocol.ts';

const ADVICE: Record<string, string> = {
  'auth-required':
    'the server requires a secret: give this client the same secret as the server (--secret-file, BURROW_SECRET or --secret)',
  'auth-failed': "the server rejected our secret: it is not the server's secret",
  'auth-disabled':
    'the server has no secret, but this client was given one: check that this is the right server, or drop the secret',
  'tls-required':
    'the server speaks TLS only: connect with --tls (and --tls-ca or --tls-fingerprint for a self-signed certificate)',
  'bad-certificate':
    'the server requires a client certificate signed by its client CA: pass --tls-client-cert and --tls-client-key',
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

/** Why the first line from the server shows this is not a burrow control port, in a
 * person's words, or undefined if it may well be one. */
export function notOurControlPort(
  line: string,
  parsed: ReturnType<typeof parseServerControlLine>,
  where: string,
): BurrowError | undefined {
  if (parsed.ok && parsed.message.verb === 'ERR' && parsed.message.reason === 'wrong-port') {
    return new BurrowError(
      'refused',
      `${where} is a burrow server's data port, not its control port: are the control and data ports swapped?`,
      { reason: 'wrong-port' },
    );
  }
  if (parsed.ok || parsed.reason !== 'unknown-verb') return undefined;
  if (/^HTTP\/[0-9]/.test(line))
    return new BurrowError(
      'protocol',
      `${where} answers HTTP, not burrow: it is a web server, not a burrow server's control port`,
    );
  if (line.startsWith('SSH-'))
    return new BurrowError('protocol', `${where} is an SSH server, not a burrow server's control port`);
  const said = line.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
  return new BurrowError('protocol', `${where} does not speak burrow: it answered "${said}"`);
}
