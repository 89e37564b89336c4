// The inspector in a real browser: headless Chromium on its page while traffic flows
// through an HTTP and a TCP tunnel. The steps (test/inspector-scenario.ts, each a subtest
// here) check that rows appear live, a connection's timeline, a request's details, replay
// as captured and edited, and the filter; then a full-page screenshot goes to a temporary
// directory (kept if the test fails) and is checked not to be blank. The same scenario
// makes docs/inspector.png (npm run screenshot). Needs Debian's `chromium`.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { inspectorScenario } from './inspector-scenario.ts';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test('the inspector in a real browser: live rows, timeline, details, replay, filter, screenshot', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'burrow-inspector-'));
  const screenshot = path.join(dir, 'inspector.png');
  let passed = false;
  try {
    const found = await inspectorScenario({
      screenshot,
      step: async (name, run) => {
        let failed = false;
        await t.test(name, async () => {
          try {
            await run();
          } catch (error) {
            failed = true;
            throw error;
          }
        });
        if (failed) throw new Error(`the step “${name}” failed (the steps after it need it)`);
      },
    });
    await t.test('the screenshot on disk is a PNG of the page, not blank', async () => {
      const png = await readFile(screenshot);
      assert.ok(png.length > 20_000, `${png.length} bytes`);
      assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
      assert.equal(png.toString('latin1', 12, 16), 'IHDR');
      assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [found.width, found.height]);
      assert.ok(found.colours >= 64 && found.commonest < 0.9, JSON.stringify(found));
    });
    passed = true;
  } finally {
    if (passed) await rm(dir, { recursive: true, force: true });
    else t.diagnostic(`the screenshot, if it was taken: ${screenshot}`);
  }
});
