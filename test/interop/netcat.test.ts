// Half-close through burrow, with OpenBSD netcat as the visitor. nc -N shuts down its
// write side (FIN) after stdin's EOF but keeps reading: the local service answers only
// once it has seen that FIN, so the whole answer must cross the tunnel after the visitor's
// side is closed. The other way round, the local service closes its side first and the
// visitor's data sent afterwards must still reach it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { cleanEnv } from '../child.ts';
import { assertSameBytes, listenLocal, pseudoRandomBytes, readAll, replyOnEnd, within } from '../helpers.ts';
import { LOOPBACK, requireProgram, scoped, spawnTool, startTunnel } from './harness.ts';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const BODY = pseudoRandomBytes(8 * 1024 * 1024, 8);
/** What the service answers once the visitor half-closed: a summary of all it got, then 8 MB. */
const answer = (request: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${request.length} ${sha256(request)}\n`), BODY]);

/** A service that closes its side first (sends `greeting` and FIN at once), then records
 * everything the visitor sends until the visitor's own FIN. */
function closesFirst(greeting: Buffer, received: (bytes: Buffer) => void) {
  return (socket: net.Socket): void => {
    socket.end(greeting);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => received(Buffer.concat(chunks)));
  };
}

test('netcat: half-close in both directions through the tunnel', async (t) => {
  const nc = requireProgram('nc', 'netcat-openbsd');

  await t.test('nc -N sends a file and FIN; the answer, computed after that FIN, arrives in full', async () => {
    await scoped(async (use) => {
      const local = use(await listenLocal(replyOnEnd(answer)));
      const { publicPort } = use(await startTunnel(local.port));
      const request = pseudoRandomBytes(3 * 1024 * 1024 + 17, 3);
      const { stdout } = await spawnTool(nc, ['-N', LOOPBACK, String(publicPort)], {
        timeoutMs: 30_000,
        input: request,
      });
      assertSameBytes(stdout, answer(request), "nc's stdout");
    });
  });

  await t.test('the service closes its side first; what nc sends after that still reaches it', async () => {
    await scoped(async (use) => {
      const greeting = Buffer.from('service done talking, still listening\n');
      let resolveReceived: (bytes: Buffer) => void = () => {};
      const received = new Promise<Buffer>((resolve) => (resolveReceived = resolve));
      const local = use(await listenLocal(closesFirst(greeting, resolveReceived)));
      const { publicPort } = use(await startTunnel(local.port));

      // nc with a pipe as stdin, written only once the service's greeting (sent with its
      // FIN) has come out of nc.
      const child = spawn(nc, ['-N', LOOPBACK, String(publicPort)], {
        env: cleanEnv(),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      use({
        close: () =>
          Promise.resolve(void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))),
      });
      const exited = new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (code: number | null) => resolve(code));
      });
      let stdout = Buffer.alloc(0);
      const greeted = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout = Buffer.concat([stdout, chunk]);
          if (stdout.length >= greeting.length) resolve();
        });
      });
      await within(greeted, 15_000, "the service's greeting on nc's stdout");
      const late = pseudoRandomBytes(1024 * 1024, 5);
      child.stdin.end(late);
      assertSameBytes(
        await within(received, 15_000, 'the late data at the service'),
        late,
        'what the service got after its FIN',
      );
      assert.equal(await within(exited, 15_000, 'nc to exit'), 0, 'nc exit code');
      assertSameBytes(stdout, greeting, "nc's stdout");
    });
  });

  await t.test('the same, strictly: a visitor that sends only after it has read the FIN', async () => {
    await scoped(async (use) => {
      const greeting = Buffer.from('bye for now\n');
      let resolveReceived: (bytes: Buffer) => void = () => {};
      const received = new Promise<Buffer>((resolve) => (resolveReceived = resolve));
      const local = use(await listenLocal(closesFirst(greeting, resolveReceived)));
      const { publicPort } = use(await startTunnel(local.port));

      const visitor = net.connect({ host: LOOPBACK, port: publicPort, allowHalfOpen: true });
      use({ close: () => Promise.resolve(void visitor.destroy()) });
      visitor.on('error', () => {});
      await within(once(visitor, 'connect'), 5_000, 'the visitor to connect');
      const fromService = readAll(visitor); // resolves on the FIN ('end')
      assertSameBytes(
        await within(fromService, 15_000, "the service's FIN"),
        greeting,
        'what the visitor read before the FIN',
      );
      assert.equal(visitor.destroyed, false, 'the visitor socket is still open for writing');
      const late = pseudoRandomBytes(2 * 1024 * 1024, 9);
      visitor.end(late);
      assertSameBytes(
        await within(received, 15_000, 'the late data at the service'),
        late,
        'what the service got after its FIN',
      );
    });
  });
});
