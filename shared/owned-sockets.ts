// The sockets one side owns, so that closing it closes every one of them: at once
// (destroy) or after letting them finish for a while (drain).
import type { Socket } from 'node:net';
import { abortSocket } from './pipe.ts';

export class OwnedSockets {
  private readonly sockets = new Set<Socket>();
  private endDrain: (() => void) | undefined;

  /** Takes ownership of `socket` until it closes. */
  add(socket: Socket): void {
    if (socket.destroyed) return; // its 'close' has fired or is about to: nothing to own
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (this.sockets.size === 0) this.endDrain?.();
    });
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Resolves when every socket has closed, after `ms`, or on stopDraining(). */
  drain(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.endDrain = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.endDrain = done;
      if (this.sockets.size === 0) done();
    });
  }

  /** Ends a drain() in progress now. */
  stopDraining(): void {
    this.endDrain?.();
  }

  /** Closes every socket now. One whose stream had not ended both ways is reset, so its
   * peer sees an abort rather than a truncated stream that looks complete. */
  destroyAll(): void {
    for (const socket of this.sockets) {
      if (socket.readableEnded && socket.writableFinished) socket.destroy();
      else abortSocket(socket);
    }
  }

  /** Resolves once every socket has closed (after destroyAll(), a tick or so). */
  async closed(): Promise<void> {
    while (this.sockets.size > 0) await this.drain(60_000);
  }
}
