// The HTTP flags of `burrow server` (tunnels by name: --http-port, --https-port, --domain,
// ...) → the library's HttpOptions, and reading the HTTPS certificate and key. All of it is
// off unless an HTTP or HTTPS port is given: without one, `burrow server` is what it was.
// The fallbacks are the library's, HTTP_DEFAULTS (cli/defaults.ts). Pure but for the files.
import path from 'node:path';
import tls from 'node:tls';
import {
  certificateIdentity,
  describeError,
  DNS_LABEL,
  SERVER_DEFAULTS,
  type HttpOptions,
  type ServerOptions,
} from '../index.ts';
import { flagOn, raw, stateDir, type Env, type RawArgs, type Source } from './args.ts';
import { HTTP_DEFAULTS } from './defaults.ts';
import { readSource } from './security.ts';
import { UsageError } from './usage-error.ts';
import { count, port, seconds } from './values.ts';

/** The flags that shape HTTP tunnels and mean nothing without an HTTP or HTTPS port. */
export const HTTP_SETTING_FLAGS = [
  'domain',
  'reserved-names',
  'max-header-size',
  'header-timeout',
  'keepalive-timeout',
  'max-requests-per-tunnel',
  'websocket',
  'websocket-ping',
] as const;

/** The flags of certificates from an ACME CA (`--https-port` without `--https-cert`). */
const ACME_FLAGS = ['acme-directory', 'acme-email', 'acme-cache', 'acme-ca'] as const;

/** What the HTTP flags ask for: the options, and the HTTPS files still to read. */
export interface HttpServerPlan {
  /** With the domain always set: the startup line names it. */
  options: HttpOptions & { domain: string } & Pick<ServerOptions, 'webSocket' | 'webSocketPingMs'>;
  https?: { cert: Source; key: Source };
  /** ACME's CA certificate to read, if given. */
  acmeCa?: Source;
}

/** The HTTP flags and their variables; undefined when neither port is given (then none of
 * the other HTTP settings may be given either: they would silently do nothing). */
export function resolveHttpServer(args: RawArgs, env: Env): HttpServerPlan | undefined {
  const httpPort = raw(args, env, 'http-port');
  const httpsPort = raw(args, env, 'https-port');
  const cert = raw(args, env, 'https-cert');
  const key = raw(args, env, 'https-key');
  const acmeFlags = ACME_FLAGS.map((flag) => raw(args, env, flag));
  if (httpPort === undefined && httpsPort === undefined) {
    const stray = [cert, key, ...acmeFlags, ...HTTP_SETTING_FLAGS.map((flag) => raw(args, env, flag))].find(Boolean);
    if (stray)
      throw new UsageError(`${stray.source} is for HTTP tunnels, which need --http-port N or --https-port N too`);
    return undefined;
  }
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('--https-cert and --https-key go together: give both');
  const acme = httpsPort !== undefined && cert === undefined;
  const strayAcme = acmeFlags.find(Boolean);
  if (strayAcme && !acme)
    throw new UsageError(
      `${strayAcme.source} is for certificates from an ACME CA: --https-port N without --https-cert`,
    );
  if (acme && httpPort === undefined)
    throw new UsageError(
      `${httpsPort.source} without --https-cert gets its certificates from an ACME CA, which checks a challenge on the HTTP port: give --http-port too (80 for a real CA), or --https-cert FILE and --https-key FILE`,
    );
  if (httpsPort === undefined && cert !== undefined)
    throw new UsageError(`${cert.source} is the certificate of the HTTPS port: give --https-port N too`);
  const ports = {
    ...(httpPort && { httpPort: port(httpPort.text, httpPort.source, true) }),
    ...(httpsPort && { httpsPort: port(httpsPort.text, httpsPort.source, true) }),
  };
  if (ports.httpPort !== undefined && ports.httpPort !== 0 && ports.httpPort === ports.httpsPort)
    throw new UsageError(`--http-port and --https-port are both ${ports.httpPort}: give two different ports`);
  return {
    options: {
      ...ports,
      domain: domain(raw(args, env, 'domain')),
      reservedNames: reservedNames(raw(args, env, 'reserved-names')),
      maxHeaderBytes: count(args, env, 'max-header-size', HTTP_DEFAULTS.maxHeaderBytes),
      headerTimeoutMs: seconds(args, env, 'header-timeout', HTTP_DEFAULTS.headerTimeoutMs),
      keepAliveTimeoutMs: seconds(args, env, 'keepalive-timeout', HTTP_DEFAULTS.keepAliveTimeoutMs),
      maxRequestsPerTunnel: count(args, env, 'max-requests-per-tunnel', HTTP_DEFAULTS.maxRequestsPerTunnel),
      ...(acme && { acme: acmeOptions(args, env) }),
      webSocket: flagOn(args, env, 'websocket', SERVER_DEFAULTS.webSocket),
      webSocketPingMs: seconds(args, env, 'websocket-ping', SERVER_DEFAULTS.webSocketPingMs),
    },
    ...(cert && key && { https: { cert, key } }),
    ...(acme && acmeFlags[3] && { acmeCa: acmeFlags[3] }),
  };
}

