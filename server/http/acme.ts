// Certificates from an ACME CA (Let's Encrypt unless told otherwise) for the names of HTTP
// tunnels, issued on demand: the first TLS handshake for `NAME.<domain>` asks for one, but
// only while a tunnel holds that name, so a scanner that sends made-up names cannot make
// the relay ask the CA for anything. The CA proves the relay serves the name with an
// HTTP-01 challenge on the relay's HTTP port. Certificates and keys are cached on disk (keys
// readable by the owner only) and renewed before they expire. acme-client speaks RFC 8555.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import acme from 'acme-client';
import createDebug from 'debug';
import { describe } from '../../shared/errors.ts';

const debug = createDebug('burrow:acme');

export interface AcmeOptions {
  /** The CA's directory. Default: Let's Encrypt's production directory. */
  directoryUrl?: string;
  /** The account's contact address, if any. */
  email?: string;
  /** Where the account key, certificates and their keys are kept (created with mode 0700). */
  cacheDir: string;
  /** A CA certificate (PEM) to trust for the directory's own HTTPS, such as a test CA's
   * (pebble). It applies to every ACME request of this process. */
  directoryCa?: string | Buffer;
  /** Renew a certificate this long before it expires. Default 30 days. */
  renewBeforeMs?: number;
  /** How often a request the CA did not answer is tried again (5 s, 10 s, ... apart).
   * Default 5 (acme-client's). Like `directoryCa`, it applies to the whole process. */
  retries?: number;
}

/** What becomes of a certificate request, for the operator. */
export interface CertificateEvent {
  name: string;
  /** `issued`, `renewed`, or `failed` (then `error` says why, in one line). */
  outcome: 'issued' | 'renewed' | 'failed';
  error?: string;
}

interface Held {
  context: tls.SecureContext;
  notAfter: number;
}

const DAY_MS = 86_400_000;
/** How often the cache is checked for certificates due for renewal. */
const RENEW_CHECK_MS = 12 * 3_600_000;

export class AcmeCertificates {
  private readonly held = new Map<string, Held>();
  /** Requests under way, by name: a burst of handshakes makes one request. */
  private readonly issuing = new Map<string, Promise<Held>>();
  /** HTTP-01 answers the CA will fetch, by token. */
  private readonly challenges = new Map<string, string>();
  /** The ACME account, once (being) set up; forgotten if that fails, to try again later. */
  private client: Promise<acme.Client> | undefined;
  private readonly renewTimer: NodeJS.Timeout;

