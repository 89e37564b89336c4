// Resource leaks: after thousands of connections opened and closed in every way a
// connection can end (a full request, an abrupt reset from either end, a handshake
// abandoned half-way, a visitor that leaves while waiting, a deadline that fires), the
// server holds exactly what it held before (its stats()), the process holds the same TCP
// handles and timers, and the heap does not grow.
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import type { BurrowError, BurrowServer } from '../index.ts';
import {
  connectVisitor,
  HOST,
  pseudoRandomBytes,
  readAll,
  request,
  startRig,
  untilEqual,
  within,
  type Rig,
} from './helpers.ts';
import { ONE_IDLE_TUNNEL } from './healthy-tunnel.ts';
import { heapAfterGc, loadGc } from './memory.ts';
import { assertRefused, exposeAndVisit, openControl, openRaw, withServer, type Raw } from './raw.ts';

// ---------------------------------------------------------------------------------------
// Local helpers

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * How much heapUsed (after a forced full gc) may grow between the end of the warm-up round
 * and the end of the measured rounds (about 3,500 TCP connections, see the diagnostic).
 * Measured growth is a few hundred KiB at most (allocation-site feedback, pools, the test
 * runner's own bookkeeping): 10 MiB is far above that noise, so the check cannot flake,
 * yet it fails for anything that keeps about 3 KiB per connection: a retained socket pair
 * with its read buffer, a stream chunk, an array of pending lines or replies. Smaller
 * per-connection leaks (a Map entry, a socket in a Set) are what the exact stats() and
 * handle counts of this file catch.
 */
const HEAP_GROWTH_BOUND = 10 * MiB;

/** Short deadlines, so that the timeouts this file relies on fire within a round. The
 * lease grace is one of them: raw control connections that drop without GOAWAY leave
 * their ports under lease (stats().ports still counts them, and each lease holds a timer),
 * and a round is settled only once every lease has run out and given its port back. */
const SERVER_OPTIONS = { handshakeTimeoutMs: 300, visitorTimeoutMs: 300, leaseGraceMs: 100 };

/**
 * The local service behind the healthy tunnel. The visitor's first byte says what it does:
 * `R` — reset the connection at once (a local service that crashes mid-request);
 * anything else — echo every byte, half-close carried through.
 */
function localService(socket: net.Socket): void {
  socket.once('data', (first: Buffer) => {
    if (first[0] === 0x52) {
      socket.resetAndDestroy();
      return;
    }
    socket.write(first);
    socket.pipe(socket);
  });
}

/** Handles and timers this process holds, by type: what a leaked socket, listener or
 * forgotten timer would add to. */
function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) {
    if (type.startsWith('TCP') || type === 'Timeout') counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

function untilStats(server: BurrowServer, what: string): Promise<void> {
  return untilEqual(() => server.stats(), ONE_IDLE_TUNNEL, `server stats after ${what}`);
}

/** Every socket opened in this process (by net.connect or accepted by a listener) while
 * it runs, held weakly: after a full gc, a closed socket still alive is a socket someone
 * forgot to let go of. */
class SocketCensus {
  private readonly refs: Array<WeakRef<net.Socket>> = [];
  private readonly onSocket = (message: unknown): void => {
    const socket = typeof message === 'object' && message !== null && 'socket' in message ? message.socket : undefined;
    if (socket instanceof net.Socket) this.refs.push(new WeakRef(socket));
  };

  start(): void {
    diagnosticsChannel.subscribe('net.client.socket', this.onSocket);
    diagnosticsChannel.subscribe('net.server.socket', this.onSocket);
  }

  stop(): void {
    diagnosticsChannel.unsubscribe('net.client.socket', this.onSocket);
    diagnosticsChannel.unsubscribe('net.server.socket', this.onSocket);
  }

  get seen(): number {
    return this.refs.length;
  }

  /** Sockets seen that are still reachable. */
  alive(): net.Socket[] {
    return this.refs.map((ref) => ref.deref()).filter((socket) => socket !== undefined);
  }
}

function closedPromise(socket: net.Socket): Promise<void> {
  return socket.destroyed && socket.closed
    ? Promise.resolve()
    : new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Closes a raw connection our way: half-close (FIN) or reset (RST). */
async function leave(raw: Raw, how: 'end' | 'reset'): Promise<void> {
  if (how === 'end') raw.socket.end();
  else raw.socket.resetAndDestroy();
  await within(raw.closed, 5_000, 'a raw connection to close');
}

// ---------------------------------------------------------------------------------------
// The ways a connection can come and go. Each scenario opens and closes its own sockets
// and returns how many TCP connections it made (the client's dial-backs included).

type Scenario = (rig: Rig, i: number) => Promise<number>;

const scenarios = {
  /** A full request and response through the tunnel: visitor, data and local. */
  async normal(rig, i) {
    const payload = Buffer.concat([Buffer.from('E'), pseudoRandomBytes(KiB + (i % 4) * KiB, i + 1)]);
    const reply = await request(rig.publicPort, payload);
    assert.ok(reply.equals(payload), `echo ${i}: ${reply.length} bytes back of ${payload.length}`);
    return 3;
  },

  /** The visitor resets in the middle of a transfer. */
  async visitorResets(rig, i) {
    const visitor = await connectVisitor(rig.publicPort);
    visitor.on('error', () => {});
    const closed = closedPromise(visitor);
    visitor.write(Buffer.concat([Buffer.from('E'), pseudoRandomBytes(256 * KiB, i + 7)]));
    await within(once(visitor, 'data'), 5_000, 'the first echoed bytes');
    visitor.resetAndDestroy();
    await closed;
    return 3;
  },

  /** The local service resets: the visitor is closed without a byte. */
  async localResets(rig) {
    const visitor = await connectVisitor(rig.publicPort);
    const got = readAll(visitor);
    visitor.write('Reset, please');
    assert.equal((await within(got, 5_000, 'the visitor to be closed')).length, 0);
    visitor.destroy();
    return 3;
  },

  /** A visitor of the healthy tunnel that resets before it is joined. */
  async visitorLeavesEarly(rig) {
    const visitor = net.connect({ host: HOST, port: rig.publicPort });
    visitor.on('error', () => {});
    const closed = closedPromise(visitor);
    await within(once(visitor, 'connect'), 5_000, 'connect');
    visitor.resetAndDestroy();
    await closed;
    return 3; // the client still dials the data port and the local service for it
  },

  /** A control connection that leaves before its EXPOSE. */
  async controlLeavesBeforeExpose(rig, i) {
    const control = await openControl(rig.server.controlPort);
    await leave(control, i % 2 === 0 ? 'end' : 'reset');
    return 1;
  },

  /** A control connection that leaves after its OK, half the time with a visitor waiting
   * (which must be closed with it). Of those without a visitor, half say GOAWAY first
   * (their port is released at once), half do not (their port stays under lease until the
   * grace runs out). */
  async controlLeavesAfterExpose(rig, i) {
    const control = await openControl(rig.server.controlPort);
    if (i % 2 === 0) {
      control.send('EXPOSE 1\n');
      assert.match(await control.reader.line(), /^OK [0-9]+ [A-Za-z0-9_-]{21}$/);
      if (i % 4 === 0) control.send('GOAWAY\n');
      await leave(control, 'end');
      return 1;
    }
    const { visitor } = await exposeAndVisit(control);
    const visitorClosed = within(readAll(visitor), 5_000, 'the waiting visitor to be closed');
    await leave(control, i % 4 === 1 ? 'end' : 'reset');
    assert.equal((await visitorClosed).length, 0);
    visitor.destroy();
    return 2;
  },

  /** A control connection that never says anything: ERR timeout, closed. */
  async controlSilent(rig) {
    await assertRefused(rig.server.controlPort, undefined, 'timeout', 'the silent control connection');
    return 1;
  },

  /** A data connection that leaves before its ID line. */
  async dataLeavesBeforeId(rig, i) {
    const data = await openRaw(rig.server.dataPort);
    if (i % 3 === 2) data.send('ID partial-line'); // and no newline
    await leave(data, i % 2 === 0 ? 'end' : 'reset');
    return 1;
  },

  /** A data connection that never says anything: ERR timeout, closed. */
  async dataSilent(rig) {
    await assertRefused(rig.server.dataPort, undefined, 'timeout', 'the silent data connection');
    return 1;
  },

  /** A data connection with an id nobody issued: ERR unknown-id, closed. */
  async dataUnknownId(rig, i) {
    await assertRefused(rig.server.dataPort, `ID nobody-${i}\n`, 'unknown-id', 'the refused data connection');
    return 1;
  },

  /** A raw client dials back by hand, is joined, and both ends close after a few bytes. */
  async dataJoinedThenClosed(rig, i) {
    const control = await openControl(rig.server.controlPort);
    const { id, visitor } = await exposeAndVisit(control);
    const data = await openRaw(rig.server.dataPort);
    data.send(`ID ${id}\n`);
    assert.equal(await data.reader.line(), 'OK');
    const got = readAll(visitor);
    data.socket.end(`bytes ${i}`);
    assert.equal((await within(got, 5_000, 'the joined visitor to get its bytes')).toString(), `bytes ${i}`);
    visitor.end();
    await within(Promise.all([data.closed, closedPromise(visitor)]), 5_000, 'the joined pair to close');
    await leave(control, 'end');
    return 3;
  },

  /** A data connection that resets right after its ID line: the visitor is reset too. */
  async dataResetsAfterId(rig) {
    const control = await openControl(rig.server.controlPort);
    const { id, visitor } = await exposeAndVisit(control);
    const visitorClosed = within(readAll(visitor), 5_000, 'the visitor to be reset');
    const data = await openRaw(rig.server.dataPort);
    data.socket.write(`ID ${id}\n`, () => data.socket.resetAndDestroy());
    await within(data.closed, 5_000, 'the data connection to close');
    assert.equal((await visitorClosed).length, 0);
    visitor.destroy();
    await leave(control, 'end');
    return 3;
  },

  /** Visitors that leave while waiting for a dial-back that never comes (they are
   * dropped when their wait runs out). */
  async visitorsLeaveWhileWaiting(rig) {
    const control = await openControl(rig.server.controlPort);
    const { visitor, publicPort } = await exposeAndVisit(control);
    visitor.resetAndDestroy();
    // A second visitor on the same tunnel, which leaves with a FIN once it is announced.
    const second = await connectVisitor(publicPort);
    second.on('error', () => {});
    assert.match(
      await control.reader.line(),
      new RegExp(`^CONNECTION [A-Za-z0-9_-]+ ${publicPort} 127\\.0\\.0\\.1:[0-9]+ 127\\.0\\.0\\.1:${publicPort}$`),
    );
    second.end();
    // The control connection stays: its visitors are dropped only when their wait runs out.
    await within(readAll(second), 5_000, 'the second visitor to be closed after its wait');
    second.destroy();
    await leave(control, 'end');
    return 3;
  },
} satisfies Record<string, Scenario>;

type ScenarioName = keyof typeof scenarios;

/** How many of each scenario one round runs. */
type Mix = Partial<Record<ScenarioName, number>>;

const NORMAL: Mix = { normal: 60 };
const ABRUPT: Mix = { visitorResets: 20, localResets: 20, visitorLeavesEarly: 20, dataResetsAfterId: 15 };
const HALF_WAY: Mix = {
  controlLeavesBeforeExpose: 20,
  controlLeavesAfterExpose: 20,
  controlSilent: 6,
  dataLeavesBeforeId: 20,
  dataSilent: 6,
  dataUnknownId: 15,
  dataJoinedThenClosed: 10,
  visitorsLeaveWhileWaiting: 15,
};
const EVERYTHING: Mix = { ...NORMAL, ...ABRUPT, ...HALF_WAY };

/** Runs one round: every scenario of the mix in parallel with the others, each one's
 * repetitions in sequence (those that wait for a deadline all at once).
 * Returns the number of TCP connections made. */
async function runRound(rig: Rig, mix: Mix, round: number): Promise<number> {
  // Scenarios that mostly wait for a server deadline run all at once (a few dozen raw
  // control connections at most, well under maxClientsPerIp = 64).
  const concurrent = new Set<ScenarioName>(['controlSilent', 'dataSilent', 'visitorsLeaveWhileWaiting']);
  const totals = await Promise.all(
    (Object.entries(mix) as Array<[ScenarioName, number]>).map(async ([name, count]) => {
      const scenario: Scenario = scenarios[name];
      const run = (i: number): Promise<number> =>
        within(scenario(rig, round * 1_000 + i), 10_000, `${name} #${i} of round ${round}`);
      if (concurrent.has(name))
        return (await Promise.all(Array.from({ length: count }, (_, i) => run(i)))).reduce((a, b) => a + b, 0);
      let made = 0;
      for (let i = 0; i < count; i++) made += await run(i);
      return made;
    }),
  );
  return totals.reduce((a, b) => a + b, 0);
}

/** A rig on short deadlines. Its client warns about the visitors and local connections
 * these scenarios break (expected), but must never lose its control connection. */
async function leakRig(): Promise<{ rig: Rig; closes: Array<BurrowError | undefined> }> {
  const rig = await startRig(localService, { server: SERVER_OPTIONS });
  const closes: Array<BurrowError | undefined> = [];
  rig.client.on('close', (error) => closes.push(error));
  rig.client.on('warning', () => {}); // reset visitors and local services are warned about
  return { rig, closes };
}

/** Waits until the server and the process are back to their idle state. */
async function settle(rig: Rig, handles: Record<string, number>, what: string): Promise<void> {
  await untilStats(rig.server, what);
  await untilEqual(handleCounts, handles, `active handles and timers after ${what}`);
}

/** Starts a rig, runs `rounds` rounds of `mix`, and checks after each round that stats and
 * handles are back where they started. */
async function checkNoLeaks(mix: Mix, rounds: number): Promise<number> {
  const { rig, closes } = await leakRig();
  try {
    // The idle rig: its four listeners and the two ends of the control connection (once
    // the client's start-up check of the data port has closed on both sides).
    await untilStats(rig.server, 'the start');
    const handles = handleCounts();
    await scenarios.normal(rig, 0);
    await settle(rig, handles, 'a first request');
    let connections = 0;
    for (let round = 1; round <= rounds; round++) {
      connections += await runRound(rig, mix, round);
      await settle(rig, handles, `round ${round}`);
    }
    assert.deepEqual(closes, [], 'the healthy client lost its control connection');
    await scenarios.normal(rig, 999);
    return connections;
  } finally {
    await rig.close();
  }
}

// ---------------------------------------------------------------------------------------

test('normal request/response connections give back every socket, handle and timer', async (t) => {
  const made = await checkNoLeaks(NORMAL, 5);
  t.diagnostic(`${made} TCP connections`);
});

test('abrupt closes (visitor resets mid-transfer, local service resets, data resets after ID) leak nothing', async (t) => {
  const made = await checkNoLeaks(ABRUPT, 4);
  t.diagnostic(`${made} TCP connections`);
});

test('handshakes abandoned half-way, deadlines and visitors that leave while waiting leak nothing', async (t) => {
  const made = await checkNoLeaks(HALF_WAY, 3);
  t.diagnostic(`${made} TCP connections`);
});

test('the heap does not grow over thousands of connections of every kind', async (t) => {
  const gc = loadGc();
  const { rig, closes } = await leakRig();
  try {
    await untilStats(rig.server, 'the start');
    const handles = handleCounts();
    // Warm-up round: first-use allocations (compiled code, pools, caches) happen here.
    await runRound(rig, EVERYTHING, 0);
    await settle(rig, handles, 'the warm-up round');
    const before = await heapAfterGc(gc);
    let connections = 0;
    const ROUNDS = 6;
    const census = new SocketCensus();
    census.start();
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        connections += await runRound(rig, EVERYTHING, round);
        await settle(rig, handles, `round ${round}`);
      }
    } finally {
      census.stop();
    }
    const after = await heapAfterGc(gc);
    const growth = after - before;
    const alive = census.alive();
    t.diagnostic(
      `${connections} TCP connections after warm-up (${census.seen} socket objects); heapUsed ${(before / MiB).toFixed(1)} MiB -> ` +
        `${(after / MiB).toFixed(1)} MiB; ${alive.length} of those sockets still reachable after gc`,
    );
    // Every socket of the measured rounds is closed: none may still be reachable. (A few
    // would be a curiosity; a leak keeps one per connection, hundreds here.)
    assert.ok(
      alive.length === 0,
      `${alive.length} closed sockets are still reachable after gc, e.g. ${alive
        .slice(0, 3)
        .map(
          (s) =>
            `${s.constructor.name} destroyed=${String(s.destroyed)} local ${String(s.localPort)} remote ${String(s.remotePort)}`,
        )
        .join('; ')}`,
    );
    assert.ok(
      growth < HEAP_GROWTH_BOUND,
      `heap grew by ${(growth / MiB).toFixed(2)} MiB over ${connections} connections`,
    );
    assert.deepEqual(closes, [], 'the healthy client lost its control connection');
  } finally {
    await rig.close();
  }
});

test('a visitor that leaves while waiting holds its place until its wait runs out, then frees it', async () => {
  // Waiting visitors are paused (their bytes stay in the kernel), so the server cannot see
  // them leave: by design (docs/PROTOCOL.md), their place is freed by the visitor timeout.
  await withServer({ visitorTimeoutMs: 500, maxPendingPerTunnel: 2 }, async (server, sockets) => {
    const control = await openControl(server.controlPort);
    sockets.push(control.socket);
    const first = await exposeAndVisit(control);
    const second = await connectVisitor(first.publicPort);
    sockets.push(first.visitor, second);
    second.on('error', () => {});
    assert.match(await control.reader.line(), /^CONNECTION /);
    first.visitor.resetAndDestroy();
    second.resetAndDestroy();
    await within(Promise.all([closedPromise(first.visitor), closedPromise(second)]), 5_000, 'our visitors to close');
    assert.equal(server.stats().pendingVisitors, 2, 'the server cannot see a paused visitor leave');
    await untilEqual(() => server.stats().pendingVisitors, 0, 'waiting visitors after their wait ran out');
    const third = await connectVisitor(first.publicPort);
    sockets.push(third);
    third.on('error', () => {});
    assert.match(await control.reader.line(), /^CONNECTION /);
  });
});
