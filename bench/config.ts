// The bench's command-line options: the usage text and parsing them into a Config.
import { parseArgs } from 'node:util';

/** The figures, in the order they run (conns last: it starts fresh processes per run).
 * `inspector` is figure 8: the client with its inspector and without, in turns (issue 17);
 * `http` is wrk through a TCP tunnel's public port, `httpname` through the relay's HTTP
 * port with `Host: bench.localhost` (an HTTP tunnel by name, issue 16). */
export const PHASES = ['throughput', 'setup', 'inspector', 'rtt', 'http', 'httpname', 'conns'] as const;
export type Phase = (typeof PHASES)[number];

/** The HTTP tunnel by name of `httpname`: `http://bench.localhost:<relay's HTTP port>`. */
export const HTTP_NAME = 'bench';

export const USAGE = `usage: npm run bench -- [options]
  --quick            smoke run, well under a minute (small sizes, 1,000 conns, short wrk)
  --json             print the results as JSON on stdout instead of the table
  --json-out FILE    where to write the JSON (default bench/results/latest.json,
                     or latest-quick.json with --quick)
  --only LIST        run only these figures: ${PHASES.join(',')}
  --cpu-prof         write CPU profiles of the relay and client processes (and of
                     figure 7's proxies; node --cpu-prof) to bench/results/profiles/
  --inspector        run the client with its inspector (startInspector, any free
                     port; nobody opens the page): what it costs (issue 17)
  --websocket        also measure burrow with the client reaching the relay over
                     WebSocket (a second relay and client): rows for figures 1, 2,
                     3 and 6 beside direct and plain TCP (issue 18)
  --mib N            throughput transfer per run, MiB (default 1024; quick 128)
  --repeat N         throughput runs per side and direction (default 5; quick 2)
  --setups N         sequential connections for the setup figure (default 1000; quick 200)
  --inspector-setups N
                     connections on each side of figure 8, the inspector's cost
                     (default 8000; quick 400)
  --rounds N         64-byte round trips (default 10000; quick 1000)
  --conns LIST       connection counts to hold at once (default 1000,10000; quick 1000)
  --conn-repeat N    concurrency runs per side and count (default 3; quick 1)
  --wrk-seconds N    length of each wrk run (default 5; quick 1)
  --wrk-repeat N     wrk runs per side and mode (default 3; quick 1)
  --help`;

export interface Config {
  quick: boolean;
  json: boolean;
  jsonOut: string;
  phases: ReadonlySet<Phase>;
  cpuProf: boolean;
  /** The client runs startInspector() beside it (issue 17), which nobody opens. */
  inspector: boolean;
  /** Figures 1, 2, 3 and 6 also through a relay and client joined over WebSocket (issue 18). */
  webSocket: boolean;
  throughputMiB: number;
  repeat: number;
  setups: number;
  /** Figure 8: connections with the inspector, and as many without. */
  inspectorSetups: number;
  setupBytes: number;
  rounds: number;
  roundBytes: number;
  conns: number[];
  connRepeat: number;
  /** Connections opened at once while building up the concurrency figure. */
  connBatch: number;
  wrkSeconds: number;
  wrkRepeat: number;
  wrkConnections: number;
}

const positive = (name: string, text: string): number => {
  const n = Number(text);
  if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(n))
    throw new Error(`--${name} wants a positive integer, got '${text}'`);
  return n;
};

/** The Config for `argv`, or undefined for `--help`. Throws on a bad option. */
export function parseConfig(argv: string[]): Config | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'json-out': { type: 'string' },
      only: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      inspector: { type: 'boolean', default: false },
      websocket: { type: 'boolean', default: false },
      mib: { type: 'string' },
      repeat: { type: 'string' },
      setups: { type: 'string' },
      'inspector-setups': { type: 'string' },
      rounds: { type: 'string' },
      conns: { type: 'string' },
      'conn-repeat': { type: 'string' },
      'wrk-seconds': { type: 'string' },
      'wrk-repeat': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick;
  const count = (name: string, text: string | undefined, full: number, small: number): number =>
    text === undefined ? (quick ? small : full) : positive(name, text);
  const phases = values.only === undefined ? PHASES : values.only.split(',');
  for (const phase of phases) {
    if (!(PHASES as readonly string[]).includes(phase))
      throw new Error(`--only: unknown figure '${phase}' (known: ${PHASES.join(', ')})`);
  }
  const conns =
    values.conns === undefined
      ? quick
        ? [1000]
        : [1000, 10_000]
      : values.conns.split(',').map((x) => positive('conns', x));
  return {
    quick,
    json: values.json,
    jsonOut: values['json-out'] ?? `bench/results/${quick ? 'latest-quick' : 'latest'}.json`,
    phases: new Set(phases as Phase[]),
    cpuProf: values['cpu-prof'],
    inspector: values.inspector,
    webSocket: values.websocket,
    throughputMiB: count('mib', values.mib, 1024, 128),
    repeat: count('repeat', values.repeat, 5, 2),
    setups: count('setups', values.setups, 1000, 200),
    inspectorSetups: count('inspector-setups', values['inspector-setups'], 8000, 400),
    setupBytes: 64,
    rounds: count('rounds', values.rounds, 10_000, 1000),
    roundBytes: 64,
    conns,
    connRepeat: count('conn-repeat', values['conn-repeat'], 3, 1),
    connBatch: 500,
    wrkSeconds: count('wrk-seconds', values['wrk-seconds'], 5, 1),
    wrkRepeat: count('wrk-repeat', values['wrk-repeat'], 3, 1),
    wrkConnections: 50,
  };
}

/** The sides compared: the visitor talks to the service itself, or through burrow. */
export type Side = 'direct' | 'burrow';
export const SIDES: readonly Side[] = ['direct', 'burrow'];

/** The sides in the order to measure them in round `index`: alternating which goes
 * first, so neither always runs on a warmer heap or in a quieter spell. */
export function sidesInOrder(index: number): Side[] {
  return index % 2 === 0 ? ['direct', 'burrow'] : ['burrow', 'direct'];
}

/** One progress line on stderr. */
export function progress(text: string): void {
  process.stderr.write(`  ${text}\n`);
}
