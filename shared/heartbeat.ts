// One end's heartbeat on a control connection, the same on both sides: our PINGs every
// interval, a receive deadline that every line re-arms, and the "still alive?" questions
// that ride on PINGs (see alive-check.ts).
import { AliveCheck, type Answer } from './alive-check.ts';

export interface HeartbeatHooks {
  /** Sends one PING line. */
  sendPing(): void;
  /** Nothing arrived in time: `why` says what was missed. */
  silent(why: string): void;
}

export class Heartbeat {
  private readonly alive = new AliveCheck(() => this.ping());
  private receiveTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(private readonly hooks: HeartbeatHooks) {}

  /** (Re)arms the receive deadline: no line within `ms` and the peer is dead to us. */
  expectLineWithin(ms: number, why: () => string): void {
    clearTimeout(this.receiveTimer);
    this.receiveTimer = setTimeout(() => this.hooks.silent(why()), ms);
  }

  /** No receive deadline: a peer without heartbeats may be quiet for hours. */
  stopExpecting(): void {
    clearTimeout(this.receiveTimer);
  }

  /** Starts our regular PINGs (once). */
  startPinging(intervalMs: number): void {
    this.pingTimer ??= setInterval(() => this.ping(), intervalMs);
  }

  /** Answers once the peer has answered a PING sent after now (false if it goes first). */
  ask(answer: Answer): void {
    this.alive.ask(answer);
  }

  /** A PONG arrived (the line itself has re-armed the deadline already). */
  pongReceived(): void {
    this.alive.pongReceived();
  }

  /** The connection is gone: timers stop, questions are answered no. */
  stop(): void {
    clearTimeout(this.receiveTimer);
    clearInterval(this.pingTimer);
    this.alive.fail();
  }

  private ping(): void {
    this.hooks.sendPing();
    this.alive.pingSent();
  }
}
