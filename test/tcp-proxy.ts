// A TCP proxy (by default on 127.0.0.1:0) in front of `targetPort`, whose connections a test can cut:
// with a reset (RST both ways, as a crashed NAT or a `SO_LINGER 0` close would) or by
// destroying them (FIN).
import { once } from 'node:events';
import net from 'node:net';
import { abortSocket } from '../shared/pipe.ts';
import { HOST } from './helpers.ts';

export interface TcpProxy {
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Connections open now. */
  open(): number;
  /** Resets both halves of every connection; returns how many sockets it cut. */
  resetAll(): number;
  /** Destroys both halves of every connection (a FIN, or a reset if data was unread). */
  breakAll(): number;
  close(): Promise<void>;
}

/** `listen`: where the proxy listens (default: an ephemeral port on 127.0.0.1);
 * `targetHost`: where it connects to (default 127.0.0.1). */
export async function startTcpProxy(
  targetPort: number,
  { listen = { host: HOST, port: 0 }, targetHost = HOST } = {},
): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const own = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  };
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (inbound) => {
    accepted++;
    const outbound = net.connect({ host: targetHost, port: targetPort, allowHalfOpen: true, noDelay: true });
    own(inbound);
    own(outbound);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  });
  server.listen(listen.port, listen.host);
  await once(server, 'listening'); // rejects if the port is taken
  const cut = (how: (socket: net.Socket) => void): number => {
    const count = sockets.size;
    for (const socket of [...sockets]) how(socket);
    return count;
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    open: () => sockets.size / 2,
    // abortSocket() resets, except where libuv cannot: a socket not connected yet, or one
    // whose FIN is sent or being sent (a reset during its shutdown can leave the handle
    // open, and the process then never exits).
    resetAll: () => cut(abortSocket),
    breakAll: () => cut((socket) => socket.destroy()),
    close: async () => {
      cut((socket) => socket.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
