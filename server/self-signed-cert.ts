// The certificate `burrow server --tls` uses when no --tls-cert/--tls-key is given: a
// self-signed ECDSA P-256 pair created once in the TLS directory and reused on every later
// start, so its fingerprint (what clients pin) survives restarts. It names localhost,
// 127.0.0.1 and ::1, and whatever else it is asked to (--tls-name): a kept certificate
// that lacks a name asked for is replaced, not served to clients that would reject it, by
// one that names its names too (the set only grows, so clients that connect by an earlier
// name keep working); the replaced pair is kept aside, the newest KEPT_ASIDE of them.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import createDebug from 'debug';
import { canonicalIp, certificateNames } from '../shared/certificate-names.ts';
import { BurrowError, describe, systemCode } from '../shared/errors.ts';
import { DNS_LABEL } from '../shared/protocol.ts';
import { linkNew, type PairFiles, retire } from './cert-aside.ts';

const debug = createDebug('burrow:tls');

export interface CertificateIdentity {
  /** SHA-256, `AB:CD:...`: what the server prints and clients pin (--tls-fingerprint). */
  fingerprint: string;
  /** The host names and IP addresses it names (its subject alternative names, IPv6
   * shortened): the names clients may connect by and have it verified. */
  names: string[];
}

export interface StoredCertificate extends CertificateIdentity, PairFiles {
  cert: string;
  key: string;
  /** True if this call generated the pair, false if it was already on disk. */
  created: boolean;
  /** Set when this call replaced the kept certificate because it lacked a name asked for:
   * the old certificate's fingerprint, the names it lacked, and where the old pair is now
   * (`tls-cert.pem.old-<time>` + `tls-key.pem.old-<time>`). */
  replaced?: ReplacedCertificate;
}

export interface ReplacedCertificate extends PairFiles {
  fingerprint: string;
  missing: string[];
}

/** What clients see of a PEM certificate (of a chain, the first: the server's own). Throws
 * if `cert` is not a PEM certificate. */
export function certificateIdentity(cert: string | Buffer): CertificateIdentity {
  const x509 = new X509Certificate(cert);
  return { fingerprint: x509.fingerprint256, names: certificateNames(x509.toLegacyObject()) };
}

/** What every self-signed certificate names, besides the names asked for. */
export const DEFAULT_TLS_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1'];

/** `text` as a certificate can name it, or undefined if it is neither a host name nor an IP
 * address: a host name in lowercase without a trailing dot (ASCII: an international name
 * in its xn-- form), an IPv6 address shortened and without brackets. No wildcards, no
 * ports, no IPv6 zones. */
export function tlsName(text: string): string | undefined {
  const value = text.trim();
  if (/^\[.*\]$/.test(value)) {
    // [::1], as burrow prints IPv6 addresses; brackets around anything else are a mistake.
    const inside = value.slice(1, -1);
    return net.isIPv6(inside) && !inside.includes('%') ? canonicalIp(inside) : undefined;
  }
  if (net.isIP(value) !== 0) return value.includes('%') ? undefined : canonicalIp(value);
  const name = value.toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  // A last label of digits alone reads as an address (1.2.3.999, 10.1): not a host name.
  if (name.length > 253 || !labels.every((label) => DNS_LABEL.test(label)) || /^[0-9]+$/.test(labels.at(-1) ?? ''))
    return undefined;
  return name;
}

/** Does `cert` name `name` (a tlsName() result), as a client's host name check sees it? */
function covers(cert: X509Certificate, name: string): boolean {
  return net.isIP(name) !== 0
    ? cert.checkIP(name) !== undefined
    : cert.checkHost(name, { subject: 'never' }) !== undefined;
}

/** The names of a kept certificate a new one can carry on: as tlsName() spells them, without
 * what it cannot name (a wildcard in a certificate someone else put there, say). */
const carriedNames = (kept: StoredCertificate): string[] =>
  kept.names.flatMap((text) => {
    const name = tlsName(text);
    if (name === undefined)
      debug('%s names %s, which a self-signed certificate cannot: not carried over', kept.certFile, text);
    return name ?? [];
  });

/** `$XDG_CONFIG_HOME/burrow`, or `~/.config/burrow` when that is unset or empty. */
export function defaultTlsDir(env: Record<string, string | undefined> = process.env, home = os.homedir()): string {
  const xdg = env.XDG_CONFIG_HOME;
  return xdg !== undefined && xdg !== '' ? path.join(xdg, 'burrow') : path.join(home, '.config', 'burrow');
}

/** The live pair in `dir`. */
const pairIn = (dir: string): PairFiles => ({
  certFile: path.join(dir, 'tls-cert.pem'),
  keyFile: path.join(dir, 'tls-key.pem'),
});

// Another server starting at the same moment links its key just before its certificate:
// a lone file gets 20 x 10 ms to be joined by its partner before it is an error.
const SETTLE_ATTEMPTS = 20;
const SETTLE_MS = 10;

// Servers starting at once with other names may keep replacing each other's pair: after
// this many rounds, give up rather than loop.
const RACE_ATTEMPTS = 5;

/** Loads `<dir>/tls-cert.pem` + `<dir>/tls-key.pem`, creating the pair if neither exists.
 * `names` (host names or IP addresses; see tlsName()) must be named by the certificate:
 * if the kept one lacks any, it is moved to `tls-cert.pem.old-<time>` +
 * `tls-key.pem.old-<time>` and a new pair naming its names, those asked for and
 * DEFAULT_TLS_NAMES takes its place (`replaced` says so). */
