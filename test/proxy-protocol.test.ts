// PROXY protocol end to end: a tunnel with `proxyProtocol` hands its local service a header
// with the visitor's real address before the visitor's first byte. The local service here
// sends back everything it received, so the visitor sees header + its own bytes. The
// header is decoded by hand (not with the encoder under test).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import type { ConnectionEvent } from '../client/types.ts';
import type { ConnectionTotals } from '../client/connection.ts';
import { HOST, listenLocal, nextEvent, pseudoRandomBytes, readAll, replyOnEnd, startRig, within } from './helpers.ts';

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

interface Visit {
  /** The visitor's own end, as the relay saw it. */
  address: string;
  port: number;
  /** Everything the local service received, header first. */
  received: Buffer;
}

/** A visitor from `host` sends `payload`, half-closes and collects the local service's
 * copy of what it received. */
async function visit(host: string, publicPort: number, payload: Buffer): Promise<Visit> {
  const socket = net.connect({ host, port: publicPort, allowHalfOpen: true });
  try {
    await within(once(socket, 'connect'), 5_000, `a visitor on [${host}]:${publicPort}`);
    const { localAddress = '', localPort = 0 } = socket;
    const received = readAll(socket);
    socket.end(payload); // written at once: these bytes wait at the relay until the pairing
    return {
      address: localAddress,
      port: localPort,
      received: await within(received, 10_000, 'the copy from the local service'),
    };
  } finally {
    socket.destroy();
  }
}

/** Decodes a v2 header for TCP over IPv4 or IPv6: [source, destination, rest]. */
function decodeV2(bytes: Buffer): { family: string; source: string; destination: string; rest: Buffer } {
  assert.deepEqual(bytes.subarray(0, 12), V2_SIGNATURE, 'the v2 signature');
  assert.equal(bytes[12], 0x21, 'version 2, command PROXY');
  const family = bytes[13];
  const length = bytes.readUInt16BE(14);
  const size = family === 0x11 ? 4 : 16;
  assert.ok(family === 0x11 || family === 0x21, `family 0x${family?.toString(16)}`);
  assert.equal(length, 2 * size + 4, 'the address block length');
  const block = bytes.subarray(16, 16 + length);
  const address = (b: Buffer): string =>
    size === 4 ? [...b].join('.') : (b.toString('hex').match(/.{4}/g) ?? []).join(':');
  const port = (at: number): number => block.readUInt16BE(at);
  return {
    family: family === 0x11 ? 'TCP4' : 'TCP6',
    source: `${address(block.subarray(0, size))} ${port(2 * size)}`,
    destination: `${address(block.subarray(size, 2 * size))} ${port(2 * size + 2)}`,
    rest: bytes.subarray(16 + length),
  };
}

const LOOPBACK6_FULL = '0000:0000:0000:0000:0000:0000:0000:0001';

/** Server (dual-stack: visitors over 127.0.0.1 and ::1), client and a local service that
 * sends back what it received, with one tunnel that sends `proxyProtocol`. */
async function withTunnel(
  proxyProtocol: 'v1' | 'v2' | undefined,
  run: (publicPort: number) => Promise<void>,
): Promise<void> {
  const local = await listenLocal(replyOnEnd((request) => request));
  const rig = await startRig(() => {}, {
    server: { bind: undefined },
    client: {
      tunnels: [proxyProtocol === undefined ? { localPort: local.port } : { localPort: local.port, proxyProtocol }],
      localHost: HOST,
    },
  });
  try {
    await run(rig.publicPort);
  } finally {
    await rig.close();
    await local.close();
  }
}

