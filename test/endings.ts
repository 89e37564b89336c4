// How a connection really ended, for the tests of honest ends: a FIN (the stream is
// complete) or a reset (it was cut). Node cannot always tell by events alone: libuv
// reports a reset that arrives while it reads as a plain end of stream. So on 'end' the
// socket is probed with an empty write, which the kernel fails on a reset connection (the
// same probe shared/pipe.ts uses). The socket must be half-open (allowHalfOpen) and must
// not have ended its own side, or the probe cannot run.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { assertSameBytes, connectVisitor, pseudoRandomBytes, untilEqual, within } from './helpers.ts';
import { endingOf, openInbox } from './inbox.ts';

const MiB = 1024 * 1024;

export interface HonestEnding {
  how: 'fin' | 'reset';
  /** Bytes received before the end. */
  received: number;
  /** The error code behind a reset, as the socket reported it. */
  code?: string;
}

/** Resolves once the peer ended `socket`; attach before data can arrive. */
export function honestEnding(socket: net.Socket): Promise<HonestEnding> {
  return new Promise((resolve) => {
    let received = 0;
    let settled = false;
    const settle = (ending: HonestEnding): void => {
      if (settled) return;
      settled = true;
      resolve(ending);
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      settle({ how: 'reset', received, code: error.code ?? error.message }),
    );
    socket.once('end', () => {
      if (socket.writableEnded) return settle({ how: 'fin', received });
      socket.write(Buffer.alloc(0), (error?: Error | null) => {
        if (error) settle({ how: 'reset', received, code: (error as NodeJS.ErrnoException).code ?? error.message });
        else settle({ how: 'fin', received });
      });
    });
    socket.once('close', (hadError) => settle({ how: hadError ? 'reset' : 'fin', received }));
  });
}

/** A local service that sends bytes as fast as its reader takes them, until it is closed
 * or `stopAfter` bytes were written; then `finish` decides how it ends. */
export function pushBytes(
  socket: net.Socket,
  stopAfter: number,
  finish: 'end' | 'reset' | 'none' = 'none',
): { written(): number } {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let written = 0;
  const pump = (): void => {
    while (!socket.destroyed && written < stopAfter) {
      written += chunk.length;
      if (!socket.write(chunk)) return;
    }
    if (written >= stopAfter && !socket.destroyed) {
      if (finish === 'end') socket.end();
      if (finish === 'reset') socket.resetAndDestroy();
    }
  };
  socket.on('drain', pump);
  socket.on('error', () => {});
  pump();
  return { written: () => written };
}

/** A local service for upload tests: it reads everything, records how each connection
 * ended, and tells when a connection has received `threshold` bytes. */
export function uploadSink(threshold: number): {
  accept(socket: net.Socket): void;
  /** How each accepted connection ended, in the order they came. */
  endings: Promise<HonestEnding>[];
  /** Resolves once the next connection (the first on the first call, and so on) has
   * received `threshold` bytes, whether it came before or after this call. */
  nextReached(): Promise<void>;
} {
  const endings: Promise<HonestEnding>[] = [];
  const reached: Array<{ promise: Promise<void>; resolve: () => void }> = [];
  const slot = (index: number) => {
    for (let i = reached.length; i <= index; i++) {
      let resolve = (): void => {};
      const promise = new Promise<void>((done) => (resolve = done));
      reached.push({ promise, resolve });
    }
    return reached[index] ?? { promise: Promise.resolve(), resolve: () => {} };
  };
  let asked = 0;
  return {
    endings,
    accept: (socket) => {
      const mine = slot(endings.length);
      endings.push(honestEnding(socket));
      let received = 0;
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= threshold) mine.resolve();
      });
    },
    nextReached: () => slot(asked++).promise,
  };
}

/** Resolves once `socket` has received at least `atLeast` bytes (counted from now), at
 * most 10 s from now. */
export function receivedAtLeast(socket: net.Socket, atLeast: number): Promise<void> {
  let received = 0;
  return within(
    new Promise<void>((resolve) => {
      const onData = (chunk: Buffer): void => {
        received += chunk.length;
        if (received < atLeast) return;
        socket.off('data', onData);
        resolve();
      };
      socket.on('data', onData);
    }),
    10_000,
    `${atLeast} bytes`,
  );
}

/** Fails unless `ending` was a reset: a FIN after part of the bytes would make a truncated
 * stream look complete. */
export function assertReset(ending: HonestEnding, what: string): void {
  assert.equal(
    ending.how,
    'reset',
    `${what}: ended with a FIN after ${ending.received} bytes: a truncated stream that looks complete`,
  );
}

/** A server, client and local service wired together (helpers.startRig, or over WebSocket). */
export interface ResetRig {
  publicPort: number;
  server: { stats(): unknown };
  client: { on(event: 'warning', listener: () => void): unknown };
  close(): Promise<void>;
}

