// The example peers of docs/PROTOCOL.md (examples/minimal-*.mjs) as child processes, on
// 127.0.0.1 with ephemeral ports, shaped like test/child.ts's `Cli` so that its waitFor,
// waitForOutput and killAll work on them too.
import { startNode, waitForOutput, type Cli } from './child.ts';
import { HOST } from './helpers.ts';

/** What minimal-server.mjs prints once both ports listen. */
export const SERVER_LISTENING = /^listening on control (\d+), data (\d+)$/m;
/** What minimal-client.mjs prints once its tunnel is open: server host, public port, local port. */
export const CLIENT_FORWARDING = /^Forwarding (\S+):(\d+) -> localhost:(\d+)$/m;

/** Starts `node examples/<name>.mjs <args>` (plain node, no tsx); `live` collects it so
 * the test can `killAll` in `finally`. */
export function startExample(
  name: 'minimal-client' | 'minimal-server',
  args: string[],
  live: Set<Cli>,
  vars: Record<string, string> = {},
): Cli {
  return startNode([`examples/${name}.mjs`, ...args], vars, live);
}

/** Parses a decimal port printed by a child. */
function port(text: string | undefined, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0 || value > 65_535)
    throw new Error(`not a port for ${what}: ${String(text)}`);
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
  const [, host, publicPort, local] = await waitForOutput(
    cli,
    'stdout',
    CLIENT_FORWARDING,
    'minimal-client.mjs to open its tunnel',
  );
  if (host !== HOST || local !== String(localPort)) throw new Error(`unexpected forwarding line: ${cli.stdout}`);
  return { cli, publicPort: port(publicPort, 'the public port') };
}
