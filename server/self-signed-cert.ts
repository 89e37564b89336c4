// The certificate `burrow server --tls` uses when no --tls-cert/--tls-key is given: a
// self-signed ECDSA P-256 pair created once in the TLS directory and reused on every later
// start, so its fingerprint (what clients pin) survives restarts.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import createDebug from 'debug';
import { BurrowError, describe, systemCode } from '../shared/errors.ts';

const debug = createDebug('burrow:tls');

export interface StoredCertificate {
  cert: string;
  key: string;
  /** SHA-256, `AB:CD:...`: what the server prints and clients pass to --tls-fingerprint. */
  fingerprint: string;
  /** True if this call generated the pair, false if it was already on disk. */
  created: boolean;
  certFile: string;
  keyFile: string;
}

/** `$XDG_CONFIG_HOME/burrow`, or `~/.config/burrow` when that is unset or empty. */
export function defaultTlsDir(env: Record<string, string | undefined> = process.env, home = os.homedir()): string {
  const xdg = env.XDG_CONFIG_HOME;
  return xdg !== undefined && xdg !== '' ? path.join(xdg, 'burrow') : path.join(home, '.config', 'burrow');
}

// Another server starting at the same moment links its key just before its certificate:
// a lone file gets 20 x 10 ms to be joined by its partner before it is an error.
const SETTLE_ATTEMPTS = 20;
const SETTLE_MS = 10;

/** Loads `<dir>/tls-cert.pem` + `<dir>/tls-key.pem`, creating the pair if neither exists. */
export async function loadOrCreateCertificate(dir: string): Promise<StoredCertificate> {
  const certFile = path.join(dir, 'tls-cert.pem');
  const keyFile = path.join(dir, 'tls-key.pem');
  try {
    return (await loadExisting(certFile, keyFile)) ?? (await create(dir, certFile, keyFile));
  } catch (error) {
    if (error instanceof BurrowError) throw error;
    throw new BurrowError('listen-failed', `cannot load or create the TLS certificate in ${dir}: ${describe(error)}`, { cause: error });
  }
}

async function create(dir: string, certFile: string, keyFile: string): Promise<StoredCertificate> {
  const { cert, key } = await generate();
  // Unique temporary names: two servers (or two calls in one process) never share one.
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const [keyTmp, certTmp] = [`${keyFile}.${tag}.tmp`, `${certFile}.${tag}.tmp`];
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    // 'wx': never write through a file (or symlink) someone else put there; flushed to disk
    // before anyone can see it under its real name.
    await fs.writeFile(keyTmp, key, { flag: 'wx', mode: 0o600, flush: true });
    await fs.writeFile(certTmp, cert, { flag: 'wx', mode: 0o644, flush: true });
    // link() fails if the target exists, where rename() would replace it: of two servers
    // starting at once, exactly one commits its pair (key first); the other loads that one.
    try {
      await fs.link(keyTmp, keyFile);
    } catch (error) {
      if (systemCode(error) !== 'EEXIST') throw error;
      debug('%s appeared while we generated ours; loading it', keyFile);
      return (await loadExisting(certFile, keyFile)) ?? Promise.reject(error);
    }
    await fs.link(certTmp, certFile);
  } finally {
    await Promise.all([fs.rm(keyTmp, { force: true }), fs.rm(certTmp, { force: true })]);
  }
  debug('created %s and %s', certFile, keyFile);
  return { cert, key, fingerprint: new X509Certificate(cert).fingerprint256, created: true, certFile, keyFile };
}

/** The stored pair; undefined if neither file exists; rejects if only one does, if they
 * cannot be parsed, or if the key is not the certificate's. */
async function loadExisting(certFile: string, keyFile: string): Promise<StoredCertificate | undefined> {
  const remedy = `delete both ${certFile} and ${keyFile} to create a new pair, or pass --tls-cert and --tls-key`;
  const fail = (message: string, cause?: unknown): BurrowError => new BurrowError('listen-failed', `${message}: ${remedy}`, { cause });
  const parse = <T>(make: () => T, what: string): T => {
    try {
      return make();
    } catch (error) {
      throw fail(`${what} (${describe(error)})`, error);
    }
  };
  for (let attempt = 0; ; attempt++) {
    const [cert, key] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
    if (cert === undefined && key === undefined) return undefined;
    if (cert === undefined || key === undefined) {
      if (attempt >= SETTLE_ATTEMPTS) throw fail(cert === undefined ? `${keyFile} exists but ${certFile} does not` : `${certFile} exists but ${keyFile} does not`);
      await delay(SETTLE_MS);
      continue;
    }
    const x509 = parse(() => new X509Certificate(cert), `${certFile} is not a PEM certificate`);
    const privateKey = parse(() => createPrivateKey(key), `${keyFile} is not a usable PEM private key`);
    if (!x509.checkPrivateKey(privateKey)) throw fail(`${keyFile} is not the private key of ${certFile}`);
    return { cert, key, fingerprint: x509.fingerprint256, created: false, certFile, keyFile };
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  return fs.readFile(file, 'utf8').catch((error: unknown) => (systemCode(error) === 'ENOENT' ? undefined : Promise.reject(error)));
}

async function generate(): Promise<{ cert: string; key: string }> {
  const { generate: selfsign } = await import('selfsigned'); // only a first `--tls` start needs it
  const now = new Date();
  const notAfterDate = new Date(now);
  notAfterDate.setFullYear(now.getFullYear() + 10); // clients pin it: rotating it is a deliberate act
  const pems = await selfsign([{ name: 'commonName', value: 'burrow relay' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 86_400_000), // a day of slack for clocks running behind
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  // selfsigned ends its PEMs without a newline; files (and `cat a.pem b.pem`) want one.
  return { cert: `${pems.cert.trimEnd()}\n`, key: `${pems.private.trimEnd()}\n` };
}
