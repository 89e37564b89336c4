// The server's /metrics endpoint (server/metrics.ts), scraped over real HTTP on loopback:
// the Prometheus text format with a type and help for every metric; counters that move by
// exactly what happened (visitors, pairings, bytes each way, ERR lines and refusals by
// reason, timeouts, visitors over a limit or refused by their client); gauges for what the
// server holds now (leased ports included); 404 elsewhere; binding only where told; two
// servers in one process kept apart; close() freeing the port even with a kept-alive
// scraper; the server's own close() and destroy() closing the endpoint; a cap on
// concurrent connections; and parseMetricsAddress.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { startClient, startServer, type BurrowServer } from '../index.ts';
import { METRICS_MAX_CONNECTIONS, parseMetricsAddress, startMetrics, type MetricsEndpoint } from '../server/metrics.ts';
import {
  assertSameBytes,
  HOST,
  listenLocal,
  pseudoRandomBytes,
  readAll,
  replyOnEnd,
  request,
  untilEqual,
  within,
} from './helpers.ts';
import {
  dialBack,
  exposeAndVisit,
  holdPort,
  openControl,
  openRaw,
  probe,
  rejectsWith,
  withServer,
  type Raw,
} from './raw.ts';

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';
const SECRET = 'a long random test secret: 0c5e2a91d7b3f468';

/** Every burrow metric and its type: the contract with dashboards. */
const BURROW_METRICS: Record<string, string> = {
  burrow_clients: 'gauge',
  burrow_tunnels: 'gauge',
  burrow_visitors_pending: 'gauge',
  burrow_visitors_active: 'gauge',
  burrow_leased_ports: 'gauge',
  burrow_control_connections_total: 'counter',
  burrow_visitor_connections_total: 'counter',
  burrow_visitors_over_limit_total: 'counter',
  burrow_visitors_timed_out_total: 'counter',
  burrow_visitors_paired_total: 'counter',
  burrow_visitors_refused_total: 'counter',
  burrow_visitor_bytes_total: 'counter',
  burrow_errors_total: 'counter',
  burrow_refused_connections_total: 'counter',
  burrow_pairing_wait_seconds: 'histogram',
};

// ---------------------------------------------------------------------------------------
// Local helpers: an HTTP GET and a parser for the lines of the text format we need.

