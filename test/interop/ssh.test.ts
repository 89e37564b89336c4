// OpenSSH through burrow: a private sshd (its own config, host key and authorized_keys in
// a temp dir, an ephemeral port on 127.0.0.1) behind a tunnel; ssh runs a command and scp
// copies 20 MB there and back through the public port.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { assertSameBytes, pseudoRandomBytes } from '../helpers.ts';
import { freePort, LOOPBACK, requireProgram, scoped, spawnTool, startDaemon, startTunnel, tempDir } from './harness.ts';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

test('ssh: a command and a 20 MB scp round trip through the tunnel', async () => {
  const sshd = requireProgram('/usr/sbin/sshd', 'openssh-server');
  const ssh = requireProgram('ssh', 'openssh-client');
  const scp = requireProgram('scp', 'openssh-client');
  const keygen = requireProgram('ssh-keygen', 'openssh-client');
  const user = os.userInfo().username;

  await scoped(async (use) => {
    const dir = use(await tempDir()).path;
    const file = (name: string): string => path.join(dir, name);
    // Privilege separation: sshd started by root wants this empty directory.
    if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    await spawnTool(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'burrow-interop-host', '-f', file('host_key')], {
      timeoutMs: 10_000,
    });
    await spawnTool(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'burrow-interop-user', '-f', file('id')], {
      timeoutMs: 10_000,
    });
    await writeFile(file('authorized_keys'), await readFile(file('id.pub')));

    const port = await freePort();
    const config = [
      `ListenAddress ${LOOPBACK}:${port}`,
      `HostKey ${file('host_key')}`,
      `PidFile ${file('sshd.pid')}`,
      `AuthorizedKeysFile ${file('authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${user}`,
      'Subsystem sftp internal-sftp', // scp speaks SFTP by default since OpenSSH 9
      'LogLevel VERBOSE',
    ];
    await writeFile(file('sshd_config'), config.join('\n') + '\n');
    const daemon = use(await startDaemon(sshd, ['-D', '-e', '-f', file('sshd_config')], port));
    const tunnel = use(await startTunnel(port));

    const options = [
      '-i',
      file('id'),
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      '-o',
      'LogLevel=ERROR',
    ];
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
