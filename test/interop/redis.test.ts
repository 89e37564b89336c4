// Redis through burrow: a private redis-server (no persistence, an ephemeral port on
// 127.0.0.1) behind a tunnel, driven through the public port by redis-benchmark (20
// connections, plain and pipelined), redis-cli --pipe, and a raw pipelined socket. Every
// request is checked to have succeeded: Redis's own per-command counters must match exactly.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { within } from '../helpers.ts';
import { freePort, LOOPBACK, requireProgram, scoped, spawnTool, startDaemon, startTunnel, tempDir } from './harness.ts';

const REQUESTS = 20_000;
const TESTS = ['SET', 'GET', 'INCR', 'LPUSH'];

/** One command in the Redis protocol (RESP). */
const resp = (...words: string[]): string =>
  `*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`;

/** Runs redis-benchmark through `port` and checks its CSV: the four tests, each > 0 req/s. */
async function benchmark(program: string, port: number, extra: string[]): Promise<void> {
  const args = [
    '-h',
    LOOPBACK,
    '-p',
    String(port),
    '-n',
    String(REQUESTS),
    '-c',
    '20',
    '-t',
    'set,get,incr,lpush',
    '-q',
    '--csv',
    ...extra,
  ];
  const { stdout, stderr } = await spawnTool(program, args, { timeoutMs: 60_000 });
  assert.equal(stderr, '', 'redis-benchmark reports no error');
  const rows = stdout
    .toString()
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',').map((cell) => cell.replace(/^"|"$/g, '')));
  assert.deepEqual(
    rows.map(([name]) => name),
    TESTS,
    `redis-benchmark ${extra.join(' ')} ran every test`,
  );
  for (const [name, rps] of rows) assert.ok(Number(rps) > 0, `${name}: ${rps} requests/s`);
}

/** `calls` of each command from INFO commandstats, and that none failed or was rejected. */
async function commandCalls(cli: string, port: number): Promise<Record<string, number>> {
  const { stdout } = await spawnTool(cli, ['-h', LOOPBACK, '-p', String(port), 'INFO', 'commandstats'], {
    timeoutMs: 15_000,
  });
  const calls: Record<string, number> = {};
  for (const match of stdout
    .toString()
    .matchAll(/^cmdstat_(\w+):calls=(\d+),.*rejected_calls=(\d+),failed_calls=(\d+)/gm)) {
    const [, name = '', count = '', rejected = '', failed = ''] = match;
    assert.equal(`${rejected}/${failed}`, '0/0', `${name}: rejected/failed calls`);
    calls[name] = Number(count);
  }
  return calls;
}

test('redis: redis-benchmark (plain and -P 16), redis-cli --pipe and a raw pipeline through the tunnel', async () => {
  const server = requireProgram('redis-server', 'redis-server');
  const cli = requireProgram('redis-cli', 'redis-tools');
  const bench = requireProgram('redis-benchmark', 'redis-tools');

  await scoped(async (use) => {
    const dir = use(await tempDir()).path;
    const port = await freePort();
    const config = [
      '--port',
      String(port),
      '--bind',
      LOOPBACK,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
    ];
    use(await startDaemon(server, config, port));
    const { publicPort } = use(await startTunnel(port));
    const query = async (...words: string[]): Promise<string> =>
      (await spawnTool(cli, ['-h', LOOPBACK, '-p', String(publicPort), ...words], { timeoutMs: 15_000 })).stdout
        .toString()
        .trim();

    // redis-benchmark without -r uses one key per test: its counters are predictable.
    await benchmark(bench, publicPort, []);
    await benchmark(bench, publicPort, ['-P', '16']);
    const calls = await commandCalls(cli, publicPort);
    assert.deepEqual(
      TESTS.map((name) => calls[name.toLowerCase()]),
      TESTS.map(() => 2 * REQUESTS),
      'every SET, GET, INCR and LPUSH of both runs reached Redis',
    );
    assert.equal(await query('GET', 'counter:__rand_int__'), String(2 * REQUESTS), 'the INCR counter');
    assert.equal(await query('LLEN', 'mylist'), String(2 * REQUESTS), 'the LPUSH list length');

    // redis-cli --pipe: 50,000 RPUSH in the raw protocol on stdin, one connection.
    const piped = 50_000;
    const input = Array.from({ length: piped }, (_, i) => resp('RPUSH', 'piped', String(i))).join('');
    const pipe = await spawnTool(cli, ['-h', LOOPBACK, '-p', String(publicPort), '--pipe'], {
      timeoutMs: 60_000,
      input,
    });
    assert.match(pipe.stdout.toString(), new RegExp(`^errors: 0, replies: ${piped}$`, 'm'), 'redis-cli --pipe');
    assert.equal(await query('LLEN', 'piped'), String(piped));
    assert.equal(await query('LINDEX', 'piped', '-1'), String(piped - 1));

    // A raw pipeline: N INCR in one write must get exactly the N replies :1 .. :N, in order.
    const count = 10_000;
    const expected = Buffer.from(Array.from({ length: count }, (_, i) => `:${i + 1}\r\n`).join(''));
    const socket = net.connect({ host: LOOPBACK, port: publicPort });
    try {
      socket.on('error', () => {});
      const replies = new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let length = 0;
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          length += chunk.length;
          if (length >= expected.length) resolve(Buffer.concat(chunks));
        });
        socket.once('close', () => reject(new Error(`closed after ${length} of ${expected.length} reply bytes`)));
      });
      socket.write(resp('INCR', 'raw').repeat(count));
      assert.equal((await within(replies, 30_000, `${count} pipelined replies`)).toString(), expected.toString());
    } finally {
      socket.destroy();
    }
    assert.equal(await query('GET', 'raw'), String(count));
  });
});