/** `--acme-directory`, `--acme-email`, `--acme-cache`: where certificates come from and
 * are kept (the account key and the certificates' keys with them). */
function acmeOptions(args: RawArgs, env: Env): NonNullable<HttpOptions['acme']> {
  const directory = raw(args, env, 'acme-directory');
  if (directory && !/^https?:\/\/\S+$/.test(directory.text))
    throw new UsageError(`${directory.source}: ${JSON.stringify(directory.text)} is not an ACME directory URL`);
  const email = raw(args, env, 'acme-email');
  const cache = raw(args, env, 'acme-cache');
  const state = stateDir(env); // $XDG_STATE_HOME/burrow, else ~/.local/state/burrow
  const cacheDir = cache !== undefined ? path.resolve(cache.text) : state && path.join(state, 'acme');
  if (cacheDir === undefined)
    throw new UsageError(
      'no place for ACME certificates: give --acme-cache DIR (neither XDG_STATE_HOME nor HOME is set)',
    );
  return {
    cacheDir,
    ...(directory && { directoryUrl: directory.text }),
    ...(email && { email: email.text }),
  };
}

/** ACME's CA certificate for the directory (a test CA such as pebble's), read. */
export async function loadAcmeCa(plan: HttpServerPlan | undefined): Promise<HttpOptions['acme']> {
  const acme = plan?.options.acme;
  if (!acme || !plan?.acmeCa) return acme;
  return { ...acme, directoryCa: await readSource(plan.acmeCa) };
}

/** `--domain relay.example.com`: tunnels are `NAME.relay.example.com`. Lower case, without
 * a trailing dot; `*.relay.example.com` (as a certificate names it) means the same. */
function domain(given: Source | undefined): string {
  if (given === undefined) return HTTP_DEFAULTS.domain;
  const name = given.text.trim().toLowerCase().replace(/^\*\./, '').replace(/\.$/, '');
  const labels = name.split('.');
  if (name.length > 200 || !labels.every((label) => DNS_LABEL.test(label)))
    throw new UsageError(
      `${given.source}: ${JSON.stringify(given.text)} is not a domain like relay.example.com (tunnels are NAME.<domain>)`,
    );
  return name;
}

/** `--reserved-names www,api`: names no client may have, instead of the defaults; an empty
 * value reserves none. */
function reservedNames(given: Source | undefined): readonly string[] {
  if (given === undefined) return HTTP_DEFAULTS.reservedNames;
  const names = given.text
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  const bad = names.find((name) => !DNS_LABEL.test(name));
  if (bad !== undefined)
    throw new UsageError(
      `${given.source}: ${JSON.stringify(bad)} is not a tunnel name (a DNS label: letters, digits and -, at most 63)`,
    );
  return [...new Set(names)];
}

/** The HTTPS certificate and key, read, and checked to be a PEM certificate and its key. */
export async function loadHttps(plan: HttpServerPlan['https']): Promise<Pick<HttpOptions, 'httpsCert' | 'httpsKey'>> {
  if (plan === undefined) return {};
  // One after the other, so a missing file is always reported in the same order.
  const cert = await readSource(plan.cert);
  const key = await readSource(plan.key);
  try {
    certificateIdentity(cert);
  } catch (error) {
    throw new UsageError(`${plan.cert.source}: ${plan.cert.text} is not a PEM certificate: ${describeError(error)}`);
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (error) {
    throw new UsageError(
      `${plan.key.source}: ${plan.key.text} is not the PEM private key of ${plan.cert.text}: ${describeError(error)}`,
    );
  }
  return { httpsCert: cert, httpsKey: key };
}
