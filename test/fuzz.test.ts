// Seeded fuzzing of the server's control and data ports, with a healthy tunnel running on
// the same server the whole time. Thousands of random and mutated lines go out over many
// raw connections; the test asserts only what must hold whatever the input: every line the
// server sends is a valid server line with a known reason word, no connection hangs, the
// server stays up, the healthy tunnel keeps moving exact bytes, and every resource the
// fuzzing took is given back.
//
// Reproduce a failure with BURROW_FUZZ_SEED=<seed from the test name>. Each connection's
// bytes, chunking and ending depend only on the seed and the connection's index (and the
// real connection ids it is handed, which are random by design).
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { BurrowServer } from '../index.ts';
import { ERR_REASONS, parseClientDataLine, parseServerControlLine, parseServerDataLine } from '../shared/protocol.ts';
import { HOST, untilEqual, within } from './helpers.ts';
import { assertEchoes, ONE_IDLE_TUNNEL, startEchoTunnel } from './healthy-tunnel.ts';
import { errReason, openControl, openRaw, type Raw } from './raw.ts';

// ---------------------------------------------------------------------------------------
// Configuration

const SEED = seedFromEnv();
const CONTROL_LINES = 3_000;
const DATA_LINES = 3_000;
/** Raw connections in flight at once (well under maxClientsPerIp = 64). */
const WORKERS = 8;
/** Public ports the fuzzed EXPOSEs may bind: below Linux's ephemeral range (32768-60999),
 * so a fuzzed `EXPOSE 3000 <port>` never takes a port another test got from the kernel. */
const PORT_RANGE = { min: 10_000, max: 29_999 };
const KiB = 1024;

function seedFromEnv(): number {
  const text = process.env.BURROW_FUZZ_SEED;
  if (text === undefined || text === '') return randomInt(0, 2 ** 32);
  const seed = Number(text);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32)
    throw new Error(`BURROW_FUZZ_SEED must be an integer in 0..2^32-1, got ${text}`);
  return seed;
}

// ---------------------------------------------------------------------------------------
// Pseudo-random generation

/** mulberry32: a tiny, well-mixed 32-bit generator. */
class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
  bytes(length: number): Buffer {
    const buffer = Buffer.alloc(length);
    for (let i = 0; i < length; i++) buffer[i] = this.int(256);
    return buffer;
  }
}

/** The generator of connection `index` of `kind`: independent of every other connection,
 * so the interleaving of concurrent connections does not change what each one sends. */
function rngFor(kind: 'control' | 'data', index: number): Rng {
  const salt = kind === 'control' ? 0x51ed270b : 0x2545f491;
  return new Rng((SEED ^ Math.imul(index + 1, 0x9e3779b1) ^ salt) >>> 0);
}

/** Bytes that tend to matter to a line parser. */
const INTERESTING = [0x00, 0x0d, 0x0a, 0x20, 0x20, 0x09, 0x7f, 0x80, 0xff, 0x30, 0x39, 0x2d, 0x41, 0x5f];

/** Applies 0..4 random byte-level mutations. */
function mutate(rng: Rng, line: Buffer): Buffer {
  let bytes = Buffer.from(line);
  const count = rng.pick([0, 0, 1, 1, 1, 2, 2, 3, 4]);
  for (let m = 0; m < count; m++) {
    const at = bytes.length === 0 ? 0 : rng.int(bytes.length);
    switch (rng.int(9)) {
      case 0: // flip a bit
        if (bytes.length > 0) bytes[at] = (bytes[at] ?? 0) ^ (1 << rng.int(8));
        break;
      case 1: // replace a byte with an interesting one
        if (bytes.length > 0) bytes[at] = rng.pick(INTERESTING);
        break;
      case 2: // insert an interesting byte
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([rng.pick(INTERESTING)]), bytes.subarray(at)]);
        break;
      case 3: // insert a random byte
        bytes = Buffer.concat([bytes.subarray(0, at), rng.bytes(1), bytes.subarray(at)]);
        break;
      case 4: // delete a byte
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
        break;
      case 5: // duplicate a slice
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + rng.range(1, 12)), bytes.subarray(at)]);
        break;
      case 6: // an over-long run, sometimes just over the limit
        bytes = Buffer.concat([
          bytes.subarray(0, at),
          Buffer.alloc(rng.pick([1, 10, 200, 250, 258, 300, 600, 2_000]), rng.pick([0x41, 0x39, 0x20, 0x00, 0xff])),
          bytes.subarray(at),
        ]);
        break;
      case 7: // truncate
        bytes = bytes.subarray(0, at);
        break;
      default: // double a space or change case
        bytes = Buffer.from(
          rng.chance(0.5) ? bytes.toString('latin1').replace(' ', '  ') : bytes.toString('latin1').toLowerCase(),
          'latin1',
        );
    }
  }
  return bytes;
}

