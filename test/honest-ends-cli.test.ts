// A reset must never arrive as a clean end, also when a whole burrow process dies: the
// real `burrow` command as child processes (test/child.ts), killed with SIGKILL (its
// operating system then closes its connections, with a FIN where nothing was unread) or
// stopped with SIGTERM and a short shutdown timeout, while bytes flow. The far end of the
// tunnel must see a reset, never a FIN after partial data (`fin-notice` in
// docs/PROTOCOL.md). A control case checks that a stream that does end cleanly still ends
// with a FIN and every byte, so a check that never confirms would be caught too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CHILD_MS,
  FORWARDING,
  killAll,
  LISTENING,
  loopbackClientArgs,
  startCli,
  waitForOutput,
  type Cli,
} from './child.ts';
import { honestEnding, pushBytes, receivedAtLeast, uploadSink, type HonestEnding } from './endings.ts';
import { connectVisitor, HOST, listenLocal, within } from './helpers.ts';

const MiB = 1024 * 1024;
/** The cases that race a death against the end of a stream run this many times. */
const ROUNDS = 3;
/** Short heartbeats, so that a FIN from a process that died is known for one after 2 s. */
const QUICK_HEARTBEAT = ['--heartbeat-interval', '0.5', '--heartbeat-timeout', '2'];
/** Long enough for a heartbeat timeout and the start of a child under load. */
const END_MS = CHILD_MS;

interface Relay {
  cli: Cli;
  controlPort: string;
  dataPort: string;
}

/** `burrow server` on loopback with ephemeral control and data ports, plus `extra`. */
async function startRelay(live: Set<Cli>, extra: string[] = []): Promise<Relay> {
  const cli = startCli(['server', '--control-port', '0', '--data-port', '0', '--bind', HOST, ...extra], {}, live);
  const [, controlPort = '', dataPort = ''] = await waitForOutput(cli, 'stdout', LISTENING, 'the server to listen');
  return { cli, controlPort, dataPort };
}

/** `burrow client <localPort>` against `relay`, plus `extra`; resolves with its public port. */
async function startTunnel(
  live: Set<Cli>,
  relay: Relay,
  localPort: number,
  extra: string[] = [],
): Promise<{ cli: Cli; publicPort: number }> {
  const cli = startCli(loopbackClientArgs(localPort, relay, extra), {}, live);
  const [, publicPort = ''] = await waitForOutput(cli, 'stdout', FORWARDING, 'the client to forward');
  return { cli, publicPort: Number(publicPort) };
}

/** Sends a child `signal` and waits for it to exit. */
async function signal(cli: Cli, name: NodeJS.Signals, what: string): Promise<void> {
  cli.child.kill(name);
  await within(cli.closed, CHILD_MS, `${what} to exit after ${name}`);
}

function assertReset(ending: HonestEnding, what: string): void {
  assert.equal(
    ending.how,
    'reset',
    `${what}: ended with a FIN after ${ending.received} bytes: a truncated stream that looks complete`,
  );
}

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
