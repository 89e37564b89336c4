// WarmData (client/warm-data.ts) on its own: connections opened ahead against a plain
// listener, taken one at a time, skipped once their peer spoke or closed, bounded, closed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { MAX_WARM, WarmData } from '../client/warm-data.ts';
import { HOST, untilEqual } from './helpers.ts';

async function withListener(body: (dial: () => Promise<net.Socket>, accepted: net.Socket[]) => Promise<void>) {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => accepted.push(socket));
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const dialed: net.Socket[] = [];
  const dial = async (): Promise<net.Socket> => {
    const socket = net.connect({ host: HOST, port, allowHalfOpen: true });
    dialed.push(socket);
    await once(socket, 'connect');
    return socket;
  };
  try {
    await body(dial, accepted);
  } finally {
    for (const socket of [...dialed, ...accepted]) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

test('WarmData: each take() hands out one idle connection and leaves the others idle; at most MAX_WARM are kept', async () => {
  await withListener(async (dial) => {
    const warm = new WarmData(dial, 60_000);
    for (let i = 0; i < MAX_WARM + 2; i++) warm.refill();
    await untilEqual(() => warm.size, MAX_WARM, `${MAX_WARM} idle`);
    const first = warm.take();
    assert.ok(first, 'one handed out');
    assert.equal(warm.size, MAX_WARM - 1, 'the others stay idle');
    const second = warm.take();
    assert.ok(second && second !== first, 'another one, not the same');
    assert.equal(warm.size, MAX_WARM - 2);
    assert.equal(first.destroyed || second.destroyed, false, 'handed out open');
    warm.close();
    assert.equal(warm.size, 0);
    assert.equal(warm.take(), undefined, 'nothing after close()');
    warm.refill();
    assert.equal(warm.size, 0, 'and nothing dialed');
  });
});

test('WarmData: a connection its peer spoke on or closed is not handed out', async () => {
  await withListener(async (dial, accepted) => {
    const warm = new WarmData(dial, 60_000);
    warm.refill();
    await untilEqual(() => warm.size, 1, 'one idle');
    await untilEqual(() => accepted.length, 1, 'accepted');
    accepted[0]?.write('ERR timeout\n');
    await untilEqual(() => warm.size, 0, 'dropped once its peer spoke');
    warm.refill();
    await untilEqual(() => warm.size, 1, 'one idle again');
    await untilEqual(() => accepted.length, 2, 'accepted again');
    accepted[1]?.destroy();
    await untilEqual(() => warm.size, 0, 'dropped once its peer closed');
    assert.equal(warm.take(), undefined);
    warm.close();
  });
});

test('WarmData: an idle connection is closed at half the timeout it was given', async () => {
  await withListener(async (dial) => {
    const warm = new WarmData(dial, 200);
    warm.refill();
    await untilEqual(() => warm.size, 1, 'one idle');
    await untilEqual(() => warm.size, 0, 'closed after about 100 ms');
    warm.close();
  });
});