interface Response {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** One HTTP request to `url` (a fresh connection unless `agent` keeps one alive). */
function get(url: string, options: { method?: string; agent?: http.Agent } = {}): Promise<Response> {
  const done = new Promise<Response>((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: res.headers['content-type'],
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  return within(done, 10_000, `${options.method ?? 'GET'} ${url}`);
}

interface Scrape {
  /** Sample values by `name` or `name{label="value",...}`, exactly as printed. */
  samples: Map<string, number>;
  types: Map<string, string>;
  help: Map<string, string>;
}

/** Parses `# HELP name text`, `# TYPE name type` and `name{labels} value` lines. */
function parseText(text: string): Scrape {
  const scrape: Scrape = { samples: new Map(), types: new Map(), help: new Map() };
  for (const line of text.split('\n')) {
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      (comment[1] === 'HELP' ? scrape.help : scrape.types).set(comment[2] ?? '', comment[3] ?? '');
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(sample, `not a sample line: ${JSON.stringify(line)}`);
    scrape.samples.set(sample[1] ?? '', Number(sample[2]));
  }
  return scrape;
}

/** Scrapes `endpoint` and asserts a 200 in the Prometheus text format. */
async function scrape(endpoint: MetricsEndpoint): Promise<Scrape> {
  const response = await get(endpoint.url);
  assert.equal(response.status, 200, response.body);
  assert.equal(response.contentType, PROMETHEUS_TEXT);
  return parseText(response.body);
}

/** A sample's value; a labelled series not yet seen counts as 0, an unlabelled one must exist. */
function value(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const pairs = Object.entries(labels).map(([key, v]) => `${key}="${v}"`);
  const key = pairs.length === 0 ? name : `${name}{${pairs.join(',')}}`;
  const found = scrape.samples.get(key);
  if (found === undefined && pairs.length === 0) assert.fail(`no sample ${key}`);
  return found ?? 0;
}

/** Scrapes until `read` gives `expected` (the server notices closes a few turns after the
 * peer has seen them), at most 200 scrapes and 10 s; then asserts it. */
async function untilScraped(
  endpoint: MetricsEndpoint,
  read: (scrape: Scrape) => unknown,
  expected: unknown,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last = read(await scrape(endpoint));
  for (let i = 0; i < 200 && !isDeepStrictEqual(last, expected) && Date.now() < deadline; i++)
    last = read(await scrape(endpoint));
  assert.deepEqual(last, expected, what);
}

/** A started server with a metrics endpoint on 127.0.0.1:0, closed after `body`. */
async function withMetrics(
  options: Parameters<typeof withServer>[0],
  body: (server: BurrowServer, endpoint: MetricsEndpoint, sockets: net.Socket[]) => Promise<void>,
): Promise<void> {
  await withServer(options, async (server, sockets) => {
    const endpoint = await startMetrics(server, { host: HOST, port: 0 });
    try {
      await body(server, endpoint, sockets);
    } finally {
      await within(endpoint.close(), 10_000, 'the metrics endpoint to close');
    }
  });
}

const portOf = (endpoint: MetricsEndpoint): number => Number(new URL(endpoint.url).port);

// ---------------------------------------------------------------------------------------
// 1. The format

test('GET /metrics: Prometheus text with a type and help for every burrow metric, all at zero on a fresh server, plus process metrics; HEAD gives the headers only', async () => {
  await withMetrics({}, async (_server, endpoint) => {
    assert.equal(endpoint.url, `http://127.0.0.1:${portOf(endpoint)}/metrics`);
    const first = await scrape(endpoint);
    for (const [name, type] of Object.entries(BURROW_METRICS)) {
      assert.equal(first.types.get(name), type, `the type of ${name}`);
      assert.ok((first.help.get(name) ?? '').length > 10, `${name} has a help text`);
    }
    const zeros = [
      ...Object.keys(BURROW_METRICS).filter((name) => !/bytes|errors|refused_connections|seconds/.test(name)),
      'burrow_visitor_bytes_total{direction="in"}',
      'burrow_visitor_bytes_total{direction="out"}',
      'burrow_pairing_wait_seconds_count',
      'burrow_pairing_wait_seconds_sum',
    ];
    assert.equal(zeros.length, 15);
    for (const key of zeros) assert.equal(first.samples.get(key), 0, `${key} on a fresh server`);
    assert.equal(first.types.get('burrow_process_cpu_seconds_total'), 'counter', 'process metrics, prefixed burrow_');
    assert.ok(value(first, 'burrow_process_resident_memory_bytes') > 0);

    const head = await get(endpoint.url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.contentType, PROMETHEUS_TEXT);
    assert.equal(head.body, '');
  });
});

test('any other path or method is a 404, and the endpoint keeps serving after it', async () => {
  await withMetrics({}, async (_server, endpoint) => {
    const base = `http://127.0.0.1:${portOf(endpoint)}`;
    for (const path of ['/', '/metric', '/metrics/', '/metricsx', '/favicon.ico', '/METRICS']) {
      assert.equal((await get(`${base}${path}`)).status, 404, `GET ${path}`);
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      assert.equal((await get(endpoint.url, { method })).status, 404, `${method} /metrics`);
    }
    // A query string is still /metrics (some scrapers add one).
    assert.equal((await get(`${endpoint.url}?format=text`)).status, 200);
    await scrape(endpoint);
  });
});

// ---------------------------------------------------------------------------------------
// 2. Counters and gauges against what really happened

test('a client and 3 visitors: clients/tunnels 1 while connected and 0 after; visitors, pairings, pairing-wait count and bytes in/out move by exactly what crossed', async () => {
  // The service says everything twice, so bytes in and out differ and a swap shows.
  const local = await listenLocal(replyOnEnd((data) => Buffer.concat([data, data])));
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST });
  const endpoint = await startMetrics(server, { host: HOST, port: 0 });
  try {
    const client = await startClient({
      tunnels: [{ localPort: local.port }],
      server: HOST,
      localHost: HOST,
      controlPort: server.controlPort,
      dataPort: server.dataPort,
    });
    try {
      const publicPort = client.tunnels[0]?.publicPort ?? 0;
      const before = await scrape(endpoint);
      assert.equal(value(before, 'burrow_clients'), 1);
      assert.equal(value(before, 'burrow_tunnels'), 1);
      assert.equal(value(before, 'burrow_control_connections_total'), 1);

      const sizes = [1, 20_000, 300_000];
      for (const [i, size] of sizes.entries()) {
        const payload = pseudoRandomBytes(size, i + 1);
        assertSameBytes(await request(publicPort, payload), Buffer.concat([payload, payload]), `visitor ${i}`);
      }
      const sent = sizes.reduce((a, b) => a + b, 0);
      const after = await scrape(endpoint);
      const moved = (name: string, labels?: Record<string, string>): number =>
        value(after, name, labels) - value(before, name, labels);
      assert.equal(moved('burrow_visitor_connections_total'), 3);
      assert.equal(moved('burrow_visitors_paired_total'), 3);
      assert.equal(moved('burrow_pairing_wait_seconds_count'), 3);
      assert.equal(moved('burrow_pairing_wait_seconds_bucket', { le: '+Inf' }), 3);
      assert.ok(value(after, 'burrow_pairing_wait_seconds_sum') >= 0);
      assert.equal(moved('burrow_visitor_bytes_total', { direction: 'in' }), sent, 'bytes from the visitors');
      assert.equal(moved('burrow_visitor_bytes_total', { direction: 'out' }), 2 * sent, 'bytes to the visitors');
      assert.equal(moved('burrow_visitors_timed_out_total'), 0);
      assert.equal(moved('burrow_visitors_over_limit_total'), 0);
      assert.equal(moved('burrow_control_connections_total'), 0);
      assert.equal(
        [...after.samples.keys()].filter((k) => k.startsWith('burrow_errors_total')).length,
        0,
        'no ERR line was sent',
      );
      await untilScraped(
        endpoint,
        (s) => [value(s, 'burrow_visitors_active'), value(s, 'burrow_visitors_pending')],
        [0, 0],
        'no visitor left',
      );
      // Closed connections keep their bytes.
      const settled = await scrape(endpoint);
      assert.equal(value(settled, 'burrow_visitor_bytes_total', { direction: 'in' }), sent);
      assert.equal(value(settled, 'burrow_visitor_bytes_total', { direction: 'out' }), 2 * sent);
    } finally {
      await client.close();
    }
    await untilScraped(
      endpoint,
      (s) => [value(s, 'burrow_clients'), value(s, 'burrow_tunnels')],
      [0, 0],
      'clients and tunnels after the client closed',
    );
  } finally {
    await endpoint.close();
    await server.close();
    await local.close();
  }
});

test('visitors_pending counts a waiting visitor, visitors_active a joined one (with its bytes so far), and both return to 0', async () => {
  await withMetrics({}, async (server, endpoint, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const { id, visitor } = await exposeAndVisit(control);
    sockets.push(visitor);
    const waiting = await scrape(endpoint);
    assert.deepEqual([value(waiting, 'burrow_visitors_pending'), value(waiting, 'burrow_visitors_active')], [1, 0]);
    assert.equal(value(waiting, 'burrow_visitors_paired_total'), 0);

    const data = await dialBack(server.dataPort, id, sockets);
    visitor.write('12345');
    assert.equal((await data.take(5)).toString(), '12345');
    data.socket.write('abc');
    const joined = await scrape(endpoint);
    assert.deepEqual([value(joined, 'burrow_visitors_pending'), value(joined, 'burrow_visitors_active')], [0, 1]);
    assert.equal(value(joined, 'burrow_visitors_paired_total'), 1);
    assert.equal(value(joined, 'burrow_pairing_wait_seconds_count'), 1);
    assert.equal(value(joined, 'burrow_visitor_bytes_total', { direction: 'in' }), 5, 'an open connection counts');

    visitor.resetAndDestroy(); // a FIN would only half-close: the data side could still speak
    await untilScraped(
      endpoint,
      (s) => value(s, 'burrow_visitors_active'),
      0,
      'visitors_active after the visitor left',
    );
  });
});

test('visitors_timed_out_total counts a visitor nobody dialled back for', async () => {
  await withMetrics({ visitorTimeoutMs: 200 }, async (server, endpoint, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const { visitor } = await exposeAndVisit(control);
    sockets.push(visitor);
    assert.equal((await within(readAll(visitor), 5_000, 'the visitor to be closed')).length, 0);
    const after = await scrape(endpoint);
    assert.equal(value(after, 'burrow_visitors_timed_out_total'), 1);
    assert.equal(value(after, 'burrow_visitor_connections_total'), 1);
    assert.equal(value(after, 'burrow_visitors_paired_total'), 0);
    assert.equal(value(after, 'burrow_visitors_pending'), 0);
  });
});

test('visitors_over_limit_total counts a visitor reset because the tunnel already has one waiting', async () => {
  await withMetrics({ maxPendingPerTunnel: 1 }, async (server, endpoint, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const { publicPort, visitor } = await exposeAndVisit(control);
    sockets.push(visitor);
    // The reset may come before or after 'connect': wait for the close either way.
    const second = net.connect({ host: HOST, port: publicPort });
    sockets.push(second);
    second.on('error', () => {}); // (events.once would reject on the ECONNRESET)
    await within(new Promise((resolve) => second.once('close', resolve)), 5_000, 'the second visitor to be reset');
    const after = await scrape(endpoint);
    assert.equal(value(after, 'burrow_visitors_over_limit_total'), 1);
    assert.equal(value(after, 'burrow_visitor_connections_total'), 1, 'the reset one is not counted as accepted');
  });
});

test('visitors_refused_total counts a visitor its client turned away with REFUSE (reset at once, no longer pending)', async () => {
  await withMetrics({}, async (server, endpoint, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const { id, visitor } = await exposeAndVisit(control);
    sockets.push(visitor);
    const closed = new Promise((resolve) => visitor.once('close', resolve));
    const waiting = await scrape(endpoint);
    assert.deepEqual(
      [value(waiting, 'burrow_visitors_pending'), value(waiting, 'burrow_visitors_refused_total')],
      [1, 0],
    );
    control.send(`REFUSE ${id}\n`);
    await within(closed, 5_000, 'the refused visitor to be reset');
    const after = await scrape(endpoint);
    assert.equal(value(after, 'burrow_visitors_refused_total'), 1);
    assert.equal(value(after, 'burrow_visitors_pending'), 0);
    assert.equal(value(after, 'burrow_visitors_timed_out_total'), 0, 'reset by the REFUSE, not by its deadline');
    assert.equal(value(after, 'burrow_visitors_paired_total'), 0);
  });
});

test('leased_ports counts the port of a client that dropped without GOAWAY, not as a tunnel; back to 0 once the holder reclaims it', async () => {
  await withMetrics({ leaseGraceMs: 60_000 }, async (server, endpoint, sockets) => {
    const first = await openControl(server.controlPort);
    sockets.push(first.socket);
    first.send('EXPOSE 1\n');
    const ok = /^OK ([0-9]+) ([A-Za-z0-9_-]+)$/.exec(await first.reader.line());
    assert.ok(ok, 'OK <port> <lease>');
    const [port, lease] = [ok[1] ?? '', ok[2] ?? ''];
    const held = await scrape(endpoint);
    assert.deepEqual([value(held, 'burrow_tunnels'), value(held, 'burrow_leased_ports')], [1, 0]);

    first.socket.destroy(); // a drop, not a goodbye: the port stays under lease
    await untilScraped(
      endpoint,
      (s) => [value(s, 'burrow_clients'), value(s, 'burrow_tunnels'), value(s, 'burrow_leased_ports')],
      [0, 0, 1],
      'the port under lease',
    );

    const again = await openControl(server.controlPort);
    sockets.push(again.socket);
    again.send(`EXPOSE 1 ${port} ${lease}\n`);
    assert.equal(await again.reader.line(), `OK ${port} ${lease}`, 'the holder reclaims its port');
    const reclaimed = await scrape(endpoint);
    assert.deepEqual([value(reclaimed, 'burrow_tunnels'), value(reclaimed, 'burrow_leased_ports')], [1, 0]);
  });
});

test('errors_total counts ERR lines by reason: one bad ID on the data port is errors_total{reason="unknown-id"} 1, and nothing else', async () => {
  await withMetrics({}, async (server, endpoint) => {
    const raw = await openRaw(server.dataPort);
    try {
      raw.send(`ID ${'a'.repeat(21)}\n`);
      assert.match(await raw.reader.line(), /^ERR unknown-id/);
    } finally {
      raw.socket.destroy();
    }
    const after = await scrape(endpoint);
    const errors = [...after.samples].filter(([key]) => key.startsWith('burrow_errors_total'));
    assert.deepEqual(errors, [['burrow_errors_total{reason="unknown-id"}', 1]]);
  });
});

test('refused_connections_total counts a client with the wrong secret as {reason="auth-failed"} 1 (and its ERR line)', async () => {
  const local = await listenLocal(() => {});
  const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, secret: SECRET });
  const endpoint = await startMetrics(server, { host: HOST, port: 0 });
  try {
    const starting = startClient({
      tunnels: [{ localPort: local.port }],
      server: HOST,
      localHost: HOST,
      controlPort: server.controlPort,
      dataPort: server.dataPort,
      secret: 'not the secret',
    });
    const cleanup = starting.then(
      (client) => client.destroy(),
      () => undefined,
    );
    await rejectsWith(within(starting, 10_000, 'startClient to be refused'), 'refused', 'auth-failed');
    await within(cleanup, 10_000, 'a wrongly started client to close');
    const after = await scrape(endpoint);
    const refused = [...after.samples].filter(([key]) => key.startsWith('burrow_refused_connections_total'));
    assert.deepEqual(refused, [['burrow_refused_connections_total{reason="auth-failed"}', 1]]);
    assert.equal(value(after, 'burrow_errors_total', { reason: 'auth-failed' }), 1);
    assert.equal(value(after, 'burrow_control_connections_total'), 1);
    await untilScraped(endpoint, (s) => value(s, 'burrow_clients'), 0, 'no client holds on');
  } finally {
    await endpoint.close();
    await server.close();
    await local.close();
  }
});

