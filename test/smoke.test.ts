import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replyOnEnd, request, startRig } from './helpers.ts';

test('a request crosses the tunnel and the reply comes back after half-close', async () => {
  const rig = await startRig(replyOnEnd((req) => `echo:${req.toString()}`));
  try {
    const reply = await request(rig.publicPort, 'hello');
    assert.equal(reply.toString(), 'echo:hello');
  } finally {
    await rig.close();
  }
});