/** The local service resets mid-response, `rounds` times: each visitor must be reset. */
export async function localResetReachesVisitor(
  startRig: (onLocal: (socket: net.Socket) => void) => Promise<ResetRig>,
  rounds: number,
  label = '',
): Promise<void> {
  const rig = await startRig((socket) => void pushBytes(socket, 6 * MiB, 'reset'));
  rig.client.on('warning', () => {});
  try {
    for (let round = 0; round < rounds; round++) {
      const visitor = await connectVisitor(rig.publicPort);
      const ending = await within(honestEnding(visitor), 10_000, 'the visitor to end');
      assertReset(ending, `${label}round ${round + 1}`);
      assert.ok(ending.received <= 6 * MiB);
    }
  } finally {
    await rig.close();
  }
}

/** The visitor resets mid-upload, `rounds` times: each local connection must be reset. */
export async function visitorResetReachesLocal(
  startRig: (onLocal: (socket: net.Socket) => void) => Promise<ResetRig>,
  rounds: number,
  label = '',
): Promise<void> {
  const sink = uploadSink(2 * MiB);
  const rig = await startRig(sink.accept);
  rig.client.on('warning', () => {});
  try {
    for (let round = 0; round < rounds; round++) {
      const visitor = await connectVisitor(rig.publicPort);
      visitor.on('error', () => {});
      const twoMiB = sink.nextReached();
      pushBytes(visitor, 256 * MiB);
      await within(twoMiB, 10_000, '2 MiB at the local service');
      visitor.resetAndDestroy();
      const ending = await within(
        sink.endings[round] ?? Promise.reject(new Error('no local connection')),
        10_000,
        'the local service to end',
      );
      assertReset(ending, `${label}round ${round + 1}`);
    }
  } finally {
    await rig.close();
  }
}

const KiB = 1024;

/** The local service answers the first part of a request with part of a reply and resets
 * (RST) on the second part, once that reply has been read (a reset must be sent while
 * nothing is unread on its connection, or Linux may report the end of the stream rather
 * than the reset to the reader): the visitor sees ECONNRESET after exactly that part, and
 * the relay then holds only the idle client again. `label` begins every message. */
export async function serviceResetSeenByVisitor(
  startRig: (onLocal: (socket: net.Socket) => void) => Promise<ResetRig>,
  label: string,
): Promise<void> {
  const service = (socket: net.Socket): void => {
    socket.once('data', () => {
      socket.write(pseudoRandomBytes(16 * KiB, 31));
      socket.once('data', () => socket.resetAndDestroy());
    });
  };
  const rig = await startRig(service);
  rig.client.on('warning', () => {}); // the reset connection may be reported; not asserted here
  let visitor: net.Socket | undefined;
  try {
    const idle = rig.server.stats();
    const inbox = await openInbox(rig.publicPort);
    visitor = inbox.socket;
    const ending = endingOf(visitor);
    visitor.write('request, part 1');
    assertSameBytes(
      await inbox.take(16 * KiB),
      pseudoRandomBytes(16 * KiB, 31),
      `${label}: the first part of the reply`,
    );
    visitor.write('request, part 2'); // still no FIN: the stream is mid-way when the service resets
    const { code, received } = await within(ending, 10_000, `${label}: the visitor's connection to end`);
    assert.equal(code, 'ECONNRESET', `${label}: the visitor must see an abort, not a clean end`);
    assert.equal(received.length, 16 * KiB, `${label}: nothing after the first part of the reply`);
    await untilEqual(() => rig.server.stats(), idle, `${label}: the server to hold only the idle client again`);
  } finally {
    visitor?.destroy();
    await rig.close();
  }
}

/** The visitor resets after its first bytes reached the local service: the service sees
 * ECONNRESET, and the relay then holds only the idle client again. */
export async function visitorResetSeenByService(
  startRig: (onLocal: (socket: net.Socket) => void) => Promise<ResetRig>,
  label: string,
): Promise<void> {
  let onLocal: (socket: net.Socket) => void = () => {};
  const localSocket = new Promise<net.Socket>((resolve) => (onLocal = resolve));
  const rig = await startRig((socket) => onLocal(socket));
  rig.client.on('warning', () => {});
  let visitor: net.Socket | undefined;
  try {
    const idle = rig.server.stats();
    visitor = await connectVisitor(rig.publicPort);
    visitor.on('error', () => {});
    visitor.write('first bytes');
    const local = await within(localSocket, 10_000, `${label}: the local service to be dialed`);
    const ending = endingOf(local);
    const firstBytes = new Promise<void>((resolve) => local.once('data', () => resolve()));
    await within(firstBytes, 10_000, `${label}: the first bytes to reach the local service`);
    visitor.resetAndDestroy();
    const { code } = await within(ending, 10_000, `${label}: the local service's connection to end`);
    assert.equal(code, 'ECONNRESET', `${label}: the local service must see an abort, not a clean end`);
    await untilEqual(() => rig.server.stats(), idle, `${label}: the server to hold only the idle client again`);
  } finally {
    visitor?.destroy();
    await rig.close();
  }
}
