// The inspector's history is bounded: under a long load of requests with bodies and of TCP
// connections, a client with its inspector keeps the last N of each and no more, so its
// heap stays flat. Without the bound, the requests of this test alone would keep ~20 MiB.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { startInspector } from '../client/inspector/server.ts';
import { echo, listenLocal, request } from './helpers.ts';
import { echoHandler, httpRig, localService, visit } from './http-rig.ts';
import { heapAfterGc, liveBytes, loadGc } from './memory.ts';

const MiB = 1024 * 1024;
/** Far above the few hundred KiB a warmed-up process drifts by, far below what keeping
 * every request (2,400 x ~16 KiB of captured bodies) would cost. */
const HEAP_GROWTH_BOUND = 6 * MiB;

test('a long load through a client with its inspector leaves its memory flat: the history keeps the last N', async (t) => {
  const gc = loadGc();
  const web = await localService(echoHandler('leak'));
  const tcp = await listenLocal(echo);
  const rig = await httpRig([{ localPort: web.port, http: { name: 'leak' } }, { localPort: tcp.port }]);
  const inspector = await startInspector(rig.client, { port: 0, history: 50, maxBodyBytes: 8 * 1024 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const body = 'b'.repeat(8 * 1024);
  const tunnel = rig.client.tunnels[1];
  assert.ok(tunnel);
  const round = async (requests: number): Promise<void> => {
    for (let i = 0; i < requests; i += 8) {
      await Promise.all(
        Array.from({ length: 8 }, (_, j) =>
          visit(rig.port, 'leak.localhost', { agent, method: 'POST', path: `/r${i + j}`, body }),
        ),
      );
      await request(tunnel.publicPort, 'tcp');
    }
  };
  try {
    await round(400); // warm-up: compiled code, pools, and a full history
    // Captured bodies are buffers, mostly outside the JS heap: count both.
    await heapAfterGc(gc);
    const before = liveBytes(gc);
    await round(2_400);
    await heapAfterGc(gc);
    const after = liveBytes(gc);
    t.diagnostic(`live memory ${(before / MiB).toFixed(1)} MiB -> ${(after / MiB).toFixed(1)} MiB over 2,400 requests`);
    assert.ok(after - before < HEAP_GROWTH_BOUND, `heap grew by ${((after - before) / MiB).toFixed(2)} MiB`);
  } finally {
    agent.destroy();
    await inspector.close();
    await rig.close();
    await web.close();
    await tcp.close();
  }
});
