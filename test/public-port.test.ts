// The public port under floods, with a healthy tunnel on the same server: every test starts
// a real client exposing a local echo service and checks, before, during and after, that
// 64 KiB seeded payloads still come back byte-exact (on fresh visitor connections, and on
// one long-lived visitor connection opened before anything else). The tunnels under test
// belong to raw control connections that EXPOSE and then dial back by hand, or never.
// Documented reactions: a visitor beyond maxPendingPerTunnel, maxPending (server-wide) or
// maxConnectionsPerTunnel (waiting + joined) is reset at once while the others keep their
// place; waiting visitors are closed after visitorTimeoutMs; bytes a visitor sends before
// it is paired stay in the kernel (paused) and arrive intact after OK, costing no memory.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { BurrowError, BurrowServer, ServerOptions } from '../index.ts';
import { echo, HOST, listenLocal, pseudoRandomBytes, request, within } from './helpers.ts';
import { assertClosedByServer, clientOf, errReason, openRaw, serverOn, type Raw } from './raw.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

// ---------------------------------------------------------------------------------------
// Local helpers

/** Byte-exact comparison that reports sizes and the first differing offset, not a diff. */
function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.equals(expected)) return;
  const length = Math.min(actual.length, expected.length);
  let at = length;
  for (let i = 0; i < length; i++) {
    if (actual[i] !== expected[i]) {
      at = i;
      break;
    }
  }
  assert.fail(`${what}: got ${actual.length} bytes, expected ${expected.length}; first difference at offset ${at}`);
}

/** How a socket ended: the first error code it saw (if any) and every byte it received. */
interface Ending {
  code: string | undefined;
  received: Buffer;
}

/** Resolves once the peer has closed `socket`: its FIN ('end', even on a half-open
 * socket) or a reset / close. Attach it before any data can arrive. */
function endingOf(socket: net.Socket): Promise<Ending> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let code: string | undefined;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      code ??= error.code ?? error.message;
    });
    const done = (): void => resolve({ code, received: Buffer.concat(chunks) });
    socket.once('end', done);
    socket.once('close', done);
  });
}

/** A connection whose received bytes can be read as a line and then as exact byte counts
 * (a LineReader decodes everything as lines). Half-open allowed, Nagle off. */
class Wire {
  readonly closed: Promise<void>;
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.length += chunk.length;
      this.wake();
    });
    socket.on('error', () => {}); // tests assert on bytes and closes
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    const onEnd = (): void => {
      this.ended = true;
      this.wake();
    };
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  }

  static async open(port: number): Promise<Wire> {
    const socket = net.connect({ host: HOST, port, allowHalfOpen: true, noDelay: true });
    const wire = new Wire(socket);
    await within(once(socket, 'connect'), 5_000, `connect to ${port}`);
    return wire;
  }

  /** The next line, without its `\n`. */
  async line(ms = 5_000): Promise<string> {
    await this.until(() => this.buffered().includes(0x0a), ms, 'a line');
    const buffer = this.buffered();
    const newline = buffer.indexOf(0x0a);
    this.keep(buffer.subarray(newline + 1));
    return buffer.subarray(0, newline).toString('latin1');
  }

  /** Exactly the next `count` bytes. */
  async take(count: number, ms = 10_000): Promise<Buffer> {
    await this.until(() => this.length >= count, ms, `${count} bytes`);
    const buffer = this.buffered();
    this.keep(buffer.subarray(count));
    return buffer.subarray(0, count);
  }

  /** Everything left once the peer has ended. */
  async rest(ms = 10_000): Promise<Buffer> {
    await this.until(() => this.ended, ms, 'the end of the stream', true);
    const buffer = this.buffered();
    this.keep(Buffer.alloc(0));
    return buffer;
  }

  private buffered(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private keep(rest: Buffer): void {
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private until(ready: () => boolean, ms: number, what: string, endIsReady = false): Promise<void> {
    const waiting = new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (ready()) {
          this.waiters.delete(check);
          resolve();
        } else if (this.ended && !endIsReady) {
          this.waiters.delete(check);
          reject(new Error(`stream ended before ${what} (have ${this.length} bytes)`));
        }
      };
      this.waiters.add(check);
      check();
    });
    return within(waiting, ms, what).finally(() => this.waiters.clear());
  }
}

