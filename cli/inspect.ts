// `burrow client --inspect [ADDR:]PORT` / `--no-inspect`: where the inspector's page is
// served (cli/run.ts starts it once the tunnels are open). On by default, on loopback:
// http://127.0.0.1:4040/, or the next free port.
import { DEFAULT_INSPECT_PORT, parseMetricsAddress, type InspectorOptions } from '../index.ts';
import { raw, type Env, type RawArgs } from './args.ts';
import { UsageError } from './usage-error.ts';

/** The inspector's address, or undefined when it is off (`--no-inspect`, BURROW_INSPECT=0). */
export function resolveInspect(args: RawArgs, env: Env): Pick<InspectorOptions, 'host' | 'port'> | undefined {
  const flag = args.inspect;
  const last: unknown = Array.isArray(flag) ? flag[flag.length - 1] : flag; // a repeated flag: the last wins
  if (last === false) return undefined;
  const value = raw(args, env, 'inspect');
  if (value === undefined) return { host: '127.0.0.1', port: DEFAULT_INSPECT_PORT };
  if (['0', 'off', 'false', 'no'].includes(value.text.toLowerCase())) return undefined;
  // A bare PORT means loopback, as for --metrics: the page shows request bodies.
  const address = parseMetricsAddress(value.text);
  if (address === undefined)
    throw new UsageError(`${value.source}: "${value.text}" is not PORT, HOST:PORT or [IPv6]:PORT (or 0 for none)`);
  return address;
}