export async function loadOrCreateCertificate(dir: string, names: readonly string[] = []): Promise<StoredCertificate> {
  const files = pairIn(dir);
  const wanted = names.map((text) => {
    const name = tlsName(text);
    if (name === undefined)
      throw new BurrowError(
        'listen-failed',
        `"${text}" is not a host name or an IP address, so no TLS certificate can name it`,
      );
    return name;
  });
  try {
    let replaced: ReplacedCertificate | undefined;
    // The names of every pair this call moved aside: if another server commits a pair in
    // between, that one must name them too, or they would be lost in the race.
    let carried: string[] = [];
    for (let attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
      const existing = await loadExisting(files);
      if (existing !== undefined) {
        const x509 = new X509Certificate(existing.cert);
        const missing = [...new Set([...wanted, ...carried])].filter((name) => !covers(x509, name));
        if (missing.length === 0) return replaced === undefined ? existing : { ...existing, replaced };
        const aside = await retire(files, existing.cert);
        if (aside === undefined) continue; // someone else changed it: look again
        replaced = { fingerprint: existing.fingerprint, missing, ...aside };
        carried = [...new Set([...carried, ...carriedNames(existing)])];
        debug('%s did not name %s: moved it to %s', files.certFile, missing.join(', '), aside.certFile);
      }
      // Those carried (but the defaults), then the ones asked for, then the defaults; once each.
      const certify = [...carried.filter((name) => !DEFAULT_TLS_NAMES.includes(name)), ...wanted, ...DEFAULT_TLS_NAMES];
      const made = await create(dir, [...new Set(certify)]);
      if (made !== undefined) return replaced === undefined ? made : { ...made, replaced };
    }
    throw new BurrowError(
      'listen-failed',
      `the TLS certificate in ${dir} kept changing while this server loaded it: is another burrow server starting there with other \`names\` values?`,
    );
  } catch (error) {
    if (error instanceof BurrowError) throw error;
    throw new BurrowError('listen-failed', `cannot load or create the TLS certificate in ${dir}: ${describe(error)}`, {
      cause: error,
    });
  }
}

/** Generates a pair naming `names` and commits it; undefined if another pair was committed
 * first (the caller loads that one). */
async function create(dir: string, names: string[]): Promise<StoredCertificate | undefined> {
  const { certFile, keyFile } = pairIn(dir);
  const { cert, key } = await generate(names);
  // Unique temporary names: two servers (or two calls in one process) never share one.
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const [keyTmp, certTmp] = [`${keyFile}.${tag}.tmp`, `${certFile}.${tag}.tmp`];
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    // 'wx': never write through a file (or symlink) someone else put there; flushed to disk
    // before anyone can see it under its real name.
    await fs.writeFile(keyTmp, key, { flag: 'wx', mode: 0o600, flush: true });
    await fs.writeFile(certTmp, cert, { flag: 'wx', mode: 0o644, flush: true });
    // Of two servers starting at once, exactly one commits its pair (key first, with a link
    // that never replaces a file); the other loads that one.
    if (!(await linkNew(keyTmp, keyFile))) {
      debug('%s appeared while we generated ours; loading it', keyFile);
      return undefined;
    }
    await fs.link(certTmp, certFile);
  } finally {
    await Promise.all([fs.rm(keyTmp, { force: true }), fs.rm(certTmp, { force: true })]);
  }
  debug('created %s and %s for %s', certFile, keyFile, names.join(', '));
  return { cert, key, ...certificateIdentity(cert), created: true, certFile, keyFile };
}

/** The stored pair; undefined if neither file exists; rejects if only one does, if they
 * cannot be parsed, or if the key is not the certificate's. */
async function loadExisting({ certFile, keyFile }: PairFiles): Promise<StoredCertificate | undefined> {
  const remedy = `delete both ${certFile} and ${keyFile} to create a new pair, or pass \`tls.cert\` and \`tls.key\``;
  const fail = (message: string, cause?: unknown): BurrowError =>
    new BurrowError('listen-failed', `${message}: ${remedy}`, { cause });
  const parse = <T>(make: () => T, what: string): T => {
    try {
      return make();
    } catch (error) {
      throw fail(`${what} (${describe(error)})`, error);
    }
  };
  const read = (): Promise<(string | undefined)[]> => Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
  let [cert, key] = await read();
  for (let waited = 0; waited < SETTLE_ATTEMPTS && (cert === undefined) !== (key === undefined); waited++) {
    await delay(SETTLE_MS);
    [cert, key] = await read();
  }
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined) throw fail(`${keyFile} exists but ${certFile} does not`);
  if (key === undefined) throw fail(`${certFile} exists but ${keyFile} does not`);
  const x509 = parse(() => new X509Certificate(cert), `${certFile} is not a PEM certificate`);
  const privateKey = parse(() => createPrivateKey(key), `${keyFile} is not a usable PEM private key`);
  if (!x509.checkPrivateKey(privateKey)) throw fail(`${keyFile} is not the private key of ${certFile}`);
  return { cert, key, ...certificateIdentity(cert), created: false, certFile, keyFile };
}

async function readIfExists(file: string): Promise<string | undefined> {
  return fs.readFile(file, 'utf8').catch((error: unknown) => {
    if (systemCode(error) === 'ENOENT') return undefined;
    throw error;
  });
}

async function generate(names: string[]): Promise<{ cert: string; key: string }> {
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
      // A host name as a DNS name (type 2), an address as an IP address (type 7): clients
      // check an address only against the latter.
      {
        name: 'subjectAltName',
        altNames: names.map((name) => (net.isIP(name) !== 0 ? { type: 7, ip: name } : { type: 2, value: name })),
      },
    ],
  });
  // selfsigned ends its PEMs without a newline; files (and `cat a.pem b.pem`) want one.
  return { cert: `${pems.cert.trimEnd()}\n`, key: `${pems.private.trimEnd()}\n` };
}
