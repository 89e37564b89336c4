// Two TCP sockets joined to each other over loopback: what lets a WebSocket stand in for a
// TCP connection. The core of the client and of the relay reads and writes real sockets
// (it counts bytes, sends resets, probes for them); the WebSocket transport hands it one
// end of a pair and carries the other end's bytes over the WebSocket (websocket-bridge.ts).
// Node 20 has no socketpair(), so the pair is a connection to a listener of our own.
import { once } from 'node:events';
import net from 'node:net';
import createDebug from 'debug';
import { BurrowError, describe } from './errors.ts';
import { SOCKET_OPTIONS } from './socket-options.ts';

const debug = createDebug('burrow:pair');

const LOOPBACK = '127.0.0.1';

export interface SocketPair {
  /** The end that was accepted. */
  accepted: net.Socket;
  /** The end that dialed. */
  dialed: net.Socket;
}

export class SocketPairs {
  private listener: net.Server | undefined;
  private listening: Promise<number> | undefined;
  /** Pairs being made, by the dialing end's local port (unique on loopback while open). */
  private readonly waiting = new Map<number, (accepted: net.Socket) => void>();
  /** Accepted ends whose dialing end has not seen its 'connect' yet (for a moment). */
  private readonly early = new Map<number, { socket: net.Socket; timer: NodeJS.Timeout }>();
  private closed = false;

  /** A new pair, both ends half-open and without Nagle. Rejects once close() has run. */
  async pair(): Promise<SocketPair> {
    const port = await this.open();
    const dialed = net.connect({ ...SOCKET_OPTIONS, keepAlive: false, host: LOOPBACK, port });
    dialed.on('error', (error) => debug('dialed end: %s', error.message));
    try {
      await once(dialed, 'connect');
    } catch (error) {
      dialed.destroy();
      throw new BurrowError('closed', `cannot make a socket pair: ${describe(error)}`, { cause: error });
    }
    const key = dialed.localPort ?? 0;
    const accepted = await new Promise<net.Socket | undefined>((resolve) => {
      const early = this.early.get(key); // the accept can come first: both are events
      if (early) {
        clearTimeout(early.timer);
        this.early.delete(key);
        return resolve(early.socket);
      }
      const onClose = (): void => {
        this.waiting.delete(key);
        resolve(undefined);
      };
      dialed.once('close', onClose);
      this.waiting.set(key, (socket) => {
        dialed.off('close', onClose);
        resolve(socket);
      });
    });
    if (!accepted) throw new BurrowError('closed', 'a socket pair closed while it was being made');
    return { accepted, dialed };
  }

  /** Stops making pairs; pairs already made are their owners' to close. */
  close(): void {
    this.closed = true;
    for (const { socket, timer } of this.early.values()) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.early.clear();
    this.listener?.close();
    this.listener = undefined;
  }

  private open(): Promise<number> {
    if (this.closed) return Promise.reject(new BurrowError('closed', 'closing: no new socket pairs'));
    if (this.listening) return this.listening;
    const listener = net.createServer({ ...SOCKET_OPTIONS, keepAlive: false }, (socket) => this.accept(socket));
    listener.on('error', (error) => debug('listener: %s', error.message));
    this.listener = listener;
    this.listening = new Promise<number>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host: LOOPBACK, port: 0 }, () => {
        listener.off('error', reject);
        const address = listener.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
    this.listening.catch(() => (this.listening = undefined)); // try again on the next pair
    return this.listening;
  }

  private accept(socket: net.Socket): void {
    socket.on('error', (error) => debug('accepted end: %s', error.message));
    // Anyone on this machine may connect to a loopback port: only our own dials are paired.
    const key = socket.remotePort ?? 0;
    if (socket.remoteAddress !== LOOPBACK || this.early.has(key)) return void socket.destroy();
    const join = this.waiting.get(key);
    if (join) {
      this.waiting.delete(key);
      return join(socket);
    }
    // Ours, whose dialing end has yet to hear 'connect', or a stranger's: kept for a
    // moment only, and closed if no dial of ours claims it.
    const timer = setTimeout(() => {
      this.early.delete(key);
      socket.destroy();
    }, EARLY_MS);
    this.early.set(key, { socket, timer });
  }
}

/** How long an accepted end waits for its dialing end to claim it. */
const EARLY_MS = 2_000;