describe('PROXY protocol to the local service', () => {
  test('v1: the visitor (IPv4) and the public port, then the visitor bytes exactly', async () => {
    await withTunnel('v1', async (publicPort) => {
      const payload = pseudoRandomBytes(100_000, 7);
      const seen = await visit(HOST, publicPort, payload);
      const header = `PROXY TCP4 127.0.0.1 127.0.0.1 ${seen.port} ${publicPort}\r\n`;
      assert.equal(seen.received.subarray(0, header.length).toString('latin1'), header);
      assert.ok(seen.received.subarray(header.length).equals(payload), 'the visitor bytes follow the header unchanged');
    });
  });

  test('v1: a visitor over IPv6 gives TCP6 with ::1', async () => {
    await withTunnel('v1', async (publicPort) => {
      const seen = await visit('::1', publicPort, Buffer.from('hi'));
      assert.equal(seen.received.toString('latin1'), `PROXY TCP6 ::1 ::1 ${seen.port} ${publicPort}\r\nhi`);
    });
  });

  test('v2: binary header for IPv4 and IPv6 visitors, then the visitor bytes', async () => {
    await withTunnel('v2', async (publicPort) => {
      const four = decodeV2((await visit(HOST, publicPort, Buffer.from('four'))).received);
      assert.equal(four.family, 'TCP4');
      assert.equal(four.destination, `127.0.0.1 ${publicPort}`);
      assert.equal(four.rest.toString(), 'four');

      const seen = await visit('::1', publicPort, Buffer.from('six'));
      const six = decodeV2(seen.received);
      assert.deepEqual(
        { family: six.family, source: six.source, destination: six.destination, rest: six.rest.toString() },
        {
          family: 'TCP6',
          source: `${LOOPBACK6_FULL} ${seen.port}`,
          destination: `${LOOPBACK6_FULL} ${publicPort}`,
          rest: 'six',
        },
      );
    });
  });

  test('v2: the source port is the visitor port', async () => {
    await withTunnel('v2', async (publicPort) => {
      const seen = await visit(HOST, publicPort, Buffer.from('x'));
      assert.equal(decodeV2(seen.received).source, `127.0.0.1 ${seen.port}`);
    });
  });

  test('the header is not counted in the connection bytes', async () => {
    const local = await listenLocal(replyOnEnd((request) => request));
    const rig = await startRig(() => {}, {
      client: { tunnels: [{ localPort: local.port, proxyProtocol: 'v1' }], localHost: HOST },
    });
    try {
      const closed = nextEvent<[ConnectionEvent & ConnectionTotals]>(rig.client, 'connection-close', 10_000);
      const seen = await visit(HOST, rig.publicPort, Buffer.from('12345'));
      const [totals] = await closed;
      assert.equal(totals.bytesIn, 5, 'bytes from the visitor');
      assert.equal(totals.bytesOut, seen.received.length, 'bytes to the visitor (the echo, header included)');
    } finally {
      await rig.close();
      await local.close();
    }
  });

  test('without proxyProtocol: no header, the first byte is the visitor’s', async () => {
    await withTunnel(undefined, async (publicPort) => {
      const seen = await visit(HOST, publicPort, Buffer.from('PLAIN'));
      assert.equal(seen.received.toString(), 'PLAIN');
    });
  });

  test('per tunnel: one client, a v2 tunnel and a plain one', async () => {
    const local = await listenLocal(replyOnEnd((request) => request));
    const rig = await startRig(() => {}, {
      client: { tunnels: [{ localPort: local.port, proxyProtocol: 'v2' }, { localPort: local.port }], localHost: HOST },
    });
    try {
      const [withHeader, plain] = rig.client.tunnels;
      assert.equal(withHeader?.proxyProtocol, 'v2');
      assert.equal(plain?.proxyProtocol, undefined);
      assert.equal(
        decodeV2((await visit(HOST, withHeader?.publicPort ?? 0, Buffer.from('a'))).received).rest.toString(),
        'a',
      );
      assert.equal((await visit(HOST, plain?.publicPort ?? 0, Buffer.from('b'))).received.toString(), 'b');
    } finally {
      await rig.close();
      await local.close();
    }
  });
});
