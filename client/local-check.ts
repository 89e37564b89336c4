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
import net from 'node:net';

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
