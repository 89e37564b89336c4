// A minimal burrow client: the base protocol of docs/PROTOCOL.md and nothing more.
// It works against burrow's own server, which speaks extensions only to clients that ask.
//
//   node examples/minimal-client.mjs <localPort> [serverHost] [controlPort] [dataPort]
import net from 'node:net';

const [localPort, serverHost = 'localhost', controlPort = '7835', dataPort = '7836'] = process.argv.slice(2);
if (!localPort) {
  console.error('usage: node examples/minimal-client.mjs <localPort> [serverHost] [controlPort] [dataPort]');
  process.exit(2);
}

// Pipes two sockets into each other. pipe() ends its destination when its source ends,
// so a half-close (FIN) is carried through; an error on one side destroys the other.
function join(a, b) {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

// 1. Ask for a tunnel on the control connection.
const control = net.connect({ host: serverHost, port: Number(controlPort) });
control.write(`EXPOSE ${localPort}\n`);

// 2. Read the server's lines: each ends in \n, maybe with a \r before it.
let pending = '';
control.setEncoding('utf8');
control.on('data', (chunk) => {
  pending += chunk;
  let end;
  while ((end = pending.indexOf('\n')) !== -1) {
    onLine(pending.slice(0, end).replace(/\r$/, ''));
    pending = pending.slice(end + 1);
  }
});
control.on('error', (error) => console.error(`control connection: ${error.message}`));
control.on('close', () => {
  console.error('the server closed the control connection');
  process.exit(1);
});

function onLine(line) {
  // Use the fields we know; ignore extra fields and lines we do not know (HELLO, PING, ...).
  const [verb, first] = line.split(' ');
  if (verb === 'OK') console.log(`Forwarding ${serverHost}:${first} -> localhost:${localPort}`);
  if (verb === 'ERR') {
    console.error(`the server refused: ${line.slice(4)}`);
    process.exit(1);
  }
  if (verb === 'CONNECTION') dialBack(first);
}

// 3. A visitor is waiting: open a data connection, name the visitor's id, then pipe it
// to a new connection to the local service. From here on, every byte is the visitor's.
function dialBack(id) {
  const data = net.connect({ host: serverHost, port: Number(dataPort), allowHalfOpen: true });
  data.write(`ID ${id}\n`);
  const local = net.connect({ host: 'localhost', port: Number(localPort), allowHalfOpen: true });
  join(data, local);
}
