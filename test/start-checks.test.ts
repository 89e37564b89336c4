// What the client finds out at start, so that a mistake shows at once rather than at the
// first visitor: a data port it cannot reach, ports that are the wrong kind (swapped, or
// not burrow at all), a local service nothing listens for yet; and the data port the
// server names, so that the client needs to be told only the control port.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { BurrowClient, startClient, type BurrowError, type BurrowServer, type ClientOptions } from '../index.ts';
import { assertEchoes } from './healthy-tunnel.ts';
import { echo, HOST, listenLocal, within } from './helpers.ts';
import { openInbox } from './inbox.ts';
import { freePort, freeRangeStart, rejectsWith, serverOn } from './raw.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const options = (controlPort: number, localPort: number, extra: Partial<ClientOptions> = {}): ClientOptions => ({
  tunnels: [{ localPort }],
  server: HOST,
  localHost: HOST,
  controlPort,
  ...extra,
});

test('the server names its data port: a client told only the control port reaches it', async () => {
  const server = await serverOn(); // its data port is ephemeral, not 7836
  const local = await listenLocal(echo);
  try {
    const client = await startClient(options(server.controlPort, local.port));
    try {
      await assertEchoes(client.tunnels[0]?.publicPort ?? 0, 20_000, 1, 'through the named data port');
    } finally {
      await client.close();
    }
  } finally {
    await server.close();
    await local.close();
  }
});

test('a data port nobody listens on fails the start at once, naming the port and the likely cause', async () => {
  const server = await serverOn();
  const local = await listenLocal(echo);
  try {
    const wrong = await freePort();
    const error = await rejectsWith(
      startClient(options(server.controlPort, local.port, { dataPort: wrong })),
      'unreachable',
    );
    assert.match(error.message, new RegExp(`data port at ${HOST}:${wrong}: connection refused`));
    assert.match(
      error.message,
      /The control port answered, so check the data port you gave, or a firewall between us lets only the control port through/,
    );
    await within(untilNoClients(server), 5_000, 'the server to see the client go');
  } finally {
    await server.close();
    await local.close();
  }
});

test('control and data ports swapped: the start fails with wrong-port and says so, without retrying', async () => {
  const server = await serverOn();
  try {
    const error = await rejectsWith(
      startClient({ ...options(server.dataPort, 1), dataPort: server.controlPort, reconnect: true }),
      'refused',
      'wrong-port',
    );
    assert.match(
      error.message,
      /is a burrow server's data port, not its control port: are the control and data ports swapped\?/,
    );
  } finally {
    await server.close();
  }
});

test('a control port that answers HTTP: the start fails saying it is a web server', async () => {
  const web = http.createServer((_request, response) => response.end('hello'));
  web.listen(0, HOST);
  await once(web, 'listening');
  try {
    const port = (web.address() as net.AddressInfo).port;
    const error = await rejectsWith(startClient(options(port, 1, { dataPort: port })), 'protocol');
    assert.equal(
      error.message,
      `${HOST}:${port} answers HTTP, not burrow: it is a web server, not a burrow server's control port`,
    );
  } finally {
    web.closeAllConnections();
    await new Promise<void>((resolve) => web.close(() => resolve()));
  }
});

test('a control port that speaks something else: the start fails quoting what it said', async () => {
  const other = await listenLocal((socket) => socket.end('+PONG redis says hi\n'));
  try {
    const error = await rejectsWith(startClient(options(other.port, 1, { dataPort: other.port })), 'protocol');
    assert.equal(error.message, `${HOST}:${other.port} does not speak burrow: it answered "+PONG redis says hi"`);
  } finally {
    await other.close();
  }
});

test('nothing listens on the local port yet: the tunnel opens, with one warning; a service that is there is not touched', async () => {
  const server = await serverOn();
  const localPort = await freePort();
  try {
    const warnings: BurrowError[] = [];
    const client = new BurrowClient(options(server.controlPort, localPort));
    client.on('warning', (warning) => warnings.push(warning));
    await client.start();
    assert.equal(warnings.length, 1, warnings.map((w) => w.message).join('; '));
    assert.equal(warnings[0]?.code, 'local-unavailable');
    assert.match(
      warnings[0]?.message ?? '',
      new RegExp(
        `^nothing listens on ${HOST}:${localPort} yet: visitors of tcp://${HOST}:\\d+ are reset until something does$`,
      ),
    );
    await client.close();

    // A service that serves a single connection (nc -l) is not used up by the check.
    let accepted = 0;
    const single = await listenLocal((socket) => {
      accepted++;
      socket.end();
    });
    const quiet: BurrowError[] = [];
    const second = new BurrowClient(options(server.controlPort, single.port));
    second.on('warning', (warning) => quiet.push(warning));
    await second.start();
    assert.equal(accepted, 0, 'the start touched the local service');
    assert.deepEqual(quiet, []);
    await second.close();
    await single.close();
  } finally {
    await server.close();
  }
});

