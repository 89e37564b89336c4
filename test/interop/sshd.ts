// A private OpenSSH server for the interop tests: its own config, host key and
// authorized_keys in a directory of the test's, on an ephemeral port of 127.0.0.1, and the
// options that let ssh and scp log in to it with the key it made.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, LOOPBACK, requireProgram, spawnTool, startDaemon, type Daemon } from './harness.ts';

export interface Sshd extends Daemon {
  port: number;
  user: string;
  /** ssh's options: the key, no host key checks, batch mode. */
  options: string[];
}

/** Starts the sshd, with its files in `dir`; close() stops it. */
export async function startSshd(dir: string): Promise<Sshd> {
  const sshd = requireProgram('/usr/sbin/sshd', 'openssh-server');
  const keygen = requireProgram('ssh-keygen', 'openssh-client');
  const user = os.userInfo().username;
  const file = (name: string): string => path.join(dir, name);
  // Privilege separation: sshd started by root wants this empty directory.
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  for (const [name, comment] of [
    ['host_key', 'burrow-interop-host'],
    ['id', 'burrow-interop-user'],
  ] as const)
    await spawnTool(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file(name)], { timeoutMs: 10_000 });
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
  const daemon = await startDaemon(sshd, ['-D', '-e', '-f', file('sshd_config')], port);
  const options = [
    ...['-i', file('id'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'],
    ...['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR'],
  ];
  return Object.assign(daemon, { port, user, options });
}