/** A server with a real client exposing a local echo service, plus one long-lived visitor
 * connection through it, so a test can show that its bad inputs touch nothing else. */
interface Healthy {
  server: BurrowServer;
  publicPort: number;
  /** A fresh visitor sends 64 KiB (seeded) and must get exactly them back. */
  check(what: string): Promise<void>;
  /** 4 KiB (seeded) through the long-lived visitor connection, echoed byte-exact. */
  pulse(what: string): Promise<void>;
  /** Final checks: one more pulse and check, the long connection ends cleanly with nothing
   * unexpected, the client emitted no warning and is still connected. */
  finish(): Promise<void>;
  close(): Promise<void>;
}

async function startHealthy(options: ServerOptions = {}): Promise<Healthy> {
  const local = await listenLocal(echo);
  let server: BurrowServer | undefined;
  try {
    server = await serverOn(options);
    const client = await clientOf(server, [{ localPort: local.port }]);
    const warnings: BurrowError[] = [];
    const closes: Array<BurrowError | undefined> = [];
    client.on('warning', (warning) => warnings.push(warning));
    client.on('close', (error) => closes.push(error));
    const publicPort = client.tunnels[0]?.publicPort ?? 0;
    const stream = await Wire.open(publicPort);
    let seed = 1000;
    const running = server;
    const healthy: Healthy = {
      server: running,
      publicPort,
      async check(what) {
        const payload = pseudoRandomBytes(64 * KiB, ++seed);
        assertSameBytes(await request(publicPort, payload), payload, `healthy tunnel, ${what}`);
      },
      async pulse(what) {
        const chunk = pseudoRandomBytes(4 * KiB, ++seed);
        stream.socket.write(chunk);
        assertSameBytes(await stream.take(chunk.length), chunk, `long-lived healthy connection, ${what}`);
      },
      async finish() {
        await healthy.pulse('at the end');
        await healthy.check('at the end');
        stream.socket.end();
        assert.equal((await stream.rest()).length, 0, 'the long-lived connection got bytes it did not send');
        assert.deepEqual(
          warnings.map((warning) => `${warning.code}: ${warning.message}`),
          [],
          'the healthy client warned',
        );
        assert.deepEqual(closes, [], 'the healthy client lost its control connection');
      },
      async close() {
        stream.socket.destroy();
        await client.close();
        await running.close();
        await local.close();
      },
    };
    await healthy.check('before');
    await healthy.pulse('before');
    return healthy;
  } catch (error) {
    await server?.close();
    await local.close();
    throw error;
  }
}

/** Sends `EXPOSE 1` on a raw control connection (a client that will never dial back on
 * its own) and returns the public port of the `OK <port>` reply. */
async function exposeRaw(control: Raw): Promise<number> {
  control.send('EXPOSE 1\n');
  const reply = await control.reader.line();
  const match = /^OK ([1-9][0-9]*)$/.exec(reply);
  assert.ok(match, `EXPOSE answered ${JSON.stringify(reply)}`);
  return Number(match[1]);
}

/** Reads the `CONNECTION <id> <publicPort>` line of the next accepted visitor. */
async function connectionId(control: Raw, publicPort: number): Promise<string> {
  const line = await control.reader.line();
  const match = /^CONNECTION ([A-Za-z0-9_-]{1,64}) ([0-9]+)$/.exec(line);
  assert.ok(match, `expected a CONNECTION line, got ${JSON.stringify(line)}`);
  assert.equal(Number(match[2]), publicPort, line);
  return match[1] ?? '';
}

/** Proves no CONNECTION line is queued on `control`: lines go out in order, so the answer
 * to a garbage line must be the very next line. (Costs one of the 16 refused lines.) */
async function assertNoConnectionLine(control: Raw, what: string): Promise<void> {
  control.send('HELLO\n');
  const line = await control.reader.line();
  assert.equal(errReason(line), 'unknown-verb', `${what}: expected no CONNECTION line, got ${JSON.stringify(line)}`);
}

/** A visitor that must be refused: connects (without waiting for the handshake, which a
 * reset may overtake) and resolves once its socket has closed. */
function knock(port: number, sockets: net.Socket[]): Promise<Ending> {
  const socket = net.connect({ host: HOST, port });
  sockets.push(socket);
  return within(endingOf(socket), 5_000, `a refused visitor on ${port} to close`);
}

