// The README's library example must run as shown. Its code block is run as it stands, as a
// user's file in a project of its own that has the package installed (here: linked to this
// clone, whose dist/ `npm test` builds first), and demo/library.ts is that same code below
// a header comment, so that tsc checks it and `node --import tsx demo/library.ts` runs it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runScript } from './child.ts';
import {
  assertExampleOutput,
  packageName,
  readmeLibraryExample,
  REPO_ROOT,
  runWithTsx,
  writeExampleProject,
} from './readme-example.ts';

test("demo/library.ts is a header comment and then exactly the README's library example", async () => {
  const block = await readmeLibraryExample();
  const file = await readFile(path.join(REPO_ROOT, 'demo/library.ts'), 'utf8');
  const lines = file.split('\n');
  const header = lines.findIndex((line) => !line.startsWith('//'));
  assert.ok(header > 0, 'demo/library.ts starts with a header comment');
  assert.equal(block, lines.slice(header).join('\n'));
});

test("the README's library example is code from its first line and imports the package by its name", async () => {
  const block = await readmeLibraryExample();
  const name = await packageName();
  assert.match(block.split('\n')[0] ?? '', /^import /, 'the block starts with an import, not stray text');
  assert.ok(block.includes(`} from '${name}';\n`), `the block imports from '${name}' (package.json's name)`);
});

test("the README's library example, saved as a user's file next to the installed package, runs: one visitor crosses, exit 0", async () => {
  assert.ok(
    existsSync(path.join(REPO_ROOT, 'dist/index.js')),
    'dist/ is built (`npm test` runs `npm run build` first)',
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'burrow-readme-'));
  try {
    const file = await writeExampleProject(dir, await readmeLibraryExample(), await packageName(), REPO_ROOT);
    assertExampleOutput(await runWithTsx(file, dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('demo/library.ts runs in the clone as the README says: one visitor crosses, every event prints, exit 0', async () => {
  assertExampleOutput(await runScript('demo/library.ts'));
});
