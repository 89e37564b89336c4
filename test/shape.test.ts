// The shape of the code, as docs/ARCHITECTURE.md promises it: small source files, and no
// import cycles anywhere (type-only imports included), so that every module can be read
// after the ones it imports.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(import.meta.dirname, '..');
const CORE = ['shared', 'server', 'client'];
const SOURCES = [...CORE, 'cli'];
/** Code lines (not blank, not comment) a source file may have: one sitting's reading. */
const MAX_CODE_LINES = 250;

const sourceFiles = (dirs: string[]): string[] =>
  dirs.flatMap((dir) =>
    fs
      .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' }) // server/http/ too
      .filter((name) => name.endsWith('.ts'))
      .map((name) => path.join(ROOT, dir, name)),
  );

/** Lines that are neither blank nor only comment. */
export function codeLines(text: string): number {
  let count = 0;
  let inBlock = false;
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (inBlock) {
      const end = line.indexOf('*/');
      if (end === -1) continue;
      inBlock = false;
      line = line.slice(end + 2).trim();
    }
    if (line.startsWith('/*')) {
      const end = line.indexOf('*/');
      if (end === -1) {
        inBlock = true;
        continue;
      }
      line = line.slice(end + 2).trim();
    }
    if (line !== '' && !line.startsWith('//')) count++;
  }
  return count;
}

/** The relative modules a file imports or re-exports, type-only ones and dynamic ones too. */
export function importsOf(file: string, text: string): string[] {
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*'(\.[^']+)'/gms),
    ...text.matchAll(/^\s*import\s*'(\.[^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g),
  ].map((match) => match[1] ?? '');
  return specifiers.map((specifier) => path.resolve(path.dirname(file), specifier));
}

/** One import cycle, as a list of files (the first repeated at the end), or undefined. */
export function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): string[] | undefined => {
    if (state.get(file) === 'done') return undefined;
    if (state.get(file) === 'visiting') return [...stack.slice(stack.indexOf(file)), file];
    state.set(file, 'visiting');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(file, 'done');
    return undefined;
  };
  for (const file of graph.keys()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}

test(`no source file (core and CLI) has more than ${MAX_CODE_LINES} code lines`, () => {
  const long = [path.join(ROOT, 'index.ts'), ...sourceFiles(SOURCES)]
    .map((file) => ({ file: path.relative(ROOT, file), lines: codeLines(fs.readFileSync(file, 'utf8')) }))
    .filter(({ lines }) => lines > MAX_CODE_LINES);
  assert.deepEqual(long, []);
});

test('no import cycles, type-only imports included', () => {
  const files = [path.join(ROOT, 'index.ts'), ...sourceFiles(SOURCES)];
  const graph = new Map(files.map((file) => [file, importsOf(file, fs.readFileSync(file, 'utf8'))]));
  const cycle = findCycle(graph);
  assert.equal(cycle?.map((file) => path.relative(ROOT, file)).join(' -> '), undefined);
});

test('the checks themselves: code lines, imports and cycles', () => {
  assert.equal(codeLines('// a\n\n/* b\n c */\nconst x = 1; // d\n/** e */ const y = 2;\n'), 2);
  const file = path.join(ROOT, 'server', 'x.ts');
  assert.deepEqual(
    importsOf(
      file,
      "import type { A } from './a.ts';\nexport {\n  B,\n} from '../shared/b.ts';\nawait import('./c.ts');",
    ),
    [path.join(ROOT, 'server', 'a.ts'), path.join(ROOT, 'shared', 'b.ts'), path.join(ROOT, 'server', 'c.ts')],
  );
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', []],
  ]);
  assert.deepEqual(findCycle(graph), ['a', 'b', 'c', 'a']);
  assert.equal(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', []],
      ]),
    ),
    undefined,
  );
});
