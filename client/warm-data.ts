// Data connections opened ahead (the `prewarm` extension): each visitor's dial-back takes
// one that is already connected (and through TLS, or upgraded to a WebSocket) if one is
// idle, and dials one more for the next visitor. So a visitor's setup skips the connect;
// each connection still carries exactly one `ID <id>`.
//
// Bounded both ways: at most MAX_WARM idle at once, and each only for half of the relay's
// handshake timeout (which it announced with prewarm=<ms>, and which still applies from
// the connect: an idle connection must say its ID in time or be turned away). One that
// reaches that age is closed and not replaced, so an idle client holds nothing on the
// relay once its last visitor is a few seconds old.
import type net from 'node:net';
import createDebug from 'debug';
import { describe } from '../shared/errors.ts';

const debug = createDebug('burrow:client');

/** Idle connections kept at most: a burst beyond it dials as without prewarm. */
export const MAX_WARM = 4;

interface Idle {
  socket: net.Socket;
  timer: NodeJS.Timeout;
  /** The relay said something (an ERR: it counts a deadline from the connect), ended or
   * closed it while it waited: it is not used. */
  gone: () => void;
}

export class WarmData {
  private readonly idle: Idle[] = [];
  private dialing = 0;
  private closed = false;
  /** How long one may stay idle: half the relay's handshake timeout. */
  private readonly keepMs: number;

  /** `dial` opens one data connection (rejecting if it cannot); `relayTimeoutMs` is the
   * relay's handshake timeout, from its `prewarm=<ms>`. */
  constructor(
    private readonly dial: () => Promise<net.Socket>,
    relayTimeoutMs: number,
  ) {
    this.keepMs = Math.max(1, Math.floor(relayTimeoutMs / 2));
  }

  /** An idle data connection for a visitor, if one is ready. The caller then dials its
   * own if it got none, and calls refill(). */
  take(): net.Socket | undefined {
    for (let entry = this.idle.shift(); entry; entry = this.idle.shift()) {
      this.release(entry);
      if (!entry.socket.destroyed && entry.socket.readableLength === 0) return entry.socket;
      entry.socket.destroy();
    }
    return undefined;
  }

  /** Idle connections now. */
  get size(): number {
    return this.idle.length;
  }

  /** Closes every idle connection; no more are dialed. */
  close(): void {
    this.closed = true;
    for (const entry of this.idle.splice(0)) {
      this.release(entry);
      entry.socket.destroy();
    }
  }

  /** Dials one more for the next visitor (up to MAX_WARM): called after a visitor's own
   * dial, which so connects first. */
  refill(): void {
    if (this.closed || this.idle.length + this.dialing >= MAX_WARM) return;
    this.dialing++;
    this.dial().then(
      (socket) => {
        this.dialing--;
        if (this.closed) socket.destroy();
        else this.park(socket);
      },
      (error: unknown) => {
        this.dialing--;
        debug('a data connection opened ahead failed: %s', describe(error));
      },
    );
  }

  /** Keeps `socket` until a visitor takes it, it ages out, or the relay closes it. */
  private park(socket: net.Socket): void {
    const entry: Idle = {
      socket,
      timer: setTimeout(() => this.drop(entry), this.keepMs),
      gone: () => this.drop(entry),
    };
    socket.once('readable', entry.gone);
    socket.once('close', entry.gone);
    this.idle.push(entry);
  }

  private drop(entry: Idle): void {
    const at = this.idle.indexOf(entry);
    if (at !== -1) this.idle.splice(at, 1);
    this.release(entry);
    entry.socket.destroy();
  }

  private release({ socket, timer, gone }: Idle): void {
    clearTimeout(timer);
    socket.off('readable', gone);
    socket.off('close', gone);
  }
}
