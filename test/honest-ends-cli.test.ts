// A reset must never arrive as a clean end, also when a whole burrow process dies: the
// real `burrow` command as child processes (test/child.ts), killed with SIGKILL (its
// operating system then closes its connections, with a FIN where nothing was unread) or
// stopped with SIGTERM and a short shutdown timeout, while bytes flow. The far end of the
// tunnel must see a reset, never a FIN after partial data (`fin-notice` in
// docs/PROTOCOL.md). A control case checks that a stream that does end cleanly still ends
// with a FIN and every byte, so a check that never confirms would be caught too.
// (The stopped client and the control case are in honest-ends-stop-cli.test.ts: the four
// were one file's work, split so that each finishes well within the test timeout.)
import { test } from 'node:test';
import { killAll, type Cli } from './child.ts';
import { honestEnding, pushBytes, receivedAtLeast, uploadSink } from './endings.ts';
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

test('burrow client killed (SIGKILL) mid-download: the visitor is reset, not ended', async () => {
  const live = new Set<Cli>();
  // Streams continuously (64 MiB, more than the test lets through) and never ends.
  const local = await listenLocal((socket) => void pushBytes(socket, 64 * MiB));
  try {
    // The server passes the dead client's FIN on only if that client proves it is alive,
    // which it never does: the visitor is reset at once (its control connection is gone)
    // or at worst after the server's heartbeat timeout. Only the outcome is asserted.
    const relay = await startRelay(live, QUICK_HEARTBEAT);
    for (let round = 1; round <= ROUNDS; round++) {
      const client = await startTunnel(live, relay, local.port);
      const visitor = await connectVisitor(client.publicPort);
      const ending = honestEnding(visitor);
      await receivedAtLeast(visitor, 2 * MiB);
      await signal(client.cli, 'SIGKILL', `client ${round}`);
      assertReset(await within(ending, END_MS, 'the visitor to end'), `round ${round}`);
    }
  } finally {
    await killAll(live);
    await local.close();
  }
});

test('burrow server killed (SIGKILL) mid-upload: the local service is reset, not ended', async () => {
  const live = new Set<Cli>();
  const sink = uploadSink(2 * MiB);
  const local = await listenLocal(sink.accept);
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const relay = await startRelay(live);
      // The client holds the dead server's FIN until that server proves it is alive; it
      // never does, and the client resets the local connection once its heartbeat timeout
      // has passed without the same server coming back.
      const client = await startTunnel(live, relay, local.port, QUICK_HEARTBEAT);
      const visitor = await connectVisitor(client.publicPort);
      // The visitor's own connection dies with the server, and how is up to the server's
      // operating system: a reset here (the server had unread bytes of it), but a FIN
      // where nothing was unread. No burrow process is left to say otherwise, so that side
      // cannot be made honest (docs/PROTOCOL.md); it is not asserted.
      visitor.on('error', () => {});
      const twoMiB = sink.nextReached();
      pushBytes(visitor, 256 * MiB);
      try {
        await within(twoMiB, END_MS, '2 MiB at the local service');
        await signal(relay.cli, 'SIGKILL', `server ${round}`);
        const ending = await within(
          sink.endings[round - 1] ?? Promise.reject(new Error('no local connection')),
          END_MS,
          'the local service to end',
        );
        assertReset(ending, `round ${round}`);
      } finally {
        visitor.destroy();
        await signal(client.cli, 'SIGKILL', `client ${round}`);
      }
    }
  } finally {
    await killAll(live);
    await local.close();
  }
});
