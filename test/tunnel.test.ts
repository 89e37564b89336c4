// End to end through a real tunnel: server, client, local services and visitors, all in
// this process on 127.0.0.1 with ephemeral ports. Raw-socket tests speak the protocol by
// hand against the server alone, to pin down what the server does with bytes around the
// handshake lines.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ConnectionEvent } from '../client/client.ts';
import type { ConnectionTotals } from '../client/connection.ts';
import type { BurrowServer } from '../server/server.ts';
import type { TraceEvent } from '../shared/trace.ts';
import {
  assertSameBytes,
  connectVisitor,
  echo,
  HOST,
  listenLocal,
  nextEvent,
  pseudoRandomBytes,
  readAll,
  replyOnEnd,
  request,
  startRig,
  within,
} from './helpers.ts';
import { Inbox, openInbox } from './inbox.ts';
import { loadGc } from './memory.ts';
import { connectionId, expose, openControl, probe, withServer, type Raw } from './raw.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

// ---------------------------------------------------------------------------------------
// Local helpers

/** A hand-written client's tunnel on a server alone. */
interface RawTunnel {
  server: BurrowServer;
  /** The control connection; it has exposed one (fictitious) local port. */
  control: Raw;
  publicPort: number;
  /** Connected to the public port; its CONNECTION line is not read yet. */
  visitor: net.Socket;
  /** A data connection to the server, closed with the rest when the test ends. */
  dialData(): Promise<Inbox>;
}

/** Runs `body` against a RawTunnel, then destroys every socket it opened and closes the server. */
async function withRawTunnel(body: (tunnel: RawTunnel) => Promise<void>): Promise<void> {
  await withServer({}, async (server, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const publicPort = await expose(control, 9);
    const visitor = await connectVisitor(publicPort);
    sockets.push(visitor);
    const dialData = async (): Promise<Inbox> => {
      const data = await openInbox(server.dataPort);
      sockets.push(data.socket);
      return data;
    };
    await body({ server, control, publicPort, visitor, dialData });
  });
}

/** Resolves with the first trace event `matches` accepts. */
function traceEvent(server: BurrowServer, matches: (event: TraceEvent) => boolean, ms = 5_000): Promise<TraceEvent> {
  let listener: ((event: TraceEvent) => void) | undefined;
  const seen = new Promise<TraceEvent>((resolve) => {
    listener = (event) => {
      if (matches(event)) resolve(event);
    };
    server.on('trace', listener);
  });
  return within(seen, ms, 'a trace event').finally(() => {
    if (listener) server.off('trace', listener);
  });
}

