// The load generator: each workload runs against a port (a service directly, or the
// tunnel's public port for it) and returns raw timings. The same code runs for both,
// so any difference is the tunnel's.
import { connect, nowNs, open, within, writeBytes, type Reader } from './io.ts';
import { CHUNK } from './services.ts';

/** One connection sends `bytes` to the sink, half-closes, and waits for the sink's count.
 * Returns elapsed ns from connect() to the count's arrival. */
export async function upload(port: number, bytes: number, deadlineMs: number): Promise<number> {
  const start = nowNs();
  const conn = await connect(port, deadlineMs, 'upload', true);
  await writeBytes(conn.socket, bytes, CHUNK);
  conn.socket.end();
  await conn.end();
  const elapsed = nowNs() - start;
  await conn.close();
  const ack = Buffer.concat(conn.chunks);
  const counted = ack.length === 8 ? Number(ack.readBigUInt64BE(0)) : -1;
  if (counted !== bytes) throw new Error(`upload: the sink counted ${counted} bytes, expected ${bytes}`);
  return elapsed;
}

/** One connection asks the source for `bytes` and reads them until its FIN. Returns
 * elapsed ns from connect() to the FIN. */
export async function download(port: number, bytes: number, deadlineMs: number): Promise<number> {
  const start = nowNs();
  const conn = await connect(port, deadlineMs, 'download');
  const request = Buffer.alloc(8);
  request.writeBigUInt64BE(BigInt(bytes));
  conn.socket.write(request);
  await conn.end();
  const elapsed = nowNs() - start;
  conn.socket.end();
  await conn.close();
  if (conn.bytes !== bytes) throw new Error(`download: got ${conn.bytes} bytes, expected ${bytes}`);
  return elapsed;
}

/** One echo connection for sequential `size`-byte round trips, kept open so the caller
 * can measure it in blocks (interleaved with the other side's blocks). */
export class PingPong {
  private rounds = 0;

  private constructor(
    private readonly conn: Reader,
    private readonly message: Buffer,
  ) {}

  static async open(port: number, size: number, deadlineMs: number): Promise<PingPong> {
    return new PingPong(await connect(port, deadlineMs, 'round trip'), Buffer.alloc(size, 0x70));
  }

  /** `count` round trips; one duration per round, in µs. */
  async run(count: number): Promise<number[]> {
    const samples: number[] = [];
    const size = this.message.length;
    for (let i = 0; i < count; i++) {
      const start = nowNs();
      this.conn.socket.write(this.message);
      await this.conn.atLeast(++this.rounds * size);
      samples.push((nowNs() - start) / 1_000);
    }
    return samples;
  }

  async close(): Promise<void> {
    this.conn.socket.end();
    await this.conn.close();
  }
}

/** `count` times, one after the other: connect to the echo service, send `size` bytes,
 * await the echo, half-close, wait for the close. One duration per connection, in µs. */
export async function connectionSetup(
  port: number,
  size: number,
  count: number,
  deadlineMs: number,
): Promise<number[]> {
  const message = Buffer.alloc(size, 0x63);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = nowNs();
    const conn = await connect(port, deadlineMs, 'connection setup');
    conn.socket.write(message);
    await conn.atLeast(size);
    conn.socket.end();
    await conn.end(); // the FIN came back: the echo side closed too
    await conn.close();
    samples.push((nowNs() - start) / 1_000);
  }
  return samples;
}

export interface Held {
  /** The connections open and verified. */
  conns: Reader[];
  failures: number;
  /** Failure messages and how often each came (the first few kinds). */
  errors: Record<string, number>;
  /** From the first connect until the last batch was verified, ms. */
  openMs: number;
}

/** Opens `count` connections to an echo port, `batch` at a time, and keeps them open.
 * Each is verified by echoing 16 bytes naming it; one that is not verified within
 * `openMs` counts as a failure (and is closed). Each lives at most `lifeMs`. */
export async function holdConnections(
  port: number,
  count: number,
  batch: number,
  openMs: number,
  lifeMs: number,
): Promise<Held> {
  const held: Held = { conns: [], failures: 0, errors: {}, openMs: 0 };
  const start = nowNs();
  const openOne = async (index: number): Promise<Reader> => {
    const conn = open(port, lifeMs, 'held connection', true);
    const message = Buffer.from(`conn ${index}`.padEnd(16, '.'));
    await within(
      (async () => {
        await conn.connected;
        conn.socket.write(message);
        await conn.atLeast(message.length);
      })(),
      openMs,
      'connect and echo',
      () => conn.socket.destroy(),
    );
    const echoed = Buffer.concat(conn.chunks);
    conn.chunks.length = 0;
    if (!echoed.equals(message)) {
      conn.socket.destroy();
      throw new Error(`wrong echo: ${JSON.stringify(echoed.toString('latin1'))}`);
    }
    return conn;
  };
  for (let first = 0; first < count; first += batch) {
    const size = Math.min(batch, count - first);
    const results = await Promise.allSettled(Array.from({ length: size }, (_, i) => openOne(first + i)));
    for (const result of results) {
      if (result.status === 'fulfilled') {
        held.conns.push(result.value);
        continue;
      }
      held.failures++;
      const message = result.reason instanceof Error ? result.reason.message : String(result.reason);
      if (message in held.errors || Object.keys(held.errors).length < 5)
        held.errors[message] = (held.errors[message] ?? 0) + 1;
    }
  }
  held.openMs = (nowNs() - start) / 1e6;
  return held;
}

/** Closes every held connection and waits (at most `ms`) until all have closed. */
export async function releaseConnections(held: Held, ms: number): Promise<void> {
  for (const conn of held.conns) conn.socket.destroy();
  await within(Promise.all(held.conns.map((conn) => conn.close())), ms, 'closing the held connections');
}
