// `npm run bench [-- options]`: burrow side by side with a direct connection, in one run,
// on 127.0.0.1. See bench/README.md for what each number means. This file is the entry
// point: it parses the options, starts the harness, measures and reports.
import { describeProcessLayout, parseConfig, USAGE, type Config } from './config.ts';
import { progress } from './format.ts';
import { Harness } from './harness.ts';
import { destroyOpenConnections } from './io.ts';
import { measure } from './measure.ts';
import { writeReport } from './report.ts';
import { GcLog } from './stats.ts';

/** The exit code: 0 on success, 1 if a measurement failed, 2 for bad options. */
async function main(): Promise<number> {
  let config: Config | undefined;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (config === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const gcLog = new GcLog();
  const harness = new Harness();
  try {
    const { relay, ports } = await harness.start(config.relayProcess);
    progress(config, `burrow bench (${config.quick ? 'quick' : 'full'}): ${describeProcessLayout(config)}`);
    writeReport(config, await measure(config, relay, ports, gcLog));
    return 0;
  } catch (error) {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  } finally {
    gcLog.stop();
    destroyOpenConnections();
    await harness.close();
  }
}

process.exitCode = await main();
