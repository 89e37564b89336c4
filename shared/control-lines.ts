// Splits a control connection into lines (split2), with the guards split2 lacks:
// - bytes, not characters: the socket decodes as latin1 (one character per byte) and
//   split2 passes those strings through, so lengths are byte counts and no UTF-8
//   decoding turns invalid bytes into something else;
// - a line that arrives whole in one chunk is not length-checked by split2 (the parser
//   checks it);
// - an unterminated fragment at end of stream is dropped, not delivered.
import type { Socket } from 'node:net';
import split2 from 'split2';
import { MAX_LINE_LENGTH } from './protocol.ts';

export interface LineHandlers {
  /** A complete line, without its `\n` (a `\r` before it is removed too). */
  onLine(line: string): void;
  /** The peer's unfinished line grew past MAX_LINE_LENGTH: the buffer was dropped. */
  onTooLong(): void;
  /** The peer closed its side; any unterminated fragment was discarded. */
  onEnd(): void;
}

export function readControlLines(socket: Socket, handlers: LineHandlers): void {
  socket.setEncoding('latin1');
  // Split on `\n` only: the parser strips one `\r`, so `\r\r\n` stays invalid.
  // maxLength +1 leaves room for a `\r` that has arrived before its `\n`.
  // decodeStrings: false hands split2 our latin1 strings, which its decoder passes through.
  const lines = split2('\n', { maxLength: MAX_LINE_LENGTH + 1, decodeStrings: false });
  // end: false — at end of stream split2 would flush the unterminated tail as a line.
  // Lines are emitted synchronously as chunks arrive, so by 'end' every complete line
  // has already been delivered.
  socket.pipe(lines, { end: false });
  lines.on('data', (line: string) => handlers.onLine(line));
  lines.once('error', () => {
    // split2 throws 'maximum buffer reached' and destroys itself.
    socket.unpipe(lines);
    handlers.onTooLong();
  });
  socket.once('end', () => {
    socket.unpipe(lines);
    lines.destroy();
    handlers.onEnd();
  });
}

/** How long we keep reading (and discarding) after sending a final line, so the peer can
 * read that line before the connection closes; a reset could discard it in transit. */
export const LINGER_MS = 1_000;

/** Sends a last line, half-closes, and destroys the socket once the peer has closed too
 * or after LINGER_MS, whichever comes first. */
export function closeWithLine(socket: Socket, line: string): void {
  if (socket.destroyed) return;
  socket.end(line);
  socket.resume(); // drain whatever the peer still sends, so it sees our FIN, not a reset
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once('close', () => clearTimeout(timer));
}
