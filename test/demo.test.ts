// `npm run demo` is the first command in the README: it must run, narrate the rendezvous
// with the trace, and end with the response that crossed the tunnel.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { within } from './helpers.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

test('the demo exits 0, shows CONNECTION, ID and OK in order, and ends with the response', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/demo.ts'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  try {
    const [code] = (await within(once(child, 'close'), 30_000, 'the demo to finish')) as [number | null];
    assert.equal(code, 0, `exit code; stderr: ${stderr}`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const lines = stdout.split('\n');
  const at = (pattern: RegExp): number => lines.findIndex((line) => pattern.test(line));
  const steps = [
    /\[client\] control +-> EXPOSE \d+$/,
    /\[server\] control#1 +-> OK \d+ /,
    /\[server\] visitor:\S+ +\.\. accepted from 127\.0\.0\.1:\d+/,
    /\[server\] control#1 +-> CONNECTION \S+ \d+ 127\.0\.0\.1:\d+$/,
    /\[client\] data:\S+ +-> ID \S+$/,
    /\[server\] data#1 +-> OK$/,
    /\[client\] data:\S+ +\.\. (closed|reset): /,
  ];
  const positions = steps.map(at);
  for (const [i, position] of positions.entries()) assert.ok(position >= 0, `step ${steps[i]} in:\n${stdout}`);
  assert.deepEqual([...positions].sort((a, b) => a - b), positions, `the steps in order:\n${stdout}`);
  const last = lines.filter((line) => line.trim() !== '').at(-1) ?? '';
  assert.match(last, /HTTP 200 "Hello from the local service! You asked for \/hello\\n"$/, 'the demo ends with the response');
});
