// What the client asks on a control connection, and how each answer finds its question:
// AUTH and PROOF (proving the secret), then EXPOSE. The server answers in the order it
// was asked, so every OK, ERR or CHALLENGE settles the oldest request still waiting.
import { BurrowError } from '../shared/errors.ts';
import {
  formatAuth,
  formatExpose,
  formatHttp,
  formatProof,
  type ServerAuthMessage,
  type ServerControlMessage,
} from '../shared/protocol.ts';
import { controlProof } from '../shared/secret.ts';
import { refusal } from './refusals.ts';
import { failure } from './report.ts';

/** The answer to one of our requests. */
export type Reply = Extract<ServerControlMessage | ServerAuthMessage, { verb: 'OK' | 'ERR' | 'CHALLENGE' }>;

export interface ExposeRequest {
  localPort: number;
  /** 0 for any port. */
  remotePort: number;
  /** The lease of `remotePort` from an earlier OK, to get that port back. */
  lease?: string | undefined;
  /** An HTTP tunnel instead (`HTTP` line): the name ('' for any, with its lease to get it
   * back) and the visitors' credentials as the relay checks them (see route.ts). */
  http?: { name: string; auth: string | undefined } | undefined;
}

export interface Opened {
  publicPort: number;
  lease: string | undefined;
  /** An HTTP tunnel's address. */
  url?: string | undefined;
}

interface Waiter {
  /** AUTH or PROOF: its answer is read with the authentication grammar. */
  auth: boolean;
  settle(reply: Reply): void;
  fail(error: BurrowError): void;
}

export class Requests {
  private readonly waiting: Waiter[] = [];
  private closed = false;

  /** `send` writes one line to the server. */
  constructor(private readonly send: (line: string) => void) {}

  /** The oldest request is AUTH or PROOF: the next answer is an authentication line. */
  get authenticating(): boolean {
    return this.waiting[0]?.auth ?? false;
  }

  /** Proves we know the secret without sending it: an HMAC of the server's fresh nonce. */
  async authenticate(secret: string): Promise<void> {
    const answer = (reply: Reply): Reply => {
      if (reply.verb !== 'ERR') return reply;
      const context =
        reply.reason === 'unknown-verb'
          ? 'the server does not know AUTH (an older burrow, or not a burrow server), so it cannot check our secret'
          : 'the server refused to authenticate us';
      throw refusal(reply.reason, reply.detail, context);
    };
    const challenge = await this.ask(formatAuth(), true, answer);
    if (challenge.verb !== 'CHALLENGE')
      throw new BurrowError('protocol', 'the server answered AUTH without a CHALLENGE');
    const accepted = await this.ask(formatProof(controlProof(secret, challenge.nonce)), true, answer);
    if (accepted.verb !== 'OK') throw new BurrowError('protocol', 'the server answered PROOF with a second CHALLENGE');
  }

  /** Sends one EXPOSE. `onOpened` runs the moment its OK is read — before any later line,
   * since a CONNECTION for the new tunnel may follow in the same packet. */
  expose({ localPort, remotePort, lease, http }: ExposeRequest, onOpened: (opened: Opened) => void): Promise<Opened> {
    const line = http ? formatHttp(localPort, http.name, lease, http.auth) : formatExpose(localPort, remotePort, lease);
    const verb = http ? 'HTTP' : 'EXPOSE';
    return this.ask(line, false, (reply) => {
      if (reply.verb === 'OK' && 'publicPort' in reply) {
        if (http && reply.url === undefined)
          throw new BurrowError('protocol', 'the server answered HTTP without a URL');
        const opened = { publicPort: reply.publicPort, lease: reply.lease, url: reply.url };
        onOpened(opened);
        return opened;
      }
      const what = http ? `an HTTP tunnel for port ${localPort}` : `port ${localPort}`;
      if (reply.verb === 'ERR') throw refusal(reply.reason, reply.detail, `server refused to expose ${what}`);
      throw new BurrowError('protocol', `the server answered ${verb} with ${reply.verb}`);
    });
  }

  /** Settles the oldest request with `reply`; false if none was waiting. */
  answer(reply: Reply): boolean {
    const waiter = this.waiting.shift();
    waiter?.settle(reply);
    return waiter !== undefined;
  }

  /** The connection has ended: every request fails with `reason`, and any later one too. */
  close(reason: BurrowError): void {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.fail(reason);
  }

  /** Sends `line` and waits for its answer: `onReply` runs the moment it is read and gives
   * the result (or throws). */
  private ask<T>(line: string, auth: boolean, onReply: (reply: Reply) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) return reject(new BurrowError('closed', 'the connection to the server is closed'));
      const settle = (reply: Reply): void => {
        try {
          resolve(onReply(reply));
        } catch (error) {
          reject(failure(error));
        }
      };
      this.waiting.push({ auth, settle, fail: reject });
      this.send(line);
    });
  }
}