/** A line terminator, or none (the next line then runs on). */
function terminator(rng: Rng): string {
  return rng.pick(['\n', '\n', '\n', '\n', '\n', '\n', '\n', '\r\n', '\r\r\n', '']);
}

function randomLine(rng: Rng): Buffer {
  if (rng.chance(0.5)) return rng.bytes(rng.range(0, 40));
  // Printable noise with spaces.
  return Buffer.from(
    Array.from({ length: rng.range(1, 40) }, () => String.fromCharCode(rng.range(0x20, 0x7e))).join(''),
    'latin1',
  );
}

function fakeId(rng: Rng): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
  return Array.from({ length: rng.pick([1, 21, 21, 64, 65]) }, () => alphabet[rng.int(alphabet.length)]).join('');
}

interface LineContext {
  /** A real waiting connection id, when one is at hand. */
  realId: string | undefined;
  healthyPort: number;
}

function controlLine(rng: Rng, ctx: LineContext): Buffer {
  const seeds = [
    'EXPOSE 3000',
    'EXPOSE 3000 0',
    'EXPOSE 1',
    'EXPOSE 65535 0',
    `EXPOSE 3000 ${ctx.healthyPort}`,
    `EXPOSE 3000 ${PORT_RANGE.min}`,
    'EXPOSE 3000 99999',
    `EXPOSE 3000 ${PORT_RANGE.min} ${fakeId(rng)}`,
    `EXPOSE 3000 ${ctx.healthyPort} ${fakeId(rng)}`,
    `EXPOSE 3000 0 ${fakeId(rng)}`,
    'EXPOSE 3000 1 2 3',
    'EXPOSE',
    'PING',
    'PONG',
    'GOAWAY',
    'PING now',
    `ID ${ctx.realId ?? fakeId(rng)}`,
    'OK 3000',
    `CONNECTION ${fakeId(rng)} 3000`,
    'ERR timeout',
    'HOWDY there',
    '',
  ];
  if (rng.chance(0.15)) return mutate(rng, randomLine(rng));
  return mutate(rng, Buffer.from(rng.pick(seeds), 'latin1'));
}

function dataLine(rng: Rng, ctx: LineContext): Buffer {
  const real = ctx.realId === undefined ? undefined : `ID ${ctx.realId}`;
  const seeds = [real, real, real, real, `ID ${fakeId(rng)}`, 'ID', 'ID a b', 'EXPOSE 3000', 'OK', ''].filter(
    (s) => s !== undefined,
  );
  if (rng.chance(0.1)) return mutate(rng, randomLine(rng));
  const line = Buffer.from(rng.pick(seeds), 'latin1');
  // Only the first line of a data connection is read: leave a third of them intact, so
  // that real ids get claimed and joined too.
  return rng.chance(0.33) ? line : mutate(rng, line);
}

/** What one raw connection does: its bytes, how they are cut into writes, how it ends. */
interface Plan {
  kind: 'control' | 'data';
  index: number;
  lines: number;
  chunks: Buffer[];
  /** Yield to the event loop before chunk i (so chunks travel as separate packets). */
  pauseBefore: boolean[];
  /** `end`: half-close and read until the server closes; `reset`: RST before chunk
   * `resetAt`; `destroy`: close abruptly (FIN) after the last write. */
  ending: 'end' | 'reset' | 'destroy';
  resetAt: number;
}

function planFor(kind: 'control' | 'data', index: number, ctx: LineContext): Plan {
  const rng = rngFor(kind, index);
  const lines = kind === 'control' ? rng.range(1, 24) : rng.range(1, 4);
  const parts: Buffer[] = [];
  for (let i = 0; i < lines; i++) {
    const line = kind === 'control' ? controlLine(rng, ctx) : dataLine(rng, ctx);
    // The last line of a connection sometimes never gets its newline.
    parts.push(line, Buffer.from(i === lines - 1 && rng.chance(0.1) ? '' : terminator(rng), 'latin1'));
  }
  const all = Buffer.concat(parts);
  // Several lines per write, or a line split across writes, down to one byte per write.
  const chunks: Buffer[] = [];
  const style = rng.int(4);
  for (let at = 0; at < all.length;) {
    const size = style === 0 ? all.length : style === 1 ? 1 : style === 2 ? rng.range(1, 8) : rng.range(1, 200);
    chunks.push(all.subarray(at, at + size));
    at += size;
  }
  const roll = rng.next();
  const ending = roll < 0.75 ? 'end' : roll < 0.9 ? 'reset' : 'destroy';
  return {
    kind,
    index,
    lines,
    chunks,
    pauseBefore: chunks.map(() => rng.chance(0.2)),
    ending,
    resetAt: rng.int(chunks.length + 1),
  };
}

