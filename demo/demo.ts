// `npm run demo`: the whole tunnel on loopback in one process. A tiny HTTP service, a
// relay server and a client start; one HTTP request crosses the tunnel; every protocol
// line is printed as it happens (the same trace as `--trace`), so you can watch the
// rendezvous. Short enough to read in a minute.
// `npm run demo -- --inspect` then stays up with the inspector (http://127.0.0.1:4040/):
// a visitor every two seconds, through a TCP tunnel and an HTTP tunnel by name.
// `npm run demo -- --websocket`: the same rendezvous, with the client's control and data
// connections as WebSockets on the relay's HTTP port (what gets through strict firewalls).
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BurrowClient, formatTrace, startInspector, startServer, type TraceEvent } from '../index.ts';

const HOST = '127.0.0.1';
const inspect = process.argv.includes('--inspect');
const overWebSocket = process.argv.includes('--websocket');
const say = (text: string): void => console.log(`\n# ${text}`);
const show = (event: TraceEvent): void => console.log(`  ${formatTrace(event)}`);

console.log('How to read the trace:  [who saw it] which-socket  -> sent  <- received  .. a moment');
console.log("  control#1 / control   the client's one long-lived control connection (server / client side)");
console.log("  visitor:<id>          a visitor's socket on the public port (server side)");
console.log('  data#1 / data:<id>    the data connection the client opens for that visitor');

// 1. The "local service": what you would run on your laptop.
const service = http.createServer((req, res) => {
  if (req.url?.startsWith('/api/')) {
    res.setHeader('content-type', 'application/json');
    return void res.end(JSON.stringify({ items: ['tea', 'bread'], asked: req.url, at: new Date().toISOString() }));
  }
  res.setHeader('content-type', 'text/plain');
  res.end(`Hello from the local service! You asked for ${req.url}\n`);
});
service.listen(0, HOST);
await once(service, 'listening');
const servicePort = (service.address() as AddressInfo).port;
say(`A local HTTP service listens on ${HOST}:${servicePort} (only this machine can reach it).`);

// 2. The relay: in real life on a public host; here on loopback with free ports.
const withHttp = inspect || overWebSocket;
const server = await startServer({ controlPort: 0, dataPort: 0, bind: HOST, ...(withHttp && { httpPort: 0 }) });
server.on('trace', show);
say(`The burrow server listens: control port ${server.controlPort}, data port ${server.dataPort}.`);
const webSocketUrl = `ws://${HOST}:${server.httpPorts.http ?? 0}`;
if (overWebSocket) {
  say(`Over WebSocket: the client reaches both ports as WebSockets on ${webSocketUrl}`);
  console.log('  (/_burrow/control and /_burrow/data). Inside them, the very same lines as below.');
}

// 3. The client: connects to the control port and asks for a public port.
say('The client connects and sends HELLO (the extensions it speaks) and EXPOSE; the server');
console.log('  answers HELLO (the extensions it speaks too), opens a public port and answers OK.');
const client = new BurrowClient({
  // With --inspect, also an HTTP tunnel by name, for the inspector's requests view.
  tunnels: [{ localPort: servicePort }, ...(inspect ? [{ localPort: servicePort, http: { name: 'demo' } }] : [])],
  server: HOST,
  localHost: HOST,
  controlPort: server.controlPort,
  dataPort: server.dataPort,
  ...(overWebSocket && { webSocket: { url: webSocketUrl, proxy: false as const } }),
});
client.on('trace', show);
await client.start();
const [tunnel] = client.tunnels;
if (!tunnel) throw new Error('the client opened no tunnel');
say(`Forwarding ${tunnel.url} -> ${HOST}:${servicePort}`);

// 4. A visitor: anyone who connects to the public port.
say(`A visitor requests http://${HOST}:${tunnel.publicPort}/hello. Watch the rendezvous:`);
console.log('  the server parks the visitor and tells the client CONNECTION <id>; the client dials');
console.log('  the data port with ID <id> (and the local service at the same time); the server');
console.log('  answers OK and pairs the two sockets; bytes flow until each side half-closes.');
console.log('  Each FIN on a data connection is followed by FIN <id> on the control connection,');
console.log('  and passed on only then: a program that crashed sends FINs too, but no notice.');
const closed = once(client, 'connection-close');
const response = await fetchText(`http://${HOST}:${tunnel.publicPort}/hello`);
await closed;

// Quietly now: the shutdown has its own lines (GOAWAY), but the story ends here.
server.off('trace', show);
client.off('trace', show);
if (inspect) await keepVisiting();
await client.close();
await server.close();
service.close();
say('Run `npx burrow server` and `npx burrow client <port>` to do it for real (add --trace to see this).');
say(`What crossed the tunnel back to the visitor: HTTP ${response.status} ${JSON.stringify(response.body)}`);

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // agent: false and Connection: close, so the connection (and the tunnel's pairing)
    // ends with the response and the trace shows its close.
    http
      .get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** --inspect: the inspector, and a visitor every two seconds through each tunnel, until Ctrl-C. */
async function keepVisiting(): Promise<void> {
  const inspector = await startInspector(client);
  const named = client.tunnels[1];
  say(`The inspector: ${inspector.url} (open it: every visitor appears as it comes; Ctrl-C to stop)`);
  if (named) console.log(`  ${named.url} is the HTTP tunnel by name; ${tunnel?.url} the TCP one`);
  let turn = 0;
  const timer = setInterval(() => {
    turn++;
    const tcp = fetchText(`http://${HOST}:${tunnel?.publicPort}/hello?visit=${turn}`);
    const byName = named ? fetchByName(named.publicPort, `/api/items?visit=${turn}`) : Promise.resolve();
    Promise.all([tcp, byName]).catch((error: unknown) => console.error(`  a visit failed: ${String(error)}`));
  }, 2_000);
  await once(process, 'SIGINT');
  clearInterval(timer);
  await inspector.close();
}

function fetchByName(port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: HOST, port, path, headers: { host: 'demo.localhost' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      })
      .on('error', reject);
  });
}
