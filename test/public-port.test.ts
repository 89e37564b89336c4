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
import net from 'node:net';
import { test } from 'node:test';
import { assertSameBytes, HOST, pseudoRandomBytes, within } from './helpers.ts';
import { withHealthy } from './healthy-tunnel.ts';
import { endingOf, openInbox, type Ending, type Inbox } from './inbox.ts';
import { loadGc } from './memory.ts';
import {
  assertClosedByServer,
  connectionId,
  dialBack,
  errReason,
  expose,
  openControl,
  openRaw,
  type Raw,
} from './raw.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

// ---------------------------------------------------------------------------------------
// Local helpers

/** Proves no CONNECTION line is queued on `control`: lines go out in order, so the answer
 * to a garbage line must be the very next line. (Costs one of the 16 refused lines.) */
async function assertNoConnectionLine(control: Raw, what: string): Promise<void> {
  control.send('HOWDY\n');
  const line = await control.reader.line();
  assert.equal(errReason(line), 'unknown-verb', `${what}: expected no CONNECTION line, got ${JSON.stringify(line)}`);
}

/** A raw control connection (a client that will never dial back on its own) that has
 * sent `EXPOSE 1`, and the public port of its tunnel. */
async function rawTunnel(controlPort: number, sockets: net.Socket[]): Promise<{ control: Raw; publicPort: number }> {
  const control = await openControl(controlPort);
  sockets.push(control.socket);
  return { control, publicPort: await expose(control, 1) };
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

/** A visitor that is accepted and waits: an Inbox (reads what arrives), half-open allowed.
 * `ended` resolves once the server has closed its side (FIN or reset). */
async function waitingVisitor(
  port: number,
  sockets: net.Socket[],
): Promise<{ wire: Inbox; ended: Promise<void>; isClosed(): boolean }> {
  const wire = await openInbox(port);
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

/** 8 KiB (seeded) each way across a joined pair, compared byte for byte. */
async function exchange(visitor: Inbox, data: Inbox, seed: number, what: string): Promise<void> {
  const up = pseudoRandomBytes(8 * KiB, seed);
  const down = pseudoRandomBytes(8 * KiB, seed + 1);
  visitor.socket.write(up);
  data.socket.write(down);
  assertSameBytes(await data.take(up.length), up, `${what}: visitor → data socket`);
  assertSameBytes(await visitor.take(down.length), down, `${what}: data socket → visitor`);
}

// ---------------------------------------------------------------------------------------
// Tests

test('public port: with the client gone, visitors beyond maxPendingPerTunnel are reset at once; the first 5 keep their place until visitorTimeoutMs', async () => {
  await withHealthy({ maxPendingPerTunnel: 5, visitorTimeoutMs: 2_000 }, async (healthy, sockets) => {
    const baseline = healthy.server.stats().pendingVisitors;
    assert.equal(baseline, 0);
    const { control, publicPort } = await rawTunnel(healthy.server.controlPort, sockets);

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
    assert.deepEqual(
      waiting.map((visitor) => visitor.isClosed()),
      [false, false, false, false, false],
      'a waiting visitor lost its place',
    );
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
  });
});

test('public port: maxPending counts waiting visitors across tunnels; the extra visitor is reset on any tunnel, the waiting ones keep their place', async () => {
  await withHealthy({ maxPending: 6, maxPendingPerTunnel: 5 }, async (healthy, sockets) => {
    const controlA = await openControl(healthy.server.controlPort);
    sockets.push(controlA.socket);
    const controlB = await openControl(healthy.server.controlPort);
    sockets.push(controlB.socket);
    const portA = await expose(controlA, 1);
    const portB = await expose(controlB, 1);

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
    assert.equal(
      [...atA, ...atB].some((visitor) => visitor.isClosed()),
      false,
      'a waiting visitor lost its place',
    );

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
  });
});

test('public port: maxConnectionsPerTunnel counts joined connections; after one closes a new visitor is accepted again', async () => {
  await withHealthy({ maxConnectionsPerTunnel: 3 }, async (healthy, sockets) => {
    const { control, publicPort } = await rawTunnel(healthy.server.controlPort, sockets);
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
  });
});

test('public port: a client that dials back late (but within visitorTimeoutMs) still gets every byte its visitor sent', async () => {
  // "Late" is measured by the server's own clock: two data connections that never send
  // their ID line each get ERR timeout after handshakeTimeoutMs, one after the other,
  // before the client dials back (no sleeping in the test).
  await withHealthy({ handshakeTimeoutMs: 500, visitorTimeoutMs: 5_000 }, async (healthy, sockets) => {
    const { control, publicPort } = await rawTunnel(healthy.server.controlPort, sockets);
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
  });
});

test('public port: 20 visitors that each send 64 KiB before being paired get exactly those bytes delivered after OK', async () => {
  await withHealthy({}, async (healthy, sockets) => {
    const { control, publicPort } = await rawTunnel(healthy.server.controlPort, sockets);
    const visitors: Inbox[] = [];
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
    await within(
      Promise.all([...pairs, healthy.pulse('while they are paired'), healthy.check('while they are paired')]),
      30_000,
      '20 pairings',
    );
    assert.equal(healthy.server.stats().pendingVisitors, 0);
  });
});

test('public port: 50 unpaired visitors writing 1 MiB each do not grow memory; their bytes wait in the kernel and arrive intact', async () => {
  const gc = loadGc();
  await withHealthy({}, async (healthy, sockets) => {
    const { control, publicPort } = await rawTunnel(healthy.server.controlPort, sockets);
    // One buffer for all: the visitors' pending writes reference it rather than copy it,
    // so the test's own side costs 1 MiB whatever the kernel does not take.
    const payload = pseudoRandomBytes(MiB, 77);
    const visitors: Inbox[] = [];
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
    const growth = {
      arrayBuffers: after.arrayBuffers - before.arrayBuffers,
      heapUsed: after.heapUsed - before.heapUsed,
    };
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
  });
});