function describePlan(plan: Plan): string {
  const bytes = Buffer.concat(plan.chunks);
  const shown = bytes
    .subarray(0, 160)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `seed ${SEED}, ${plan.kind} connection #${plan.index} (${plan.lines} lines, ${bytes.length} bytes in ${plan.chunks.length} writes, ending ${plan.ending}): "${shown}${bytes.length > 160 ? '...' : ''}"`;
}

// ---------------------------------------------------------------------------------------
// Running a plan against the server

interface Outcome {
  /** Complete lines the server sent. */
  lines: string[];
  /** Bytes after the last newline. */
  tail: Buffer;
  /** The server ended its side cleanly (FIN) and we did not reset. */
  graceful: boolean;
  /** The text of the first line we sent, complete with its newline, if it was sent whole. */
  firstLineSent: string | undefined;
}

async function runPlan(port: number, plan: Plan): Promise<Outcome> {
  const socket = net.connect({ host: HOST, port, noDelay: true });
  socket.on('error', () => {}); // resets are part of the game
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  let ended = false;
  socket.once('end', () => (ended = true));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await within(Promise.race([once(socket, 'connect'), closed]), 5_000, `connect (${describePlan(plan)})`);

  let sent = Buffer.alloc(0);
  let reset = false;
  for (const [i, chunk] of plan.chunks.entries()) {
    if (socket.destroyed) break;
    if (plan.ending === 'reset' && i === plan.resetAt) {
      socket.resetAndDestroy();
      reset = true;
      break;
    }
    if (plan.pauseBefore[i]) await nextTurn();
    if (socket.destroyed) break;
    socket.write(chunk);
    sent = Buffer.concat([sent, chunk]);
  }
  if (!socket.destroyed) {
    if (plan.ending === 'reset') {
      socket.resetAndDestroy();
      reset = true;
    } else if (plan.ending === 'destroy') {
      await new Promise<void>((resolve) => socket.write('', () => resolve()));
      socket.destroy();
    } else {
      socket.end();
    }
  }
  await within(closed, 5_000, `the connection to close (${describePlan(plan)})`);

  const all = Buffer.concat(received);
  const lines: string[] = [];
  let start = 0;
  for (let nl = all.indexOf(0x0a); nl !== -1; nl = all.indexOf(0x0a, start)) {
    lines.push(all.subarray(start, nl).toString('latin1'));
    start = nl + 1;
  }
  // Once its newline was written, the first line may have reached the server even if we
  // reset right after; the caller treats such an id as used, whether it was or not.
  const newline = sent.indexOf(0x0a);
  const firstLineSent = newline === -1 ? undefined : sent.subarray(0, newline).toString('latin1');
  return { lines, tail: all.subarray(start), graceful: ended && !reset, firstLineSent };
}

function checkOutcome(plan: Plan, outcome: Outcome): void {
  const where = describePlan(plan);
  for (const line of outcome.lines) {
    const parsed = plan.kind === 'control' ? parseServerControlLine(line) : parseServerDataLine(line);
    assert.ok(
      parsed.ok,
      `the server sent an invalid ${plan.kind} line ${JSON.stringify(line)} (${parsed.ok ? '' : parsed.reason}); ${where}`,
    );
    if (parsed.message.verb === 'ERR') {
      assert.ok(
        (ERR_REASONS as readonly string[]).includes(parsed.message.reason),
        `unknown ERR reason in ${JSON.stringify(line)}; ${where}`,
      );
    }
    if (plan.kind === 'control') {
      assert.notEqual(
        parsed.message.verb,
        'CONNECTION',
        `a CONNECTION on a fuzzed control connection nobody visits: ${line}; ${where}`,
      );
    }
  }
  if (plan.kind === 'data') {
    // The server answers one line, OK or ERR, and after OK only the visitor speaks (ours
    // never does).
    assert.ok(
      outcome.lines.length <= 1,
      `more than one line on a data connection: ${JSON.stringify(outcome.lines)}; ${where}`,
    );
  }
  if (outcome.graceful) {
    assert.equal(
      outcome.tail.length,
      0,
      `the server ended with a partial line ${JSON.stringify(outcome.tail.toString('latin1'))}; ${where}`,
    );
  }
}

