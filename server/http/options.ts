// What the HTTP layer can be told, and its defaults. All of it is off unless the relay
// has an HTTP or HTTPS port.
import type { AcmeOptions, CertificateEvent } from './acme.ts';

export type { AcmeOptions, CertificateEvent };

export interface HttpOptions {
  /** Serve HTTP tunnels by name on this port (0: any free port). Default: none. */
  httpPort?: number;
  /** Serve HTTPS tunnels by name on this port, with `httpsCert` and `httpsKey`. */
  httpsPort?: number;
  /** PEM certificate (chain) for `*.<domain>`. */
  httpsCert?: string | Buffer;
  /** Its PEM private key. */
  httpsKey?: string | Buffer;
  /** Instead of `httpsCert`: certificates from an ACME CA, one per name, issued on demand
   * (needs `httpPort`: the CA checks the HTTP-01 challenge there). */
  acme?: AcmeOptions;
  /** Tunnels are reached at `NAME.<domain>`. Default `localhost` (browsers and curl
   * resolve `*.localhost` to loopback). */
  domain?: string;
  /** Names no client may have. */
  reservedNames?: readonly string[];
  /** Largest request head a visitor may send; beyond it: 431. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** How long a visitor has to send a complete request head; then 408. Default 10 s. */
  headerTimeoutMs?: number;
  /** How long an idle kept-alive visitor connection stays open. Default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Requests one tunnel forwards at once; beyond: 503. Default 128. */
  maxRequestsPerTunnel?: number;
  /** How long an idle data connection waits for the tunnel's next request. Default 30 s. */
  idleDataMs?: number;
}

export const DEFAULT_HTTP_LIMITS = {
  domain: 'localhost',
  reservedNames: ['www', 'api', 'admin', 'mail', 'relay', 'burrow', 'status'] as readonly string[],
  maxHeaderBytes: 16 * 1024,
  headerTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerTunnel: 128,
  idleDataMs: 30_000,
};

/** A request the relay answered itself (404, 502, ...): what an operator sees. */
export interface HttpPageEvent {
  status: number;
  host: string;
  method: string;
  path: string;
  visitor: string;
  text: string;
}
