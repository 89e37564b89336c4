// A reset must never arrive as a clean end, also when a burrow client is stopped (SIGTERM)
// with a short shutdown timeout while a slow visitor downloads; and the control case: a
// stream that does end cleanly still ends with a FIN and every byte, so a check that never
// confirms would be caught too. Processes killed outright are in honest-ends-cli.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { killAll, type Cli } from './child.ts';
import { honestEnding, pushBytes, receivedAtLeast } from './endings.ts';
import { connectVisitor, listenLocal, within } from './helpers.ts';
import {
  MiB,
  ROUNDS,
  QUICK_HEARTBEAT,
  END_MS,
  startRelay,
  startTunnel,
  signal,
  assertReset,
} from './honest-ends-rig.ts';

test('burrow client stopped (SIGTERM, --shutdown-timeout 1) while a slow visitor downloads: the visitor is reset at the end, not ended', async () => {
  const live = new Set<Cli>();
  // 64 MiB, then a FIN: more than the buffers between it and a visitor that stops reading
  // hold, so the download is still running when the client's shutdown timeout is up.
  const local = await listenLocal((socket) => void pushBytes(socket, 64 * MiB, 'end'));
  try {
    const relay = await startRelay(live);
    for (let round = 1; round <= ROUNDS; round++) {
      const client = await startTunnel(live, relay, local.port, ['--shutdown-timeout', '1']);
      const visitor = await connectVisitor(client.publicPort);
      const ending = honestEnding(visitor);
      await receivedAtLeast(visitor, 2 * MiB);
      visitor.pause();
      // The client lets the download run for 1 s, then cuts it; it exits once it has.
      await signal(client.cli, 'SIGTERM', `client ${round}`);
      visitor.resume();
      const ended = await within(ending, END_MS, 'the visitor to end');
      assertReset(ended, `round ${round}`);
      assert.ok(ended.received < 64 * MiB, `round ${round}: the whole download arrived; the test cut nothing`);
    }
  } finally {
    await killAll(live);
    await local.close();
  }
});

test('control: a download the local service ends cleanly reaches the visitor whole, with a FIN', async () => {
  const live = new Set<Cli>();
  const size = 8 * MiB + 123;
  const local = await listenLocal((socket) => socket.end(Buffer.alloc(size, 0x5a)));
  try {
    // The same heartbeats as the cases above: their FIN checks must also say yes.
    const relay = await startRelay(live, QUICK_HEARTBEAT);
    const client = await startTunnel(live, relay, local.port, QUICK_HEARTBEAT);
    for (let round = 1; round <= ROUNDS; round++) {
      const visitor = await connectVisitor(client.publicPort);
      const ending = await within(honestEnding(visitor), END_MS, 'the visitor to end');
      assert.deepEqual(ending, { how: 'fin', received: size }, `round ${round}`);
    }
  } finally {
    await killAll(live);
    await local.close();
  }
});
