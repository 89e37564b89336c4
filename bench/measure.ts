// Every measurement of a bench run, in order, watching the machine throughout.
import type { Config } from './config.ts';
import { watchMachine } from './machine.ts';
import { measureConcurrency } from './measure-concurrency.ts';
import { measureLatency, measureSetup } from './measure-round-trips.ts';
import { measureThroughput } from './measure-throughput.ts';
import type { Relay } from './relay.ts';
import type { Ports, Results, Side } from './results.ts';
import type { GcLog } from './stats.ts';

export async function measure(config: Config, relay: Relay, ports: Record<Side, Ports>, gcLog: GcLog): Promise<Results> {
  const machineWatch = await watchMachine(relay);
  const { throughput, memory } = await measureThroughput(config, relay, ports);
  const latency = await measureLatency(config, ports, gcLog);
  const setup = await measureSetup(config, ports, gcLog);
  const concurrency = await measureConcurrency(config, ports);
  const machine = await machineWatch.stop();
  return { machine, throughput, latency, setup, concurrency, memory };
}
