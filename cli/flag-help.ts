// What the flag tables of cli/server-flags.ts and cli/client-flags.ts are made of: the yargs
// options of a flag, its --help text, and the flags both commands have.
import type { Options } from 'yargs';
import { envName } from './args.ts';
import type { LivenessDefaults } from './defaults.ts';

/** Flags of a command: name → yargs options. */
export type Table = Record<string, Options>;

/** `--help` text for a flag: what it does, its variable, its default. */
export const describe = (flag: string, text: string): string => `${text}  [env ${envName(flag)}]`;

/** A port, count or number of seconds: `[number]` in --help, yet handed to cli/values.ts
 * as typed. yargs-parser never coerces a `string` key, even one also marked `number` (its
 * maybeCoerceNumber and guessType check strings first), while the help shows a `number`
 * key's tag over the others': so "1e3" or "0x10" still reach our validators as text. */
export const NUMBER = { type: 'string', number: true } as const;

/** A default of milliseconds, as --help shows it: in seconds, as the flags take it. */
export const inSeconds = (ms: number): string => String(ms / 1000);

/** The same flags, shown under `group` in --help. The groups show in the order their
 * first flag is defined, so each command defines its flags in reading order. */
export const inGroup = (group: string, table: Table): Table =>
  Object.fromEntries(Object.entries(table).map(([flag, option]) => [flag, { ...option, group }]));

/** Heartbeat and shutdown, which both commands have: with the defaults of the command's side. */
export const livenessFlags = (defaults: LivenessDefaults): Table => ({
  'heartbeat-interval': {
    ...NUMBER,
    describe: describe('heartbeat-interval', 'Seconds between PINGs on the control connection'),
    defaultDescription: inSeconds(defaults.heartbeatIntervalMs),
  },
  'heartbeat-timeout': {
    ...NUMBER,
    describe: describe('heartbeat-timeout', 'Seconds of silence after which the other side counts as gone'),
    defaultDescription: inSeconds(defaults.heartbeatTimeoutMs),
  },
  'shutdown-timeout': {
    ...NUMBER,
    describe: describe('shutdown-timeout', 'On SIGINT/SIGTERM, seconds to let open connections finish'),
    defaultDescription: inSeconds(defaults.shutdownTimeoutMs),
  },
});

export const outputFlags: Table = {
  trace: {
    type: 'boolean',
    describe: describe(
      'trace',
      'Print every protocol line and connection event to stderr (coloured on a terminal, unless NO_COLOR is set)',
    ),
  },
  json: {
    type: 'boolean',
    describe: describe(
      'json',
      'Print every event (start lines, connections, warnings, traces, ...) as a JSON line on stdout; stderr only for usage errors',
    ),
  },
};

/** The secret, for both commands; in a file or the environment it stays out of `ps`. */
export const secretFlags: Table = {
  secret: {
    type: 'string',
    describe: describe('secret', 'Shared secret clients must prove they know (prefer the variable or --secret-file)'),
  },
  'secret-file': { type: 'string', describe: describe('secret-file', 'Read the shared secret from this file') },
};
