// Writes the README's picture of the inspector (docs/inspector.png) by running the same
// scenario as test/inspector-browser.test.ts: a relay, a client with an HTTP and a TCP
// tunnel, traffic, and headless Chromium on the inspector's page, every step checked.
//   node --import tsx scripts/inspector-screenshot.ts [OUT.png]   (npm run screenshot)
import path from 'node:path';
import { inspectorScenario } from '../test/inspector-scenario.ts';

const out = path.resolve(process.argv[2] ?? 'docs/inspector.png');
const shot = await inspectorScenario({
  screenshot: out,
  step: async (name, run) => {
    await run();
    console.log(`ok: ${name}`);
  },
});
console.log(`${out}: ${shot.width}x${shot.height}, ${shot.bytes} bytes, ${shot.colours} colours`);