// ---------------------------------------------------------------------------------------
// Real connection ids: a raw control connection whose tunnel gets visitors nobody answers

class IdSource {
  /** Ids of visitors still waiting, never sent whole in a valid ID line. */
  private readonly ids: string[] = [];
  readonly visitors = new Set<net.Socket>();
  private minting: Promise<void> | undefined;

  private constructor(
    readonly control: Raw,
    readonly publicPort: number,
  ) {}

  static async open(server: BurrowServer): Promise<IdSource> {
    const control = await openControl(server.controlPort);
    control.send('EXPOSE 1\n');
    const ok = await control.reader.line();
    const match = /^OK ([0-9]+) [A-Za-z0-9_-]+$/.exec(ok);
    assert.ok(match, `expected OK <port>, got ${ok}`);
    return new IdSource(control, Number(match[1]));
  }

  /** A waiting visitor's id: one already waiting, or a new visitor's. */
  async get(rng: Rng): Promise<string> {
    if (this.ids.length === 0) {
      this.minting ??= this.mint().finally(() => (this.minting = undefined));
      await this.minting;
    }
    return rng.pick(this.ids);
  }

  /** The id was sent whole in a valid ID line: its visitor is paired (or reset) now. */
  used(id: string): void {
    const at = this.ids.indexOf(id);
    if (at !== -1) this.ids.splice(at, 1);
  }

  get waiting(): readonly string[] {
    return this.ids;
  }

  private async mint(): Promise<void> {
    // Default allowHalfOpen: when the server ends the visitor, it ends back and closes.
    const visitor = net.connect({ host: HOST, port: this.publicPort });
    visitor.on('error', () => {});
    visitor.resume();
    this.visitors.add(visitor);
    visitor.once('close', () => this.visitors.delete(visitor));
    const line = await this.control.reader.line();
    const match = /^CONNECTION ([A-Za-z0-9_-]+) ([0-9]+) 127\.0\.0\.1:[0-9]+ 127\.0\.0\.1:\2$/.exec(line);
    assert.ok(match, `expected a CONNECTION line, got ${line}`);
    this.ids.push(match[1] ?? '');
  }
}

// ---------------------------------------------------------------------------------------
// Helpers on the server

/** Waits (bounded in time and turns of the event loop) until the server holds exactly the
 * healthy tunnel; closes are asynchronous, so they settle a few turns after our side. */
function untilIdle(server: BurrowServer, what: string): Promise<void> {
  return untilEqual(() => server.stats(), ONE_IDLE_TUNNEL, `server stats did not return to ${what} (seed ${SEED})`);
}

function healthyEcho(port: number, size: number, seed: number, what: string): Promise<void> {
  return assertEchoes(port, size, seed, `${what}: echo (seed ${SEED})`);
}

// ---------------------------------------------------------------------------------------

