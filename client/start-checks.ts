// What the client checks at start, so that a mistake shows now rather than when the first
// visitor is reset: that the server's data port answers, and that something listens for
// each local service.
import net from 'node:net';
import { BurrowError } from '../shared/errors.ts';
import { DEFAULT_DATA_PORT, hostPort } from '../shared/protocol.ts';
import { dial } from './dial.ts';
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
  const answers = async (port: number): Promise<true> => {
    (await dial("server's data port", host, port, { timeoutMs, signal, track })).destroy();
    return true;
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
      if (!(await answers(guess).catch(() => false))) continue;
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
          `nothing listens on ${hostPort(tunnel.localHost, tunnel.localPort)} yet: visitors of ${tunnel.url} ${tunnel.name === undefined ? 'are reset' : 'get 502'} until something does`,
        ),
    );
}

// Is anything listening for the local service yet? Asked once at start, so that a user who
// forgot to start it hears so at once, not when the first visitor is reset.
//
// Connecting would answer it, but the service would see an empty connection, and one that
// serves a single connection (`nc -l 3000`) would be used up by it. So we try to listen on
// the port ourselves instead, for a moment: if we can, nobody else does. Only for
// addresses of this machine; for any other host the answer is "don't know".
//
// Only on Linux: there, a bind to 127.0.0.1:P fails while anything listens on P, on any
// address. BSD and Windows rules let our bind to 127.0.0.1 succeed beside a service on
// 0.0.0.0 (libuv sets SO_REUSEADDR), which would warn about a service that is there.
/** True if nothing listens on `host:port` (a loopback host or `localhost`); false if
 * something does, or if we cannot tell. */
export async function nothingListensOn(host: string, port: number): Promise<boolean> {
  if (process.platform !== 'linux') return false;
  // `localhost` may mean either family: a service on one of them is a service.
  const addresses = host === 'localhost' ? ['127.0.0.1', '::1'] : isLoopback(host) ? [host] : [];
  if (addresses.length === 0) return false;
  const free = await Promise.all(addresses.map((address) => canListen(address, port)));
  return free.every((answer) => answer !== 'in-use') && free.some((answer) => answer === 'free');
}

/** Listens on `address:port` and closes at once: 'free', 'in-use', or 'unknown' (the
 * address is not there, such as ::1 without IPv6). */
function canListen(address: string, port: number): Promise<'free' | 'in-use' | 'unknown'> {
  return new Promise((resolve) => {
    const server = net.createServer();
    // EACCES (a low port, without the right to it) tells nothing either way.
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EADDRINUSE' ? 'in-use' : 'unknown'));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve('free')));
  });
}

/** 127.0.0.0/8, ::1, or 127.x written as IPv4-mapped IPv6. */
function isLoopback(host: string): boolean {
  const v4 = host.startsWith('::ffff:') ? host.slice(7) : host;
  return (net.isIPv4(v4) && v4.startsWith('127.')) || host === '::1';
}
