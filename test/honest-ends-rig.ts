// What the CLI tests of honest ends share (honest-ends-cli.test.ts: processes killed;
// honest-ends-stop-cli.test.ts: a client stopped, and the control case): a real relay
// and tunnel on loopback, and the assertion that an ending was a reset.
import assert from 'node:assert/strict';
import { CHILD_MS, FORWARDING, LISTENING, loopbackClientArgs, startCli, waitForOutput, type Cli } from './child.ts';
import { type HonestEnding } from './endings.ts';
import { HOST, within } from './helpers.ts';

export const MiB = 1024 * 1024;
/** The cases that race a death against the end of a stream run this many times. */
export const ROUNDS = 3;
/** Short heartbeats, so that a FIN from a process that died is known for one after 2 s. */
export const QUICK_HEARTBEAT = ['--heartbeat-interval', '0.5', '--heartbeat-timeout', '2'];
/** Long enough for a heartbeat timeout and the start of a child under load. */
export const END_MS = CHILD_MS;

export interface Relay {
  cli: Cli;
  controlPort: string;
  dataPort: string;
}

/** `burrow server` on loopback with ephemeral control and data ports, plus `extra`. */
export async function startRelay(live: Set<Cli>, extra: string[] = []): Promise<Relay> {
  const cli = startCli(['server', '--control-port', '0', '--data-port', '0', '--bind', HOST, ...extra], {}, live);
  const [, controlPort = '', dataPort = ''] = await waitForOutput(cli, 'stdout', LISTENING, 'the server to listen');
  return { cli, controlPort, dataPort };
}

/** `burrow client <localPort>` against `relay`, plus `extra`; resolves with its public port. */
export async function startTunnel(
  live: Set<Cli>,
  relay: Relay,
  localPort: number,
  extra: string[] = [],
): Promise<{ cli: Cli; publicPort: number }> {
  const cli = startCli(loopbackClientArgs(localPort, relay, extra), {}, live);
  const [, publicPort = ''] = await waitForOutput(cli, 'stdout', FORWARDING, 'the client to forward');
  return { cli, publicPort: Number(publicPort) };
}

/** Sends a child `signal` and waits for it to exit. */
export async function signal(cli: Cli, name: NodeJS.Signals, what: string): Promise<void> {
  cli.child.kill(name);
  await within(cli.closed, CHILD_MS, `${what} to exit after ${name}`);
}

export function assertReset(ending: HonestEnding, what: string): void {
  assert.equal(
    ending.how,
    'reset',
    `${what}: ended with a FIN after ${ending.received} bytes: a truncated stream that looks complete`,
  );
}
