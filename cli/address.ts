// A burrow server's address as people type it (`relay:7835`, `tcp://relay`, `[::1]:7835`):
// pure, so it is tested without processes.
import net from 'node:net';
import { UsageError } from './usage-error.ts';

/** The accepted forms of a server address, for messages and --help. */
export const SERVER_FORMS =
  'HOST, HOST:PORT, [IPv6]:PORT, tcp://HOST[:PORT], or wss://HOST[:PORT] (or ws://) over WebSocket';

export interface ServerAddress {
  host: string;
  /** The control port, when the address names one. */
  port?: number;
  /** A ws:// or wss:// address: the relay's HTTP(S) port as a URL, reached over WebSocket. */
  webSocket?: string;
}

/** Host names as DNS has them (letters, digits, `-`, `.`, and `_` as some networks use). */
const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** A server address the way people type it: `relay`, `relay:7835`, `[2001:db8::1]:7835`,
 * `::1`, `[::1]`, `tcp://relay:7835`, `tcp://[::1]:7835`. A port in it is the control port.
 * Anything else (another scheme, a path, no host, a bad port) is a usage error that shows
 * the forms: a typo must not become a DNS lookup of "[relay:7835]". */
export function parseServerAddress(text: string, source = '--server'): ServerAddress {
  const fail = (why: string): never => {
    throw new UsageError(
      `${source}: "${text}" is not a server address (${why}); give ${SERVER_FORMS}, where PORT is the control port (of ws:// and wss://: the HTTP(S) port)`,
    );
  };
  let rest = text.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  const name = scheme?.[1]?.toLowerCase() ?? 'tcp';
  if (scheme) {
    if (!['tcp', 'ws', 'wss'].includes(name))
      fail(`${scheme[1] ?? ''}:// is not burrow's protocol; give tcp://, ws:// or wss://`);
    rest = rest.slice(scheme[0].length);
    if (rest.endsWith('/')) rest = rest.slice(0, -1); // a URL copied with its slash: no path yet
    if (!rest.startsWith('[') && net.isIPv6(rest))
      fail(`in a URL an IPv6 address goes in brackets, like ${name}://[::1]:7835`);
  }
  if (rest.includes('/')) fail('a path has no meaning here');
  if (rest === '') fail('no host');
  if (net.isIPv6(rest)) return { host: rest }; // bare (never a URL): every colon is the address's
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^[\]]*)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
    if (host === '') fail('no host');
    if (!net.isIPv6(host)) fail('only an IPv6 address goes in brackets');
  } else {
    if (/[[\]]/.test(rest)) fail('unbalanced brackets');
    const colons = rest.split(':').length - 1;
    if (colons > 1) fail('an IPv6 address with a port goes in brackets, like [::1]:7835');
    const colon = rest.indexOf(':');
    host = colon === -1 ? rest : rest.slice(0, colon);
    portText = colon === -1 ? undefined : rest.slice(colon + 1);
    if (host === '') fail('no host');
    // Digits and dots must make an IPv4 address, not a "host name" such as 300.1.1.1.
    const valid = /^[0-9.]+$/.test(host) ? net.isIPv4(host) : HOST_NAME.test(host);
    if (!valid) fail(`${host} is not a host name or address`);
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (portText === '') fail('no port after the colon');
    if (!/^[0-9]+$/.test(portText)) fail(`${portText} is not a port number`);
    port = Number(portText);
    if (!(port >= 1 && port <= 65535)) fail(`port ${portText} is not in 1-65535`);
  }
  if (name === 'tcp') return port === undefined ? { host } : { host, port };
  // Over WebSocket the port is the relay's HTTP(S) port (by default 80 or 443), not its
  // control port.
  const inUrl = net.isIPv6(host) ? `[${host}]` : host;
  return { host, webSocket: `${name}://${inUrl}${port === undefined ? '' : `:${port}`}` };
}
