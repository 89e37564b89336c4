// Hands out public ports within the configured range by actually binding them: a port is
// free exactly when listen() succeeds, so there is no check-then-bind race.
import net from 'node:net';
import createDebug from 'debug';
import { once } from 'node:events';
import { BurrowError, describe, systemCode } from '../shared/errors.ts';
import { hostPort, type ErrReason, type PortRange } from '../shared/protocol.ts';
import { SOCKET_OPTIONS } from '../shared/socket-options.ts';

const debug = createDebug('burrow:ports');

/** Ports tried per request before answering `no-free-port`: enough to get past a busy
 * neighbourhood, few enough that a full range answers quickly (bore tries 150). */
export const MAX_BIND_ATTEMPTS = 150;

/** Why a public port could not be opened, as the reason word sent to the client. */
export class PortError extends Error {
  constructor(
    readonly reason: ErrReason,
    message: string,
  ) {
    super(message);
  }
}

export interface PortPoolOptions {
  range: PortRange;
  /** Address the public listeners bind to; undefined means all interfaces. */
  host: string | undefined;
}

/** The port a listener is bound to (0 before it listens). */
export function portOf(listener: net.Server): number {
  const address = listener.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

export class PortPool {
  /** Ports our own tunnels hold, so we never try to bind them twice. */
  private readonly held = new Set<number>();

  constructor(private readonly options: PortPoolOptions) {}

  /**
   * Opens a listener on `requested`, or on a free port of the range when `requested` is 0.
   * Rejects with a PortError whose reason is the word the client will see. `cancelled`
   * is asked between attempts, so a search stops when its requester has gone.
   */
  async listen(
    requested: number,
    onVisitor: (socket: net.Socket) => void,
    cancelled = (): boolean => false,
  ): Promise<net.Server> {
    const { min, max } = this.options.range;
    if (requested !== 0) {
      if (requested < min || requested > max)
        throw new PortError('port-out-of-range', `port ${requested} is outside ${min}-${max}`);
      if (this.held.has(requested)) throw new PortError('port-in-use', `port ${requested} is taken`);
      const result = await this.bind(requested, onVisitor);
      if (result instanceof net.Server) return result;
      throw new PortError('port-in-use', `port ${requested} is not available (${result})`);
    }
    // Walk the range from a random start: every port is tried at most once, and the
    // first free one after the start wins.
    const size = max - min + 1;
    const start = Math.floor(Math.random() * size);
    let attempts = 0;
    for (let step = 0; step < size && attempts < MAX_BIND_ATTEMPTS && !cancelled(); step++) {
      const port = min + ((start + step) % size);
      if (this.held.has(port)) continue;
      attempts++;
      const result = await this.bind(port, onVisitor);
      if (result instanceof net.Server) return result;
    }
    throw new PortError('no-free-port', `no free port in ${min}-${max}`);
  }

  /** Returns a port to the pool; call after its listener was closed. */
  release(port: number): void {
    this.held.delete(port);
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** Resolves with the listening server, or with the error code that stopped it. */
  private async bind(port: number, onVisitor: (socket: net.Socket) => void): Promise<net.Server | string> {
    // pauseOnConnect: a visitor's bytes stay in the kernel until it is paired, so waiting
    // visitors cost no user-space memory; allowHalfOpen: carry FIN through (see pipe.ts).
    const server = net.createServer({ ...SOCKET_OPTIONS, pauseOnConnect: true }, onVisitor);
    this.held.add(port); // reserve before the await so a concurrent request skips it
    try {
      await once(server.listen({ port, host: this.options.host }), 'listening');
      return server;
    } catch (error) {
      this.held.delete(port);
      debug('port %d: %s', port, describe(error));
      return systemCode(error) ?? describe(error);
    }
  }
}

/** Opens one of the server's own ports; rejects with a `listen-failed` BurrowError. */
export async function listenOn(
  listener: net.Server,
  port: number,
  host: string | undefined,
  name: string,
): Promise<void> {
  try {
    await once(listener.listen({ port, host }), 'listening');
  } catch (error) {
    const where = host === undefined ? `port ${port}` : hostPort(host, port);
    throw new BurrowError('listen-failed', `cannot listen on ${name} ${where}: ${describe(error)}`, { cause: error });
  }
}
