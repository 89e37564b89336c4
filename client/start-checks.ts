// What the client checks at start, so that a mistake shows now rather than when the first
// visitor is reset: that the server's data port answers, and that something listens for
// each local service.
import type net from 'node:net';
import { BurrowError } from '../shared/errors.ts';
import { DEFAULT_DATA_PORT, hostPort } from '../shared/protocol.ts';
import { dial } from './dial.ts';
import { nothingListensOn } from './local-check.ts';
import type { OpenTunnel } from './types.ts';

export interface DataPortCheck {
  host: string;
  port: number;
  /** The control port we reached (its neighbour is where a forward usually puts data). */
  controlPort: number;
  /** The port was given by the user (else the server named it, or it is the default). */
  given: boolean;
  /** The server named its data port. */
  named: boolean;
  timeoutMs: number;
  track: (socket: net.Socket) => void;
}

/** Opens one connection to the data port and closes it without a byte (every relay
 * tolerates that). Resolves with the port that answered: the one asked, or, when the
 * server named a port that does not answer, the one after the control port or else the
 * default, if that does (a relay behind a port forward names the port it listens on, not
 * the one we reach; forwards usually keep the pair side by side). Rejects with an
 * `unreachable` error that names the port and the likely cause if none answers. */
export async function checkDataPort(check: DataPortCheck): Promise<number> {
  const { port, given, named, controlPort } = check;
  try {
    await answers(check, port);
    return port;
  } catch (error) {
    const guesses =
      named && !given
        ? [...new Set([controlPort + 1, DEFAULT_DATA_PORT])].filter((guess) => guess !== port && guess <= 65535)
        : [];
    for (const guess of guesses) {
      if (
        await answers(check, guess).then(
          () => true,
          () => false,
        )
      )
        return guess;
    }
    const reason = error instanceof BurrowError ? error.message : String(error);
    const hint = given
      ? 'check the data port you gave, or a firewall between us lets only the control port through'
      : named
        ? `this is the data port the server named (${guesses.join(' and ')} did not answer either): if the relay is behind a port forward, give the forwarded one (--data-port); else a firewall between us lets only the control port through`
        : `the server did not name its data port, and it is not the default ${DEFAULT_DATA_PORT}: give it (--data-port)`;
    throw new BurrowError('unreachable', `${reason}. The control port answered, so ${hint}`, { cause: error });
  }
}

async function answers({ host, timeoutMs, track }: DataPortCheck, port: number): Promise<void> {
  const socket = await dial({ host, port, timeoutMs, code: 'unreachable', what: "server's data port", track });
  socket.destroy();
}

/** A warning for each tunnel whose local service nothing listens for yet (the tunnel
 * opens anyway; its visitors are reset until something does). */
export async function localServicesMissing(tunnels: readonly OpenTunnel[]): Promise<BurrowError[]> {
  const missing = await Promise.all(
    tunnels.map(async (tunnel) => ((await nothingListensOn(tunnel.localHost, tunnel.localPort)) ? tunnel : undefined)),
  );
  return missing
    .filter((tunnel): tunnel is OpenTunnel => tunnel !== undefined)
    .map(
      (tunnel) =>
        new BurrowError(
          'local-unavailable',
          `nothing listens on ${hostPort(tunnel.localHost, tunnel.localPort)} yet: visitors of ${tunnel.url} are reset until something does`,
        ),
    );
}
