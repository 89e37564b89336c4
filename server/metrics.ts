// The /metrics endpoint: the server's totals and what it holds now, in the Prometheus text
// format (prom-client). Everything is read at scrape time from stats() and totals(), so the
// relay does no work for monitoring between scrapes; only the 'refused' and 'paired' events
// are counted as they happen, since no total holds them.
import { once } from 'node:events';
import { createServer } from 'node:http';
import net from 'node:net';
import createDebug from 'debug';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BurrowError, describe } from '../shared/errors.ts';
import { formatAddress, hostPort } from '../shared/protocol.ts';
import { portOf } from './ports.ts';
import type { BurrowServer, RefusedEvent, ServerStats, ServerTotals } from './server.ts';

const debug = createDebug('burrow:metrics');

export interface MetricsOptions {
  host: string;
  port: number;
}

export interface MetricsEndpoint {
  /** Where to scrape: `http://host:port/metrics` (an IPv6 host in brackets). */
  url: string;
  /** Stops serving and stops listening to the server's events. Idempotent. The server's
   * own close() (or destroy()) calls it too. */
  close(): Promise<void>;
}

/** Concurrent connections the endpoint accepts; beyond that, a new one is closed at once.
 * A scraper needs one (two while a scrape overlaps the next); the bound keeps the endpoint
 * from becoming a way to take the relay's file descriptors, which its tunnels need. */
export const METRICS_MAX_CONNECTIONS = 16;

/** How long a connection has to send a complete request (its headers, and its body): a
 * scraper sends a few hundred bytes at once, so a slow one is holding a connection, not
 * scraping. Node checks these every METRICS_TIMEOUT_CHECK_MS. */
const METRICS_REQUEST_TIMEOUT_MS = 10_000;
const METRICS_TIMEOUT_CHECK_MS = 1_000;

/** Pairing waits from a loopback hop (1 ms) to the default visitor deadline (10 s). */
const WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One reading of stats() and totals(), and the names of its numbers. */
type Reading = ServerStats & ServerTotals;
type Count = { [K in keyof Reading]-?: Reading[K] extends number ? K : never }[keyof Reading];

/** Gauges of what the server holds now: name, help, and the number of a reading. */
const GAUGES: [name: string, help: string, count: Count][] = [
  ['burrow_clients', 'Control connections open now.', 'clients'],
  ['burrow_tunnels', 'Tunnels open now (public ports listening, or being opened).', 'tunnels'],
  ['burrow_visitors_pending', 'Visitors waiting now for their client to dial back.', 'pendingVisitors'],
  ['burrow_visitors_active', 'Visitors joined to a data connection now.', 'visitorsActive'],
  [
    'burrow_leased_ports',
    'Public ports kept under lease now for clients that dropped (they count towards the tunnel limits).',
    'leasedPorts',
  ],
];

/** Counters whose running totals live in the server: set to those totals at each scrape. */
const TOTALS: [name: string, help: string, count: Count][] = [
  [
    'burrow_control_connections_total',
    'Control connections accepted (before TLS and authentication).',
    'controlConnections',
  ],
  ['burrow_visitor_connections_total', 'Visitor connections accepted onto a tunnel.', 'visitors'],
  [
    'burrow_visitors_over_limit_total',
    'Visitor connections reset at once because a limit was reached.',
    'visitorsOverLimit',
  ],
  ['burrow_visitors_timed_out_total', 'Visitors closed because no data connection came in time.', 'visitorsTimedOut'],
  ['burrow_visitors_paired_total', 'Visitors joined to their data connection.', 'visitorsPaired'],
  [
    'burrow_visitors_refused_total',
    'Visitors reset at once because their client turned them away (REFUSE).',
    'visitorsRefused',
  ],
];

let processMetrics: Registry | undefined;

/** CPU, memory, event loop and GC belong to the process, not to one server, and prom-client
 * never stops the GC observer and event-loop monitor it starts for them: so they are set up
 * once per process and shared by every endpoint. */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, prefix: 'burrow_' });
  }
  return processMetrics;
}

/** `server`'s metrics, in a registry of its own: prom-client's global one would make two
 * servers in one process fight over the same names. */
