// The CLI is a user of the library like any other: every cli/ file imports library code
// from index.ts alone (cli/ files may import each other).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'cli');

/** The relative modules `file` imports or re-exports, type-only and dynamic ones too. */
const importsOf = (file: string): string[] =>
  [...fs.readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s*|^\s*import\s*|\bimport\(\s*)'(\.[^']+)'/gm)].map((match) =>
    path.resolve(path.dirname(file), match[1] ?? ''),
  );

test('cli/ imports the library through index.ts only', () => {
  const outside = fs
    .readdirSync(CLI)
    .filter((name) => name.endsWith('.ts'))
    .flatMap((name) => {
      const file = path.join(CLI, name);
      return importsOf(file)
        .filter((target) => path.dirname(target) !== CLI && target !== path.join(ROOT, 'index.ts'))
        .map((target) => `cli/${name} -> ${path.relative(ROOT, target)}`);
    });
  assert.deepEqual(outside, []);
});