/** Asserts that every refused visitor was reset (RST) without receiving a byte. */
function assertAllReset(endings: Ending[], what: string): void {
  for (const [i, ending] of endings.entries()) {
    assert.equal(ending.received.length, 0, `${what} #${i} received bytes`);
    assert.equal(ending.code, 'ECONNRESET', `${what} #${i} was closed, not reset`);
  }
}

/** A visitor that is accepted and waits: a Wire (reads what arrives), half-open allowed.
 * `ended` resolves once the server has closed its side (FIN or reset). */
async function waitingVisitor(port: number, sockets: net.Socket[]): Promise<{ wire: Wire; ended: Promise<void>; isClosed(): boolean }> {
  const wire = await Wire.open(port);
  sockets.push(wire.socket);
  let closed = false;
  const ended = new Promise<void>((resolve) => {
    const onEnd = (): void => {
      closed = true;
      resolve();
    };
    wire.socket.once('end', onEnd);
    wire.socket.once('close', onEnd);
  });
  return { wire, ended, isClosed: () => closed };
}

/** Dials the data port by hand for `id` and asserts the `OK`. */
async function dialBack(dataPort: number, id: string, sockets: net.Socket[]): Promise<Wire> {
  const data = await Wire.open(dataPort);
  sockets.push(data.socket);
  data.socket.write(`ID ${id}\n`);
  assert.equal(await data.line(), 'OK', `dial-back for ${id}`);
  return data;
}

/** 8 KiB (seeded) each way across a joined pair, compared byte for byte. */
async function exchange(visitor: Wire, data: Wire, seed: number, what: string): Promise<void> {
  const up = pseudoRandomBytes(8 * KiB, seed);
  const down = pseudoRandomBytes(8 * KiB, seed + 1);
  visitor.socket.write(up);
  data.socket.write(down);
  assertSameBytes(await data.take(up.length), up, `${what}: visitor → data socket`);
  assertSameBytes(await visitor.take(down.length), down, `${what}: data socket → visitor`);
}

/** V8's gc(), so that arrayBuffers counts live buffers only (as in tunnel.test.ts: array
 * buffers are otherwise swept in the background at random; this process runs one file). */
function collectGarbage(): () => void {
  v8.setFlagsFromString('--expose-gc');
  v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping');
  const candidate: unknown = vm.runInNewContext('gc');
  if (typeof candidate !== 'function') throw new Error('cannot get gc() from V8');
  return candidate as () => void;
}

// ---------------------------------------------------------------------------------------
// Tests

test('public port: with the client gone, visitors beyond maxPendingPerTunnel are reset at once; the first 5 keep their place until visitorTimeoutMs', async () => {
  const healthy = await startHealthy({ maxPendingPerTunnel: 5, visitorTimeoutMs: 2_000 });
  const sockets: net.Socket[] = [];
  try {
    const baseline = healthy.server.stats().pendingVisitors;
    assert.equal(baseline, 0);
    const control = await openRaw(healthy.server.controlPort);
    sockets.push(control.socket);
    const publicPort = await exposeRaw(control);

    const waiting = [];
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      waiting.push(await waitingVisitor(publicPort, sockets));
      ids.push(await connectionId(control, publicPort));
    }
    assert.equal(healthy.server.stats().pendingVisitors, baseline + 5);

    // The flood: 20 more at once, each reset without a CONNECTION line.
    const [refused] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, () => knock(publicPort, sockets))),
      healthy.pulse('during the flood'),
    ]);
    assertAllReset(refused, 'a visitor beyond maxPendingPerTunnel');
    await assertNoConnectionLine(control, 'after the flood');
    assert.deepEqual(waiting.map((visitor) => visitor.isClosed()), [false, false, false, false, false], 'a waiting visitor lost its place');
    assert.equal(healthy.server.stats().pendingVisitors, baseline + 5);
    await healthy.check('with 5 visitors waiting on another tunnel');

    // The first one still gets its dial-back; its slot is then free for one new visitor.
    const [first] = waiting;
    assert.ok(first);
    const data = await dialBack(healthy.server.dataPort, ids[0] ?? '', sockets);
    await exchange(first.wire, data, 11, 'the first waiting visitor, paired late');
    assert.equal(healthy.server.stats().pendingVisitors, baseline + 4);
    const late = await waitingVisitor(publicPort, sockets);
    await connectionId(control, publicPort);
    assert.equal(healthy.server.stats().pendingVisitors, baseline + 5);
    assertAllReset([await knock(publicPort, sockets)], 'a visitor beyond the limit again');
    await exchange(first.wire, data, 13, 'the paired visitor, after another refusal');

    // Nobody dials back for the others: visitorTimeoutMs closes them (with no bytes).
    const unclaimed = [...waiting.slice(1), late];
    await within(Promise.all(unclaimed.map((visitor) => visitor.ended)), 10_000, 'the waiting visitors to time out');
    for (const visitor of unclaimed) assert.equal((await visitor.wire.rest()).length, 0);
    assert.equal(healthy.server.stats().pendingVisitors, baseline);
    // The joined one outlives the deadline.
    await exchange(first.wire, data, 15, 'the paired visitor, after the timeouts');
    await healthy.finish();
  } finally {
    for (const socket of sockets) socket.destroy();
    await healthy.close();
  }
});

