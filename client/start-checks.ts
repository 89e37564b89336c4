// What the client checks at start, so that a mistake shows now rather than when the first
// visitor is reset: that the server's data port answers, and that something listens for
// each local service.
import type net from 'node:net';
import { BurrowError } from '../shared/errors.ts';
import { DEFAULT_DATA_PORT, hostPort } from '../shared/protocol.ts';
import { dial } from './dial.ts';
import { nothingListensOn } from './local-check.ts';
import type { ClientSettings, OpenTunnel } from './types.ts';

export interface DataPortCheck {
  port: number;
  /** The server named its data port (else it is the default, or the user gave it). */
  named: boolean;
  /** The client's: its stop cuts the check. */
  signal: AbortSignal;
  track: (socket: net.Socket) => void;
  warn: (warning: BurrowError) => void;
}

type Settings = Pick<ClientSettings, 'server' | 'controlPort' | 'dataPort' | 'handshakeTimeoutMs'>;

/** Opens one connection to the data port and closes it without a byte (every relay
 * tolerates that). When the server named a port that does not answer, tries the one after
 * the control port, then the default: a relay behind a port forward names the port it
 * listens on, not the one we reach, and forwards usually keep the pair side by side. If
 * one of those answers, warns and resolves with it (the port to use from now on); if the
 * port asked answers, with undefined. Rejects with an `unreachable` error that names the
 * port and the likely cause if none answers. */
export async function checkDataPort(settings: Settings, check: DataPortCheck): Promise<number | undefined> {
  const { port, named, signal, track } = check;
  const { server: host, handshakeTimeoutMs: timeoutMs, dataPort } = settings;
  const given = dataPort !== undefined;
  const answers = async (port: number): Promise<void> => {
    (await dial("server's data port", host, port, { timeoutMs, signal, track })).destroy();
  };
  try {
    await answers(port);
    return undefined;
  } catch (error) {
    signal.throwIfAborted(); // the client was closed: no hint to give
    const guesses =
      named && !given
        ? [...new Set([settings.controlPort + 1, DEFAULT_DATA_PORT])].filter(
            (guess) => guess !== port && guess <= 65535,
          )
        : [];
    for (const guess of guesses) {
      const reached = await answers(guess).then(
        () => true,
        () => false,
      );
      if (!reached) continue;
      check.warn(
        new BurrowError(
          'unreachable',
          `the server names data port ${port}, which does not answer here; ${guess} does, so using it (behind a port forward? give \`dataPort\` ${guess} to say so)`,
        ),
      );
      return guess;
    }
    const reason = error instanceof BurrowError ? error.message : String(error);
    const hint = given
      ? 'check the data port you gave, or a firewall between us lets only the control port through'
      : named
        ? `this is the data port the server named (${guesses.join(' and ')} did not answer either): if the relay is behind a port forward, give the forwarded one (\`dataPort\`); else a firewall between us lets only the control port through`
        : `the server did not name its data port, and it is not the default ${DEFAULT_DATA_PORT}: give it (\`dataPort\`)`;
    throw new BurrowError('unreachable', `${reason}. The control port answered, so ${hint}`, { cause: error });
  }
}

/** A warning for each tunnel whose local service nothing listens for yet (the tunnel
 * opens anyway; its visitors are reset until something does). */
export async function localServicesMissing(tunnels: readonly OpenTunnel[]): Promise<BurrowError[]> {
  const missing = await Promise.all(tunnels.map((tunnel) => nothingListensOn(tunnel.localHost, tunnel.localPort)));
  return tunnels
    .filter((_, index) => missing[index])
    .map(
      (tunnel) =>
        new BurrowError(
          'local-unavailable',
          `nothing listens on ${hostPort(tunnel.localHost, tunnel.localPort)} yet: visitors of ${tunnel.url} are reset until something does`,
        ),
    );
}
