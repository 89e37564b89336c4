// `node --import tsx bench/profile-summary.ts FILE.cpuprofile [N]`: the N functions (default
// 25) with the most self time in a CPU profile written by `npm run bench -- --cpu-prof`, and
// the total (idle excluded), so a look at where the relay or client spends its time needs
// no DevTools.
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

function isProfile(value: unknown): value is Profile {
  return typeof value === 'object' && value !== null && 'nodes' in value && Array.isArray(value.nodes);
}

const [file, countText] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [N]\n');
  process.exit(2);
}
const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
if (!isProfile(parsed)) throw new Error(`${file} is not a .cpuprofile`);

// Time per node: each sample's following time delta is charged to the sampled node.
const byNode = new Map<number, number>();
const samples = parsed.samples ?? [];
const deltas = parsed.timeDeltas ?? [];
for (let i = 0; i < samples.length; i++) {
  const id = samples[i];
  if (id !== undefined) byNode.set(id, (byNode.get(id) ?? 0) + (deltas[i + 1] ?? 0));
}

const byFunction = new Map<string, number>();
let busyUs = 0;
for (const node of parsed.nodes) {
  const us = byNode.get(node.id) ?? 0;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)') continue;
  busyUs += us;
  const where = url === '' ? '' : ` ${path.basename(url.replace(/^file:\/\//, ''))}:${lineNumber + 1}`;
  const key = `${functionName || '(anonymous)'}${where}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}

// Piped into `head`, the reader may go before we are done: that is no error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});
const top = [...byFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(countText ?? 25));
process.stdout.write(
  `${file}: ${(busyUs / 1e3).toFixed(0)} ms busy of ${((parsed.endTime - parsed.startTime) / 1e3).toFixed(0)} ms profiled\n`,
);
for (const [name, us] of top)
  process.stdout.write(
    `${(us / 1e3).toFixed(1).padStart(9)} ms ${((us / busyUs) * 100).toFixed(1).padStart(5)}%  ${name}\n`,
  );