// ---------------------------------------------------------------------------------------
// 3. Where it listens, two servers, closing

test('the endpoint binds only where told: its url is 127.0.0.1 and nothing answers at that port on 127.0.0.2', async () => {
  await withMetrics({}, async (_server, endpoint) => {
    assert.equal(new URL(endpoint.url).hostname, '127.0.0.1');
    const other = net.connect({ host: '127.0.0.2', port: portOf(endpoint) });
    const outcome = await within(
      new Promise<string>((resolve) => {
        other.once('connect', () => resolve('connected'));
        other.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      }),
      5_000,
      'a connect attempt on 127.0.0.2',
    );
    other.destroy();
    assert.equal(outcome, 'ECONNREFUSED');
  });
});

test('an IPv6 host is served there and bracketed in the url', async (t) => {
  await withServer({}, async (server) => {
    let endpoint: MetricsEndpoint;
    try {
      endpoint = await startMetrics(server, { host: '::1', port: 0 });
    } catch (error) {
      t.skip(`no IPv6 loopback here: ${(error as Error).message}`);
      return;
    }
    try {
      assert.equal(endpoint.url, `http://[::1]:${portOf(endpoint)}/metrics`);
      await scrape(endpoint);
    } finally {
      await endpoint.close();
    }
  });
});

