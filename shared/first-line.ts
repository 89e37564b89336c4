// A data connection's first line (the `ID`, and its answer), read without losing a byte
// of what follows: after it, every byte is the visitor's.
import type { Socket } from 'node:net';
import { BurrowError } from './errors.ts';

// Reads the first line of a socket without losing a byte of what follows it.
// split2 cannot do this (it keeps the bytes after the newline in its own buffer, where
// unpipe() drops them), so we read in paused mode and unshift() the remainder: whoever
// pipes the socket next sees exactly the bytes the peer sent after the line.
export interface FirstLineOptions {
  /** Longest line accepted, in bytes, without the newline (a `\r` before it is allowed). */
  maxLength: number;
  /** Deadline for the whole line, in milliseconds. */
  timeoutMs: number;
  /** A first byte no line can begin with, refused at once (with a `tls` BurrowError) rather
   * than read on in search of a newline: a TLS handshake's 0x16, on a plain server. */
  refuseFirstByte?: number;
}

/** Resolves with the line (without `\n`, possibly ending in `\r`), decoded byte for byte. */
export function readFirstLine(
  socket: Socket,
  { maxLength, timeoutMs, refuseFirstByte }: FirstLineOptions,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;

    const finish = (error: BurrowError | undefined, line?: string): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if (error) reject(error);
      else resolve(line ?? '');
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        if (length === 0 && chunks.length === 0 && chunk[0] === refuseFirstByte)
          return finish(new BurrowError('tls', 'the peer began a TLS handshake'));
        const newline = chunk.indexOf(0x0a);
        if (newline === -1) {
          chunks.push(chunk);
          length += chunk.length;
          if (length > maxLength + 1) return finish(new BurrowError('line-too-long', `line over ${maxLength} bytes`));
          continue;
        }
        if (length + newline > maxLength + 1)
          return finish(new BurrowError('line-too-long', `line over ${maxLength} bytes`));
        chunks.push(chunk.subarray(0, newline));
        const rest = chunk.subarray(newline + 1);
        if (rest.length > 0) socket.unshift(rest);
        return finish(undefined, Buffer.concat(chunks).toString('latin1'));
      }
    };
    const onEnd = (): void => finish(new BurrowError('closed', 'connection closed before a complete line'));
    const onError = (error: Error): void =>
      finish(new BurrowError('closed', `connection failed: ${error.message}`, { cause: error }));
    const timer = setTimeout(
      () => finish(new BurrowError('timeout', `no complete line within ${timeoutMs} ms`)),
      timeoutMs,
    );

    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}
