// The shared secret, without ever sending it: each side proves it knows the secret with an
// HMAC over something fresh the other side chose (the server's nonce on a control
// connection, the server's connection id on a data connection). docs/PROTOCOL.md
// describes the exchange; these pure functions are the whole of its cryptography.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh challenge for one control connection: 256 random bits, base64url. */
export function newNonce(): string {
  return randomBytes(32).toString('base64url');
}

/** What a client sends in `PROOF`: HMAC-SHA256 of the server's nonce. The prefix keeps a
 * control proof from ever passing as a data proof (nonces and ids share an alphabet). */
export function controlProof(secret: string, nonce: string): string {
  return hmac(secret, `burrow-control:${nonce}`);
}

/** What a client sends after the id in `ID <id> <proof>`. Ids are single-use, so a
 * recorded proof is worthless once its visitor has been handed over. */
export function dataProof(secret: string, id: string): string {
  return hmac(secret, `burrow-data:${id}`);
}

/** Constant-time comparison, so a guesser learns nothing from response times. */
export function sameToken(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function hmac(secret: string, message: string): string {
  return createHmac('sha256', secret).update(message).digest('base64url');
}
