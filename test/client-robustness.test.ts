// The client against a fake server: a plain TCP control port and data port speaking the
// protocol by hand, so each test decides exactly which bytes the client receives and sees
// exactly which connections the client opens (and that it closes them).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { BurrowError, startClient, type BurrowClient, type ClientOptions } from '../index.ts';
import { HOST, within } from './helpers.ts';
import { LineReader, rejectsWith } from './raw.ts';

// ---------------------------------------------------------------------------------------
// Local helpers

/** A public port the fake server claims to have opened (nothing listens there). */
const FAKE_PUBLIC_PORT = 23456;

interface Accepted {
  socket: net.Socket;
  reader: LineReader;
  /** Resolves when the socket has fully closed. */
  closed: Promise<void>;
}

/** A plain listener on 127.0.0.1:0 that keeps every connection it accepts, in order. */
class FakeListener {
  readonly accepted: Accepted[] = [];
  private taken = 0;
  private readonly waiters: Array<() => void> = [];
  private constructor(
    readonly server: net.Server,
    readonly port: number,
  ) {}

  static async open(onAccept: (conn: Accepted) => void = () => {}): Promise<FakeListener> {
    const self: { listener?: FakeListener } = {};
    const pending: Accepted[] = [];
    const server = net.createServer((socket) => {
      socket.on('error', () => {}); // tests assert on lines and closes, not on resets
      const conn: Accepted = {
        socket,
        reader: new LineReader(socket),
        closed: new Promise<void>((resolve) => socket.once('close', () => resolve())),
      };
      if (self.listener) self.listener.add(conn);
      else pending.push(conn);
      onAccept(conn);
    });
    server.listen(0, HOST);
    await once(server, 'listening');
    const listener = new FakeListener(server, (server.address() as net.AddressInfo).port);
    self.listener = listener;
    for (const conn of pending) listener.add(conn);
    return listener;
  }

  /** The next accepted connection not yet handed out by next(). */
  async next(ms = 5_000): Promise<Accepted> {
    const ready = (): boolean => this.accepted.length > this.taken;
    if (!ready())
      await within(new Promise<void>((resolve) => this.waiters.push(resolve)), ms, `a connection on port ${this.port}`);
    const conn = this.accepted[this.taken++];
    assert.ok(conn);
    return conn;
  }

  /**
   * How many connections the client has opened here so far. A probe connection is made
   * and awaited on the accept side: a loopback accept queue is FIFO, so any connection the
   * client started before this call has been accepted by the time the probe is. This is
   * how the tests prove that something was *not* dialed without sleeping.
   */
  async countAfterProbe(): Promise<number> {
    const probe = net.connect({ host: HOST, port: this.port });
    probe.on('error', () => {});
    try {
      await within(once(probe, 'connect'), 5_000, 'the probe to connect');
      const localPort = probe.localPort;
      const isProbe = (conn: Accepted): boolean => conn.socket.remotePort === localPort;
      for (let i = 0; i < 1_000 && !this.accepted.some(isProbe); i++) {
        await within(new Promise<void>((resolve) => this.waiters.push(resolve)), 5_000, 'the probe to be accepted');
      }
      const index = this.accepted.findIndex(isProbe);
      assert.ok(index >= 0, 'the probe was never accepted');
      const [probeConn] = this.accepted.splice(index, 1);
      probeConn?.socket.destroy();
      if (this.taken > index) this.taken--;
      return this.accepted.length;
    } finally {
      probe.destroy();
    }
  }

  /** Drops a connection that was already handed out from the record (and the counts). */
  forget(conn: Accepted): void {
    const index = this.accepted.indexOf(conn);
    if (index === -1) return;
    this.accepted.splice(index, 1);
    if (this.taken > index) this.taken--;
  }

  /** Resolves once every connection ever accepted here has closed. */
  async allClosed(what: string, ms = 5_000): Promise<void> {
    await within(Promise.all(this.accepted.map((conn) => conn.closed)), ms, `every connection on ${what} to close`);
  }