test('two servers with metrics in one process do not clash: each endpoint reports its own server', async () => {
  await withMetrics({}, async (a, endpointA, sockets) => {
    await withMetrics({}, async (_b, endpointB) => {
      const control = await openControl(a.controlPort);
      sockets.push(control.socket);
      const { visitor } = await exposeAndVisit(control);
      sockets.push(visitor);
      const [scrapeA, scrapeB] = [await scrape(endpointA), await scrape(endpointB)];
      assert.deepEqual(
        [
          value(scrapeA, 'burrow_tunnels'),
          value(scrapeA, 'burrow_visitors_pending'),
          value(scrapeA, 'burrow_control_connections_total'),
        ],
        [1, 1, 1],
      );
      assert.deepEqual(
        [
          value(scrapeB, 'burrow_tunnels'),
          value(scrapeB, 'burrow_visitors_pending'),
          value(scrapeB, 'burrow_control_connections_total'),
        ],
        [0, 0, 0],
      );
      assert.ok(scrapeB.types.has('burrow_process_cpu_seconds_total'), 'both have the process metrics');
    });
  });
});

test('close() ends kept-alive and half-sent scrape connections, frees the port, stops listening to the server, and is idempotent', async () => {
  await withServer({}, async (server) => {
    const listeners = (): number[] => [server.listenerCount('paired'), server.listenerCount('refused')];
    const before = listeners();
    const endpoint = await startMetrics(server, { host: HOST, port: 0 });
    const port = portOf(endpoint);
    const agent = new http.Agent({ keepAlive: true });
    const stuck = await openRaw(port);
    try {
      assert.deepEqual(
        listeners(),
        before.map((n) => n + 1),
      );
      assert.equal((await get(endpoint.url, { agent })).status, 200);
      assert.equal(Object.values(agent.freeSockets).flat().length, 1, 'the scraper keeps its connection');
      // A scraper stuck halfway through its request is not idle: only closeAllConnections()
      // ends it, where a plain close() would wait for the header timeout (a minute).
      stuck.send('GET /metrics HTTP/1.1\r\nHost: x\r\n');
      await scrape(endpoint); // sent after it, so the partial request has almost surely been read
      const closing = endpoint.close();
      assert.equal(endpoint.close(), closing, 'a second close() is the same promise');
      await within(closing, 5_000, 'close() despite the kept-alive connection');
      await within(endpoint.close(), 5_000, 'close() after close()');
      await within(stuck.closed, 5_000, 'the half-sent request to be cut off');
      assert.deepEqual(listeners(), before);
      assert.equal(await probe(port), 'refused');
      // The port is really free: a new endpoint can take it.
      const again = await startMetrics(server, { host: HOST, port });
      await again.close();
    } finally {
      stuck.socket.destroy();
      agent.destroy();
      await endpoint.close();
    }
  });
});

