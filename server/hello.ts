// The server's side of HELLO: what it agrees to of a client's offer, and its answer.
import { agreeOn, EXTENSIONS, type Extension, type Hello } from '../shared/extensions.ts';
import { formatHello } from '../shared/protocol.ts';

export interface Agreement {
  extensions: ReadonlySet<Extension>;
  /** The client process's id from `fin-notice=<instance>`, if fin-notice is agreed. */
  clientInstance: string | undefined;
  /** The HELLO line to answer with. */
  reply: string;
}

/** `instance` is this server process's id, `dataPort` the data port it listens on; `http`:
 * it serves HTTP tunnels. */
export function answerHello(offer: Hello, instance: string, dataPort: number, http: boolean): Agreement {
  // fin-notice needs the client's instance: without one it is not agreed.
  const clientInstance = offer.values['fin-notice'];
  const offered =
    clientInstance === undefined ? offer.extensions.filter((name) => name !== 'fin-notice') : offer.extensions;
  const extensions = agreeOn(offered, http ? EXTENSIONS : EXTENSIONS.filter((name) => name !== 'http'));
  // fin-notice=<us>: the client may check, after a reconnect, that it reached us again.
  const reply = formatHello(extensions, { 'fin-notice': instance, 'data-port': String(dataPort) });
  return { extensions, clientInstance: extensions.has('fin-notice') ? clientInstance : undefined, reply };
}
