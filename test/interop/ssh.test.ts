// OpenSSH through burrow: a private sshd (its own config, host key and authorized_keys in
// a temp dir, an ephemeral port on 127.0.0.1) behind a tunnel; ssh runs a command and scp
// copies 20 MB there and back through the public port.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { assertSameBytes, pseudoRandomBytes } from '../helpers.ts';
import { LOOPBACK, requireProgram, scoped, spawnTool, startTunnel, tempDir } from './harness.ts';
import { startSshd } from './sshd.ts';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

test('ssh: a command and a 20 MB scp round trip through the tunnel', async () => {
  const ssh = requireProgram('ssh', 'openssh-client');
  const scp = requireProgram('scp', 'openssh-client');

  await scoped(async (use) => {
    const dir = use(await tempDir()).path;
    const file = (name: string): string => path.join(dir, name);
    const daemon = use(await startSshd(dir));
    const tunnel = use(await startTunnel(daemon.port));
    const { user, options } = daemon;
    const run = await spawnTool(
      ssh,
      [
        '-p',
        String(tunnel.publicPort),
        ...options,
        `${user}@${LOOPBACK}`,
        "printf 'burrow-ssh-ok %s\\n' \"$(id -un)\"; printf 'second line\\n'",
      ],
      {
        timeoutMs: 30_000,
      },
    ).catch((error: Error) => assert.fail(`${error.message}\nsshd: ${daemon.output()}`));
    assert.equal(run.stdout.toString(), `burrow-ssh-ok ${user}\nsecond line\n`);

    const original = pseudoRandomBytes(20 * 1024 * 1024, 22);
    await writeFile(file('original.bin'), original);
    const target = `${user}@${LOOPBACK}`;
    await spawnTool(
      scp,
      ['-q', '-P', String(tunnel.publicPort), ...options, file('original.bin'), `${target}:${file('remote.bin')}`],
      { timeoutMs: 60_000 },
    );
    await spawnTool(
      scp,
      ['-q', '-P', String(tunnel.publicPort), ...options, `${target}:${file('remote.bin')}`, file('back.bin')],
      { timeoutMs: 60_000 },
    );
    const remote = await readFile(file('remote.bin'));
    const back = await readFile(file('back.bin'));
    assert.equal(sha256(remote), sha256(original), 'the uploaded copy (sha256)');
    assert.equal(sha256(back), sha256(original), 'the downloaded copy (sha256)');
    assertSameBytes(back, original, 'the 20 MB round trip');
  });
});
