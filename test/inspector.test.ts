// The inspector's page and JSON API, end to end: a relay with an HTTP port, a client with
// an HTTP tunnel and a TCP tunnel, and the inspector beside the client. Live updates
// (Server-Sent Events), the rendezvous timeline of a TCP visitor, captured requests with
// their bodies (capped), filters, replay (as captured and edited), the bounds of the
// history, the token, and the Host check.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startInspector, type Inspector } from '../client/inspector/server.ts';
import type { ConnectionRecord, RequestRecord } from '../client/inspector/history.ts';
import { HOST, echo, listenLocal, nextEvent, request, startRig, untilEqual, within } from './helpers.ts';
import type { ConnectionClosed } from '../client/types.ts';
import { echoHandler, httpRig, localService, visit, type HttpRig, type LocalService } from './http-rig.ts';

/** GET (or `method`) on the inspector; resolves with the status and the parsed JSON. */
function call(
  inspector: Inspector,
  path: string,
  { method = 'GET', body, headers = {} }: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: unknown; text: string }> {
  return within(
    new Promise((resolve, reject) => {
      const req = http.request({ host: HOST, port: inspector.port, path, method, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const json: unknown = res.headers['content-type']?.startsWith('application/json')
            ? JSON.parse(text)
            : undefined;
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      });
      req.on('error', reject);
      req.end(body);
    }),
    10_000,
    `${method} ${path}`,
  );
}

/** The events of /api/events, as they come. */
function follow(inspector: Inspector): { events: { event: string; data: unknown }[]; close(): void } {
  const events: { event: string; data: unknown }[] = [];
  const req = http.get({ host: HOST, port: inspector.port, path: '/api/events' }, (res) => {
    res.setEncoding('utf8');
    let buffer = '';
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    });
  });
  req.on('error', () => {});
  return { events, close: () => req.destroy() };
}

