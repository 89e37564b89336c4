// The example peers of docs/PROTOCOL.md (examples/minimal-*.mjs) as child processes, on
// 127.0.0.1 with ephemeral ports, shaped like test/child.ts's `Cli` so that its waitFor,
// waitForOutput and killAll work on them too.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanEnv, waitForOutput, type Cli, type Exit } from './child.ts';
import { HOST } from './helpers.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What minimal-server.mjs prints once both ports listen. */
export const SERVER_LISTENING = /^listening on control (\d+), data (\d+)$/m;
/** What minimal-client.mjs prints once its tunnel is open: server host, public port, local port. */
export const CLIENT_FORWARDING = /^Forwarding (\S+):(\d+) -> localhost:(\d+)$/m;

/** Starts `node examples/<name>.mjs <args>` (plain node, no tsx); `live` collects it so
 * the test can `killAll` in `finally`. */
export function startExample(name: 'minimal-client' | 'minimal-server', args: string[], live: Set<Cli>, vars: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, [`examples/${name}.mjs`, ...args], {
    cwd: REPO_ROOT,
    env: cleanEnv(vars),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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

/** Parses a decimal port printed by a child. */
function port(text: string | undefined, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0 || value > 65_535) throw new Error(`not a port for ${what}: ${String(text)}`);
  return value;
}

/** minimal-server.mjs on 127.0.0.1 with any free ports; resolves once it listens. */
export async function startMinimalServer(live: Set<Cli>): Promise<{ cli: Cli; controlPort: number; dataPort: number }> {
  const cli = startExample('minimal-server', ['0', '0'], live, { BIND: HOST });
  const [, control, data] = await waitForOutput(cli, 'stdout', SERVER_LISTENING, 'minimal-server.mjs to listen');
  return { cli, controlPort: port(control, 'the control port'), dataPort: port(data, 'the data port') };
}

/** minimal-client.mjs exposing `localPort` through a server on 127.0.0.1; resolves with
 * the public port once the tunnel is open. */
export async function startMinimalClient(
  localPort: number,
  server: { controlPort: number; dataPort: number },
  live: Set<Cli>,
): Promise<{ cli: Cli; publicPort: number }> {
  const args = [String(localPort), HOST, String(server.controlPort), String(server.dataPort)];
  const cli = startExample('minimal-client', args, live);
  const [, host, publicPort, local] = await waitForOutput(cli, 'stdout', CLIENT_FORWARDING, 'minimal-client.mjs to open its tunnel');
  if (host !== HOST || local !== String(localPort)) throw new Error(`unexpected forwarding line: ${cli.stdout}`);
  return { cli, publicPort: port(publicPort, 'the public port') };
}