test('public port: maxPending counts waiting visitors across tunnels; the extra visitor is reset on any tunnel, the waiting ones keep their place', async () => {
  const healthy = await startHealthy({ maxPending: 6, maxPendingPerTunnel: 5 });
  const sockets: net.Socket[] = [];
  try {
    const controlA = await openRaw(healthy.server.controlPort);
    sockets.push(controlA.socket);
    const controlB = await openRaw(healthy.server.controlPort);
    sockets.push(controlB.socket);
    const portA = await exposeRaw(controlA);
    const portB = await exposeRaw(controlB);

    const atA = [];
    const idsA: string[] = [];
    for (let i = 0; i < 4; i++) {
      atA.push(await waitingVisitor(portA, sockets));
      idsA.push(await connectionId(controlA, portA));
    }
    const atB = [];
    for (let i = 0; i < 2; i++) {
      atB.push(await waitingVisitor(portB, sockets));
      await connectionId(controlB, portB);
    }
    assert.equal(healthy.server.stats().pendingVisitors, 6);

    // Each tunnel is below maxPendingPerTunnel, but the server is at maxPending: the next
    // visitor is reset wherever it arrives, the healthy tunnel included (its joined
    // connection keeps flowing meanwhile).
    const [refused] = await Promise.all([
      Promise.all([knock(portA, sockets), knock(portB, sockets), knock(healthy.publicPort, sockets)]),
      healthy.pulse('while the server is at maxPending'),
    ]);
    assertAllReset(refused, 'a visitor beyond maxPending');
    await assertNoConnectionLine(controlA, 'tunnel A');
    await assertNoConnectionLine(controlB, 'tunnel B');
    assert.equal(healthy.server.stats().pendingVisitors, 6);
    assert.equal([...atA, ...atB].some((visitor) => visitor.isClosed()), false, 'a waiting visitor lost its place');

    // Tunnel B's client leaves: its waiting visitors are closed, which frees room.
    controlB.socket.destroy();
    await within(Promise.all(atB.map((visitor) => visitor.ended)), 5_000, "tunnel B's visitors to be closed");
    assert.equal(healthy.server.stats().pendingVisitors, 4);
    await healthy.check('after tunnel B left');
    const fifth = await waitingVisitor(portA, sockets);
    await connectionId(controlA, portA);
    assert.equal(healthy.server.stats().pendingVisitors, 5);

    // The visitors that waited on A are still served.
    const [firstA] = atA;
    assert.ok(firstA);
    const data = await dialBack(healthy.server.dataPort, idsA[0] ?? '', sockets);
    await exchange(firstA.wire, data, 21, 'a visitor that waited through the refusals');
    assert.equal(fifth.isClosed(), false);
    await healthy.finish();
  } finally {
    for (const socket of sockets) socket.destroy();
    await healthy.close();
  }
});

