// PublicPorts (server/public-ports.ts), the one owner of public ports, on its own: what it
// counts while a port is live, leased, reclaimed, handed over and released, and that every
// count returns to zero. Real listeners on loopback, in a range below the ephemeral ports.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { test } from 'node:test';
import type { Answer } from '../shared/alive-check.ts';
import { portOf } from '../server/ports.ts';
import {
  PublicPorts,
  type Keep,
  type LiveTunnel,
  type OpenedPort,
  type PortHolder,
  type PortRefusal,
} from '../server/public-ports.ts';
import { HOST } from './helpers.ts';
import { freeRangeStart } from './raw.ts';

function holder(address: string, alive: boolean | undefined, clientInstance?: string): PortHolder & { forgot: number } {
  return {
    address,
    clientInstance,
    open: true,
    forgot: 0,
    confirmAlive(answer: Answer) {
      if (alive !== undefined) answer(alive); // undefined: never answers (the 2 s wait decides)
    },
    send() {},
    forget() {
      this.forgot++;
    },
  };
}

/** A tunnel as the port owner sees it: closing closes its listener and tells the owner. */
function tunnelOn(ports: PublicPorts, opened: OpenedPort, session: PortHolder): LiveTunnel & { keep?: Keep } {
  const tunnel: LiveTunnel & { keep?: Keep } = {
    publicPort: portOf(opened.listener),
    lease: opened.lease,
    session,
    close(keep) {
      this.keep = keep;
      opened.listener.close();
      ports.closed(this, keep);
    },
  };
  ports.adopt(tunnel);
  return tunnel;
}

const isOpened = (result: OpenedPort | PortRefusal): result is OpenedPort => 'listener' in result;
const ignore = (socket: net.Socket): void => void socket.destroy();

async function withPorts(
  limits: { maxTunnels?: number; maxTunnelsPerIp?: number },
  body: (ports: PublicPorts, start: number, expired: Array<[number, string]>) => Promise<void>,
): Promise<void> {
  const start = await freeRangeStart();
  const expired: Array<[number, string]> = [];
  const ports = new PublicPorts({
    range: { min: start, max: start + 20 },
    host: HOST,
    maxTunnels: limits.maxTunnels ?? 100,
    maxTunnelsPerIp: limits.maxTunnelsPerIp ?? 100,
    leaseGraceMs: 60_000,
    heartbeatTimeoutMs: 30_000,
    onLeaseExpired: (port, address) => void expired.push([port, address]),
  });
  try {
    await body(ports, start, expired);
  } finally {
    ports.clearLeases();
  }
}

test('live, leased, reclaimed by its lease, released: the counts follow, and end at zero', async () => {
  await withPorts({}, async (ports, start, expired) => {
    const first = holder('10.0.0.1', true);
    const opened = await ports.open(first, start + 3, undefined, ignore, () => false);
    assert.ok(isOpened(opened));
    assert.equal(opened.reclaimed, false);
    const tunnel = tunnelOn(ports, opened, first);
    assert.equal(tunnel.publicPort, start + 3);
    assert.deepEqual(ports.stats, { tunnels: 1, leased: 0, bound: 1 });

    tunnel.close('lease');
    assert.deepEqual(ports.stats, { tunnels: 0, leased: 1, bound: 1 }, 'a leased port stays bound and counted');
    const stranger = await ports.open(holder('10.0.0.2', true), start + 3, undefined, ignore, () => false);
    assert.ok(!isOpened(stranger));
    assert.equal(stranger.reason, 'port-in-use');
    assert.match(stranger.detail, /kept for the client that held it \(a lease\), for 60 s more/);
    const wrongLease = await ports.open(holder('10.0.0.2', true), start + 3, 'not-the-lease', ignore, () => false);
    assert.ok(!isOpened(wrongLease));

    const back = holder('10.0.0.9', true);
    const reclaimed = await ports.open(back, start + 3, opened.lease, ignore, () => false);
    assert.ok(isOpened(reclaimed));
    assert.equal(reclaimed.reclaimed, true);
    assert.equal(reclaimed.lease, opened.lease, 'the lease token names the tunnel across reconnects');
    const again = tunnelOn(ports, reclaimed, back);
    assert.deepEqual(ports.stats, { tunnels: 1, leased: 0, bound: 1 });

    again.close('release');
    assert.deepEqual(ports.stats, { tunnels: 0, leased: 0, bound: 0 });
    assert.deepEqual(expired, [], 'no lease ran out');
  });
});

