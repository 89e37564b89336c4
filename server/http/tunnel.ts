// One HTTP tunnel: a name whose requests go to one client. Its requests travel over data
// connections that the client dials back for, exactly as a TCP visitor's bytes do
// (`CONNECTION <id>`, then `ID <id>` on the data port); an http.Agent keeps them open and
// reuses them for later requests of the same tunnel (HTTP keep-alive towards the client),
// so that most requests cost no dial-back at all. Only this tunnel's requests ever use them.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import createDebug from 'debug';
import { nanoid } from 'nanoid';
import { BurrowError } from '../../shared/errors.ts';
import { formatAddress, formatConnection, formatOk } from '../../shared/protocol.ts';
import type { ServerObserver } from '../observer.ts';
import type { TunnelSession } from '../tunnel.ts';
import type { DialBacks } from './dial-backs.ts';
import type { HttpNames, NamedTunnel } from './names.ts';

const debug = createDebug('burrow:http');

/** What an HTTP tunnel uses of the server. */
export interface HttpTunnelParts {
  readonly names: HttpNames;
  readonly dialBacks: DialBacks<HttpTunnel>;
  readonly observer: ServerObserver;
  /** The port visitors reach the tunnel on (the HTTPS port if there is one): the
   * CONNECTION line names it. */
  readonly publicPort: number;
  /** Requests one tunnel forwards at once (each holds one data connection). */
  readonly maxRequestsPerTunnel: number;
  /** How long an idle data connection is kept for the next request. */
  readonly idleMs: number;
}

/** Where a request came from, for its CONNECTION line. */
export interface VisitorAddresses {
  visitor: string;
  destination: string;
}

/** What a request's options carry for a dial-back: the visitor's connection, whose
 * addresses are read only if the request needs a new data connection (most reuse one). */
export interface FromVisitor {
  visitorSocket?: Socket;
}

/** Where a request came from and arrived, for the client's connection log. */
function addressesOf(socket: Socket | undefined): Partial<VisitorAddresses> {
  if (!socket) return {};
  const visitor = formatAddress(socket.remoteAddress, socket.remotePort);
  const destination = formatAddress(socket.localAddress, socket.localPort);
  return { ...(visitor && { visitor }), ...(destination && { destination }) };
}

export class HttpTunnel implements NamedTunnel {
  /** Requests being forwarded now (the limit is maxRequestsPerTunnel). */
  inFlight = 0;
  readonly agent: http.Agent;
  private closed = false;

  constructor(
    readonly name: string,
    /** Its address, as visitors type it: `https://NAME.<domain>`. */
    readonly url: string,
    readonly localPort: number,
    readonly lease: string,
    /** base64url SHA-256 of `user:password` that visitors must send; undefined: open. */
    readonly auth: string | undefined,
    readonly session: TunnelSession,
    private readonly parts: HttpTunnelParts,
  ) {
    const dialBack = (addresses: Partial<VisitorAddresses>): Promise<Socket> => this.dialBack(addresses);
    this.agent = new DialBackAgent(dialBack, () => !this.closed, {
      keepAlive: true,
      maxSockets: parts.maxRequestsPerTunnel,
      maxFreeSockets: parts.maxRequestsPerTunnel,
      timeout: parts.idleMs,
      scheduling: 'lifo', // the warmest connection first; the idle ones time out
    });
    parts.names.adopt(this);
  }

  /** Asks the client for a data connection (CONNECTION) and resolves with it once it has
   * said `ID <id>` on the data port. */
  dialBack({ visitor = '0.0.0.0:0', destination = '0.0.0.0:0' }: Partial<VisitorAddresses>): Promise<Socket> {
    if (this.closed) return Promise.reject(new BurrowError('closed', 'the tunnel closed'));
    const id = nanoid();
    const { dialBacks, observer, publicPort } = this.parts;
    const joined = dialBacks.wait(id, this, (socket, conn) => {
      // The client reads OK before the first request, as for any visitor (id-reply).
      if (this.session.extensions.has('id-reply')) {
        observer.sent(conn, 'OK');
        socket.write(formatOk());
      }
      observer.event(conn, `carries the requests of ${this.name}`);
    });
    this.session.send(formatConnection(id, publicPort, visitor, destination, this.name));
    return joined;
  }

  /** Stops forwarding: waiting requests fail, idle data connections close, and busy ones
   * once their response is complete (as a TCP tunnel's joined visitors live on); the name
   * is freed, kept for its lease holder, or handed over (see HttpNames). */
  close(keep: 'release' | 'lease' | 'handover' = 'release'): void {
    if (this.closed) return;
    this.closed = true;
    this.parts.dialBacks.clear(this);
    for (const sockets of Object.values(this.agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    this.parts.names.closed(this, keep);
    this.parts.observer.event(`http:${this.name}`, `closed (${keep})`);
  }

  get open(): boolean {
    return !this.closed;
  }

  /** The port its visitors arrive on, which every HTTP tunnel shares. */
  get publicPort(): number {
    return this.parts.publicPort;
  }
}

/** An http.Agent whose connections are dial-backs of one tunnel's client. */
class DialBackAgent extends http.Agent {
  constructor(
    private readonly dialBack: (addresses: Partial<VisitorAddresses>) => Promise<Socket>,
    /** False once the tunnel has closed: a data connection is then not kept for more. */
    private readonly open: () => boolean,
    options: http.AgentOptions,
  ) {
    super(options);
  }

  override keepSocketAlive(socket: Socket): boolean {
    // Node returns true here, though its types say void.
    return this.open() && (super.keepSocketAlive(socket) as boolean | undefined) !== false;
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): undefined {
    return viaDialBack(this.dialBack)(options, callback);
  }
}

/** A `createConnection` (of an http.Agent, or of one request) whose connection is a fresh
 * dial-back; the request's options carry the visitor's socket, whose addresses its
 * CONNECTION line names. */
export function viaDialBack(dialBack: (addresses: Partial<VisitorAddresses>) => Promise<Socket>) {
  return (options: http.ClientRequestArgs, callback?: (error: Error | null, stream: Duplex) => void): undefined => {
    // Node's callback takes no stream with an error; its type says it always does.
    const fail = callback as ((error: Error) => void) | undefined;
    const fromVisitor = options as http.ClientRequestArgs & FromVisitor;
    const addresses = addressesOf(fromVisitor.visitorSocket);
    // An agent keeps these options as long as the data connection: not the visitor's socket.
    fromVisitor.visitorSocket = undefined;
    dialBack(addresses).then(
      (socket) => callback?.(null, socket),
      (error: unknown) => {
        debug('dial-back failed: %s', (error as Error).message);
        fail?.(error instanceof Error ? error : new Error(String(error)));
      },
    );
    return undefined;
  };
}
