// Which of `burrow client`'s ports are HTTP tunnels, and how (--http, `http:3000`, --name,
// --auth, --host-header). A bare port is a TCP tunnel unless --http is given; a port
// written `http:3000` or `tcp:3000` is that kind whatever --http says, so that one client
// may mix both. Pure, so it is tested without processes.
import { DNS_LABEL, type HttpTunnelOptions } from '../index.ts';
import { flagOn, raw, type Env, type RawArgs, type Source } from './args.ts';
import { UsageError } from './usage-error.ts';
import { port } from './values.ts';

/** A local port as given: `3000`, `http:3000` or `tcp:3000`. */
export interface LocalPort {
  localPort: number;
  http: boolean;
}

/** How to make a port an HTTP tunnel, for messages. */
const HOW = 'add --http, or write the port as http:3000';

/** The local ports, each with its kind: HTTP if written `http:PORT`, or bare with --http
 * (BURROW_HTTP) on; TCP if written `tcp:PORT`, or bare without --http. */
export function localPorts(given: readonly string[], args: RawArgs, env: Env): LocalPort[] {
  const allHttp = flagOn(args, env, 'http');
  return given.map((text) => {
    const prefixed = /^([A-Za-z]+):(.*)$/.exec(text.trim());
    if (prefixed === null) return { localPort: port(text, 'local port'), http: allHttp };
    const [, scheme = '', rest = ''] = prefixed;
    const kind = scheme.toLowerCase();
    if (kind === 'https')
      throw new UsageError(
        `local port: ${JSON.stringify(text)}: write http:${rest} (the relay decides whether visitors come over HTTPS; the local service speaks plain HTTP)`,
      );
    if (kind !== 'http' && kind !== 'tcp')
      throw new UsageError(
        `local port: ${JSON.stringify(text)} is not PORT, http:PORT or tcp:PORT (the local host is --local-host)`,
      );
    return { localPort: port(rest, 'local port'), http: kind === 'http' };
  });
}

/** What every HTTP tunnel of the client asks for: `true` (any name, the defaults) unless
 * --name, --auth or --host-header say more. `httpTunnels`: how many ports are HTTP ones;
 * these flags without one, or --name with several, are usage errors. */
export function httpTunnelOptions(args: RawArgs, env: Env, httpTunnels: number): HttpTunnelOptions | true {
  const name = raw(args, env, 'name');
  const auth = raw(args, env, 'auth');
  const hostHeader = raw(args, env, 'host-header');
  const stray = [name, auth, hostHeader].find(Boolean);
  if (stray !== undefined && httpTunnels === 0)
    throw new UsageError(`${stray.source} is for HTTP tunnels, and this client has none: ${HOW}`);
  if (name !== undefined && httpTunnels > 1)
    throw new UsageError(
      `${name.source} names one HTTP tunnel, and this client has ${httpTunnels}: give one HTTP port with a name (or run a client per name; the others get random names)`,
    );
  const options: HttpTunnelOptions = {
    ...(name && { name: tunnelName(name) }),
    ...(auth && { auth: credentials(auth) }),
    ...(hostHeader && { hostHeader: hostHeaderMode(hostHeader) }),
  };
  return Object.keys(options).length === 0 ? true : options;
}

/** `--name demo`: the tunnel's name, a DNS label (`demo.relay.example.com`), in lower case. */
function tunnelName({ text, source }: Source): string {
  const name = text.trim().toLowerCase();
  if (!DNS_LABEL.test(name))
    throw new UsageError(
      `${source}: ${JSON.stringify(text)} is not a tunnel name: letters, digits and - (not first or last), at most 63 (it becomes NAME.<the relay's domain>)`,
    );
  return name;
}

/** `--auth user:password` (HTTP basic auth). The error never quotes it: it holds a password. */
function credentials({ text, source }: Source): string {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1)
    throw new UsageError(`${source}: give user:password (a user name, a colon, a password)`);
  return text;
}

/** `--host-header keep|rewrite|VALUE`: the Host the local service sees. A VALUE must be a
 * host, with a port if need be: it goes into every request as a header. */
function hostHeaderMode({ text, source }: Source): string {
  const value = text.trim();
  if (value === 'keep' || value === 'rewrite') return value;
  if (/^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/.test(value)) return value;
  throw new UsageError(
    `${source}: ${JSON.stringify(text)} is not keep, rewrite or a host (like myapp.test or localhost:3000) for the Host header`,
  );
}
