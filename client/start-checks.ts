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
  /** The port was given by the user (else the server named it, or it is the default). */
  given: boolean;
  /** The server named its data port. */
  named: boolean;
  timeoutMs: number;
  track(socket: net.Socket): void;
}

/** Opens one connection to the data port and closes it without a byte (every relay
 * tolerates that); rejects with an `unreachable` error that names the port and the
 * likely cause if it cannot. */
export async function checkDataPort({ host, port, given, named, timeoutMs, track }: DataPortCheck): Promise<void> {
  try {
    const socket = await dial({ host, port, timeoutMs, code: 'unreachable', what: "server's data port", track });
    socket.destroy();
  } catch (error) {
    const reason = error instanceof BurrowError ? error.message : String(error);
    const hint = given
      ? 'check the data port you gave, or a firewall between us lets only the control port through'
      : named
        ? 'this is the data port the server named: a firewall between us lets only the control port through?'
        : `the server did not name its data port, and it is not the default ${DEFAULT_DATA_PORT}: give it (--data-port)`;
    throw new BurrowError('unreachable', `${reason}. The control port answered, so ${hint}`, { cause: error });
  }
}

/** A warning for each tunnel whose local service nothing listens for yet (the tunnel
 * opens anyway; its visitors are reset until something does). */
export async function localServicesMissing(tunnels: readonly OpenTunnel[]): Promise<BurrowError[]> {
  const missing = await Promise.all(tunnels.map(async (tunnel) => ((await nothingListensOn(tunnel.localHost, tunnel.localPort)) ? tunnel : undefined)));
  return missing
    .filter((tunnel): tunnel is OpenTunnel => tunnel !== undefined)
    .map((tunnel) => new BurrowError('local-unavailable', `nothing listens on ${hostPort(tunnel.localHost, tunnel.localPort)} yet: visitors of ${tunnel.url} are reset until something does`));
}