test('public port: maxConnectionsPerTunnel counts joined connections; after one closes a new visitor is accepted again', async () => {
  const healthy = await startHealthy({ maxConnectionsPerTunnel: 3 });
  const sockets: net.Socket[] = [];
  try {
    const control = await openRaw(healthy.server.controlPort);
    sockets.push(control.socket);
    const publicPort = await exposeRaw(control);
    const { dataPort } = healthy.server;

    const v1 = await waitingVisitor(publicPort, sockets);
    const d1 = await dialBack(dataPort, await connectionId(control, publicPort), sockets);
    await exchange(v1.wire, d1, 31, 'joined #1');
    const v2 = await waitingVisitor(publicPort, sockets);
    const d2 = await dialBack(dataPort, await connectionId(control, publicPort), sockets);
    await exchange(v2.wire, d2, 33, 'joined #2');
    const v3 = await waitingVisitor(publicPort, sockets);
    const id3 = await connectionId(control, publicPort);
    assert.equal(healthy.server.stats().pendingVisitors, 1); // only v3 waits: the limit is not about waiting

    // 2 joined + 1 waiting = 3: the fourth is reset.
    const [refused] = await Promise.all([knock(publicPort, sockets), healthy.pulse('at the limit')]);
    assertAllReset([refused], 'a visitor beyond maxConnectionsPerTunnel');
    await assertNoConnectionLine(control, 'at the limit');
    await exchange(v1.wire, d1, 35, 'joined #1 after the refusal');
    await exchange(v2.wire, d2, 37, 'joined #2 after the refusal');
    await healthy.check('while another tunnel is at its limit');

    // One joined connection ends (the visitor resets; the server resets its data socket
    // after counting the visitor out): room for exactly one more.
    v1.wire.socket.resetAndDestroy();
    await within(d1.closed, 5_000, 'the data socket of the reset visitor to close');
    const v4 = await waitingVisitor(publicPort, sockets);
    const id4 = await connectionId(control, publicPort);
    assert.equal(v3.isClosed(), false);
    const d3 = await dialBack(dataPort, id3, sockets);
    const d4 = await dialBack(dataPort, id4, sockets);
    await exchange(v3.wire, d3, 39, 'the visitor that waited at the limit');
    await exchange(v4.wire, d4, 41, 'the visitor accepted after a close');
    assertAllReset([await knock(publicPort, sockets)], 'a visitor beyond the limit again (3 joined)');
    await exchange(v2.wire, d2, 43, 'joined #2 at the end');
    await healthy.finish();
  } finally {
    for (const socket of sockets) socket.destroy();
    await healthy.close();
  }
});

test('public port: a client that dials back late (but within visitorTimeoutMs) still gets every byte its visitor sent', async () => {
  // "Late" is measured by the server's own clock: two data connections that never send
  // their ID line each get ERR timeout after handshakeTimeoutMs, one after the other,
  // before the client dials back (no sleeping in the test).
  const healthy = await startHealthy({ handshakeTimeoutMs: 500, visitorTimeoutMs: 5_000 });
  const sockets: net.Socket[] = [];
  try {
    const control = await openRaw(healthy.server.controlPort);
    sockets.push(control.socket);
    const publicPort = await exposeRaw(control);
    const visitor = await waitingVisitor(publicPort, sockets);
    const sent = pseudoRandomBytes(64 * KiB, 51);
    visitor.wire.socket.write(sent);
    const id = await connectionId(control, publicPort);

    for (let i = 0; i < 2; i++) {
      const clock = await openRaw(healthy.server.dataPort);
      sockets.push(clock.socket);
      const [line] = await Promise.all([clock.reader.line(5_000), healthy.pulse(`while the client is late (${i})`)]);
      assert.equal(errReason(line), 'timeout');
      await assertClosedByServer(clock);
    }
    assert.equal(visitor.isClosed(), false);
    assert.equal(healthy.server.stats().pendingVisitors, 1);

    const data = await dialBack(healthy.server.dataPort, id, sockets);
    assertSameBytes(await data.take(sent.length), sent, 'the bytes the visitor sent while waiting');
    await exchange(visitor.wire, data, 53, 'after the late pairing');
    const last = pseudoRandomBytes(4 * KiB, 55);
    visitor.wire.socket.end(last);
    assertSameBytes(await data.rest(), last, 'the last bytes and FIN');
    data.socket.end();
    assert.equal((await visitor.wire.rest()).length, 0);
    await healthy.finish();
  } finally {
    for (const socket of sockets) socket.destroy();
    await healthy.close();
  }
});

