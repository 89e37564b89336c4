// The `burrow` command: yargs turns flags into library options (cli/options.ts,
// cli/client-options.ts) and the commands run the library. Nothing here knows the protocol.
import yargs, { type Argv } from 'yargs';
import { LOCAL_SPELLING } from './client-options.ts';
import { CLIENT_OPTIONS, LOCAL_OPTIONS } from './client-flags.ts';
import { EXAMPLES, WIDTH, withExamples } from './examples.ts';
import type { Table } from './flag-help.ts';
import { runClient, runServer } from './run.ts';
import { SERVER_OPTIONS } from './server-flags.ts';
import { UsageError } from './usage-error.ts';
import { explainUsage, type CommandName } from './usage.ts';

/** Every flag a command knows, for "did you mean" (help and version are everyone's). */
const knownFlags = (table: Table): string[] => [
  'help',
  'h',
  'version',
  ...Object.entries(table).flatMap(([flag, option]) => [flag, ...[option.alias ?? []].flat()]),
];

const serverArgs = (y: Argv): Argv => withExamples(y.options(SERVER_OPTIONS), EXAMPLES.server);

const clientArgs = (y: Argv): Argv =>
  withExamples(
    // No default: yargs would show `[default: []]` beside `[required]`.
    y
      .positional('local-port', {
        type: 'string',
        array: true,
        default: undefined,
        describe: 'Local port(s) to expose',
      })
      .options(CLIENT_OPTIONS),
    EXAMPLES.client,
  );

const localArgs = (y: Argv): Argv =>
  withExamples(
    y
      .usage(
        "$0 local <local-port>\n\nExpose one local port through a relay, with bore's flags (bore-compatible). These are the same:\n" +
          'burrow local 3000 --to HOST --port 8080\nburrow client 3000 --server HOST --remote-port 8080',
      )
      .positional('local-port', { type: 'string', default: undefined, describe: 'Local port to expose' })
      .options(LOCAL_OPTIONS),
    EXAMPLES.local,
  );

/** Parses `argv` and runs the command; resolves with the process exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let exitCode = 0;
  // Set by the command's builder, which yargs runs before it validates: a usage error then
  // points to that command's help.
  let command: CommandName | undefined;
  const known: Record<CommandName, string[]> = {
    server: knownFlags(SERVER_OPTIONS),
    client: knownFlags(CLIENT_OPTIONS),
    local: knownFlags(LOCAL_OPTIONS),
  };
  const builder =
    (name: CommandName, args: (y: Argv) => Argv) =>
    (y: Argv): Argv => {
      command = name;
      return args(y);
    };
  /** A mistake yargs found, in its words (explainUsage, cli/usage.ts, rewords it). */
  class YargsUsage extends UsageError {}
  const parser = withExamples(yargs(argv), EXAMPLES.top)
    .scriptName('burrow')
    .usage('$0 <command>\n\nA reverse TCP tunnel: expose a port on this machine through a public relay.')
    .command('server', 'Run the relay (on a public host)', builder('server', serverArgs), async (args) => {
      exitCode = await runServer(args, env);
    })
    .command(
      'client <local-port..>',
      'Expose local port(s) through a relay',
      builder('client', clientArgs),
      async (args) => {
        exitCode = await runClient(args, env);
      },
    )
    .command(
      'local <local-port>',
      'Expose one local port, bore-compatible: --to HOST, --port N',
      builder('local', localArgs),
      async (args) => {
        exitCode = await runClient(args, env, LOCAL_SPELLING);
      },
    )
    .demandCommand(1, 'give a command: server, client or local')
    .strict()
    // Our messages are English; so are yargs' (explainUsage reads some of them).
    .detectLocale(false)
    .help()
    .alias('help', 'h')
    .version()
    .wrap(WIDTH)
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new YargsUsage(message);
    });
  try {
    await parser.parseAsync();
  } catch (error) {
    const fromYargs = error instanceof YargsUsage || (error instanceof Error && error.name === 'YError');
    if (!(error instanceof UsageError) && !fromYargs) throw error;
    const message = fromYargs
      ? explainUsage(error.message, {
          command,
          tokens: argv,
          known: command === undefined ? ['help', 'h', 'version'] : known[command],
        })
      : error.message;
    process.stderr.write(
      `burrow: ${message}\nRun 'burrow ${command === undefined ? '' : `${command} `}--help' for usage.\n`,
    );
    return 2;
  }
  return exitCode;
}
