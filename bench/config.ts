// The bench's command-line options: the usage text and parsing them into a Config.
import { parseArgs } from 'node:util';

export const USAGE = `usage: npm run bench -- [options]
  --quick            small sizes, for a smoke run (a few seconds)
  --json             print one JSON object instead of the table
  --relay-process    run the relay server in a child process (reports its RSS/CPU apart)
  --mib N            throughput transfer size per run, MiB (default 256; quick 16)
  --repeat N         throughput and concurrency runs per side (default 5; quick 1)
  --rounds N         ping-pong round trips (default 5000; quick 500)
  --setups N         sequential connections for the setup test (default 500; quick 50)
  --conns N          concurrent connections (default 100; quick 20)
  --conn-kib N       bytes echoed per concurrent connection, KiB (default 1024; quick 256)
  --help`;

export interface Config {
  quick: boolean;
  json: boolean;
  relayProcess: boolean;
  throughputMiB: number;
  repeat: number;
  pingPongRounds: number;
  pingPongBytes: number;
  setups: number;
  setupBytes: number;
  connections: number;
  connectionKiB: number;
}

/** The Config for `argv`, or undefined for `--help`. Throws on a bad option. */
export function parseConfig(argv: string[]): Config | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'relay-process': { type: 'boolean', default: false },
      mib: { type: 'string' },
      repeat: { type: 'string' },
      rounds: { type: 'string' },
      setups: { type: 'string' },
      conns: { type: 'string' },
      'conn-kib': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick;
  const count = (name: string, text: string | undefined, full: number, small: number): number => {
    if (text === undefined) return quick ? small : full;
    const n = Number(text);
    if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(n)) throw new Error(`--${name} wants a positive integer, got '${text}'`);
    return n;
  };
  return {
    quick,
    json: values.json,
    relayProcess: values['relay-process'],
    throughputMiB: count('mib', values.mib, 256, 16),
    repeat: count('repeat', values.repeat, 5, 1),
    pingPongRounds: count('rounds', values.rounds, 5000, 500),
    pingPongBytes: 64,
    setups: count('setups', values.setups, 500, 50),
    setupBytes: 64,
    connections: count('conns', values.conns, 100, 20),
    connectionKiB: count('conn-kib', values['conn-kib'], 1024, 256),
  };
}

/** Where each part runs, in words (the progress line, the table header and the JSON). */
export function describeProcessLayout(config: Config): string {
  return config.relayProcess
    ? 'relay server in a child process (bench/relay-child.ts); burrow client, local services and load generator in this process'
    : 'relay server, burrow client (library startServer/startClient), local services and load generator all in this one process';
}