/** Connections of this process by kind (listeners, sockets): what a leaked one adds to. */
function tcpHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo())
    if (type.startsWith('TCP')) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

for (const how of ['close', 'destroy'] as const) {
  test(`server.${how}() closes the metrics endpoint started on it: the port refuses, its connections end, no handle is left, and the endpoint's own close() still resolves`, async () => {
    // What the tests before this one closed is gone a turn or two later.
    for (let turn = 0; turn < 3; turn++) await nextTurn();
    const handles = tcpHandles();
    const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST });
    const endpoint = await startMetrics(server, { host: HOST, port: 0 });
    const port = portOf(endpoint);
    const agent = new http.Agent({ keepAlive: true });
    const idle = await openRaw(port);
    try {
      assert.equal((await get(endpoint.url, { agent })).status, 200);
      await within(how === 'close' ? server.close() : server.destroy(), 10_000, `server.${how}()`);
      assert.equal(await probe(port), 'refused', 'the metrics port after the server closed');
      await within(idle.closed, 5_000, 'an idle connection to the endpoint to be closed');
      assert.deepEqual(
        [server.listenerCount('paired'), server.listenerCount('refused')],
        [0, 0],
        'the endpoint stopped listening to the server',
      );
      await within(endpoint.close(), 5_000, 'endpoint.close() after the server closed it');
      agent.destroy();
      await untilEqual(tcpHandles, handles, 'TCP handles after the server and its endpoint closed');
    } finally {
      idle.socket.destroy();
      agent.destroy();
      await endpoint.close();
      await server.destroy();
    }
  });
}

