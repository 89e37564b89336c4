// The package as a user gets it, without the clone: `npm pack` of a fresh copy of the work
// tree (no dist/, no node_modules of its own: prepack must build), installed with
// `npm install -g --prefix <tmp> <tarball>` (runtime dependencies only, no tsx), then the
// installed `burrow` command runs --help and a real tunnel (TLS, secret) that carries one
// echo, and the README's library example runs and type-checks against the installed package.
//
// npm takes what it can from its cache (--prefer-offline): after `npm ci`, the dependencies'
// tarballs are there; their metadata may not be, and is then fetched from the registry.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cleanEnv, FORWARDING, interrupt, killAll, LISTENING, waitForOutput, type Cli, type Exit } from './child.ts';
import { echo, HOST, listenLocal, request, within } from './helpers.ts';
import {
  assertExampleOutput,
  packageName,
  readmeLibraryExample,
  REPO_ROOT,
  runWithTsx,
  writeExampleProject,
} from './readme-example.ts';

/** Bound for one npm command (an install may fetch metadata from the registry). */
const NPM_MS = 120_000;
/** Bound for the installed command to start, print or exit. */
const RUN_MS = 20_000;

/** Top-level entries of the work tree a fresh checkout does not have. */
const NOT_IN_A_CHECKOUT = new Set(['node_modules', '.git', 'dist']);

/** The user's npm configuration passes through; what `npm test` itself set for its script
 * (npm_config_local_prefix would make `npm pack` pack the clone, not the copy) does not. */
const KEEP_NPM = /^npm_config_(cache|userconfig|globalconfig|registry|cafile|ca|proxy|https_proxy|noproxy|strict_ssl)$/;
function npmEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv();
  for (const key of Object.keys(env)) if (/^npm_/i.test(key) && !KEEP_NPM.test(key)) delete env[key];
  return env;
}

type Run = Exit & { stdout: string; stderr: string };

/** Runs `command args` in `cwd` to completion within `ms`; on timeout its whole process
 * group (npm and the scripts it started) is killed. */