  async close(): Promise<void> {
    for (const conn of this.accepted) conn.socket.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private add(conn: Accepted): void {
    this.accepted.push(conn);
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/** A fake control port, a fake data port, and a local echo service the client dials. */
interface Fake {
  control: FakeListener;
  data: FakeListener;
  local: FakeListener;
  close(): Promise<void>;
}

async function openFake(): Promise<Fake> {
  const control = await FakeListener.open();
  const data = await FakeListener.open();
  // The local service echoes, and closes its side when the client closes its side.
  const local = await FakeListener.open((conn) => conn.socket.pipe(conn.socket));
  return {
    control,
    data,
    local,
    close: async () => {
      await control.close();
      await data.close();
      await local.close();
    },
  };
}

/** A started client whose EXPOSE the fake answered with `reply` (default `OK <port>`),
 * recording every warning and close event. */
interface Started {
  client: BurrowClient;
  control: Accepted;
  warnings: BurrowError[];
  /** Resolves with the error of the client's first 'close' event. */
  closed: Promise<BurrowError | undefined>;
  /** Resolves once at least `count` warnings have been emitted. */
  warned(count: number, ms?: number): Promise<void>;
}

/** What the fake answers the client's HELLO by default: everything but fin-notice, whose
 * `FIN <id>` per FIN the tests would have to send by hand. */
const FAKE_HELLO = 'HELLO ping goaway id-reply refuse\n';

/** Starts a client against the fake and takes its control connection, whose first line
 * must be the HELLO (answered with `hello`; null: ignored, as a minimal server does), then
 * the EXPOSE of the fake's local port (left unanswered). */
async function beginStart(
  fake: Fake,
  options: Partial<ClientOptions>,
  hello: string | null = FAKE_HELLO,
): Promise<{ starting: Promise<BurrowClient>; control: Accepted }> {
  const starting = startClient({
    tunnels: [{ localPort: fake.local.port }],
    server: HOST,
    localHost: HOST,
    controlPort: fake.control.port,
    dataPort: fake.data.port,
    connectTimeoutMs: 5_000,
    // close() is graceful: it lets joined connections finish for shutdownTimeoutMs (10 s by
    // default), and the fake's echo connections never finish by themselves. None of these
    // tests is about that wait, so it is short.
    shutdownTimeoutMs: 200,
    ...options,
  });
  starting.catch(() => {}); // awaited by the caller; this only keeps an early rejection handled
  const control = await fake.control.next();
  assert.match(
    await control.reader.line(),
    /^HELLO ping goaway id-reply fin-notice=[A-Za-z0-9_-]{21} refuse data-port http prewarm$/,
  );
  if (hello !== null) control.socket.write(hello);
  assert.equal(await control.reader.line(), `EXPOSE ${fake.local.port}`);
  return { starting, control };
}

/** The client's start-up check of the data port comes first there: a connection that says
 * nothing. The tests count dial-backs, which it is not. */
async function skipDataCheck(fake: Fake): Promise<void> {
  const check = await fake.data.next();
  assert.equal(await check.reader.next(), null, 'the data-port check sends nothing');
  fake.data.forget(check);
}

async function startAgainst(
  fake: Fake,
  options: Partial<ClientOptions> = {},
  reply: string | Buffer = `OK ${FAKE_PUBLIC_PORT}\n`,
  hello: string | null = FAKE_HELLO,
): Promise<Started> {
  const { starting, control } = await beginStart(fake, options, hello);
  control.socket.write(reply);
  const client = await within(starting, 5_000, 'startClient to resolve');
  await skipDataCheck(fake);
  const warnings: BurrowError[] = [];
  const warningWaiters: Array<() => void> = [];
  client.on('warning', (warning) => {
    warnings.push(warning);
    for (const waiter of warningWaiters.splice(0)) waiter();
  });
  const closed = new Promise<BurrowError | undefined>((resolve) => client.once('close', resolve));
  const warned = async (count: number, ms = 5_000): Promise<void> => {
    for (let i = 0; i < count + 100 && warnings.length < count; i++) {
      await within(
        new Promise<void>((resolve) => warningWaiters.push(resolve)),
        ms,
        `${count} warning(s), got ${warnings.length}`,
      );
    }
    assert.ok(warnings.length >= count);
  };
  return { client, control, warnings, closed, warned };
}

/** Runs `body` with a fake server and a client started against it (startAgainst with the
 * `client` options and the `reply`), then destroys the client (again, if `body` closed it) and the
 * fake. */
async function withStarted(
  setup: { client?: Partial<ClientOptions>; reply?: string; hello?: string | null },
  body: (started: Started, fake: Fake) => Promise<void>,
): Promise<void> {
  const fake = await openFake();
  let started: Started | undefined;
  try {
    started = await startAgainst(fake, setup.client, setup.reply, setup.hello);
    await body(started, fake);
  } finally {
    await started?.client.destroy(); // clean-up, not a graceful close: nothing waits
    await fake.close();
  }
}

/** The client's close event, which must carry a BurrowError of `code`. */
async function closesWith(started: Started, code: string): Promise<BurrowError> {
  const error = await within(started.closed, 5_000, "the client's close event");
  assert.ok(error instanceof BurrowError, `expected a BurrowError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

/** Answers the client's dial-back on the fake data port and checks that bytes cross to the
 * local echo service and back, exactly. */
async function answerAndEcho(fake: Fake, id: string, payload: string): Promise<Accepted> {
  const data = await fake.data.next();
  assert.equal(await data.reader.line(), `ID ${id}`);
  data.socket.write('OK\n');
  data.socket.write(`${payload}\n`);
  assert.equal(await data.reader.line(), payload);
  return data;
}

// ---------------------------------------------------------------------------------------
// Lines the client must not accept

test('garbage bytes from the server: the client closes with a protocol BurrowError and dials nothing', async () => {
  await withStarted({}, async (started, fake) => {
    started.control.socket.write(Buffer.from([0x00, 0xff, 0x0a]));
    await closesWith(started, 'protocol');
    await fake.control.allClosed('the control port');
    assert.equal(await fake.data.countAfterProbe(), 0);
    assert.equal(await fake.local.countAfterProbe(), 0);
  });
});

// Known verbs with bad arguments: an OK or a CONNECTION whose fields are malformed. (Extra
// fields are not bad: a newer server may add one; see the signals' test below.)
for (const line of ['OK abc', 'CONNECTION x.y', 'CONNECTION x 0', `OK ${FAKE_PUBLIC_PORT} not/a/lease`]) {
  test(`a malformed known verb (${JSON.stringify(line)}): the client closes with a protocol BurrowError`, async () => {
    await withStarted({}, async (started, fake) => {
      started.control.socket.write(`${line}\n`);
      await closesWith(started, 'protocol');
      await fake.control.allClosed('the control port');
      assert.equal(await fake.data.countAfterProbe(), 0);
      assert.deepEqual(started.warnings, []);
    });
  });
}

// ---------------------------------------------------------------------------------------
// Lines the client ignores, and keeps serving

test('unknown verbs (HEARTBEAT, HOWDY there): one protocol warning each, and a later CONNECTION is still served', async () => {
  await withStarted({}, async (started, fake) => {
    let closeEvents = 0;
    started.client.on('close', () => closeEvents++);
    // (PING is a known verb since heartbeats: it is answered, not warned about; see below.)
    started.control.socket.write('HEARTBEAT\n');
    started.control.socket.write('HOWDY there\n');
    await started.warned(2);
    assert.deepEqual(
      started.warnings.map((w) => w.code),
      ['protocol', 'protocol'],
    );
    started.control.socket.write(`CONNECTION after-ping ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'after-ping', 'still serving');
    assert.equal(closeEvents, 0);
    assert.equal(started.warnings.length, 2, started.warnings.map((w) => w.message).join('; '));
    await started.client.close();
    await fake.control.allClosed('the control port');
    await fake.data.allClosed('the data port');
    await fake.local.allClosed('the local service');
  });
});