test(`fuzz: ${CONTROL_LINES} control and ${DATA_LINES} data lines beside a healthy tunnel (seed ${SEED}; rerun with BURROW_FUZZ_SEED=${SEED})`, async (t) => {
  // A short lease grace: fuzzed control connections that drop without GOAWAY leave their
  // ports under lease, and the server is idle again only once every lease has run out.
  const rig = await startEchoTunnel({
    portRange: PORT_RANGE,
    visitorTimeoutMs: 2_000,
    handshakeTimeoutMs: 2_000,
    leaseGraceMs: 100,
  });
  let ids: IdSource | undefined;
  try {
    const { server } = rig;
    await healthyEcho(rig.publicPort, 64 * KiB, SEED, 'before');
    await untilIdle(server, 'one idle tunnel before fuzzing');

    ids = await IdSource.open(server);
    const source = ids;
    const ctx = (realId: string | undefined): LineContext => ({ realId, healthyPort: rig.publicPort });

    // The job list: connection plans are made lazily (data plans need a live id), but
    // how many lines each connection carries is fixed by the seed.
    const jobs: Array<{ kind: 'control' | 'data'; index: number }> = [];
    for (let index = 0, lines = 0; lines < CONTROL_LINES; index++) {
      jobs.push({ kind: 'control', index });
      lines += rngFor('control', index).range(1, 24);
    }
    const controlJobs = jobs.length;
    for (let index = 0, lines = 0; lines < DATA_LINES; index++) {
      jobs.push({ kind: 'data', index });
      lines += rngFor('data', index).range(1, 4);
    }
    // Interleave control and data connections.
    const order = jobs.map((job, i) => ({
      job,
      key: i < controlJobs ? i / controlJobs : (i - controlJobs) / (jobs.length - controlJobs),
    }));
    order.sort((a, b) => a.key - b.key);

    let next = 0;
    let done = false;
    const counts = { control: 0, data: 0, joined: 0, exposed: 0, errs: new Map<string, number>() };
    const worker = async (): Promise<void> => {
      while (next < order.length) {
        const entry = order[next++];
        if (!entry) break;
        const { kind, index } = entry.job;
        // Decide from the connection's own generator whether it gets a real id.
        const wantsId = rngFor(kind, index + 1_000_000).chance(kind === 'data' ? 0.6 : 0.1);
        const realId = wantsId ? await source.get(rngFor(kind, index + 2_000_000)) : undefined;
        const plan = planFor(kind, index, ctx(realId));
        const outcome = await runPlan(kind === 'control' ? server.controlPort : server.dataPort, plan);
        checkOutcome(plan, outcome);
        counts[kind] += plan.lines;
        if (kind === 'data' && outcome.lines[0] === 'OK') counts.joined++;
        if (kind === 'control') counts.exposed += outcome.lines.filter((line) => line.startsWith('OK ')).length;
        for (const line of outcome.lines) {
          if (line.startsWith('ERR ')) counts.errs.set(errReason(line), (counts.errs.get(errReason(line)) ?? 0) + 1);
        }
        if (kind === 'data' && realId !== undefined && outcome.firstLineSent !== undefined) {
          const parsed = parseClientDataLine(outcome.firstLineSent);
          if (parsed.ok && parsed.message.id === realId) source.used(realId);
        }
      }
    };
    // The healthy tunnel keeps working while the fuzzing runs.
    const during = (async () => {
      for (let round = 0; round < 200 && !done; round++)
        await healthyEcho(rig.publicPort, 64 * KiB, SEED + round + 1, `during, round ${round}`);
    })();
    try {
      await within(
        Promise.all(Array.from({ length: WORKERS }, worker)),
        45_000,
        `the fuzzing to finish (seed ${SEED})`,
      );
    } finally {
      done = true;
      await during;
    }
    assert.ok(
      counts.control >= CONTROL_LINES && counts.data >= DATA_LINES,
      `ran ${counts.control} control and ${counts.data} data lines`,
    );
    t.diagnostic(
      `seed ${SEED}: ${counts.control} control lines, ${counts.data} data lines, ${counts.joined} data connections joined, ${counts.exposed} tunnels opened; ERR replies ${JSON.stringify(Object.fromEntries(counts.errs))}`,
    );
    // The fuzzing reached both ends of the protocol: joined pairs and refusals.
    assert.ok(counts.joined > 0, `no fuzzed ID line was ever accepted (seed ${SEED})`);
    assert.ok(counts.exposed > 0, `no fuzzed EXPOSE was ever accepted (seed ${SEED})`);
    for (const reason of ['bad-line', 'unknown-verb', 'bad-arguments', 'line-too-long', 'unknown-id']) {
      assert.ok(
        (counts.errs.get(reason) ?? 0) > 0,
        `no ERR ${reason} in ${JSON.stringify([...counts.errs])} (seed ${SEED})`,
      );
    }

    // Claim the visitors still waiting (each with a clean ID line), then leave.
    for (const id of [...source.waiting]) {
      const data = await openRaw(server.dataPort);
      data.send(`ID ${id}\n`);
      assert.equal(await data.reader.line(), 'OK');
      data.socket.end();
      await within(data.closed, 5_000, 'a claimed visitor to close');
      source.used(id);
    }
    source.control.socket.end();
    await within(source.control.closed, 5_000, 'the id source to close');
    await within(Promise.all([...source.visitors].map((v) => once(v, 'close'))), 5_000, 'every fuzz visitor to close');
    await untilIdle(server, 'one idle tunnel after fuzzing');

    // The server is still up, answers a new control connection as documented...
    const probe = await openControl(server.controlPort);
    try {
      probe.send('EXPOSE abc\n');
      assert.equal(errReason(await probe.reader.line()), 'bad-arguments');
    } finally {
      probe.socket.destroy();
      await probe.closed;
    }
    // ...and the healthy tunnel moves 256 KiB byte-exact.
    await healthyEcho(rig.publicPort, 256 * KiB, SEED ^ 0xabcdef, 'after');
    await untilIdle(server, 'one idle tunnel at the end');
    assert.deepEqual(rig.problems, [], `the healthy client got warnings or closed (seed ${SEED})`);
  } finally {
    if (ids) {
      ids.control.socket.destroy();
      for (const visitor of ids.visitors) visitor.destroy();
    }
    await rig.close();
  }
});
