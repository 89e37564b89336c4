// Library messages name library options (`tls.ca`); the CLI prints them with its flags
// (--tls-ca), in the very words it used before the library had its own (cli/flag-names.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { envName } from '../cli/args.ts';
import { CLIENT_OPTIONS } from '../cli/client-flags.ts';
import { FLAGS_FOR_OPTIONS, flagsIn, inFlags, type Side } from '../cli/flag-names.ts';
import { SERVER_OPTIONS } from '../cli/server-flags.ts';
import { BurrowError, loadOrCreateCertificate } from '../index.ts';

test('flagsIn: each side names its own flags; the same option may be another flag on the other side', () => {
  const message = 'pass `tls.cert` and `tls.key`';
  assert.equal(flagsIn(message, 'server'), 'pass --tls-cert and --tls-key');
  assert.equal(flagsIn(message, 'client'), 'pass --tls-client-cert and --tls-client-key');
});

test('flagsIn: text without backticks, and backticked text that is no option of the side, stay as they are', () => {
  for (const side of ['server', 'client'] as const) {
    assert.equal(flagsIn('cannot connect: connection refused', side), 'cannot connect: connection refused');
    assert.equal(flagsIn('run `openssl rand -base64 32`', side), 'run `openssl rand -base64 32`');
    assert.equal(flagsIn('an odd ` backtick', side), 'an odd ` backtick');
  }
  assert.equal(flagsIn('`tls.ca`', 'server'), '`tls.ca`', 'the server has no tls.ca');
  assert.equal(flagsIn('`dataPort`', 'server'), '`dataPort`', 'the server names its data port in no message');
});

test("every flag the table names is a flag of its command (the server's for `names`), and the secret is said every way the CLI takes it", () => {
  const tables: Record<Side, Record<string, unknown>> = { server: SERVER_OPTIONS, client: CLIENT_OPTIONS };
  for (const side of ['server', 'client'] as const) {
    for (const [option, flags] of Object.entries(FLAGS_FOR_OPTIONS[side])) {
      const named = [...(flags ?? '').matchAll(/--([a-z-]+)/g)].map((match) => match[1] ?? '');
      assert.ok(named.length > 0, `${side} ${option}: ${flags} names a flag`);
      // `names` is the server's even in a client's message: it advises on the server.
      const owner = option === 'names' ? 'server' : side;
      for (const flag of named)
        assert.ok(flag in tables[owner], `${side} ${option}: --${flag} is a flag of burrow ${owner}`);
    }
  }
  assert.equal(FLAGS_FOR_OPTIONS.client.secret, `--secret-file, ${envName('secret')} or --secret`);
});

/** Each library message of the client that names an option, as the library words it → as
 * the CLI has always printed it. */
const CLIENT_MESSAGES: Array<[library: string, cli: string]> = [
  [
    'the server requires a secret: give this client the same secret as the server (`secret`)',
    'the server requires a secret: give this client the same secret as the server (--secret-file, BURROW_SECRET or --secret)',
  ],
  [
    'the server speaks TLS only: connect with `tls` (and `tls.ca` or `tls.fingerprint` for a self-signed certificate)',
    'the server speaks TLS only: connect with --tls (and --tls-ca or --tls-fingerprint for a self-signed certificate)',
  ],
  [
    'the server requires a client certificate signed by its client CA: pass `tls.cert` and `tls.key`',
    'the server requires a client certificate signed by its client CA: pass --tls-client-cert and --tls-client-key',
  ],
  [
    'the server names data port 7836, which does not answer here; 9836 does, so using it (behind a port forward? give `dataPort` 9836 to say so)',
    'the server names data port 7836, which does not answer here; 9836 does, so using it (behind a port forward? give --data-port 9836 to say so)',
  ],
  [
    'this is the data port the server named (9836 did not answer either): if the relay is behind a port forward, give the forwarded one (`dataPort`); else a firewall between us lets only the control port through',
    'this is the data port the server named (9836 did not answer either): if the relay is behind a port forward, give the forwarded one (--data-port); else a firewall between us lets only the control port through',
  ],
  [
    'the server did not name its data port, and it is not the default 7836: give it (`dataPort`)',
    'the server did not name its data port, and it is not the default 7836: give it (--data-port)',
  ],
  [
    "x: the server's certificate does not name relay.example.com (it names relay.test): connect to one of those names (`server`), restart the server with `names` relay.example.com (or give it a certificate that names relay.example.com), or pin the certificate with `tls.fingerprint` (a pin alone does not check names)",
    "x: the server's certificate does not name relay.example.com (it names relay.test): connect to one of those names (--server), restart the server with --tls-name relay.example.com (or give it a certificate that names relay.example.com), or pin the certificate with --tls-fingerprint (a pin alone does not check names)",
  ],
  [
    "cannot verify the server's certificate (self-signed certificate): trust its CA with `tls.ca`, or pin it with `tls.fingerprint`",
    "cannot verify the server's certificate (self-signed certificate): trust its CA with --tls-ca, or pin it with --tls-fingerprint",
  ],
  [
    'the server does not speak TLS here (it answered in plain text): drop `tls`, or check the port',
    'the server does not speak TLS here (it answered in plain text): drop --tls, or check the port',
  ],
  [
    'the server requires a client certificate: pass `tls.cert` and `tls.key`',
    'the server requires a client certificate: pass --tls-client-cert and --tls-client-key',
  ],
];

test('the client: each of its messages, worded with library options, reads as the CLI always printed it', () => {
  for (const [library, cli] of CLIENT_MESSAGES) assert.equal(flagsIn(library, 'client'), cli);
});

test('the server: the self-signed certificate errors, from the library itself, read as the CLI always printed them', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'burrow-flag-names-'));
  try {
    await fs.writeFile(path.join(dir, 'tls-key.pem'), 'a key without its certificate\n');
    const error = await loadOrCreateCertificate(dir).then(
      () => assert.fail('a key without its certificate is an error'),
      (error: unknown) => error,
    );
    assert.ok(error instanceof BurrowError);
    assert.match(error.message, /, or pass `tls\.cert` and `tls\.key`$/);
    assert.match(
      flagsIn(error.message, 'server'),
      /: delete both .+ to create a new pair, or pass --tls-cert and --tls-key$/,
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  const raced =
    'the TLS certificate in /d kept changing while this server loaded it: is another burrow server starting there with other `names` values?';
  assert.equal(
    flagsIn(raced, 'server'),
    'the TLS certificate in /d kept changing while this server loaded it: is another burrow server starting there with other --tls-name values?',
  );
});

test('inFlags: the message of an event, and the text of a traced event (not a protocol line), in flags', () => {
  const problem = { event: 'error', code: 'tls', message: 'drop `tls`, or check the port' } as const;
  assert.deepEqual(inFlags(problem, 'client'), { ...problem, message: 'drop --tls, or check the port' });
  const traced = {
    event: 'trace',
    side: 'client',
    conn: 'control',
    kind: 'event',
    text: 'closed: drop `tls`',
  } as const;
  assert.deepEqual(inFlags(traced, 'client'), { ...traced, text: 'closed: drop --tls' });
  const line = { ...traced, kind: 'recv', text: 'ERR bad-request `tls`' } as const;
  assert.equal(inFlags(line, 'client'), line);
  const tunnel = { event: 'tunnel', url: 'tcp://h:1', publicPort: 1, local: 'localhost:3000' } as const;
  assert.equal(inFlags(tunnel, 'client'), tunnel);
});