test('PING from the server is answered PONG at once, extra fields or not; PONG and GOAWAY get no answer; none is a warning', async () => {
  await withStarted({}, async (started, fake) => {
    let closeEvents = 0;
    started.client.on('close', () => closeEvents++);
    started.control.socket.write('PING\n');
    assert.equal(await started.control.reader.line(), 'PONG');
    // PONG gets no answer: the next line the client sends is the PONG for the second PING.
    started.control.socket.write('PONG\nPING\r\n');
    assert.equal(await started.control.reader.line(), 'PONG');
    // Fields after a signal are a newer server's: ignored (the base rule), not an error.
    started.control.socket.write('PONG 1\nPING from-a-newer-server\n');
    assert.equal(await started.control.reader.line(), 'PONG');
    started.control.socket.write(`CONNECTION after-signals ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'after-signals', 'still serving');
    assert.deepEqual(started.warnings, []);
    assert.equal(closeEvents, 0);
    // GOAWAY: no answer; the server closes next, and then (reconnect off) the client closes
    // with a closed BurrowError.
    started.control.socket.end('GOAWAY now\n');
    const error = await closesWith(started, 'closed');
    assert.equal(await started.control.reader.next(), null, `the client answered GOAWAY (${error.message})`);
    assert.deepEqual(started.warnings, []);
    assert.equal(await fake.data.countAfterProbe(), 1, 'only the one dial-back');
  });
});

test('PING and PONG before the reply to EXPOSE are not replies: PING is answered, the OK after them opens the tunnel', async () => {
  const fake = await openFake();
  let client: BurrowClient | undefined;
  try {
    const { starting, control } = await beginStart(fake, {});
    control.socket.write('PING\nPONG\n');
    assert.equal(await control.reader.line(), 'PONG');
    control.socket.write(`OK ${FAKE_PUBLIC_PORT} lease-token_1\n`);
    client = await within(starting, 5_000, 'startClient to resolve');
    await skipDataCheck(fake);
    assert.equal(client.tunnels[0]?.publicPort, FAKE_PUBLIC_PORT);
    control.socket.write(`CONNECTION after-start ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'after-start', 'served');
  } finally {
    await client?.destroy();
    await fake.close();
  }
});

test('CONNECTION for a port that is not ours: a protocol warning and nothing dialed', async () => {
  await withStarted({}, async (started, fake) => {
    started.control.socket.write(`CONNECTION stranger ${FAKE_PUBLIC_PORT + 1}\n`);
    await started.warned(1);
    assert.equal(started.warnings[0]?.code, 'protocol');
    assert.match(started.warnings[0]?.message ?? '', new RegExp(`${FAKE_PUBLIC_PORT + 1}`));
    assert.equal(await fake.data.countAfterProbe(), 0, 'the client dialed the data port');
    assert.equal(await fake.local.countAfterProbe(), 0, 'the client dialed the local service');
    // And a CONNECTION for our own port right after is served as usual.
    started.control.socket.write(`CONNECTION ours ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'ours', 'mine');
    assert.equal(started.warnings.length, 1);
  });
});

test('OK <port> and CONNECTION <id> <port> in the same write: start() resolves and the client dials back', async () => {
  await withStarted(
    { reply: `OK ${FAKE_PUBLIC_PORT}\nCONNECTION same-packet ${FAKE_PUBLIC_PORT}\n` },
    async (started, fake) => {
      assert.equal(started.client.tunnels[0]?.publicPort, FAKE_PUBLIC_PORT);
      await answerAndEcho(fake, 'same-packet', 'joined');
      assert.deepEqual(started.warnings, []);
    },
  );
});

// ---------------------------------------------------------------------------------------
// The server going away or not answering

test('the server vanishing mid-line: close with a closed BurrowError, the fragment is dropped, nothing dialed', async () => {
  await withStarted({}, async (started, fake) => {
    let warnings = 0;
    started.client.on('warning', () => warnings++);
    started.control.socket.write(`CONNECTION frag ${FAKE_PUBLIC_PORT}`, () => started.control.socket.destroy());
    await closesWith(started, 'closed');
    assert.equal(await fake.data.countAfterProbe(), 0, 'the client dialed for an unterminated line');
    assert.equal(await fake.local.countAfterProbe(), 0);
    assert.equal(warnings, 0);
    // close() after the server went away is harmless, and no second event comes.
    let extraEvents = 0;
    started.client.on('close', () => extraEvents++);
    await started.client.close();
    assert.equal(extraEvents, 0);
  });
});

test('the server vanishing mid-line after "CONNECT" (no newline): close with closed', async () => {
  await withStarted({}, async (started, fake) => {
    started.control.socket.write('CONNECT', () => started.control.socket.destroy());
    await closesWith(started, 'closed');
    assert.equal(await fake.data.countAfterProbe(), 0);
  });
});

test('a server that never answers EXPOSE: start() rejects with timeout after connectTimeoutMs and closes its socket', async () => {
  const fake = await openFake();
  try {
    const { starting } = await beginStart(fake, { connectTimeoutMs: 300 });
    await rejectsWith(within(starting, 5_000, 'start() to settle'), 'timeout');
    await fake.control.allClosed('the control port');
  } finally {
    await fake.close();
  }
});

// ---------------------------------------------------------------------------------------
// Dial-backs that fail or pile up

test('the data port answers ERR unknown-id: a refused warning and the local connection is closed', async () => {
  await withStarted({}, async (started, fake) => {
    let closeEvents = 0;
    started.client.on('close', () => closeEvents++);
    started.control.socket.write(`CONNECTION stale ${FAKE_PUBLIC_PORT}\n`);
    const data = await fake.data.next();
    assert.equal(await data.reader.line(), 'ID stale');
    const local = await fake.local.next();
    data.socket.end('ERR unknown-id no visitor is waiting for this id\n');
    await started.warned(1);
    const [warning] = started.warnings;
    assert.ok(warning);
    assert.equal(warning.code, 'refused', warning.message);
    assert.equal(warning.reason, 'unknown-id');
    await within(local.closed, 5_000, 'the local connection to close');
    await within(data.closed, 5_000, 'the data connection to close');
    assert.equal(closeEvents, 0);
    // The client keeps serving.
    started.control.socket.write(`CONNECTION fresh ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'fresh', 'after refusal');
  });
});

test('CONNECTIONs beyond maxConnections are turned away at once (REFUSE) with one warning for the burst; close() then closes every socket', async () => {
  // The fake data port accepts and never answers, so the first three stay in flight.
  await withStarted({ client: { maxConnections: 3, handshakeTimeoutMs: 30_000 } }, async (started, fake) => {
    const ids = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    started.control.socket.write(ids.map((id) => `CONNECTION ${id} ${FAKE_PUBLIC_PORT}\n`).join(''));
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) seen.push(await (await fake.data.next()).reader.line());
    assert.deepEqual(seen.sort(), ['ID c1', 'ID c2', 'ID c3']);
    // The other three are refused on the control connection, in the order they came.
    assert.deepEqual(
      [await started.control.reader.line(), await started.control.reader.line(), await started.control.reader.line()],
      ['REFUSE c4', 'REFUSE c5', 'REFUSE c6'],
    );
    await started.warned(1);
    assert.equal(started.warnings.length, 1, started.warnings.map((w) => w.message).join('; '));
    assert.equal(started.warnings[0]?.code, 'over-limit');
    assert.match(
      started.warnings[0]?.message ?? '',
      /^turned away 1 visitor \(reset at once\): already serving 3 connections/,
    );
    assert.equal(await fake.data.countAfterProbe(), 3, 'dial-backs beyond maxConnections');
    assert.equal(await fake.local.countAfterProbe(), 3, 'local dials beyond maxConnections');

    await started.client.close();
    await fake.control.allClosed('the control port');
    await fake.data.allClosed('the data port');
    await fake.local.allClosed('the local service');
    assert.equal(
      started.warnings.length,
      1,
      'close() must not report the in-flight dial-backs, nor the rest of the burst, as warnings',
    );
  });
});

