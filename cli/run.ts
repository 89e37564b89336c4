// What `burrow server` and `burrow client` do once their options are known: start the
// library, print the few lines a user needs, and stop cleanly on a signal.
import { BurrowClient } from '../client/client.ts';
import { BurrowError } from '../shared/errors.ts';
import { formatTrace, type TraceEvent } from '../shared/trace.ts';
import { BurrowServer } from '../server/server.ts';
import { resolveClientOptions, resolveServerOptions, type RawArgs } from './options.ts';

type Env = Record<string, string | undefined>;

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`burrow: ${line}\n`);
const printTrace = (event: TraceEvent): void => void process.stderr.write(`${formatTrace(event)}\n`);

/** Expected failures (a BurrowError) are one line on stderr and exit code 1; anything
 * else is a bug, and its stack is worth seeing. */
function failure(error: unknown): number {
  if (error instanceof BurrowError) {
    err(error.message);
    return 1;
  }
  throw error;
}

/** Resolves on the first SIGINT/SIGTERM; a second one exits at once. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(signal);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

export async function runServer(args: RawArgs, env: Env): Promise<number> {
  const { server: options, trace } = resolveServerOptions(args, env);
  const server = new BurrowServer(options);
  if (trace) server.on('trace', printTrace);
  try {
    await server.listen();
  } catch (error) {
    return failure(error);
  }
  const range = options.portRange ? `${options.portRange.min}-${options.portRange.max}` : '';
  const where = options.bind ? `${options.bind} ` : '';
  out(`burrow server listening on ${where}control port ${server.controlPort}, data port ${server.dataPort}; public ports ${range}`);
  await untilSignal();
  await server.close();
  return 0;
}

export async function runClient(args: RawArgs, env: Env): Promise<number> {
  const { client: options, trace } = resolveClientOptions(args, env);
  const client = new BurrowClient(options);
  if (trace) client.on('trace', printTrace);
  try {
    await client.start();
  } catch (error) {
    return failure(error);
  }
  for (const tunnel of client.tunnels) out(`Forwarding ${tunnel.url} -> ${tunnel.localHost}:${tunnel.localPort}`);
  client.on('warning', (warning) => err(`warning: ${warning.message}`));
  const closed = new Promise<BurrowError | undefined>((resolve) => client.once('close', resolve));
  const ended = await Promise.race([untilSignal(), closed]);
  await client.close(); // also ends visitor connections still in flight
  if (ended instanceof BurrowError) {
    err(ended.message);
    return 1;
  }
  return 0;
}
