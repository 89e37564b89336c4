// "A healthy tunnel beside the test": a real client exposing a local echo service on the
// same server that a test attacks, checked byte-exact before, during and after, and
// required to end without a warning and without losing its control connection. It shows
// that what a test does to the server touches nothing else.
import assert from 'node:assert/strict';
import type net from 'node:net';
import type { BurrowServer, ServerOptions, ServerStats } from '../index.ts';
import { assertSameBytes, echo, pseudoRandomBytes, request, startRig, type Rig } from './helpers.ts';
import { openInbox } from './inbox.ts';

const KiB = 1024;

/** The stats of a server holding exactly one idle tunnel of one client: the healthy one. */
export const ONE_IDLE_TUNNEL: ServerStats = {
  clients: 1,
  clientAddresses: 1,
  tunnels: 1,
  leasedPorts: 0,
  ports: 1,
  pendingVisitors: 0,
  sockets: 1,
};

/** A fresh visitor sends `size` seeded bytes through the echo tunnel on `port` and must get
 * exactly those bytes back. */
export async function assertEchoes(port: number, size: number, seed: number, what: string): Promise<void> {
  const payload = pseudoRandomBytes(size, seed);
  assertSameBytes(await request(port, payload), payload, what);
}

export interface EchoTunnel extends Rig {
  /** Every warning and close event of the client, as text: a healthy client has none. */
  problems: string[];
}

/** Server (with `options`), client and local echo service, wired together; the client's
 * warnings and closes are recorded in `problems`. */
export async function startEchoTunnel(options: ServerOptions = {}): Promise<EchoTunnel> {
  const rig = await startRig(echo, { server: options });
  const problems: string[] = [];
  rig.client.on('warning', (warning) => problems.push(`warning: ${warning.code}: ${warning.message}`));
  rig.client.on('close', (error) => problems.push(`close: ${error?.message ?? 'without error'}`));
  return { ...rig, problems };
}

/** An echo tunnel plus one long-lived visitor connection through it, opened before the
 * test does anything, so a test can show that its bad inputs touch nothing else. */
export interface Healthy {
  server: BurrowServer;
  publicPort: number;
  /** A fresh visitor sends 64 KiB (seeded) and must get exactly them back. */
  check(what: string): Promise<void>;
  /** 4 KiB (seeded) through the long-lived visitor connection, echoed byte-exact. */
  pulse(what: string): Promise<void>;
  /** Final checks: one more pulse and check, the long connection ends cleanly with nothing
   * unexpected, the client emitted no warning and is still connected. */
  finish(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a Healthy on a server with `options`, checked (check and pulse) before it is returned. */
async function startHealthy(options: ServerOptions = {}): Promise<Healthy> {
  const tunnel = await startEchoTunnel(options);
  const stream = await openInbox(tunnel.publicPort).catch(async (error: unknown) => {
    await tunnel.close();
    throw error;
  });
  let seed = 1000;
  const healthy: Healthy = {
    server: tunnel.server,
    publicPort: tunnel.publicPort,
    check: (what) => assertEchoes(tunnel.publicPort, 64 * KiB, ++seed, `healthy tunnel, ${what}`),
    async pulse(what) {
      const chunk = pseudoRandomBytes(4 * KiB, ++seed);
      stream.socket.write(chunk);
      assertSameBytes(await stream.take(chunk.length), chunk, `long-lived healthy connection, ${what}`);
    },
    async finish() {
      await healthy.pulse('at the end');
      await healthy.check('at the end');
      stream.socket.end();
      assert.equal((await stream.rest()).length, 0, 'the long-lived connection got bytes it did not send');
      assert.deepEqual(tunnel.problems, [], 'the healthy client warned or lost its control connection');
    },
    async close() {
      stream.socket.destroy();
      await tunnel.close();
    },
  };
  try {
    await healthy.check('before');
    await healthy.pulse('before');
  } catch (error) {
    await healthy.close();
    throw error;
  }
  return healthy;
}

/** Runs `body` beside a Healthy on a server with `options`, then `healthy.finish()`; at the
 * end, pass or fail, destroys every socket `body` put into `sockets` and closes the rest. */
export async function withHealthy(
  options: ServerOptions,
  body: (healthy: Healthy, sockets: net.Socket[]) => Promise<void>,
): Promise<void> {
  const healthy = await startHealthy(options);
  const sockets: net.Socket[] = [];
  try {
    await body(healthy, sockets);
    await healthy.finish();
  } finally {
    for (const socket of sockets) socket.destroy();
    await healthy.close();
  }
}