  constructor(
    private readonly options: AcmeOptions,
    /** True while a tunnel holds the name this host belongs to. */
    private readonly isBound: (host: string) => boolean,
    private readonly report: (event: CertificateEvent) => void,
  ) {
    fs.mkdirSync(options.cacheDir, { recursive: true, mode: 0o700 });
    if (options.directoryCa) acme.axios.defaults.httpsAgent = new https.Agent({ ca: options.directoryCa });
    // acme-client's own setting, missing from its types.
    const settings = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number } }).acmeSettings;
    if (settings && options.retries !== undefined) settings.retryMaxAttempts = options.retries;
    this.renewTimer = setInterval(() => this.renewDue(), RENEW_CHECK_MS).unref();
  }

  /** The answer to `GET /.well-known/acme-challenge/<token>`, if it is one of ours. */
  challengeAnswer(urlPath: string): string | undefined {
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(urlPath)?.[1];
    return token === undefined ? undefined : this.challenges.get(token);
  }

  /** The TLS context for `host`, getting a certificate if it has none (or an expired one)
   * and a tunnel holds the name; undefined if no tunnel does. */
  async contextFor(host: string): Promise<tls.SecureContext | undefined> {
    const held = this.held.get(host) ?? this.fromDisk(host);
    const now = Date.now();
    if (held && held.notAfter > now) {
      if (held.notAfter - now < this.renewBeforeMs && this.isBound(host))
        void this.obtain(host, 'renewed').catch(() => {});
      return held.context;
    }
    if (!this.isBound(host)) return undefined;
    return (await this.obtain(host, held ? 'renewed' : 'issued')).context;
  }

  close(): void {
    clearInterval(this.renewTimer);
  }

  private get directoryUrl(): string {
    return this.options.directoryUrl ?? acme.directory.letsencrypt.production;
  }

  private get renewBeforeMs(): number {
    return this.options.renewBeforeMs ?? 30 * DAY_MS;
  }

  /** One request to the CA for `host` at a time. */
  private obtain(host: string, outcome: 'issued' | 'renewed'): Promise<Held> {
    let request = this.issuing.get(host);
    if (!request) {
      request = this.request(host).then(
        (held) => {
          this.report({ name: host, outcome });
          return held;
        },
        (error: unknown) => {
          // A request that got no answer at all surfaces from acme-client as a TypeError.
          const message =
            error instanceof TypeError
              ? `no answer from the ACME CA at ${this.directoryUrl}`
              : (describe(error).split('\n')[0] ?? 'unknown error');
          this.report({ name: host, outcome: 'failed', error: message });
          throw error;
        },
      );
      const settled = (): void => void this.issuing.delete(host);
      request.then(settled, settled);
      this.issuing.set(host, request);
    }
    return request;
  }

  private async request(host: string): Promise<Held> {
    const client = await this.account();
    const [key, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, await newKey());
    const cert = await client.auto({
      csr,
      email: this.options.email,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      skipChallengeVerification: true, // the relay serves the answer itself: nothing to check
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        this.challenges.set(challenge.token, keyAuthorization);
        await Promise.resolve();
      },
      challengeRemoveFn: async (_authz, challenge) => {
        this.challenges.delete(challenge.token);
        await Promise.resolve();
      },
    });
    const base = path.join(this.options.cacheDir, fileName(host));
    writePrivate(`${base}.key`, key);
    writePrivate(`${base}.crt`, cert);
    const held = heldOf(cert, key);
    this.held.set(host, held);
    debug('certificate for %s until %s', host, new Date(held.notAfter).toISOString());
    return held;
  }

  /** The ACME account, made (and its key kept) on first use. */
  private account(): Promise<acme.Client> {
    this.client ??= this.setUpAccount().catch((error: unknown) => {
      this.client = undefined;
      throw error;
    });
    return this.client;
  }

  private async setUpAccount(): Promise<acme.Client> {
    const file = path.join(this.options.cacheDir, 'account.key');
    let accountKey: Buffer;
    try {
      accountKey = fs.readFileSync(file);
    } catch {
      accountKey = await newKey();
      writePrivate(file, accountKey);
    }
    const client = new acme.Client({ directoryUrl: this.directoryUrl, accountKey });
    // Learn the account of a kept key without changing it (acme-client would otherwise
    // send an update that says nothing, which strict CAs refuse); else make one.
    await client.createAccount({ onlyReturnExisting: true }).catch(async (error: unknown) => {
      debug('no account yet (%s): creating one', describe(error));
      const contact = this.options.email === undefined ? {} : { contact: [`mailto:${this.options.email}`] };
      await client.createAccount({ termsOfServiceAgreed: true, ...contact });
    });
    return client;
  }

  private fromDisk(host: string): Held | undefined {
    const base = path.join(this.options.cacheDir, fileName(host));
    try {
      const held = heldOf(fs.readFileSync(`${base}.crt`, 'utf8'), fs.readFileSync(`${base}.key`));
      this.held.set(host, held);
      return held;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        debug('cached certificate for %s: %s', host, describe(error));
      return undefined;
    }
  }

  private renewDue(): void {
    const now = Date.now();
    for (const [host, held] of this.held) {
      if (held.notAfter - now < this.renewBeforeMs && this.isBound(host))
        void this.obtain(host, 'renewed').catch(() => {});
    }
  }
}

const newKey = (): Promise<Buffer> => acme.crypto.createPrivateEcdsaKey('P-256');

function heldOf(cert: string, key: Buffer): Held {
  const notAfter = Date.parse(new X509Certificate(cert).validTo);
  return { context: tls.createSecureContext({ cert, key }), notAfter };
}

/** A host name as a file name (it is a checked DNS name already; this keeps it so). */
const fileName = (host: string): string => host.replace(/[^a-z0-9.-]/g, '_');

/** Writes a file only its owner can read, replacing it whole. */
function writePrivate(file: string, data: string | Buffer): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, data, { mode: 0o600 });
  fs.chmodSync(temporary, 0o600);
  fs.renameSync(temporary, file);
}
