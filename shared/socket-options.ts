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

/** SOCKET_OPTIONS and where to connect, for net.connect(), as one literal. An object
 * spread (`{ ...SOCKET_OPTIONS, host, port }`) made in optimized code has a hidden class
 * of its own every time (Node 20), and each of the options Node reads from it then misses
 * V8's caches: this runs twice for every visitor. */
export const connectOptions = (host: string, port: number) =>
  ({
    allowHalfOpen: SOCKET_OPTIONS.allowHalfOpen,
    noDelay: SOCKET_OPTIONS.noDelay,
    keepAlive: SOCKET_OPTIONS.keepAlive,
    keepAliveInitialDelay: SOCKET_OPTIONS.keepAliveInitialDelay,
    host,
    port,
  }) satisfies net.TcpNetConnectOpts;