test('CONNECTIONs beyond maxConnections from a server without refuse are only ignored, and the warning says so', async () => {
  await withStarted(
    { client: { maxConnections: 1, handshakeTimeoutMs: 30_000 }, hello: 'HELLO ping goaway id-reply\n' },
    async (started, fake) => {
      started.control.socket.write(`CONNECTION d1 ${FAKE_PUBLIC_PORT}\nCONNECTION d2 ${FAKE_PUBLIC_PORT}\n`);
      assert.equal(await (await fake.data.next()).reader.line(), 'ID d1');
      await started.warned(1);
      assert.match(started.warnings[0]?.message ?? '', /^ignored 1 visitor \(this server cannot be told to reset them/);
      // Nothing was sent for d2: the next line from the client answers our PING.
      started.control.socket.write('PING\n');
      assert.equal(await started.control.reader.line(), 'PONG');
      assert.equal(await fake.data.countAfterProbe(), 1);
    },
  );
});

test('client.close() does not wait for dial-backs still in their handshake: only joined connections get the shutdown timeout', async () => {
  // docs/PROTOCOL.md: a client that shuts down "lets its joined connections finish"; the
  // client "stops taking visitors". Here nothing is joined: the fake data port accepts the
  // dial-backs and never answers their ID line.
  await withStarted({ client: { handshakeTimeoutMs: 30_000, shutdownTimeoutMs: 60_000 } }, async (started, fake) => {
    started.control.socket.write(`CONNECTION h1 ${FAKE_PUBLIC_PORT}\nCONNECTION h2 ${FAKE_PUBLIC_PORT}\n`);
    const seen = [await (await fake.data.next()).reader.line(), await (await fake.data.next()).reader.line()];
    assert.deepEqual(seen.sort(), ['ID h1', 'ID h2']);
    // The fake closes the control connection after GOAWAY, as a server does for a client
    // with nothing joined, so only the two handshakes could keep close() waiting (60 s).
    const closing = started.client.close();
    assert.equal(await started.control.reader.line(), 'GOAWAY');
    started.control.socket.end();
    await within(closing, 1_000, 'close() with two dial-backs in their handshake and nothing joined');
    await fake.data.allClosed('the data port');
    assert.deepEqual(started.warnings, []);
  });
});

test('client.close() in the middle of handshakes, joined connections and a partial line leaves no socket open', async () => {
  await withStarted({ client: { maxConnections: 4, handshakeTimeoutMs: 30_000 } }, async (started, fake) => {
    // One joined connection, one waiting for the server's answer, one partial line.
    started.control.socket.write(`CONNECTION joined ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'joined', 'flowing');
    started.control.socket.write(`CONNECTION waiting ${FAKE_PUBLIC_PORT}\nCONNECTION par`);
    const waiting = await fake.data.next();
    assert.equal(await waiting.reader.line(), 'ID waiting');
    await fake.local.next(); // the joined one
    await fake.local.next(); // the waiting one
    const closed = started.closed;
    await started.client.close();
    assert.equal(await within(closed, 5_000, 'the close event'), undefined);
    await fake.control.allClosed('the control port');
    await fake.data.allClosed('the data port');
    await fake.local.allClosed('the local service');
    assert.deepEqual(started.warnings, []);
  });
});

// ---------------------------------------------------------------------------------------
// fin-notice, the client's side

/** The fake, agreeing to fin-notice as a burrow relay does. */
const NOTICE_HELLO = 'HELLO ping goaway id-reply fin-notice=FAKE_RELAY_INSTANCE_00 refuse\n';

test("fin-notice: the relay's FIN reaches the local service only after FIN <id>; the local service's FIN, passed on, is followed by the client's notice", async () => {
  await withStarted({ hello: NOTICE_HELLO }, async (started, fake) => {
    const held = new Promise<void>((resolve) =>
      started.client.on('trace', (event) => {
        if (event.text.includes('waiting for its FIN notice')) resolve();
      }),
    );
    const id = 'NOTICE_ID_000000000001';
    started.control.socket.write(`CONNECTION ${id} ${FAKE_PUBLIC_PORT}\n`);
    const data = await answerAndEcho(fake, id, 'hello');
    data.socket.end(); // the relay's FIN: held until its notice
    await within(held, 5_000, 'the client to hold the FIN');
    started.control.socket.write(`FIN ${id}\n`);
    // The local echo service now ends too; its FIN comes back, and then the client's notice.
    assert.equal(await data.reader.next(), null, "the local service's FIN, passed on");
    for (let i = 0; i < 10; i++) {
      const line = await started.control.reader.line();
      if (line === 'PING') continue;
      assert.equal(line, `FIN ${id}`);
      return;
    }
    assert.fail('no FIN notice from the client');
  });
});

test('fin-notice: a notice that comes before the dial-back is answered is kept for its FIN', async () => {
  await withStarted({ hello: NOTICE_HELLO }, async (started, fake) => {
    const id = 'NOTICE_ID_000000000002';
    started.control.socket.write(`CONNECTION ${id} ${FAKE_PUBLIC_PORT}\nFIN ${id}\nPING\n`);
    for (let i = 0; i < 10 && (await started.control.reader.line()) !== 'PONG'; i++); // the notice is in
    const data = await answerAndEcho(fake, id, 'hello');
    data.socket.end();
    assert.equal(await data.reader.next(), null, 'the FIN went through at once, and came back');
  });
});

// ---------------------------------------------------------------------------------------
// prewarm, the client's side

/** The fake, agreeing to prewarm with a long handshake timeout. */
const PREWARM_HELLO = 'HELLO ping goaway id-reply refuse prewarm=60000\n';

test('prewarm: after a dial-back, one data connection is opened ahead and says nothing; the next CONNECTION goes out on it', async () => {
  await withStarted({ hello: PREWARM_HELLO }, async (started, fake) => {
    started.control.socket.write(`CONNECTION warm-1 ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'warm-1', 'one');
    const ahead = await fake.data.next();
    started.control.socket.write(`CONNECTION warm-2 ${FAKE_PUBLIC_PORT}\n`);
    assert.equal(await ahead.reader.line(), 'ID warm-2', 'the ID goes on the connection opened ahead');
    ahead.socket.write('OK\ntwo\n');
    assert.equal(await ahead.reader.line(), 'two');
    assert.deepEqual(started.warnings, []);
  });
});

test('prewarm: a connection opened ahead that the relay closed, or spoke on, is not used: the visitor is dialed as before', async () => {
  await withStarted({ hello: PREWARM_HELLO }, async (started, fake) => {
    started.control.socket.write(`CONNECTION warm-3 ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'warm-3', 'one');
    const closed = await fake.data.next();
    closed.socket.end('ERR timeout no ID line within 60000 ms\n');
    await closed.closed;
    started.control.socket.write(`CONNECTION warm-4 ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'warm-4', 'two');
    assert.deepEqual(started.warnings, []);
  });
});

test('without prewarm (the relay did not agree), nothing is opened ahead', async () => {
  await withStarted({}, async (started, fake) => {
    started.control.socket.write(`CONNECTION cold-1 ${FAKE_PUBLIC_PORT}\n`);
    await answerAndEcho(fake, 'cold-1', 'one');
    assert.equal(await fake.data.countAfterProbe(), 1, 'the dial-back, and no other');
  });
});
