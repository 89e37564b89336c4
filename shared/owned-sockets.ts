// The sockets one side owns, so that closing it closes every one of them: after letting
// them finish for a while, or at once (stopDraining).
import type { Socket } from 'node:net';
import { abortSocket } from './pipe.ts';

export class OwnedSockets {
  private readonly sockets = new Set<Socket>();
  private endDrain: (() => void) | undefined;
  private closing = false;
  /** stopDraining() was called: no wait of ours lasts any longer. */
  private stopped = false;

  /** Takes ownership of `socket` until it closes; once close() has begun, a new socket
   * is destroyed at once instead. */
  add(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (socket.destroyed) return; // its 'close' has fired or is about to: nothing to own
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (this.sockets.size === 0) this.endDrain?.();
    });
  }

  /** Gives `socket` up: it is closed with another set, or by another owner. A TLS socket
   * stands for the TCP socket beneath it, if that is the one owned here (an HTTPS server
   * hands its TCP sockets over, its upgrades the TLS ones): the one with its addresses. */
  forget(socket: Socket): void {
    if (this.sockets.delete(socket)) return;
    const key = addressesOf(socket);
    for (const owned of this.sockets) {
      if (addressesOf(owned) !== key) continue;
      this.sockets.delete(owned);
      return;
    }
  }

  get size(): number {
    return this.sockets.size;
  }

  /** Refuses new sockets, lets the owned ones finish for up to `graceMs` (or until
   * stopDraining()), then closes the rest and resolves once every one has closed. A socket
   * whose stream had not ended both ways is reset, so its peer sees an abort rather than
   * a truncated stream that looks complete. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    await this.drain(graceMs, true);
    for (const socket of this.sockets) abortSocket(socket);
    while (this.sockets.size > 0) await this.drain(60_000, false);
  }

  /** Resolves once every owned socket has closed, after `ms`, or on stopDraining(),
   * whichever comes first; closes nothing itself. */
  settled(ms: number): Promise<void> {
    return this.drain(ms, true);
  }

  /** Ends the grace period of a close() (or the wait of settled()) in progress now. */
  stopDraining(): void {
    this.stopped = true;
    this.endDrain?.();
  }

  /** Resolves when every socket has closed, after `ms`, or (if `cuttable`) on
   * stopDraining(). */
  private drain(ms: number, cuttable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.endDrain === done) this.endDrain = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.endDrain = done;
      if (this.sockets.size === 0 || (cuttable && this.stopped)) done();
    });
  }
}

/** A connection's four addresses and ports: unique among open connections. */
const addressesOf = (socket: Socket): string =>
  `${socket.localAddress} ${socket.localPort} ${socket.remoteAddress} ${socket.remotePort}`;
