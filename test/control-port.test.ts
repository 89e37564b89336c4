// The control port under bad input, on one running server: every documented reaction to a
// bad line, sent by hand on raw sockets, each asserted exactly (reason word; whether the
// connection stays open), while a real client's tunnel to a local echo service on the same
// server keeps carrying byte-exact 64 KiB payloads before, during and after.
//
// Per-address limits: the healthy client connects from 127.0.0.1, and so does the test of
// maxClientsPerIp. Every other raw connection comes from a loopback address of its own
// (127.0.0.0/8 is all loopback), so tests cannot trip that limit by accident.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { TraceEvent } from '../index.ts';
import { connectVisitor, HOST, readAll, untilEqual, within } from './helpers.ts';
import { assertEchoes, ONE_IDLE_TUNNEL, startEchoTunnel, type EchoTunnel } from './healthy-tunnel.ts';
import { liveBytes, loadGc } from './memory.ts';
import { assertClosedByServer, errReason, LineReader, untilRefused, type Raw } from './raw.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Documented: a control connection may have 16 lines refused; the 17th gets too-many-errors. */
const ERROR_BUDGET = 16;
/** The one server of this file. A short handshake deadline also applies to the healthy
 * client's data connections, which send their ID line at once. Leases are off
 * (`leaseGraceMs: 0`): the raw connections here drop without GOAWAY, which would otherwise
 * keep their ports under lease for the grace period, and every test checks that the port
 * pool is back to the healthy client's one port at once (leases have tests of their own). */
const LIMITS = {
  handshakeTimeoutMs: 300,
  maxTunnelsPerClient: 8,
  maxTunnels: 24,
  maxClientsPerIp: 3,
  leaseGraceMs: 0,
} as const;
/** What the server holds with only the healthy client connected and idle. */
const BASELINE = ONE_IDLE_TUNNEL;

// ---------------------------------------------------------------------------------------
// Local helpers

/** The healthy client; `problems` lists every warning or close it reported (there must be none). */
let healthy: EchoTunnel | undefined;

function rig(): EchoTunnel {
  assert.ok(healthy, 'the healthy server and client did not start');
  return healthy;
}

let addressCount = 0;
/** A loopback source address nobody else in this file uses (never 127.0.0.1). */
function freshAddress(): string {
  addressCount++;
  return `127.0.${1 + Math.floor(addressCount / 200)}.${1 + (addressCount % 200)}`;
}

/** V8's gc(), for liveBytes(gc). */
const gc = loadGc();

/** Waits until the server holds only the healthy client again, and says so exactly. */
function untilBaseline(): Promise<void> {
  const { server } = rig();
  return untilEqual(() => server.stats(), BASELINE, 'the server to be back to its baseline', 5_000);
}

let seed = 1;
/** One 64 KiB seeded payload through the healthy tunnel and back, byte for byte. */
function roundTrip(): Promise<void> {
  return assertEchoes(rig().publicPort, 64 * KiB, seed++, 'healthy tunnel: the echo');
}

/** Round trips one after another until stopped; stop() resolves with how many completed
 * (at least one: the first starts at once) or rejects with the first failure. */
function startTraffic(): { stop(): Promise<number> } {
  let stopping = false;
  let done = 0;
  const running = (async () => {
    for (let i = 0; i < 10_000 && !stopping; i++) {
      await roundTrip();
      done++;
    }
  })();
  running.catch(() => {}); // reported by stop()
  return {
    stop: async () => {
      stopping = true;
      await running;
      return done;
    },
  };
}

/** The raw sockets of one test: each from its own source address unless told otherwise,
 * all destroyed at the end of the test. */
class Conns {
  private readonly sockets = new Set<net.Socket>();
  /** Connections opened (for the count of the concurrent test). */
  opened = 0;