async function run(
  command: string,
  args: string[],
  cwd: string,
  ms: number,
  env: NodeJS.ProcessEnv = npmEnv(),
): Promise<Run> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const closed = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
  });
  try {
    return { ...(await within(closed, ms, `${command} ${args.join(' ')}`)), stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

function assertExit0(result: Run, what: string): void {
  assert.deepEqual(
    { code: result.code, signal: result.signal },
    { code: 0, signal: null },
    `${what}; stdout: ${result.stdout}\nstderr: ${result.stderr}`,
  );
}

/** Starts the installed command (its own file: shebang and exec bit) with `vars`. */
function startInstalled(bin: string, args: string[], vars: Record<string, string>, live: Set<Cli>): Cli {
  const child = spawn(bin, args, { env: cleanEnv(vars), stdio: ['ignore', 'pipe', 'pipe'] });
  const cli: Cli = {
    child,
    stdout: '',
    stderr: '',
    closed: new Promise<Exit>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
    }),
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (cli.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (cli.stderr += chunk));
  live.add(cli);
  void cli.closed.finally(() => live.delete(cli)).catch(() => {});
  return cli;
}

interface PackedFile {
  path: string;
  mode: number;
}

/** `npm pack --json`'s answer: the tarball's file name and its files with their modes. */
function parsePack(stdout: string): { filename: string; files: PackedFile[] } {
  const parsed: unknown = JSON.parse(stdout);
  assert.ok(Array.isArray(parsed) && parsed.length === 1, `npm pack --json: one package: ${stdout}`);
  const entry: unknown = parsed[0];
  assert.ok(
    typeof entry === 'object' && entry !== null && 'filename' in entry && 'files' in entry,
    'npm pack --json: filename and files',
  );
  const { filename, files } = entry;
  assert.ok(typeof filename === 'string' && Array.isArray(files), 'npm pack --json: filename and files');
  return {
    filename,
    files: files.map((file: unknown): PackedFile => {
      assert.ok(
        typeof file === 'object' && file !== null && 'path' in file && 'mode' in file,
        'a packed file has a path and a mode',
      );
      const { path: filePath, mode } = file;
      assert.ok(typeof filePath === 'string' && typeof mode === 'number', 'a packed file has a path and a mode');
      return { path: filePath, mode };
    }),
  };
}

test(
  'npm pack → npm install -g --prefix <tmp> → the installed burrow runs --help, carries an echo through a real tunnel, and the README example runs against it',
  { timeout: 300_000 },
  async () => {
    const name = await packageName();
    const live = new Set<Cli>();
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'burrow-package-'));
    const local = await listenLocal(echo);
    try {
      // A fresh checkout's files (this work tree less node_modules, .git and dist), with the
      // clone's node_modules for the build tools that prepack needs.
      const src = path.join(tmp, 'src');
      await cp(REPO_ROOT, src, {
        recursive: true,
        filter: (from) => !NOT_IN_A_CHECKOUT.has(path.relative(REPO_ROOT, from)),
      });
      await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(src, 'node_modules'), 'dir');

      const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], src, NPM_MS);
      assertExit0(packed, 'npm pack');
      const { filename, files } = parsePack(packed.stdout);
      const paths = files.map((file) => file.path);
      // The inspector's page ships with the package: it must work offline.
      for (const page of ['index.html', 'app.js', 'app.css'])
        assert.ok(paths.includes(`dist/client/inspector/page/${page}`), `the inspector's ${page} is packed`);
      for (const file of paths)
        assert.match(
          file,
          /^(package\.json|README\.md|LICENSE(\.md)?|dist\/.+\.(js|d\.ts)|dist\/client\/inspector\/page\/[a-z]+\.(html|css))$/,
          "only compiled code, its types, the inspector's page and the docs are packed",
        );
      for (const needed of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js'])
        assert.ok(paths.includes(needed), `${needed} is packed`);
      const main = files.find((file) => file.path === 'dist/cli/main.js');
      assert.equal((main?.mode ?? 0) & 0o111, 0o111, 'dist/cli/main.js is executable in the tarball');

      const prefix = path.join(tmp, 'prefix');
      const installed = await run(
        'npm',
        [
          'install',
          '--global',
          '--prefix',
          prefix,
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          path.join(tmp, filename),
        ],
        tmp,
        NPM_MS,
      );
      assertExit0(installed, 'npm install -g');
      assert.doesNotMatch(installed.stderr, /install-scripts/, 'no install-time script asks to be allowed');
      const packageDir = path.join(prefix, 'lib', 'node_modules', name);
      const manifest: unknown = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8'));
      assert.ok(
        typeof manifest === 'object' && manifest !== null && 'dependencies' in manifest,
        'the installed package.json has dependencies',
      );
      const runtime = Object.keys(manifest.dependencies ?? {});
      for (const devOnly of ['tsx', 'typescript', 'playwright-core'])
        assert.ok(!runtime.includes(devOnly), `${devOnly} is not a runtime dependency`);
      // The WebSocket transport's, at run time.
      for (const needed of ['ws', 'https-proxy-agent', 'proxy-from-env'])
        assert.ok(runtime.includes(needed), `${needed} is a runtime dependency`);
      const entry = await readFile(path.join(packageDir, 'dist/cli/main.js'), 'utf8');
      assert.equal(entry.split('\n')[0], '#!/usr/bin/env node', 'the command has a shebang');

      const bin = path.join(prefix, 'bin', 'burrow');
      const help = await run(bin, ['--help'], tmp, RUN_MS, cleanEnv());
      assertExit0(help, 'burrow --help');
      assert.match(help.stdout, /^ {2}burrow server +Run the relay/m);
      assert.match(help.stdout, /^ {2}burrow client <local-port\.\.> +Expose local port/m);

      // A real tunnel between two installed commands. TLS loads the one dependency (selfsigned)
      // that only --tls imports.
      const secret = { BURROW_SECRET: 'package-test-secret-0123456789abcdef' };
      const server = startInstalled(
        bin,
        ['server', '--control-port', '0', '--data-port', '0', '--bind', HOST, '--tls-dir', path.join(tmp, 'tls')],
        secret,
        live,
      );
      const [, controlPort = '', dataPort = ''] = await waitForOutput(
        server,
        'stdout',
        LISTENING,
        'the server to listen',
      );
      const [, fingerprint = ''] = await waitForOutput(
        server,
        'stdout',
        /^TLS certificate SHA-256 fingerprint: ([0-9A-F:]+)(?: \(names: [^)]*\))?$/m,
        'the fingerprint',
      );
      const client = startInstalled(
        bin,
        [
          'client',
          String(local.port),
          '--server',
          HOST,
          '--control-port',
          controlPort,
          '--data-port',
          dataPort,
          '--local-host',
          HOST,
          '--no-state-file',
          '--tls-fingerprint',
          fingerprint,
        ],
        secret,
        live,
      );
      const [, publicPort = ''] = await waitForOutput(client, 'stdout', FORWARDING, 'the client to forward');
      assert.equal(
        (await request(Number(publicPort), 'hello through the installed burrow')).toString(),
        'hello through the installed burrow',
      );
      assert.deepEqual(await interrupt(client, 'the client'), { code: 0, signal: null });
      assert.deepEqual(await interrupt(server, 'the server'), { code: 0, signal: null });

      // The README's library example, in a user's project that has the installed package.
      const app = path.join(tmp, 'app');
      const example = await writeExampleProject(app, await readmeLibraryExample(), name, packageDir);
      assertExampleOutput(await runWithTsx(example, app));
      // ... and its types: the package's declarations, checked too (no skipLibCheck).
      const tsconfig = {
        compilerOptions: {
          target: 'ES2023',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          types: ['node'],
          typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')],
        },
        files: ['example.ts'],
      };
      await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
      const tsc = await run(
        process.execPath,
        [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app],
        app,
        NPM_MS,
        cleanEnv(),
      );
      assertExit0(tsc, 'tsc on the example against the installed package');
    } finally {
      await killAll(live);
      await local.close();
      await rm(tmp, { recursive: true, force: true });
    }
  },
);