describe('the inspector', () => {
  let web: LocalService;
  let tcp: Awaited<ReturnType<typeof listenLocal>>;
  let rig: HttpRig;
  let inspector: Inspector;

  before(async () => {
    web = await localService(echoHandler('web'));
    tcp = await listenLocal(echo);
    rig = await httpRig([{ localPort: web.port, http: { name: 'web' } }, { localPort: tcp.port }]);
    inspector = await startInspector(rig.client, { port: 0, history: 20, maxBodyBytes: 1024 });
  });
  after(async () => {
    await inspector.close();
    await rig.close();
    await web.close();
    await tcp.close();
  });

  test('serves its page and assets, and the tunnels', async () => {
    const page = await call(inspector, '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>burrow inspector<\/title>/);
    assert.match((await call(inspector, '/app.js')).text, /EventSource/);
    const { json } = await call(inspector, '/api/tunnels');
    const { state, tunnels } = json as { state: string; tunnels: { url: string; totals: object }[] };
    assert.equal(state, 'connected');
    assert.deepEqual(tunnels[0]?.totals, { connections: 0, requests: 0, bytesIn: 0, bytesOut: 0 });
    assert.deepEqual(
      tunnels.map((t) => t.url),
      rig.client.tunnels.map((t) => t.url),
    );
  });

  test('a TCP visitor appears live, with the timeline of its rendezvous in order', async () => {
    const live = follow(inspector);
    try {
      const tunnel = rig.client.tunnels[1];
      assert.ok(tunnel);
      assert.equal((await request(tunnel.publicPort, 'ping')).toString(), 'ping');
      await untilEqual(
        () => live.events.some((e) => e.event === 'connection' && (e.data as ConnectionRecord).state === 'closed'),
        true,
        'the closed connection, live',
      );
      const list = (await call(inspector, '/api/connections')).json as ConnectionRecord[];
      const record = list.find((c) => c.url === tunnel.url);
      assert.ok(record);
      assert.deepEqual(
        record.timeline.map((step) => step.phase),
        ['announced', 'dialed', 'id-sent', 'paired', 'joined', 'visitor-fin', 'local-fin', 'closed'],
      );
      assert.equal(record.ending, 'fin');
      assert.equal(record.bytesIn, 4);
      assert.equal(record.bytesOut, 4);
      assert.match(record.visitor ?? '', /^127\.0\.0\.1:[0-9]+$/);
      const { tunnels } = (await call(inspector, '/api/tunnels')).json as {
        tunnels: { url: string; totals: { connections: number; bytesIn: number } }[];
      };
      const totals = tunnels.find((t) => t.url === tunnel.url)?.totals;
      assert.deepEqual([totals?.connections, totals?.bytesIn], [1, 4], 'the tunnel’s totals');
    } finally {
      live.close();
    }
  });

  test('with no page open, what happened is all there when the API is asked', async () => {
    // Nobody subscribes: the moments and events wait in a batch until this read folds them in.
    const tunnel = rig.client.tunnels[1];
    assert.ok(tunnel);
    const sent = Date.now();
    const closing = nextEvent<[ConnectionClosed]>(rig.client, 'connection-close');
    assert.equal((await request(tunnel.publicPort, 'quiet')).toString(), 'quiet');
    const [{ id }] = await closing; // the history heard it first: it listened first
    await visit(rig.port, 'web.localhost', { path: '/quiet' });
    const list = (await call(inspector, '/api/connections')).json as ConnectionRecord[];
    const record = list.find((c) => c.id === id);
    assert.deepEqual(
      record?.timeline.map((step) => step.phase),
      ['announced', 'dialed', 'id-sent', 'paired', 'joined', 'visitor-fin', 'local-fin', 'closed'],
    );
    assert.deepEqual([record?.state, record?.ending, record?.bytesIn, record?.bytesOut], ['closed', 'fin', 5, 5]);
    const quiet = ((await call(inspector, '/api/requests?path=/quiet')).json as RequestRecord[])[0];
    assert.ok(quiet, 'the request, with nobody watching');
    assert.equal(quiet.status, 200);
    // When it was answered, not when the API folded it in.
    assert.ok(quiet.at >= sent && quiet.at <= Date.now());
  });

  test('HTTP requests appear live, with headers and bodies; the list filters by path, status and method', async () => {
    const live = follow(inspector);
    try {
      await visit(rig.port, 'web.localhost', { method: 'POST', path: '/items?x=1', body: '{"name":"ann"}' });
      await visit(rig.port, 'web.localhost', { path: '/other' });
      await untilEqual(() => live.events.filter((e) => e.event === 'request').length, 2, 'two requests, live');
      const posted = ((await call(inspector, '/api/requests?method=post&path=/items')).json as RequestRecord[])[0];
      assert.ok(posted);
      assert.equal(posted.path, '/items?x=1');
      assert.equal(((await call(inspector, '/api/requests?status=4xx')).json as unknown[]).length, 0);
      const full = (await call(inspector, `/api/requests/${posted.id}`)).json as {
        exchange: { requestBody: { text: string }; responseBody: { text: string }; requestHeaders: string[][] };
      };
      assert.equal(full.exchange.requestBody.text, '{"name":"ann"}');
      assert.match(full.exchange.responseBody.text, /"service":"web"/);
      assert.ok(full.exchange.requestHeaders.some(([name]) => name?.toLowerCase() === 'x-forwarded-for'));
    } finally {
      live.close();
    }
  });

  test('bodies are capped at maxBodyBytes', async () => {
    await visit(rig.port, 'web.localhost', { method: 'PUT', path: '/big', body: 'x'.repeat(5000) });
    const [latest] = (await call(inspector, '/api/requests?path=/big')).json as RequestRecord[];
    const full = (await call(inspector, `/api/requests/${latest?.id}`)).json as {
      exchange: { requestBody: { length: number }; requestTruncated: boolean };
    };
    assert.equal(full.exchange.requestBody.length, 1024);
    assert.equal(full.exchange.requestTruncated, true);
    const refused = await call(inspector, `/api/requests/${latest?.id}/replay`, { method: 'POST' });
    assert.equal(refused.status, 400, 'a body that was cut cannot be replayed as it was');
    assert.match((refused.json as { error: string }).error, /incomplete/);
  });

  test('replay sends a request again to the tunnel’s service, as it was or edited', async () => {
    await visit(rig.port, 'web.localhost', { method: 'POST', path: '/again', body: 'first' });
    const [record] = (await call(inspector, '/api/requests?path=/again')).json as RequestRecord[];
    const same = await call(inspector, `/api/requests/${record?.id}/replay`, { method: 'POST', body: '{}' });
    assert.equal(same.status, 200);
    const answer = same.json as { status: number; body: { text: string } };
    assert.equal(answer.status, 200);
    const echoed = JSON.parse(answer.body.text) as { url: string; method: string; bodyBytes: number };
    assert.deepEqual([echoed.method, echoed.url, echoed.bodyBytes], ['POST', '/again', 5]);
    const edits = JSON.stringify({ method: 'PATCH', path: '/edited', body: 'second body' });
    const edited = (await call(inspector, `/api/requests/${record?.id}/replay`, { method: 'POST', body: edits }))
      .json as { body: { text: string } };
    const editedEcho = JSON.parse(edited.body.text) as { url: string; method: string; bodyBytes: number };
    assert.deepEqual([editedEcho.method, editedEcho.url, editedEcho.bodyBytes], ['PATCH', '/edited', 11]);
    const bad = await call(inspector, `/api/requests/${record?.id}/replay`, {
      method: 'POST',
      body: JSON.stringify({ path: 'http://elsewhere.example/' }),
    });
    assert.equal(bad.status, 400, 'a path, never a URL: replay goes to the tunnel’s own service only');
  });

  test('the history keeps the last N requests only', async () => {
    for (let i = 0; i < 25; i++) await visit(rig.port, 'web.localhost', { path: `/n${i}` });
    const list = (await call(inspector, '/api/requests')).json as RequestRecord[];
    assert.equal(list.length, 20);
    assert.equal(list[0]?.path, '/n24', 'newest first');
  });

  test('a page elsewhere cannot reach it through a DNS name that points here (Host check)', async () => {
    const { status } = await call(inspector, '/api/tunnels', { headers: { host: `evil.example:${inspector.port}` } });
    assert.equal(status, 403);
  });
});

test('with a token, the page and the API need it; a taken port means the next one', async () => {
  const local = await localService(echoHandler('t'));
  const rig = await httpRig([{ localPort: local.port, http: true }]);
  const holder = net.createServer().listen(0, HOST);
  await new Promise((resolve) => holder.once('listening', resolve));
  const taken = (holder.address() as net.AddressInfo).port;
  const inspector = await startInspector(rig.client, { port: taken, token: 's3cret' });
  try {
    // The next free one: taken + 1 may itself be busy (an outgoing connection's port in
    // TIME-WAIT, as Linux hands out even ports for those and odd ones for listeners).
    assert.ok(inspector.port > taken && inspector.port < taken + 10, `${inspector.port} after ${taken}`);
    assert.equal(inspector.url, `http://${HOST}:${inspector.port}/?token=s3cret`);
    assert.equal((await call(inspector, '/api/tunnels')).status, 403);
    assert.equal((await call(inspector, '/api/tunnels?token=s3cret')).status, 200);
    assert.equal((await call(inspector, '/', { headers: { authorization: 'Bearer s3cret' } })).status, 200);
  } finally {
    await inspector.close();
    holder.close();
    await rig.close();
    await local.close();
  }
});

test('an inspector that cannot listen leaves nothing behind: no listeners on the client, no capture', async () => {
  const local = await localService(echoHandler('gone'));
  const rig = await httpRig([{ localPort: local.port, http: { name: 'gone' } }]);
  try {
    // 192.0.2.1 (TEST-NET) is no address of this machine: listening there fails at once.
    await assert.rejects(startInspector(rig.client, { host: '192.0.2.1', port: 0 }), /cannot listen on inspector/);
    assert.equal(rig.client.listenerCount('phase'), 0);
    assert.equal(rig.client.listenerCount('request'), 0);
    assert.equal(rig.client.listenerCount('connection'), 0, 'the history let go (its phase tap with it)');
    const logged = new Promise<{ exchange?: unknown }>((resolve) => rig.client.once('request', resolve));
    await visit(rig.port, 'gone.localhost');
    assert.equal((await logged).exchange, undefined, 'requests are not captured any more');
  } finally {
    await rig.close();
    await local.close();
  }
});

test('tapPhases: each moment of a visitor, in order, with no phase event; nothing after the tap is removed', async () => {
  const rig = await startRig(echo);
  try {
    const moments: { id: string; phase: string; at: number; detail?: string }[] = [];
    const untap = rig.client.tapPhases((id, phase, at, detail) => moments.push({ id, phase, at, detail }));
    const closing = nextEvent<[ConnectionClosed]>(rig.client, 'connection-close');
    assert.equal((await request(rig.publicPort, 'tap')).toString(), 'tap');
    const [{ id }] = await closing;
    await untilEqual(() => moments.at(-1)?.phase, 'closed', 'the last moment');
    assert.deepEqual(
      moments.map((m) => m.phase),
      ['announced', 'dialed', 'id-sent', 'paired', 'joined', 'visitor-fin', 'local-fin', 'closed'],
    );
    assert.ok(moments.every((m) => m.id === id));
    assert.ok(
      moments.every((m, i) => i === 0 || m.at >= (moments[i - 1]?.at ?? Infinity)),
      'times in order',
    );
    assert.equal(moments.find((m) => m.phase === 'joined')?.detail, `${HOST}:${rig.local.port}`);
    assert.equal(rig.client.listenerCount('phase'), 0, 'no phase event was needed');
    untap();
    const count = moments.length;
    const again = nextEvent(rig.client, 'connection-close');
    assert.equal((await request(rig.publicPort, 'untapped')).toString(), 'untapped');
    await again;
    assert.equal(moments.length, count, 'nothing after untap()');
  } finally {
    await rig.close();
  }
});