function serverMetrics(server: BurrowServer) {
  const registers = [new Registry()];
  const gauges = GAUGES.map(([name, help, count]) => ({ count, gauge: new Gauge({ name, help, registers }) }));
  const totals = TOTALS.map(([name, help, count]) => ({ count, counter: new Counter({ name, help, registers }) }));
  const labelled = (name: string, help: string, label: string): Counter =>
    new Counter({ name, help, labelNames: [label], registers });
  const bytes = labelled(
    'burrow_visitor_bytes_total',
    'Bytes of joined visitors (in: from them, out: to them), open connections included.',
    'direction',
  );
  const errors = labelled('burrow_errors_total', 'ERR lines the server sent, by reason.', 'reason');
  const refused = labelled(
    'burrow_refused_connections_total',
    'Connections turned away for TLS or authentication, by reason.',
    'reason',
  );
  const wait = new Histogram({
    name: 'burrow_pairing_wait_seconds',
    help: 'How long a visitor waited for its client to dial back.',
    buckets: WAIT_BUCKETS,
    registers,
  });

  const registry = Registry.merge([processRegistry(), ...registers]);
  return {
    contentType: registry.contentType,
    // Async, so that whatever fails in a scrape rejects it (a 500), never throws at the relay.
    scrape: async (): Promise<string> => {
      // One reading per scrape, so related numbers (bytes in and out) agree with each other.
      const now: Reading = { ...server.stats(), ...server.totals() };
      for (const { count, gauge } of gauges) gauge.set(now[count]);
      for (const { count, counter } of totals) {
        counter.reset();
        counter.inc(now[count]);
      }
      bytes.reset();
      bytes.inc({ direction: 'in' }, now.bytesFromVisitors);
      bytes.inc({ direction: 'out' }, now.bytesToVisitors);
      errors.reset();
      for (const [reason, count] of Object.entries(now.errors)) errors.inc({ reason }, count);
      return await registry.metrics();
    },
    onRefused: (event: RefusedEvent): void => refused.inc({ reason: event.reason }),
    onPaired: (event: { waitMs: number }): void => wait.observe(Math.max(0, event.waitMs) / 1000),
  };
}

/** Serves `server`'s metrics at http://host:port/metrics (GET or HEAD; anything else is a
 * 404). Rejects with a `listen-failed` BurrowError if it cannot listen. The endpoint
 * closes with the server (close() or destroy()); on a server that has shut down already,
 * it closes at once. */
export async function startMetrics(server: BurrowServer, { host, port }: MetricsOptions): Promise<MetricsEndpoint> {
  const metrics = serverMetrics(server);
  const limits = {
    // Also covers a connection that sends nothing: Node answers 408 and closes it.
    headersTimeout: METRICS_REQUEST_TIMEOUT_MS,
    requestTimeout: METRICS_REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: METRICS_TIMEOUT_CHECK_MS,
  };
  const http = createServer(limits, (request, response) => {
    const text = (status: number, body: string): void =>
      void response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
    const path = request.url?.split('?')[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD'))
      return text(404, 'not found: metrics are at /metrics\n');
    metrics.scrape().then(
      (body) =>
        response
          .writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body) })
          .end(body),
      (error: unknown) => {
        // A failed scrape is the scraper's problem, never the relay's.
        debug('scrape failed: %s', describe(error));
        text(500, 'cannot collect metrics\n');
      },
    );
  });
  http.maxConnections = METRICS_MAX_CONNECTIONS;
  http.on('drop', (peer?: { remoteAddress?: string; remotePort?: number }) =>
    debug(
      'metrics: closed a connection from %s: over %d at once',
      formatAddress(peer?.remoteAddress, peer?.remotePort) ?? 'an unknown address',
      METRICS_MAX_CONNECTIONS,
    ),
  );
  try {
    await once(http.listen({ host, port }), 'listening'); // a port out of range throws at once
  } catch (error) {
    throw new BurrowError('listen-failed', `cannot serve metrics on ${hostPort(host, port)}: ${describe(error)}`, {
      cause: error,
    });
  }
  // Errors after listening (EMFILE on accept) must not crash the relay.
  http.on('error', (error) => debug('metrics listener: %s', describe(error)));
  server.on('refused', metrics.onRefused);
  server.on('paired', metrics.onPaired);
  let closing: Promise<void> | undefined;
  let forget = (): void => {};
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      forget();
      server.off('refused', metrics.onRefused);
      server.off('paired', metrics.onPaired);
      http.close(() => resolve());
      // Scrapers keep their connections alive: without this, close() would wait for them.
      http.closeAllConnections();
    }));
  // The server owns the endpoint: its close() or destroy() closes it too, so a library user
  // who closes the server leaves nothing listening.
  forget = server.onClose(close);
  return { url: `http://${hostPort(host, portOf(http))}/metrics`, close };
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Reads `PORT`, `HOST:PORT` or `[IPv6]:PORT` (port 0-65535, 0 for any free one). A bare
 * port binds 127.0.0.1: metrics go on a public interface only when asked. */
export function parseMetricsAddress(text: string): MetricsOptions | undefined {
  const match = /^(?:(?:\[([^\]]*)\]|([^:[\]]*)):)?([0-9]{1,5})$/.exec(text);
  if (!match) return undefined;
  const [, ipv6, name, digits] = match;
  const port = Number(digits);
  if (port > 65535) return undefined;
  if (ipv6 !== undefined) return net.isIPv6(ipv6) ? { host: ipv6, port } : undefined;
  if (name === undefined) return { host: '127.0.0.1', port };
  // Digits and dots must make an IPv4 address, not a "hostname" such as 300.1.1.1.
  const valid = /^[0-9.]+$/.test(name) ? net.isIPv4(name) : HOSTNAME.test(name);
  return valid ? { host: name, port } : undefined;
}
