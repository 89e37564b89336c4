// The options of every TCP socket burrow makes or accepts: control, data, public.
import type net from 'node:net';

/** TCP keep-alive on every socket: keeps idle NAT mappings open and finds dead peers of
 * joined connections, which carry no heartbeat of their own. */
export const KEEPALIVE_DELAY_MS = 30_000;

/** Half-open: a FIN in one direction is carried through, not taken as a close. No Nagle:
 * control lines and small replies go out at once. */
export const SOCKET_OPTIONS = {
  allowHalfOpen: true,
  noDelay: true,
  keepAlive: true,
  keepAliveInitialDelay: KEEPALIVE_DELAY_MS,
} as const satisfies net.ServerOpts & Partial<net.TcpSocketConnectOpts>;