test("an endpoint closed on its own first frees its port; a second endpoint on that port is then closed by the server's close()", async () => {
  await withServer({}, async (server) => {
    const first = await startMetrics(server, { host: HOST, port: 0 });
    const port = portOf(first);
    await first.close();
    // Its port is free: a second endpoint takes it, and the server's close() closes that one.
    const second = await startMetrics(server, { host: HOST, port });
    try {
      assert.equal(portOf(second), port);
      await server.close();
      assert.equal(await probe(port), 'refused');
    } finally {
      await second.close();
    }
  });
});

test(`the endpoint serves at most ${METRICS_MAX_CONNECTIONS} connections at once: one more is closed at once while the others stay open and are served; after one ends, a scrape works again`, async () => {
  await withMetrics({}, async (_server, endpoint) => {
    const port = portOf(endpoint);
    const held: Raw[] = [];
    try {
      // One at a time: each is accepted (and counted) before the next connects.
      for (let i = 0; i < METRICS_MAX_CONNECTIONS; i++) held.push(await openRaw(port));
      const extra = await openRaw(port);
      held.push(extra);
      assert.equal(await extra.reader.next(), null, 'the connection over the cap gets nothing');
      // Far sooner than the 10 s request timeout that would end an idle one.
      await within(extra.closed, 5_000, 'the connection over the cap to be closed');
      // The ones under the cap were kept: each is still served.
      for (const [i, raw] of held.slice(0, METRICS_MAX_CONNECTIONS).entries()) {
        raw.send('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.equal(await raw.reader.line(), 'HTTP/1.1 200 OK\r', `connection ${i} is served`);
      }
      // One ends; the server notices its close a few turns after we do.
      const first = held[0];
      assert.ok(first);
      first.socket.destroy();
      await first.closed;
      let status: number | string = 'not tried';
      for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
        status = await get(endpoint.url).then(
          (response) => response.status,
          (error: NodeJS.ErrnoException) => error.code ?? 'error',
        );
      }
      assert.equal(status, 200, 'a scrape once a connection has ended');
    } finally {
      for (const raw of held) raw.socket.destroy();
    }
  });
});

