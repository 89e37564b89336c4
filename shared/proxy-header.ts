// The HAProxy PROXY protocol header (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt):
// what the client writes to a local service before any visitor byte, so that the service
// (nginx `proxy_protocol`, haproxy `accept-proxy`, ...) sees the visitor's real address
// instead of the client's loopback one. Pure functions: addresses in, bytes out.
import net from 'node:net';

export type ProxyProtocolVersion = 'v1' | 'v2';
export const PROXY_PROTOCOL_VERSIONS: readonly ProxyProtocolVersion[] = ['v1', 'v2'];

/** One end of a TCP connection: an IPv4 or IPv6 address (no brackets) and a port. */
export interface Endpoint {
  address: string;
  port: number;
}

/** The v2 signature: chosen by the spec so that it can never start a v1 header or an HTTP request. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_PROXY = 0x21; // version 2, command PROXY (relayed for someone else)
const V2_TCP4 = 0x11; // AF_INET, STREAM
const V2_TCP6 = 0x21; // AF_INET6, STREAM
const V2_UNSPEC = 0x00; // unknown addresses: the receiver uses the real connection's

/** Parses `203.0.113.9:51234` or `[2001:db8::1]:51234` (the form CONNECTION carries);
 * undefined for anything else. A `%zone` is dropped: the header has no room for it. */
export function parseEndpoint(text: string | undefined): Endpoint | undefined {
  const match = text === undefined ? null : /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (match === null) return undefined;
  const address = (match[1] ?? match[2] ?? '').replace(/%.*$/, '');
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  if (match[1] !== undefined ? !net.isIPv6(address) : !net.isIPv4(address)) return undefined;
  return { address, port };
}

/** The header for a visitor `source` that connected to `destination`. Either may be
 * unknown (an old server, an unreadable address): the header then says UNKNOWN (v1) or
 * UNSPEC (v2), and the service falls back to the real connection's addresses. */
export function proxyHeader(
  version: ProxyProtocolVersion,
  source: Endpoint | undefined,
  destination: Endpoint | undefined,
): Buffer {
  const pair = source && destination ? sameFamily(source, destination) : undefined;
  return version === 'v1' ? v1Header(pair) : v2Header(pair);
}

/** Both ends in one family, as the header requires: if they differ (only possible with an
 * IPv4 visitor and an IPv6 destination or the reverse), IPv4 is written as IPv4-mapped IPv6. */
function sameFamily(source: Endpoint, destination: Endpoint): [Endpoint, Endpoint] {
  if (net.isIPv4(source.address) === net.isIPv4(destination.address)) return [source, destination];
  const mapped = (end: Endpoint): Endpoint =>
    net.isIPv4(end.address) ? { ...end, address: `::ffff:${end.address}` } : end;
  return [mapped(source), mapped(destination)];
}

/** `PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n` (at most 107 bytes). */
function v1Header(pair: [Endpoint, Endpoint] | undefined): Buffer {
  if (pair === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const [src, dst] = pair;
  const family = net.isIPv4(src.address) ? 'TCP4' : 'TCP6';
  return Buffer.from(`PROXY ${family} ${src.address} ${dst.address} ${src.port} ${dst.port}\r\n`, 'latin1');
}

/** Signature, version+command, family, length, then addresses and ports in network order. */
function v2Header(pair: [Endpoint, Endpoint] | undefined): Buffer {
  if (pair === undefined) return Buffer.concat([V2_SIGNATURE, Buffer.from([V2_PROXY, V2_UNSPEC, 0, 0])]);
  const [src, dst] = pair;
  const ipv4 = net.isIPv4(src.address);
  const addresses = Buffer.concat([
    addressBytes(src.address),
    addressBytes(dst.address),
    portBytes(src.port),
    portBytes(dst.port),
  ]);
  const head = Buffer.from([V2_PROXY, ipv4 ? V2_TCP4 : V2_TCP6, 0, 0]);
  head.writeUInt16BE(addresses.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, addresses]);
}

function portBytes(port: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(port);
  return bytes;
}

/** 4 bytes for IPv4, 16 for IPv6 (`::` expanded, a dotted IPv4 tail allowed). */
export function addressBytes(address: string): Buffer {
  if (net.isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (!net.isIPv6(address)) throw new TypeError(`not an IP address: ${address}`);
  let text = address;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail?.[1] !== undefined) {
    // A dotted IPv4 tail is the last two 16-bit groups.
    const [a = 0, b = 0, c = 0, d = 0] = tail[1].split('.').map(Number);
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (part: string | undefined): string[] => (part === undefined || part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = groups(rest);
  const zeros = rest === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  const bytes = Buffer.alloc(16);
  [...left, ...zeros, ...right].forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

/** For traces: a v1 header as its text, a v2 header as its fields in hex (signature,
 * version+command, family, length, addresses and ports). */
export function describeProxyHeader(header: Buffer): string {
  if (!header.subarray(0, V2_SIGNATURE.length).equals(V2_SIGNATURE)) return header.toString('latin1').trimEnd();
  const hex = (from: number, to?: number): string => header.subarray(from, to).toString('hex');
  const fields = [hex(0, 12), hex(12, 13), hex(13, 14), hex(14, 16)];
  const rest = header.subarray(16);
  const addressLength = (rest.length - 4) / 2;
  if (rest.length > 0)
    fields.push(
      hex(16, 16 + addressLength),
      hex(16 + addressLength, 16 + 2 * addressLength),
      hex(header.length - 4, header.length - 2),
      hex(header.length - 2),
    );
  return `v2, ${header.length} bytes: ${fields.join(' ')}`;
}