/** A promise with its settle functions, for values produced inside event handlers. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------------------------------
// Tests

test('an HTTP request and response cross the tunnel intact', async () => {
  const web = http.createServer((req, res) => {
    res.setHeader('x-burrow-test', `seen ${req.method} ${req.url}`);
    res.writeHead(201, { 'content-type': 'text/plain' });
    res.end('hello through the burrow\n');
  });
  web.listen(0, HOST);
  await once(web, 'listening');
  const webPort = (web.address() as net.AddressInfo).port;
  const rig = await startRig(() => {}, { client: { tunnels: [{ localPort: webPort }] } });
  try {
    const response = await within(
      new Promise<{ status: number | undefined; header: string | string[] | undefined; body: string }>(
        (resolve, reject) => {
          const req = http.get({ host: HOST, port: rig.publicPort, path: '/some/path?x=1', agent: false }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () =>
              resolve({
                status: res.statusCode,
                header: res.headers['x-burrow-test'],
                body: Buffer.concat(chunks).toString(),
              }),
            );
            res.on('error', reject);
          });
          req.on('error', reject);
        },
      ),
      10_000,
      'the HTTP response',
    );
    assert.equal(response.status, 201);
    assert.equal(response.header, 'seen GET /some/path?x=1');
    assert.equal(response.body, 'hello through the burrow\n');
  } finally {
    await rig.close();
    web.closeAllConnections();
    await new Promise<void>((resolve) => web.close(() => resolve()));
  }
});

test('10 MiB each way through an echo service arrive byte-exact', async () => {
  const rig = await startRig(echo);
  try {
    const sent = pseudoRandomBytes(10 * MiB, 0x5eed);
    assertSameBytes(await request(rig.publicPort, sent, 30_000), sent, 'echoed bytes');
  } finally {
    await rig.close();
  }
});

test('10 MiB from the local service reach a visitor that only sends FIN', async () => {
  const payload = pseudoRandomBytes(10 * MiB, 42);
  const localGot = deferred<Buffer>();
  const rig = await startRig((socket) => {
    void readAll(socket).then(localGot.resolve);
    socket.end(payload);
  });
  try {
    // The visitor sends nothing but its FIN.
    assertSameBytes(await request(rig.publicPort, Buffer.alloc(0), 30_000), payload, 'bytes from the local service');
    assert.equal((await within(localGot.promise, 5_000, 'the visitor FIN at the local service')).length, 0);
  } finally {
    await rig.close();
  }
});

test('bytes sent in the same write as the ID line reach the visitor', async () => {
  await withRawTunnel(async ({ control, publicPort, visitor, dialData }) => {
    const atVisitor = readAll(visitor);
    const id = await connectionId(control, publicPort);

    const payload = pseudoRandomBytes(64 * KiB, 7);
    const data = await dialData();
    data.socket.write(Buffer.concat([Buffer.from(`ID ${id}\n`), payload])); // one write(): line and payload together
    assert.equal(await data.line(), 'OK');
    data.socket.end();

    assertSameBytes(await within(atVisitor, 10_000, 'the payload at the visitor'), payload, 'bytes after the ID line');
    visitor.end();
    assertSameBytes(await data.rest(5_000), Buffer.alloc(0), 'bytes on the data socket after OK');
  });
});

test('bytes a visitor sent before it was paired arrive after OK on the data socket', async () => {
  const payload = pseudoRandomBytes(64 * KiB, 11);
  await withRawTunnel(async ({ control, publicPort, visitor, dialData }) => {
    const atVisitor = readAll(visitor);
    visitor.end(payload); // before anyone dials back: the server holds the visitor paused
    const id = await connectionId(control, publicPort);

    const data = await dialData();
    data.socket.write(`ID ${id}\n`);
    assert.equal(await data.line(), 'OK');
    assertSameBytes(await data.rest(10_000), payload, 'visitor bytes on the data socket');
    data.socket.end('bye');
    assert.equal((await within(atVisitor, 5_000, 'the reply at the visitor')).toString(), 'bye');
  });
});

test('half-close: the visitor ends its request and receives a 1 MiB reply whole', async () => {
  const reply = pseudoRandomBytes(MiB, 99);
  const requests: Buffer[] = [];
  const rig = await startRig(
    replyOnEnd((req) => {
      requests.push(req);
      return reply;
    }),
  );
  try {
    const received = await request(rig.publicPort, 'GET /big\n', 20_000);
    assertSameBytes(received, reply, 'the 1 MiB reply');
    assert.deepEqual(
      requests.map((req) => req.toString()),
      ['GET /big\n'],
    );
  } finally {
    await rig.close();
  }
});

test('half-close: the local service ends first and still receives what the visitor sends afterwards', async () => {
  const localGot = deferred<Buffer>();
  const rig = await startRig((socket) => {
    void readAll(socket).then(localGot.resolve);
    socket.end('greeting\n');
  });
  try {
    const visitor = await connectVisitor(rig.publicPort);
    try {
      // The visitor reads the greeting and the end of the local side's stream...
      const greeting = await within(readAll(visitor), 5_000, 'the greeting and FIN');
      assert.equal(greeting.toString(), 'greeting\n');
      assert.equal(visitor.readableEnded, true);
      // ...and only then sends, into a connection whose other direction is closed.
      const later = Buffer.concat([Buffer.from('after the local side closed\n'), pseudoRandomBytes(256 * KiB, 3)]);
      const visitorClosed = once(visitor, 'close');
      visitor.write(later.subarray(0, 1000));
      visitor.end(later.subarray(1000));
      assertSameBytes(
        await within(localGot.promise, 10_000, 'the visitor bytes at the local service'),
        later,
        'bytes sent after the local FIN',
      );
      await within(visitorClosed, 5_000, 'the visitor to close');
    } finally {
      visitor.destroy();
    }
  } finally {
    await rig.close();
  }
});

test('50 concurrent visitors each get exactly their own bytes back', async () => {
  const rig = await startRig(echo);
  try {
    const inputs = Array.from({ length: 50 }, (_, index) => pseudoRandomBytes(100 * KiB, index + 1));
    const outputs = await Promise.all(inputs.map((input) => request(rig.publicPort, input, 30_000)));
    outputs.forEach((output, index) => assertSameBytes(output, inputs[index] ?? Buffer.alloc(0), `visitor ${index}`));
  } finally {
    await rig.close();
  }
});

test('one client with three tunnels: each public port reaches its own service', async () => {
  const names = ['alpha', 'bravo', 'charlie'];
  const locals = await Promise.all(names.map((name) => listenLocal(replyOnEnd(() => `I am ${name}`))));
  try {
    const rig = await startRig(() => {}, { client: { tunnels: locals.map((local) => ({ localPort: local.port })) } });
    try {
      const { tunnels } = rig.client;
      assert.deepEqual(
        tunnels.map((t) => t.localPort),
        locals.map((local) => local.port),
      );
      const publicPorts = tunnels.map((t) => t.publicPort);
      assert.equal(new Set(publicPorts).size, names.length, `public ports not distinct: ${publicPorts.join(', ')}`);
      for (const tunnel of tunnels) {
        assert.equal(tunnel.url, `tcp://127.0.0.1:${tunnel.publicPort}`);
        assert.equal(tunnel.localHost, HOST);
      }
      const replies = await Promise.all(publicPorts.map((port) => request(port, 'who?')));
      assert.deepEqual(
        replies.map((reply) => reply.toString()),
        names.map((name) => `I am ${name}`),
      );
    } finally {
      await rig.close();
    }
  } finally {
    await Promise.all(locals.map((local) => local.close()));
  }
});

test('a joined connection outlives its control connection; the public port closes', async () => {
  await withRawTunnel(async ({ server, control, publicPort, visitor, dialData }) => {
    const atVisitor = new Inbox(visitor);
    const id = await connectionId(control, publicPort);
    const atData = await dialData(); // we are the local end of this connection
    const data = atData.socket;
    data.write(`ID ${id}\n`);
    assert.equal(await atData.line(), 'OK');

    visitor.write('ping 1\n');
    assert.equal(await atData.line(), 'ping 1');
    data.write('pong 1\n');
    assert.equal(await atVisitor.line(), 'pong 1');

    const sessionClosed = traceEvent(server, (e) => e.conn.startsWith('control#') && e.text.startsWith('closed'));
    control.socket.destroy();
    await sessionClosed;

    // (a) the pair still carries bytes both ways, and half-close still works
    visitor.write('ping 2\n');
    assert.equal(await atData.line(), 'ping 2');
    data.write('pong 2\n');
    assert.equal(await atVisitor.line(), 'pong 2');
    visitor.end('last from visitor');
    assertSameBytes(await atData.rest(5_000), Buffer.from('last from visitor'), 'visitor tail at the data socket');
    data.end('last from local');
    assertSameBytes(await atVisitor.rest(5_000), Buffer.from('last from local'), 'local tail at the visitor');

    // (b) nobody listens on the public port any more
    assert.equal(await within(probe(publicPort), 5_000, `a connection attempt to ${publicPort}`), 'refused');
  });
});

test('the client reports a connection and its byte counts when it closes', async () => {
  const rig = await startRig(replyOnEnd((req) => `reply:${req.toString()}`));
  try {
    const opened = nextEvent<[ConnectionEvent]>(rig.client, 'connection');
    const closed = nextEvent<[ConnectionEvent & ConnectionTotals]>(rig.client, 'connection-close', 10_000);
    const reply = await request(rig.publicPort, 'hello, local');
    assert.equal(reply.toString(), 'reply:hello, local');

    const [connection] = await opened;
    const [totals] = await closed;
    assert.match(connection.id, /^[A-Za-z0-9_-]{1,64}$/);
    assert.equal(connection.tunnel, rig.client.tunnels[0]);
    assert.equal(totals.id, connection.id);
    assert.equal(totals.tunnel, connection.tunnel);
    assert.equal(totals.bytesIn, Buffer.byteLength('hello, local'));
    assert.equal(totals.bytesOut, Buffer.byteLength('reply:hello, local'));
    assert.equal(typeof totals.durationMs, 'number');
    assert.ok(totals.durationMs >= 0);
  } finally {
    await rig.close();
  }
});

test('backpressure: a slow local service keeps the relay from buffering the stream', async () => {
  // The visitor hands 32 MiB to the kernel in one write; the local service reads at most
  // one chunk per event-loop turn (paced by the loop, not by a clock) while the relays
  // could move ~2 MiB per turn. If the relays ignored backpressure, they would pull the
  // visitor's stream into user space as fast as it arrives; with backpressure they hold at
  // most a few high-water marks. Kernel socket buffers (which can be tens of MiB on
  // loopback) are not in arrayBuffers, so this measures the relays alone.
  const gc = loadGc();
  const total = 32 * MiB;
  const payload = pseudoRandomBytes(total, 0xbac);
  const expectedHash = sha256(payload);
  const consumed = deferred<{ bytes: number; hash: string; peakGrowth: number }>();
  let baseline = 0;

  const rig = await startRig((socket) => {
    void (async () => {
      const hash = createHash('sha256');
      let bytes = 0;
      let peakGrowth = 0;
      let nextSample = 0;
      for (let turn = 0; turn < 1_000_000; turn++) {
        await nextTurn();
        const chunk = socket.read() as Buffer | null;
        if (chunk === null) {
          if (socket.readableEnded) break;
          await Promise.race([once(socket, 'readable'), once(socket, 'end')]);
          continue;
        }
        hash.update(chunk);
        bytes += chunk.length;
        if (bytes >= nextSample) {
          nextSample += 2 * MiB;
          gc();
          peakGrowth = Math.max(peakGrowth, process.memoryUsage().arrayBuffers - baseline);
        }
      }
      socket.end();
      return { bytes, hash: hash.digest('hex'), peakGrowth };
    })().then(consumed.resolve, consumed.reject);
  });
  try {
    gc();
    baseline = process.memoryUsage().arrayBuffers;
    const visitor = await connectVisitor(rig.publicPort);
    try {
      const visitorDone = readAll(visitor);
      const written = new Promise<void>((resolve, reject) =>
        visitor.end(payload, () => resolve()).once('error', reject),
      );
      await within(written, 60_000, 'the visitor to hand over 32 MiB');
      const result = await within(consumed.promise, 60_000, 'the local service to read 32 MiB');
      await within(visitorDone, 5_000, 'the local FIN at the visitor');
      assert.equal(result.bytes, total);
      assert.equal(result.hash, expectedHash);
      assert.ok(
        result.peakGrowth < 8 * MiB,
        `relays buffered ${(result.peakGrowth / MiB).toFixed(1)} MiB of a ${total / MiB} MiB stream`,
      );
    } finally {
      visitor.destroy();
    }
  } finally {
    await rig.close();
  }
});