test('a port already taken: startMetrics rejects with listen-failed naming the address, and leaves no listener on the server', async () => {
  const held = await holdPort();
  try {
    await withServer({}, async (server) => {
      const error = await rejectsWith(startMetrics(server, { host: HOST, port: held.port }), 'listen-failed');
      assert.ok(error.message.includes(`cannot serve metrics on 127.0.0.1:${held.port}`), error.message);
      assert.deepEqual([server.listenerCount('paired'), server.listenerCount('refused')], [0, 0]);
      await rejectsWith(startMetrics(server, { host: HOST, port: 70_000 }), 'listen-failed');
    });
  } finally {
    await held.close();
  }
});

// ---------------------------------------------------------------------------------------
// 4. parseMetricsAddress

test('parseMetricsAddress: PORT (on 127.0.0.1), HOST:PORT, [IPv6]:PORT; anything else is undefined', () => {
  const good: Array<[string, { host: string; port: number }]> = [
    ['9100', { host: '127.0.0.1', port: 9100 }],
    ['0', { host: '127.0.0.1', port: 0 }],
    ['65535', { host: '127.0.0.1', port: 65535 }],
    ['127.0.0.1:9100', { host: '127.0.0.1', port: 9100 }],
    ['0.0.0.0:9100', { host: '0.0.0.0', port: 9100 }],
    ['localhost:9100', { host: 'localhost', port: 9100 }],
    ['metrics.example.com:1', { host: 'metrics.example.com', port: 1 }],
    ['[::1]:9100', { host: '::1', port: 9100 }],
    ['[::]:0', { host: '::', port: 0 }],
    ['[::ffff:127.0.0.1]:9100', { host: '::ffff:127.0.0.1', port: 9100 }],
  ];
  for (const [text, expected] of good) assert.deepEqual(parseMetricsAddress(text), expected, text);
  const bad = [
    '',
    '65536',
    '100000',
    '-1',
    '1e3',
    ' 9100',
    '9100 ',
    'localhost',
    'localhost:',
    ':9100',
    'localhost:port',
    '::1:9100',
    '::1',
    '[::1]',
    '[::1]:',
    '[127.0.0.1]:9100',
    '[nope]:9100',
    '[]:9100',
    '300.1.1.1:9100',
    '1.2.3:9100',
    'host_name:9100',
    '-host:9100',
    'a b:9100',
    'http://localhost:9100',
    'localhost:9100/metrics',
    'a:b:9100',
  ];
  for (const text of bad) assert.equal(parseMetricsAddress(text), undefined, JSON.stringify(text));
});
