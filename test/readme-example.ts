// The README's library example as a user meets it: the code block of "Use it as a library",
// saved as a file in a project of its own whose node_modules/<package name> is the package
// (this clone, or the packed tarball installed somewhere), run with tsx.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHILD_MS, cleanEnv, type Exit } from './child.ts';
import { within } from './helpers.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** This package's name, as package.json says: what a user installs and imports. */
export async function packageName(): Promise<string> {
  const manifest: unknown = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8'));
  assert.ok(
    typeof manifest === 'object' && manifest !== null && 'name' in manifest && typeof manifest.name === 'string',
    'package.json has a name',
  );
  return manifest.name;
}

/** The one ```ts block of the README's "Use it as a library" section, exactly as shown. */
export async function readmeLibraryExample(): Promise<string> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Use it as a library\n');
  assert.ok(start >= 0, 'README has a "## Use it as a library" section');
  const next = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const blocks = [...section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? '');
  assert.equal(blocks.length, 1, 'one ts code block in "Use it as a library"');
  return blocks[0] ?? '';
}

/** Makes `dir` a user's project: package.json (ESM), `example.ts` holding `code`, and
 * node_modules/<name> a link to `packageDir`. Returns the example's path. */
export async function writeExampleProject(
  dir: string,
  code: string,
  name: string,
  packageDir: string,
): Promise<string> {
  await mkdir(path.join(dir, 'node_modules'), { recursive: true });
  await writeFile(
    path.join(dir, 'package.json'),
    `${JSON.stringify({ name: 'readme-example', private: true, type: 'module' }, null, 2)}\n`,
  );
  await symlink(packageDir, path.join(dir, 'node_modules', name), 'dir');
  const file = path.join(dir, 'example.ts');
  await writeFile(file, code);
  return file;
}

/** Runs `node --import tsx <file>` in `cwd` to completion (tsx is this repository's: the
 * user's project has only the package). */
export async function runWithTsx(file: string, cwd: string): Promise<Exit & { stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file], {
    cwd,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const closed = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
  });
  try {
    return { ...(await within(closed, CHILD_MS, `${file} to finish`)), stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** What the library example prints when one visitor crossed and everything closed. */
export function assertExampleOutput(result: Exit & { stdout: string; stderr: string }): void {
  assert.deepEqual(
    { code: result.code, signal: result.signal },
    { code: 0, signal: null },
    `exit; stdout: ${result.stdout} stderr: ${result.stderr}`,
  );
  assert.match(result.stdout, /^forwarding tcp:\/\/127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/m);
  assert.match(result.stdout, /^visitor 127\.0\.0\.1:\d+ joined on tcp:/m);
  assert.match(result.stdout, /^visitor 127\.0\.0\.1:\d+: 24 B in, 24 B out, \d+ ms$/m);
  assert.match(result.stdout, /^echoed: hello through the tunnel$/m);
  assert.match(result.stdout, /relayed 24 B from visitors$/m);
  assert.equal(result.stderr, '', 'no warnings');
}
