// The server's side of HELLO: what it agrees to of a client's offer, and its answer.
import { agreeOn, EXTENSIONS, type Extension, type Hello } from '../shared/extensions.ts';
import { formatHello } from '../shared/protocol.ts';
import type { Limits } from './limits.ts';

export interface Agreement {
  extensions: ReadonlySet<Extension>;
  /** The client process's id from `fin-notice=<instance>`, if fin-notice is agreed. */
  clientInstance: string | undefined;
  /** The HELLO line to answer with. */
  reply: string;
}

/** What the answer says of the server (SessionParts has them). */
export interface HelloParts {
  /** This server process's id (`fin-notice`). */
  readonly instance: string;
  /** The data port it listens on (`data-port`). */
  dataPort(): number;
  /** Its HTTP tunnels, if it serves any (`http`). */
  readonly http: object | undefined;
  /** How long a data connection may wait for its ID line (`prewarm`). */
  readonly limits: Pick<Limits, 'handshakeTimeoutMs'>;
}

export function answerHello(offer: Hello, server: HelloParts): Agreement {
  // fin-notice needs the client's instance: without one it is not agreed.
  const clientInstance = offer.values['fin-notice'];
  const offered =
    clientInstance === undefined ? offer.extensions.filter((name) => name !== 'fin-notice') : offer.extensions;
  const extensions = agreeOn(offered, server.http ? EXTENSIONS : EXTENSIONS.filter((name) => name !== 'http'));
  const { instance, limits } = server;
  // fin-notice=<us>: the client may check, after a reconnect, that it reached us again.
  // prewarm=<ms>: a data connection opened ahead must say its ID within that time.
  const values = {
    'fin-notice': instance,
    'data-port': String(server.dataPort()),
    prewarm: String(limits.handshakeTimeoutMs),
  };
  const reply = formatHello(extensions, values);
  return { extensions, clientInstance: extensions.has('fin-notice') ? clientInstance : undefined, reply };
}