test('a live tunnel whose holder does not answer is handed over to its lease; one that answers keeps it (in-use)', async () => {
  await withPorts({}, async (ports, start) => {
    const alive = holder('10.0.0.1', true, 'process-a');
    const opened = await ports.open(alive, start + 5, undefined, ignore, () => false);
    assert.ok(isOpened(opened));
    const live = tunnelOn(ports, opened, alive);
    const twin = await ports.open(holder('10.0.0.2', true, 'process-b'), start + 5, opened.lease, ignore, () => false);
    assert.ok(!isOpened(twin));
    assert.equal(twin.reason, 'port-in-use');
    assert.match(twin.detail, /another live client with the same lease/);
    assert.equal(live.keep, undefined, 'the live holder keeps its tunnel');

    const zombie = holder('10.0.0.3', false, 'process-z');
    const zombieOpened = await ports.open(zombie, start + 6, undefined, ignore, () => false);
    assert.ok(isOpened(zombieOpened));
    const zombieTunnel = tunnelOn(ports, zombieOpened, zombie);
    const successor = holder('10.0.0.4', true, 'process-y');
    const taken = await ports.open(successor, start + 6, zombieOpened.lease, ignore, () => false);
    assert.ok(isOpened(taken));
    assert.equal(taken.reclaimed, true);
    assert.equal(zombieTunnel.keep, 'handover');
    assert.equal(zombie.forgot, 1, 'the old session forgets the tunnel');
    const successorTunnel = tunnelOn(ports, taken, successor);
    assert.deepEqual(ports.stats, { tunnels: 2, leased: 0, bound: 2 }, 'a handed-over port is counted once');

    live.close('release');
    successorTunnel.close('release');
    assert.deepEqual(ports.stats, { tunnels: 0, leased: 0, bound: 0 });
  });
});

test('limits: per address and in all, leases included; a port that cannot be bound is not counted', async () => {
  await withPorts({ maxTunnels: 2, maxTunnelsPerIp: 1 }, async (ports, start) => {
    const one = holder('10.0.0.1', true);
    const a = await ports.open(one, 0, undefined, ignore, () => false);
    assert.ok(isOpened(a));
    const aTunnel = tunnelOn(ports, a, one);
    const more = await ports.open(holder('10.0.0.1', true), 0, undefined, ignore, () => false);
    assert.ok(!isOpened(more));
    assert.equal(more.reason, 'too-many-tunnels');

    const outside = await ports.open(holder('10.0.0.2', true), start + 21, undefined, ignore, () => false);
    assert.ok(!isOpened(outside));
    assert.equal(outside.reason, 'port-out-of-range');
    assert.deepEqual(ports.stats, { tunnels: 1, leased: 0, bound: 1 }, 'the refused port was not counted');

    aTunnel.close('lease');
    const two = holder('10.0.0.2', true);
    const b = await ports.open(two, 0, undefined, ignore, () => false);
    assert.ok(isOpened(b));
    const bTunnel = tunnelOn(ports, b, two);
    const full = await ports.open(holder('10.0.0.3', true), 0, undefined, ignore, () => false);
    assert.ok(!isOpened(full));
    assert.equal(full.reason, 'server-full', 'the leased port counts towards the server limit');

    bTunnel.close('release');
    ports.clearLeases();
    assert.deepEqual(ports.stats, { tunnels: 0, leased: 0, bound: 0 });
  });
});