  /** A plain socket to the control port, connected, not read from (no 'data' listener). */
  async socket(options: { from?: string; allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
    const from = options.from ?? freshAddress();
    const socket = net.connect({
      host: HOST,
      port: rig().server.controlPort,
      localAddress: from,
      allowHalfOpen: options.allowHalfOpen ?? false,
    });
    this.sockets.add(socket);
    this.opened++;
    socket.on('error', () => {}); // tests assert on lines and closes, not on resets
    await within(once(socket, 'connect'), 5_000, `a control connection from ${from}`);
    return socket;
  }

  /** A control connection read line by line. */
  async open(options: { from?: string; allowHalfOpen?: boolean } = {}): Promise<Raw> {
    const socket = await this.socket(options);
    return rawOf(socket);
  }

  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}

function rawOf(socket: net.Socket): Raw {
  const closed = socket.destroyed
    ? Promise.resolve()
    : new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const reader = new LineReader(socket);
  return { socket, reader, closed, send: (text) => void socket.write(text) };
}

/** Writes and waits until the bytes are handed to the kernel. */
function write(socket: net.Socket, data: string | Buffer): Promise<void> {
  const written = new Promise<void>((resolve, reject) => {
    socket.write(data, (error) => (error ? reject(error) : resolve()));
  });
  return within(written, 5_000, 'a write to be flushed');
}

/** Sends `data` one byte per write, waiting for each write's callback. */
async function writeBytewise(socket: net.Socket, data: string): Promise<void> {
  for (const byte of Buffer.from(data, 'latin1')) await write(socket, Buffer.from([byte]));
}

/** The next line must be `ERR <reason> ...`. */
async function expectErr(raw: Raw, reason: string, what: string): Promise<void> {
  const line = await raw.reader.line();
  assert.equal(errReason(line), reason, `${what}: got ${JSON.stringify(line)}`);
}

/** The next line must be `OK <port>`; returns the port. */
async function expectOk(raw: Raw, what: string): Promise<number> {
  const line = await raw.reader.line();
  const match = /^OK ([1-9][0-9]*) [A-Za-z0-9_-]+$/.exec(line);
  assert.ok(match, `${what}: expected OK <port>, got ${JSON.stringify(line)}`);
  return Number(match[1]);
}

/** Asserts the connection is still open and answering: one more refused line, its answer. */
async function assertStillOpen(raw: Raw, what: string): Promise<void> {
  raw.send('HOWDY\n');
  await expectErr(raw, 'unknown-verb', `${what}: the connection should still answer`);
  assert.equal(raw.socket.readableEnded, false, `${what}: the server half-closed`);
}

function show(data: string | Buffer): string {
  return JSON.stringify(typeof data === 'string' ? data : data.toString('latin1'));
}

/**
 * Runs `body` with raw sockets of its own while the healthy tunnel carries traffic
 * throughout; checks the tunnel before and after, closes the raw sockets, and waits for
 * the server to be back to its baseline.
 */
async function withHealthyTunnel(body: (conns: Conns) => Promise<void>): Promise<void> {
  await roundTrip();
  const conns = new Conns();
  const traffic = startTraffic();
  try {
    await body(conns);
  } catch (error) {
    conns.destroyAll();
    await traffic.stop().catch(() => {});
    throw error;
  }
  conns.destroyAll();
  assert.ok((await traffic.stop()) >= 1, 'no round trip completed during the test');
  await roundTrip();
  await untilBaseline();
  await roundTrip();
}

// ---------------------------------------------------------------------------------------
// The bad lines, by the reaction they get. Each table stays within the error budget.

/** Text that is a well-formed line but not a control verb. */
const UNKNOWN_VERBS = [
  'HOWDY\n',
  'hello world\n',
  'expose 3000\n',
  'EXPOSE1\n',
  'GET / HTTP/1.1\n',
  'SSH-2.0-OpenSSH_9.6\n',
  'OK 4000\n',
  'CONNECTION abc 4000\n',
  '~!@#$%^&*()\n',
];

/** Bytes that are not printable ASCII: NUL, control characters, high bytes, UTF-8. */
const BAD_BYTES: Array<string | Buffer> = [
  Buffer.from([0x00, 0x0a]),
  'EXPOSE\x001\n',
  'EXPOSE 1\x00\n',
  Buffer.from([0xff, 0xfe, 0xfd, 0x0a]),
  Buffer.from([0x80, 0x0a]),
  Buffer.from('EXPOSE 1\x7f\n', 'latin1'),
  'EXPOSE\t1\n',
  Buffer.from('EXPOSE 1 é\n', 'utf8'),
  'EXPOSE 1\x1b[0m\n',
  'EXPOSE 1\r2\n',
];

/** Empty lines and lines whose fields are not single-space separated. */
const BAD_SPACING = ['\n', '\r\n', ' \n', 'EXPOSE  1\n', ' EXPOSE 1\n', 'EXPOSE 1 \n', 'EXPOSE 1\r\r\n'];

/** EXPOSE with missing, extra or malformed ports. (`EXPOSE 1 2 3` is valid since leases:
 * its third field is a lease token; extra arguments are a fourth field, or a lease with
 * remotePort 0.) 15 lines plus the check that the connection still answers: exactly the
 * error budget of 16. */
const BAD_ARGUMENTS = [
  'EXPOSE abc\n',
  'EXPOSE -1\n',
  'EXPOSE 70000\n',
  'EXPOSE 3000 99999\n',
  'EXPOSE\n',
  'EXPOSE 1 2 3 4\n',
  'EXPOSE 1 0 abc\n',
  'EXPOSE 0\n',
  'EXPOSE 65536\n',
  'EXPOSE 080\n',
  'EXPOSE +80\n',
  'EXPOSE 1.5\n',
  'EXPOSE 0x50\n',
  'EXPOSE 1 -1\n',
  'EXPOSE 1 x\n',
];

/** Sends each line and checks its answer before the next; then the connection must still
 * answer. */
async function refusesOneByOne(raw: Raw, lines: Array<string | Buffer>, reason: string): Promise<void> {
  for (const line of lines) {
    raw.socket.write(line);
    await expectErr(raw, reason, `reply to ${show(line)}`);
  }
  await assertStillOpen(raw, `after ${lines.length} × ${reason}`);
}

/** Sends every line in one write: one answer per line, in order; the connection stays open. */
async function refusesPipelined(raw: Raw, lines: Array<string | Buffer>, reason: string): Promise<void> {
  raw.socket.write(Buffer.concat(lines.map((line) => (typeof line === 'string' ? Buffer.from(line, 'latin1') : line))));
  for (const line of lines) await expectErr(raw, reason, `pipelined reply to ${show(line)}`);
  await assertStillOpen(raw, `after ${lines.length} pipelined × ${reason}`);
}

// ---------------------------------------------------------------------------------------
// Scenarios: each uses connections of its own, asserts every reaction, and is run both by
// its own test and, many at once, by the concurrent test.

/** One connection of its own refuses every line of `lines` with `reason`, one by one or
 * (`pipelined`) all in one write, and stays open. */
async function refusalScenario(
  conns: Conns,
  lines: Array<string | Buffer>,
  reason: string,
  pipelined = false,
): Promise<void> {
  const refuse = pipelined ? refusesPipelined : refusesOneByOne;
  await refuse(await conns.open(), lines, reason);
}

/** `\r\n` endings: EXPOSE gets OK, a bad line gets its ERR. Opens one tunnel. */
async function crlfScenario(conns: Conns): Promise<number> {
  const raw = await conns.open();
  raw.send('EXPOSE 1\r\n');
  const port = await expectOk(raw, 'EXPOSE 1\\r\\n');
  raw.send('HOWDY\r\n');
  await expectErr(raw, 'unknown-verb', 'HOWDY\\r\\n');
  return port;
}

/** A valid EXPOSE, one write per byte, gets OK. `afterFirstLine` sends a line first (so the
 * first-line deadline cannot matter under load). Opens one tunnel. */
async function bytewiseScenario(conns: Conns, afterFirstLine = false): Promise<number> {
  const raw = await conns.open();
  if (afterFirstLine) {
    raw.send('HOWDY\n');
    await expectErr(raw, 'unknown-verb', 'the line before the byte-wise one');
  }
  await writeBytewise(raw.socket, 'EXPOSE 1\n');
  const port = await expectOk(raw, 'EXPOSE 1 sent byte by byte');
  await writeBytewise(raw.socket, 'HOWDY\r\n');
  await expectErr(raw, 'unknown-verb', 'HOWDY\\r\\n sent byte by byte');
  return port;
}

/** 300 bytes and a newline, with a valid EXPOSE right after: line-too-long, the EXPOSE is
 * never answered, the server closes. */
async function tooLongWithNewlineScenario(conns: Conns): Promise<void> {
  const raw = await conns.open();
  raw.send(`${'A'.repeat(300)}\nEXPOSE 1\n`);
  await expectErr(raw, 'line-too-long', '300 bytes and a newline');
  await assertClosedByServer(raw);
}

/** 258 bytes and no newline: more than 257 buffered is line-too-long, then close. */
async function tooLongNoNewlineScenario(conns: Conns): Promise<void> {
  const raw = await conns.open();
  raw.send('B'.repeat(258));
  await expectErr(raw, 'line-too-long', '258 bytes without a newline');
  await assertClosedByServer(raw);
}

/** Says nothing: ERR timeout after handshakeTimeoutMs, then close. */
async function silentScenario(conns: Conns): Promise<void> {
  const raw = await conns.open();
  await expectErr(raw, 'timeout', 'a connection that sends nothing');
  await assertClosedByServer(raw);
}

/** Starts a line and never finishes it: the deadline covers the whole first line. */
async function partialLineScenario(conns: Conns): Promise<void> {
  const raw = await conns.open();
  raw.send('EXPOSE 1');
  await expectErr(raw, 'timeout', 'a first line that never ends');
  await assertClosedByServer(raw);
}

/** 17 refused lines in one write: 16 answers, then too-many-errors and close. */
async function errorBudgetScenario(conns: Conns): Promise<void> {
  const raw = await conns.open();
  raw.send('HOWDY\n'.repeat(ERROR_BUDGET + 1) + 'EXPOSE 1\n');
  for (let i = 1; i <= ERROR_BUDGET; i++) await expectErr(raw, 'unknown-verb', `refused line ${i}`);
  await expectErr(raw, 'too-many-errors', `refused line ${ERROR_BUDGET + 1}`);
  await assertClosedByServer(raw);
}

/** `count` EXPOSEs in one write: maxTunnelsPerClient OKs, 16 too-many-tunnels, then
 * too-many-errors and close. Returns the public ports it was given. */
async function manyExposesScenario(conns: Conns, count = 1000): Promise<number[]> {
  const raw = await conns.open();
  raw.send('EXPOSE 1\n'.repeat(count));
  const ports: number[] = [];
  for (let i = 0; i < LIMITS.maxTunnelsPerClient; i++) ports.push(await expectOk(raw, `EXPOSE ${i + 1} of ${count}`));
  assert.equal(new Set(ports).size, ports.length, `duplicate public ports: ${ports.join(' ')}`);
  for (let i = 0; i < ERROR_BUDGET; i++)
    await expectErr(raw, 'too-many-tunnels', `EXPOSE ${LIMITS.maxTunnelsPerClient + i + 1}`);
  await expectErr(raw, 'too-many-errors', `EXPOSE ${LIMITS.maxTunnelsPerClient + ERROR_BUDGET + 1}`);
  await assertClosedByServer(raw);
  return ports;
}

/** maxClientsPerIp from one address nobody else uses: the connection beyond the limit gets
 * too-many-connections and is closed. */
async function perAddressScenario(conns: Conns): Promise<void> {
  const from = freshAddress();
  for (let i = 0; i < LIMITS.maxClientsPerIp; i++) {
    const raw = await conns.open({ from });
    raw.send('HOWDY\n');
    await expectErr(raw, 'unknown-verb', `connection ${i + 1} from ${from}`);
  }
  const extra = await conns.open({ from });
  await expectErr(extra, 'too-many-connections', `connection ${LIMITS.maxClientsPerIp + 1} from ${from}`);
  await assertClosedByServer(extra);
}

const HOWDY_CHUNK = Buffer.from('HOWDY\n'.repeat(Math.floor((64 * KiB) / 6)), 'latin1');

/** Sends `total` bytes of refused lines without ever reading, then reads what came: the
 * error budget closed it (16 answers, too-many-errors, end). */
async function neverReadsScenario(conns: Conns, total = 256 * KiB): Promise<void> {
  const socket = await conns.socket(); // paused: no 'data' listener until it has sent all
  for (let sent = 0; sent < total; sent += HOWDY_CHUNK.length) await write(socket, HOWDY_CHUNK);
  const raw = rawOf(socket);
  for (let i = 1; i <= ERROR_BUDGET; i++) await expectErr(raw, 'unknown-verb', `unread reply ${i}`);
  await expectErr(raw, 'too-many-errors', `unread reply ${ERROR_BUDGET + 1}`);
  await assertClosedByServer(raw);
}

// ---------------------------------------------------------------------------------------
// The server and the healthy client

before(async () => {
  healthy = await startEchoTunnel(LIMITS);
});

after(async () => {
  await healthy?.close();
});

// ---------------------------------------------------------------------------------------
// Tests

test('baseline: the server holds only the healthy client, whose tunnel echoes 64 KiB byte-exact', async () => {
  assert.equal(rig().client.tunnels.length, 1);
  await roundTrip();
  await untilBaseline();
});

for (const [name, lines, reason] of [
  [
    'garbage text and unknown verbs get ERR unknown-verb, one per line, and the connection stays open',
    UNKNOWN_VERBS,
    'unknown-verb',
  ],
  ['binary bytes, NUL and non-ASCII get ERR bad-line and the connection stays open', BAD_BYTES, 'bad-line'],
  ['an empty line (and bad spacing) gets ERR bad-line and the connection stays open', BAD_SPACING, 'bad-line'],
] as const) {
  test(name, async () => {
    await withHealthyTunnel(async (conns) => {
      await refusalScenario(conns, lines, reason);
      await refusalScenario(conns, lines, reason, true);
    });
  });
}

test('EXPOSE abc / -1 / 70000 / 3000 99999 / no port / 1 2 3 4 / 1 0 <lease> get ERR bad-arguments; the connection stays open and usable', async () => {
  await withHealthyTunnel(async (conns) => {
    const raw = await conns.open();
    await refusesOneByOne(raw, BAD_ARGUMENTS, 'bad-arguments');
    raw.send('EXPOSE 1\n');
    await expectOk(raw, 'a valid EXPOSE after the refused ones');
    await refusalScenario(conns, BAD_ARGUMENTS, 'bad-arguments', true);
  });
});

test('PING is answered PONG outside the reply order; PONG and GOAWAY get no answer; with an argument each is ERR bad-arguments', async () => {
  await withHealthyTunnel(async (conns) => {
    const raw = await conns.open();
    // A signal as the very first line is a first line like any other.
    raw.send('PING\n');
    assert.equal(await raw.reader.line(), 'PONG');
    // Between two refused lines: their two ERRs keep their order; the PONG takes no
    // place among the replies (it may come before them), and PONG gets nothing.
    raw.send('HOWDY\nPING\r\nPONG\nEXPOSE abc\n');
    const lines = [await raw.reader.line(), await raw.reader.line(), await raw.reader.line()];
    assert.deepEqual(
      lines.filter((line) => line === 'PONG'),
      ['PONG'],
      lines.join(' | '),
    );
    assert.deepEqual(
      lines.filter((line) => line !== 'PONG').map((line) => errReason(line)),
      ['unknown-verb', 'bad-arguments'],
      lines.join(' | '),
    );
    // Signals take no argument.
    for (const line of ['PING x\n', 'PONG 1\n', 'GOAWAY now\n']) {
      raw.send(line);
      await expectErr(raw, 'bad-arguments', `reply to ${show(line)}`);
    }
    await assertStillOpen(raw, 'after the signals');
    // GOAWAY: no answer; we close next, and the server closes too without a line.
    raw.send('EXPOSE 1\n');
    const port = await expectOk(raw, 'EXPOSE before GOAWAY');
    raw.send('GOAWAY\n');
    raw.socket.end();
    await assertClosedByServer(raw);
    await untilRefused(port);
  });
});

test('\\r\\n line endings are accepted: EXPOSE 1\\r\\n gets OK and its tunnel is live', async () => {
  await withHealthyTunnel(async (conns) => {
    const raw = await conns.open();
    raw.send('EXPOSE 1\r\nEXPOSE 1 0\r\n');
    const first = await expectOk(raw, 'EXPOSE 1\\r\\n');
    const second = await expectOk(raw, 'EXPOSE 1 0\\r\\n');
    assert.notEqual(first, second);
    // The tunnel is real: a visitor on its port is announced on this connection.
    const visitor = await connectVisitor(first);
    try {
      const announced = await raw.reader.line();
      assert.match(
        announced,
        new RegExp(`^CONNECTION [A-Za-z0-9_-]{1,64} ${first} 127\\.0\\.0\\.1:[0-9]+ 127\\.0\\.0\\.1:${first}$`),
      );
    } finally {
      visitor.destroy();
    }
    raw.send('HOWDY\r\n');
    await expectErr(raw, 'unknown-verb', 'HOWDY\\r\\n');
    raw.socket.destroy();
    await untilRefused(first);
    await untilRefused(second);
    assert.ok(await crlfScenario(conns));
  });
});

test('a valid EXPOSE sent one byte per write gets OK (as the very first line, too)', async () => {
  await withHealthyTunnel(async (conns) => {
    await bytewiseScenario(conns);
    await bytewiseScenario(conns, true);
    // A line split anywhere across writes: "EXPOSE 1\nHOW" + "DY\n".
    const raw = await conns.open();
    await write(raw.socket, 'EXPOSE 1\nHOW');
    await expectOk(raw, 'EXPOSE 1 before a split line');
    await write(raw.socket, 'DY\n');
    await expectErr(raw, 'unknown-verb', 'HOW + DY');
  });
});

test('an over-long line with a newline gets ERR line-too-long, the server closes, and its tunnel goes with it; 256 bytes is still a line', async () => {
  await withHealthyTunnel(async (conns) => {
    const raw = await conns.open();
    // The limit is 256 bytes: a 256-byte line is an ordinary (unknown) verb.
    raw.send(`${'A'.repeat(256)}\n`);
    await expectErr(raw, 'unknown-verb', '256 bytes and a newline');
    // 256 bytes and a \r buffered (257 bytes) is not too long; its \n makes it a line.
    await write(raw.socket, `${'B'.repeat(256)}\r`);
    raw.send('\n');
    await expectErr(raw, 'unknown-verb', '256 bytes, \\r, then \\n in a later write');
    raw.send('EXPOSE 1\n');
    const port = await expectOk(raw, 'EXPOSE 1 before the over-long line');
    raw.send(`${'C'.repeat(257)}\n`);
    await expectErr(raw, 'line-too-long', '257 bytes and a newline');
    await assertClosedByServer(raw);
    await untilRefused(port);

    await tooLongWithNewlineScenario(conns);

    // 64 KiB in one line, newline included.
    const big = await conns.open();
    big.send(`${'D'.repeat(64 * KiB)}\n`);
    await expectErr(big, 'line-too-long', '64 KiB and a newline');
    await assertClosedByServer(big);
  });
});

test('an over-long line whose newline never comes: ERR line-too-long, the server closes while 4 MiB keep arriving, memory stays bounded', async () => {
  await withHealthyTunnel(async (conns) => {
    await tooLongNoNewlineScenario(conns);

    // allowHalfOpen: we keep sending after the server's FIN, as a flooding peer would.
    const raw = await conns.open({ allowHalfOpen: true });
    let gone = false;
    void raw.closed.then(() => (gone = true));
    const chunk = Buffer.alloc(64 * KiB, 'x');
    const before = liveBytes(gc);
    let sent = 0;
    for (let i = 0; i < (4 * MiB) / chunk.length && !gone; i++) {
      try {
        await write(raw.socket, chunk);
      } catch {
        break; // the server has destroyed the connection: our write was reset
      }
      sent += chunk.length;
    }
    const grown = liveBytes(gc) - before;
    assert.ok(sent > 64 * KiB, `only ${sent} bytes could be sent`);
    assert.ok(grown < 2 * MiB, `memory grew by ${grown} bytes while ${sent} bytes of one endless line arrived`);

    // What came back: the ERR, then the server's FIN, nothing else.
    await expectErr(raw, 'line-too-long', `${sent} bytes without a newline`);
    assert.equal(await raw.reader.next(), null, 'expected the server to half-close after line-too-long');
    // The server destroys its side once its linger is over, even though we never closed ours.
    await untilEqual(() => rig().server.stats().clients, BASELINE.clients, 'the server to drop the connection', 5_000);
  });
});

test('a silent client gets ERR timeout after handshakeTimeoutMs and is closed; the deadline covers the first line only', async () => {
  await withHealthyTunnel(async (conns) => {
    // One that said something first, and has been connected longer than the deadline
    // by the time the silent one below is timed out.
    const talker = await conns.open();
    talker.send('HOWDY\n');
    await expectErr(talker, 'unknown-verb', 'the first line of the talker');

    await Promise.all([silentScenario(conns), partialLineScenario(conns)]);

    await assertStillOpen(talker, 'a connection whose first line came in time');
    talker.send('EXPOSE 1\n');
    await expectOk(talker, 'EXPOSE after the deadline passed');
  });
});

test('error budget: 16 refused lines are answered, the 17th gets ERR too-many-errors, the connection closes and its tunnel with it', async () => {
  await withHealthyTunnel(async (conns) => {
    const raw = await conns.open();
    raw.send('EXPOSE 1\n');
    const port = await expectOk(raw, 'EXPOSE 1');
    const visitor = await connectVisitor(port);
    visitor.on('error', () => {});
    const visitorGot = readAll(visitor);
    assert.match(
      await raw.reader.line(),
      new RegExp(`^CONNECTION [A-Za-z0-9_-]{1,64} ${port} 127\\.0\\.0\\.1:[0-9]+ 127\\.0\\.0\\.1:${port}$`),
    );

    // Every kind of refusal counts, a taken port included.
    const refused: Array<[string | Buffer, string]> = [
      ['HOWDY\n', 'unknown-verb'],
      [Buffer.from([0x00, 0x0a]), 'bad-line'],
      ['\n', 'bad-line'],
      ['EXPOSE abc\n', 'bad-arguments'],
      [`EXPOSE 1 ${rig().publicPort}\n`, 'port-in-use'],
      ['EXPOSE 70000\n', 'bad-arguments'],
      ['expose 1\n', 'unknown-verb'],
      [Buffer.from([0xff, 0x0a]), 'bad-line'],
    ];
    for (let i = 0; i < ERROR_BUDGET; i++) {
      const [line, reason] = refused[i % refused.length] ?? ['', ''];
      raw.socket.write(line);
      await expectErr(raw, reason, `refused line ${i + 1}: ${show(line)}`);
    }
    raw.send('HOWDY\n');
    await expectErr(raw, 'too-many-errors', `refused line ${ERROR_BUDGET + 1}`);
    await assertClosedByServer(raw);
    await untilRefused(port);
    const got = await within(visitorGot, 5_000, 'the waiting visitor of the closed tunnel to be closed');
    assert.equal(got.length, 0);

    // The same budget when all 17 arrive in one write.
    await errorBudgetScenario(conns);
  });
});

test('error budget: refusals count in request order when a taken port is refused among pipelined bad lines', async () => {
  await withHealthyTunnel(async (conns) => {
    const raw = await conns.open();
    // Refused lines 1-15, 16 (a taken port: refused only in its turn), 17, 18.
    raw.send('HOWDY\n'.repeat(ERROR_BUDGET - 1) + `EXPOSE 1 ${rig().publicPort}\n` + 'HOWDY\nHOWDY\n');
    for (let i = 1; i < ERROR_BUDGET; i++) await expectErr(raw, 'unknown-verb', `refused line ${i}`);
    await expectErr(raw, 'port-in-use', `refused line ${ERROR_BUDGET} (EXPOSE of a taken port)`);
    await expectErr(raw, 'too-many-errors', `refused line ${ERROR_BUDGET + 1}`);
    await assertClosedByServer(raw);
  });
});

test('1000 EXPOSEs in one write: 8 OK, 16 too-many-tunnels, too-many-errors and close; the tunnels close and their ports refuse', async () => {
  await withHealthyTunnel(async (conns) => {
    const ports = await manyExposesScenario(conns, 1000);
    // The tunnels closed before the last line was sent.
    assert.equal(rig().server.stats().tunnels, BASELINE.tunnels);
    assert.equal(rig().server.stats().ports, BASELINE.ports);
    for (const port of ports) await untilRefused(port);
  });
});

test('maxClientsPerIp: beside the healthy client, 2 more connect from 127.0.0.1, the next gets ERR too-many-connections and is closed; after one leaves a new one is accepted', async () => {
  await withHealthyTunnel(async (conns) => {
    const { server } = rig();
    const accepted: Raw[] = [];
    let refused: Raw | undefined;
    for (let i = 0; i < 10 && refused === undefined; i++) {
      const raw = await conns.open({ from: HOST });
      raw.send('HOWDY\n');
      const line = await raw.reader.line();
      if (errReason(line) === 'too-many-connections') refused = raw;
      else {
        assert.equal(errReason(line), 'unknown-verb', `connection ${i + 1} from ${HOST}: ${line}`);
        accepted.push(raw);
      }
    }
    assert.ok(refused, 'no connection was refused');
    assert.equal(accepted.length, LIMITS.maxClientsPerIp - 1, 'the healthy client holds one of the places');
    await assertClosedByServer(refused);
    assert.equal(server.stats().clients, LIMITS.maxClientsPerIp);
    assert.equal(server.stats().clientAddresses, 1);

    // Another address is not affected.
    const elsewhere = await conns.open();
    await assertStillOpen(elsewhere, 'a connection from another address');
    assert.equal(server.stats().clientAddresses, 2);

    // One leaves: its place is free again, and only one.
    accepted[0]?.socket.destroy();
    await untilEqual(
      () => server.stats().clients,
      LIMITS.maxClientsPerIp,
      'the server to see the connection go',
      5_000,
    );
    const again = await conns.open({ from: HOST });
    await assertStillOpen(again, 'a connection after one from the same address left');
    const over = await conns.open({ from: HOST });
    await expectErr(over, 'too-many-connections', 'the next connection from 127.0.0.1');
    await assertClosedByServer(over);
  });
});

test('maxTunnels: the EXPOSE beyond it gets ERR server-full, the connection stays open, and a freed tunnel can be had again', async () => {
  await withHealthyTunnel(async (conns) => {
    const { server } = rig();
    const perClient = LIMITS.maxTunnelsPerClient;
    const exposeAll = async (raw: Raw, count: number): Promise<number[]> => {
      raw.send('EXPOSE 1\n'.repeat(count));
      const ports: number[] = [];
      for (let i = 0; i < count; i++) ports.push(await expectOk(raw, `EXPOSE ${i + 1}`));
      return ports;
    };
    const a = await conns.open();
    const aPorts = await exposeAll(a, perClient);
    const b = await conns.open();
    await exposeAll(b, perClient);
    // 1 (healthy) + 8 + 8 + 7 = 24 = maxTunnels: C's 8th EXPOSE is one too many.
    const c = await conns.open();
    const room = LIMITS.maxTunnels - BASELINE.tunnels - 2 * perClient;
    c.send('EXPOSE 1\n'.repeat(room + 1));
    for (let i = 0; i < room; i++) await expectOk(c, `EXPOSE ${i + 1} of the third connection`);
    await expectErr(c, 'server-full', 'the EXPOSE beyond maxTunnels');
    assert.equal(server.stats().tunnels, LIMITS.maxTunnels);
    await assertStillOpen(c, 'after server-full');
    c.send('EXPOSE 1\n');
    await expectErr(c, 'server-full', 'another EXPOSE while full');
    await roundTrip(); // the existing tunnel serves while the server is full

    a.socket.destroy();
    await untilEqual(
      () => server.stats().tunnels,
      LIMITS.maxTunnels - perClient,
      "the first connection's tunnels to close",
      5_000,
    );
    for (const port of aPorts) await untilRefused(port);
    c.send('EXPOSE 1\n');
    await expectOk(c, 'EXPOSE once tunnels were freed');
  });
});

test('a client that sends refused lines and never reads: the error budget closes it (not the unread-reply cap), memory stays bounded', async () => {
  await withHealthyTunnel(async (conns) => {
    const { server } = rig();
    const from = freshAddress();
    // What the server sends on this connection, seen from inside (we never read it).
    let conn: string | undefined;
    const sent: string[] = [];
    const onTrace = (event: TraceEvent): void => {
      if (event.side !== 'server') return;
      if (event.kind === 'event' && event.text.startsWith(`client connected from ${from}:`)) conn = event.conn;
      else if (event.kind === 'send' && event.conn === conn) sent.push(event.text);
    };
    server.on('trace', onTrace);
    try {
      const socket = await conns.socket({ from }); // no 'data' listener: never read
      let gone = false;
      socket.once('close', () => (gone = true));
      const before = liveBytes(gc);
      let written = 0;
      for (let i = 0; i < (4 * MiB) / HOWDY_CHUNK.length && !gone; i++) {
        try {
          await write(socket, HOWDY_CHUNK);
        } catch {
          break; // the server has destroyed the connection
        }
        written += HOWDY_CHUNK.length;
      }
      const grown = liveBytes(gc) - before;
      assert.ok(grown < 2 * MiB, `memory grew by ${grown} bytes while ${written} bytes of lines were never read back`);
      await untilEqual(() => server.stats().clients, BASELINE.clients, 'the server to close the connection', 5_000);
      assert.ok(conn, 'the server never reported the connection');
      assert.deepEqual(
        sent.map((line) => errReason(line)),
        [...Array<string>(ERROR_BUDGET).fill('unknown-verb'), 'too-many-errors'],
        `the server sent: ${sent.join(' | ')}`,
      );
    } finally {
      server.off('trace', onTrace);
    }
    // And read back on a fresh connection that stops writing in time: exactly those lines.
    await neverReadsScenario(conns);
  });
});

test('50 raw connections doing all of the above at once do not disturb the healthy tunnel', async () => {
  await withHealthyTunnel(async (conns) => {
    const kinds: Array<(conns: Conns) => Promise<unknown>> = [
      (c) => refusalScenario(c, UNKNOWN_VERBS, 'unknown-verb'),
      (c) => refusalScenario(c, BAD_BYTES, 'bad-line', true),
      (c) => refusalScenario(c, BAD_SPACING, 'bad-line'),
      (c) => refusalScenario(c, BAD_ARGUMENTS, 'bad-arguments', true),
      (c) => crlfScenario(c), // one tunnel
      (c) => bytewiseScenario(c, true), // one tunnel
      (c) => tooLongWithNewlineScenario(c),
      (c) => tooLongNoNewlineScenario(c),
      (c) => silentScenario(c),
      (c) => errorBudgetScenario(c),
      (c) => neverReadsScenario(c),
    ];
    const runs: Array<Promise<unknown>> = [];
    for (let round = 0; round < 4; round++) for (const kind of kinds) runs.push(kind(conns));
    runs.push(perAddressScenario(conns)); // 4 connections
    runs.push(partialLineScenario(conns));
    runs.push(manyExposesScenario(conns, 1000)); // 8 tunnels: 1 + 4 + 4 + 8 stays within maxTunnels
    runs.push(roundTrip(), roundTrip(), roundTrip());
    const results = await Promise.allSettled(runs);
    const failures = results.flatMap((result) => (result.status === 'rejected' ? [String(result.reason)] : []));
    assert.deepEqual(failures, [], `${failures.length} scenarios failed`);
    assert.equal(conns.opened, 50);
  });
});

test('afterwards: the server holds only the healthy client again, which never warned nor closed and still echoes byte-exact', async () => {
  await untilBaseline();
  await roundTrip();
  await untilBaseline();
  assert.deepEqual(rig().problems, []);
  assert.equal(rig().client.tunnels.length, 1);
});