/** Resolves once the server holds no client. */
async function untilNoClients(server: { stats(): { clients: number } }): Promise<void> {
  for (let i = 0; i < 10_000 && server.stats().clients > 0; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(server.stats().clients, 0);
}

test('the server drops the connection during the start checks: start() fails, and no event comes before it does', async () => {
  // A fake relay: names a data port that answers, says OK, then closes at once, so the
  // loss lands while the client is still checking.
  const data = net.createServer((socket) => socket.on('error', () => {}));
  data.listen(0, HOST);
  await once(data, 'listening');
  const dataPort = (data.address() as net.AddressInfo).port;
  const sockets = new Set<net.Socket>();
  const control = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.startsWith('HELLO')) socket.write(`HELLO goaway id-reply data-port=${dataPort}\n`);
        if (line.startsWith('EXPOSE')) socket.end(`OK 45678 ${'l'.repeat(21)}\n`);
      }
    });
  });
  control.listen(0, HOST);
  await once(control, 'listening');
  const controlPort = (control.address() as net.AddressInfo).port;
  try {
    for (const reconnect of [false, true]) {
      const client = new BurrowClient(options(controlPort, 1, { reconnect }));
      const early: string[] = [];
      let settled = false;
      for (const event of ['disconnected', 'reconnecting', 'reconnected'] as const) {
        client.on(event, () => {
          if (!settled) early.push(event);
        });
      }
      client.on('warning', () => {});
      try {
        await rejectsWith(client.start(), 'closed');
        settled = true;
        assert.deepEqual(early, [], `reconnect ${reconnect}: no lifecycle event while start() was pending`);
      } finally {
        settled = true;
        await client.destroy();
      }
    }
  } finally {
    for (const socket of sockets) socket.destroy();
    control.close();
    data.close();
  }
});

test('a relay behind a port forward names a data port we cannot reach: the client uses the one after the control port, and says so', async (t) => {
  // The relay listens on 127.0.0.2; forwards on 127.0.0.1 put its ports side by side.
  const inside = '127.0.0.2';
  let server: BurrowServer;
  try {
    server = await serverOn({ bind: inside });
  } catch (error) {
    t.skip(`cannot listen on ${inside} here: ${(error as Error).message}`);
    return;
  }
  const local = await listenLocal(echo);
  const forwards: TcpProxy[] = [];
  try {
    for (let attempt = 0; attempt < 20 && forwards.length < 2; attempt++) {
      const port = await freeRangeStart();
      try {
        forwards.push(await startTcpProxy(server.controlPort, { listen: { host: HOST, port }, targetHost: inside }));
        forwards.push(
          await startTcpProxy(server.dataPort, { listen: { host: HOST, port: port + 1 }, targetHost: inside }),
        );
      } catch {
        for (const forward of forwards.splice(0)) await forward.close(); // taken meanwhile: again
      }
    }
    const [control, data] = forwards;
    assert.ok(control && data, 'two free ports side by side');
    const client = new BurrowClient(options(control.port, local.port));
    const warnings: string[] = [];
    client.on('warning', (warning: BurrowError) => warnings.push(warning.message));
    try {
      await client.start();
      assert.deepEqual(warnings, [
        `the server names data port ${server.dataPort}, which does not answer here; ${data.port} does, so using it (behind a port forward? give \`dataPort\` ${data.port} to say so)`,
      ]);
      const visitor = await openInbox(client.tunnels[0]?.publicPort ?? 0, inside);
      visitor.socket.write('through the forward');
      assert.equal((await visitor.take(19)).toString(), 'through the forward');
      visitor.socket.destroy();
    } finally {
      await client.close();
    }
  } finally {
    for (const forward of forwards) await forward.close();
    await server.close();
    await local.close();
  }
});
