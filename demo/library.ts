// burrow as a library: a relay and a client in one process, with every event printed.
// The README's "Use it as a library" shows the code below this comment, and
// test/readme.test.ts keeps the two identical and runs the README's copy as a user's file.
// It imports the package by its name, as a user would: inside this clone that name
// resolves to the clone's own dist/ (`npm run build`), so run it with
// `npm run build && node --import tsx demo/library.ts`.
import net from 'node:net';
import type { BurrowError } from 'burrow-tunnel';
import { startClient, startServer, type ConnectionEvent } from 'burrow-tunnel';

// Something to expose: an echo service on a free local port.
const service = net.createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket));
await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
const localPort = (service.address() as net.AddressInfo).port;

const server = await startServer({ controlPort: 0, dataPort: 0, bind: '127.0.0.1', secret: 'a long random secret' });
server.on('refused', ({ address, reason }) => console.log(`server refused ${address}: ${reason}`));
server.on('paired', ({ waitMs }) => console.log(`server paired a visitor after ${waitMs} ms`));

const client = await startClient({
  tunnels: [{ localPort, localHost: '127.0.0.1' }],
  server: '127.0.0.1',
  controlPort: server.controlPort,
  dataPort: server.dataPort,
  secret: 'a long random secret',
  reconnect: true, // off by default in the library; the CLI turns it on
});
const [tunnel] = client.tunnels;
console.log(`forwarding ${tunnel?.url} -> 127.0.0.1:${localPort}`);

client.on('connection', ({ visitor, tunnel }: ConnectionEvent) =>
  console.log(`visitor ${visitor} joined on ${tunnel.url}`),
);
client.on('connection-close', (c) =>
  console.log(
    `visitor ${c.visitor}: ${c.bytesIn} B in, ${c.bytesOut} B out, ${c.durationMs} ms${c.aborted ? ', reset' : ''}`,
  ),
);
client.on('warning', (error: BurrowError) => console.warn(`warning (${error.code}): ${error.message}`));
client.on('disconnected', (error) => console.warn(`lost the server: ${error.message}`));
client.on('reconnecting', ({ attempt, delayMs }) => console.warn(`reconnecting in ${delayMs} ms (attempt ${attempt})`));
client.on('reconnected', ({ moved }) => console.warn(`reconnected; ${moved.length} tunnel(s) moved`));
client.on('close', (error) => error && console.error(`stopped: ${error.message}`));

// A visitor: connect to the public port, send, half-close, read the echo.
const closed = new Promise((resolve) => client.once('connection-close', resolve));
const visitor = net.connect({ host: '127.0.0.1', port: tunnel?.publicPort ?? 0 });
visitor.end('hello through the tunnel');
let echoed = '';
for await (const chunk of visitor) echoed += String(chunk);
await closed;
console.log(`echoed: ${echoed}`);
const { tunnels } = server.stats(); // what it holds now; totals() counts since start
console.log(
  `the server holds ${tunnels} tunnel(s) and has relayed ${server.totals().bytesFromVisitors} B from visitors`,
);

await client.close(); // graceful: GOAWAY, joined connections get shutdownTimeoutMs; idempotent
await server.close(); // the same on the server; destroy() on either ends everything at once
service.close();
