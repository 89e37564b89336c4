// `npm run demo` is the first command in the README: it must run, narrate the rendezvous
// with the trace, and end with the response that crossed the tunnel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScript } from './child.ts';

for (const args of [[], ['--websocket']]) {
  test(`the demo${args.length ? ` ${args.join(' ')}` : ''} exits 0, shows CONNECTION, ID and OK in order, and ends with the response`, async () => {
    const { code, stdout, stderr } = await runScript('demo/demo.ts', args);
    assert.equal(code, 0, `exit code; stderr: ${stderr}`);
    const lines = stdout.split('\n');
    const at = (pattern: RegExp): number => lines.findIndex((line) => pattern.test(line));
    const steps = [
      /\[client\] control +-> EXPOSE \d+$/,
      /\[server\] control#1 +-> OK \d+ /,
      /\[server\] visitor:\S+ +\.\. accepted from 127\.0\.0\.1:\d+/,
      /\[server\] control#1 +-> CONNECTION \S+ (\d+) 127\.0\.0\.1:\d+ 127\.0\.0\.1:\1$/,
      /\[client\] data:\S+ +-> ID \S+$/,
      /\[server\] data#1 +-> OK$/,
      /\[client\] data:\S+ +\.\. (closed|reset): /,
    ];
    const positions = steps.map(at);
    for (const [i, position] of positions.entries()) assert.ok(position >= 0, `step ${steps[i]} in:\n${stdout}`);
    assert.deepEqual(
      [...positions].sort((a, b) => a - b),
      positions,
      `the steps in order:\n${stdout}`,
    );
    const last = lines.filter((line) => line.trim() !== '').at(-1) ?? '';
    assert.match(
      last,
      /HTTP 200 "Hello from the local service! You asked for \/hello\\n"$/,
      'the demo ends with the response',
    );
  });
}
