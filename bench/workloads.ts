// The load generator: each workload runs against a port (a service directly, or the
// tunnel's public port for it) and returns raw timings. The same code runs for both,
// so any difference is the tunnel's.
import { connect, nowNs, writeBytes, type Reader } from './io.ts';
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
  await conn.close();
  if (conn.bytes !== bytes) throw new Error(`download: got ${conn.bytes} bytes, expected ${bytes}`);
  return elapsed;
}

/** One echo connection for sequential `size`-byte round trips, kept open so the caller
 * can measure it in blocks (interleaved with another side's blocks). */
export class PingPong {
  private rounds = 0;

  private constructor(
    private readonly conn: Reader,
    private readonly message: Buffer,
  ) {}

  static async open(port: number, size: number, deadlineMs: number): Promise<PingPong> {
    return new PingPong(await connect(port, deadlineMs, 'ping-pong'), Buffer.alloc(size, 0x70));
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

/** `count` times, one after the other: connect to the echo service, one `size`-byte round
 * trip, half-close, wait for the close. Returns one duration per connection, in µs. */
export async function connectionSetup(port: number, size: number, count: number, deadlineMs: number): Promise<number[]> {
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

/** `connections` at once, each sending `bytes` to the echo service while reading them
 * back, then closing. Returns elapsed ns until the last one closed. */
export async function concurrentEcho(port: number, connections: number, bytes: number, deadlineMs: number): Promise<number> {
  const start = nowNs();
  const one = async (): Promise<void> => {
    const conn = await connect(port, deadlineMs, 'concurrent echo');
    await Promise.all([writeBytes(conn.socket, bytes, CHUNK), conn.atLeast(bytes)]);
    conn.socket.end();
    await conn.end();
    await conn.close();
    if (conn.bytes !== bytes) throw new Error(`concurrent echo: got ${conn.bytes} bytes back, expected ${bytes}`);
  };
  await Promise.all(Array.from({ length: connections }, one));
  return nowNs() - start;
}