test('public port: 20 visitors that each send 64 KiB before being paired get exactly those bytes delivered after OK', async () => {
  const healthy = await startHealthy();
  const sockets: net.Socket[] = [];
  try {
    const control = await openRaw(healthy.server.controlPort);
    sockets.push(control.socket);
    const publicPort = await exposeRaw(control);
    const visitors: Wire[] = [];
    const payloads: Buffer[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { wire } = await waitingVisitor(publicPort, sockets);
      const payload = pseudoRandomBytes(64 * KiB, 600 + i);
      wire.socket.end(payload); // right after connecting, then FIN: nobody has dialed back yet
      visitors.push(wire);
      payloads.push(payload);
      ids.push(await connectionId(control, publicPort));
    }
    assert.equal(healthy.server.stats().pendingVisitors, 20);
    await healthy.pulse('with 20 visitors waiting');

    const pairs = ids.map(async (id, i) => {
      const data = await dialBack(healthy.server.dataPort, id, sockets);
      assertSameBytes(await data.rest(), payloads[i] ?? Buffer.alloc(0), `visitor ${i}: bytes after OK`);
      const reply = pseudoRandomBytes(KiB, 700 + i);
      data.socket.end(reply);
      assertSameBytes(await (visitors[i] ?? data).rest(), reply, `visitor ${i}: the reply`);
    });
    await within(Promise.all([...pairs, healthy.pulse('while they are paired'), healthy.check('while they are paired')]), 30_000, '20 pairings');
    assert.equal(healthy.server.stats().pendingVisitors, 0);
    await healthy.finish();
  } finally {
    for (const socket of sockets) socket.destroy();
    await healthy.close();
  }
});

test('public port: 50 unpaired visitors writing 1 MiB each do not grow memory; their bytes wait in the kernel and arrive intact', async () => {
  const gc = collectGarbage();
  const healthy = await startHealthy();
  const sockets: net.Socket[] = [];
  try {
    const control = await openRaw(healthy.server.controlPort);
    sockets.push(control.socket);
    const publicPort = await exposeRaw(control);
    // One buffer for all: the visitors' pending writes reference it rather than copy it,
    // so the test's own side costs 1 MiB whatever the kernel does not take.
    const payload = pseudoRandomBytes(MiB, 77);
    const visitors: Wire[] = [];
    const ids: string[] = [];
    gc();
    const before = process.memoryUsage();
    for (let i = 0; i < 50; i++) {
      const { wire } = await waitingVisitor(publicPort, sockets);
      wire.socket.write(payload); // never awaited: these writes stop draining by design
      visitors.push(wire);
      ids.push(await connectionId(control, publicPort));
    }
    // Every CONNECTION line is sent after its visitor was queued: all 50 are waiting now.
    assert.equal(healthy.server.stats().pendingVisitors, 50);
    await healthy.pulse('with 50 MiB offered by waiting visitors');
    gc();
    const after = process.memoryUsage();
    const growth = { arrayBuffers: after.arrayBuffers - before.arrayBuffers, heapUsed: after.heapUsed - before.heapUsed };
    const report = `arrayBuffers +${(growth.arrayBuffers / MiB).toFixed(1)} MiB, heap +${(growth.heapUsed / MiB).toFixed(1)} MiB`;
    // Paused sockets read nothing: growth is a few KiB. A socket that was merely not
    // consumed would still read one high-water mark (64 KiB) each, 3 MiB in all.
    assert.ok(growth.arrayBuffers < MiB, `50 MiB offered by unpaired visitors: ${report}`);
    assert.ok(growth.heapUsed < 8 * MiB, `50 MiB offered by unpaired visitors: ${report}`);

    // The bytes were kept, not dropped: the first and the last visitor deliver theirs.
    for (const i of [0, 49]) {
      const data = await dialBack(healthy.server.dataPort, ids[i] ?? '', sockets);
      assertSameBytes(await data.take(payload.length, 20_000), payload, `visitor ${i}: 1 MiB after OK`);
      const visitor = visitors[i];
      assert.ok(visitor);
      await exchange(visitor, data, 80 + i, `visitor ${i} after its 1 MiB`);
    }
    assert.equal(healthy.server.stats().pendingVisitors, 48);
    await healthy.finish();
  } finally {
    for (const socket of sockets) socket.destroy();
    await healthy.close();
  }
});
