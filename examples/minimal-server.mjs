// A minimal burrow server (relay): the base protocol of docs/PROTOCOL.md and nothing more.
// burrow's own client works with it (and then speaks no extensions). Teaching material,
// not hardened: no secret, no TLS, no limits, no timeouts.
//   node examples/minimal-server.mjs [controlPort] [dataPort]   (0: any free port)
//   BIND=127.0.0.1 node examples/minimal-server.mjs ...          (default: every interface)
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';

const [controlPort = '7835', dataPort = '7836'] = process.argv.slice(2);
const bind = process.env.BIND || undefined;
const waiting = new Map(); // visitor id -> the visitor's socket, paused until joined

// Pipes two sockets into each other. pipe() ends its destination when its source ends,
// so a half-close (FIN) is carried through; an error on one side destroys the other.
function join(a, b) {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

// Control port: read lines (each ends in \n, maybe with a \r before it). Only EXPOSE
// matters; lines we do not know (a burrow client's HELLO, ...) are skipped.
const control = net.createServer((client) => {
  client.on('error', () => {});
  let pending = '';
  client.setEncoding('utf8').on('data', (chunk) => {
    pending += chunk;
    let end;
    while ((end = pending.indexOf('\n')) !== -1) {
      const [verb] = pending.slice(0, end).replace(/\r$/, '').split(' ');
      pending = pending.slice(end + 1);
      if (verb === 'EXPOSE') expose(client);
    }
  });
});

// EXPOSE: open a public port (any) and answer `OK <publicPort>`. Each visitor waits there,
// paused, under a fresh id that we announce with `CONNECTION <id>`.
function expose(client) {
  const visitors = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (visitor) => {
    const id = randomUUID();
    visitor.on('error', () => {});
    waiting.set(id, visitor);
    client.write(`CONNECTION ${id}\n`);
  });
  visitors.listen(0, bind, () => client.write(`OK ${visitors.address().port}\n`));
  client.on('close', () => visitors.close());
}

// Data port: the client's first line is `ID <id>`; every byte after it is the visitor's.
const data = net.createServer({ allowHalfOpen: true }, (socket) => {
  socket.on('error', () => {});
  let head = Buffer.alloc(0);
  socket.on('data', function readId(chunk) {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\n');
    if (end === -1) return; // no whole line yet
    socket.off('data', readId).pause();
    const [verb, id] = head.subarray(0, end).toString().replace(/\r$/, '').split(' ');
    const visitor = verb === 'ID' ? waiting.get(id) : undefined;
    if (!visitor) return socket.destroy();
    waiting.delete(id); // an id is used once
    visitor.write(head.subarray(end + 1)); // visitor bytes that came along with the line
    join(visitor, socket);
  });
});

control.listen(Number(controlPort), bind);
data.listen(Number(dataPort), bind);
await Promise.all([once(control, 'listening'), once(data, 'listening')]);
console.log(`listening on control ${control.address().port}, data ${data.address().port}`);
