// The README's library example is demo/library.ts, which tsc checks and a test runs: the
// two must not drift apart.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { runScript } from './child.ts';

test("the README's library example is demo/library.ts (importing 'burrow' instead of '../index.ts')", async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it as a library'));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'a ts code block in "Use it as a library"');
  const file = await readFile(new URL('../demo/library.ts', import.meta.url), 'utf8');
  // The file's header comment points at the README; the README shows the code after it.
  const code = file.slice(file.indexOf('import ')).replace("from '../index.ts'", "from 'burrow'");
  assert.equal(block, code);
});

test('demo/library.ts runs: one visitor crosses, every event prints, exit 0', async () => {
  const { code, stdout, stderr } = await runScript('demo/library.ts');
  assert.equal(code, 0, `exit code; stderr: ${stderr}`);
  assert.match(stdout, /^forwarding tcp:\/\/127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/m);
  assert.match(stdout, /^visitor 127\.0\.0\.1:\d+ joined on tcp:/m);
  assert.match(stdout, /^visitor 127\.0\.0\.1:\d+: 24 B in, 24 B out, \d+ ms$/m);
  assert.match(stdout, /^echoed: hello through the tunnel$/m);
  assert.match(stdout, /relayed 24 B from visitors$/m);
  assert.equal(stderr, '', 'no warnings');
});
