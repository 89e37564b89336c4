// The examples of --help, and the width --help is laid out for.
import type { Argv } from 'yargs';
import { SERVER_DEFAULTS } from '../index.ts';
import { CLIENT_DEFAULTS } from './defaults.ts';
import type { CommandName } from './usage.ts';

/** The width of --help: the terminal's, at most 100 (a child with a pipe gets 100). */
export const WIDTH = Math.min(100, process.stdout.columns || 100);

const { controlPort, dataPort, portRange } = SERVER_DEFAULTS;

/** Examples as `[command, what it does]`; a long command gets a line of its own, with
 * its text under it in the second column, so that no command wraps (at width 100 the
 * first column holds 50 characters). */
type Example = readonly [command: string, text: string];
export const EXAMPLES: Record<'top' | CommandName, readonly Example[]> = {
  top: [
    ['$0 server', 'Run a relay (no secret: an open relay, for demos)'],
    ['$0 client 3000', 'Expose localhost:3000 through a relay on localhost'],
    [
      '$0 client 3000 --server relay.example.com',
      `Through relay.example.com (control port ${CLIENT_DEFAULTS.controlPort})`,
    ],
    [
      '$0 client 3000 --server relay.example.com --tls-fingerprint AB:CD:… --secret-file ~/secret',
      'To a relay started with --tls and a secret',
    ],
  ],
  server: [
    [
      '$0 server',
      `Listen on ${controlPort}/${dataPort}, hand out any port ${portRange.min}-${portRange.max} (an open relay: for demos)`,
    ],
    ['$0 server --tls --secret-file /etc/burrow/secret', 'For real: TLS with a self-signed certificate, and a secret'],
    ['$0 server --bind 127.0.0.1 --port-range 40000-40100', 'Loopback only, 101 public ports'],
    ['$0 server --http-port 8080', 'Also HTTP tunnels by name: http://NAME.localhost:8080'],
  ],
  client: [
    ['$0 client 3000', 'Expose localhost:3000 through a relay on localhost'],
    [
      `$0 client 3000 --server relay.example.com:${CLIENT_DEFAULTS.controlPort}`,
      `Through relay.example.com (:${CLIENT_DEFAULTS.controlPort}, its control port, may be left out)`,
    ],
    ['$0 client 3000 5432 --server relay.example.com', 'Two tunnels over one connection'],
    ['$0 client 3000 --remote-port 8080', 'Ask for public port 8080'],
    ['$0 client 3000 --http --name demo', "An HTTP tunnel at http://demo.<the relay's domain>"],
    ['$0 client http:3000 5432', 'An HTTP tunnel for 3000, a TCP tunnel for 5432'],
    ['$0 client 8080 --proxy-protocol v2', "nginx on 8080 (listen 8080 proxy_protocol) logs the visitor's address"],
    [
      '$0 client 3000 --server relay.example.com --tls-fingerprint AB:CD:… --secret-file ~/secret',
      'To a relay started with --tls and a secret',
    ],
  ],
  local: [
    ['$0 local 3000 --to relay.example.com', 'burrow client 3000 --server relay.example.com'],
    ['$0 local 3000 --to relay.example.com -p 8080', 'The same, asking for public port 8080'],
  ],
};

/** The longest command that fits the first column of the examples at WIDTH. */
const EXAMPLE_COLUMN = Math.floor(WIDTH / 2);

export function withExamples(y: Argv, examples: readonly Example[]): Argv {
  for (const [command, text] of examples) {
    if (command.replace('$0', 'burrow').length <= EXAMPLE_COLUMN) y.example(command, text);
    else y.example(command, '').example('', text);
  }
  return y;
}
