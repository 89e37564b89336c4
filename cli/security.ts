// The security flags of both commands: which secret and which TLS files to use (pure,
// tested without processes), then reading those files. A secret can come from a file or
// the environment so that it need not show in `ps`.
import { readFile } from 'node:fs/promises';
import {
  certificateIdentity,
  defaultTlsDir,
  describeError,
  loadOrCreateCertificate,
  normalizeFingerprint,
  tlsName,
  type ClientTlsOptions,
  type ReplacedCertificate,
  type ServerTlsOptions,
} from '../index.ts';
import { envName, flagOn, isFlag, keepFirst, raw, type Env, type RawArgs, type Setting, type Source } from './args.ts';
import { UsageError } from './usage-error.ts';

/** Where the secret comes from: given as is, or a file to read. */
export type SecretPlan = { value: Source } | { file: Source } | undefined;
/** Files to read, or the self-signed certificate kept in `dir` (naming `names` too). */
export type ServerTlsPlan = ({ cert: Source; key: Source } | { selfSignedDir: string; names?: string[] }) & {
  clientCa?: Source;
};
export type ClientTlsPlan = { ca?: Source; fingerprint?: string; cert?: Source; key?: Source };

/** Shorter than this, a secret recorded in a plain-text handshake may be guessed offline. */
export const SHORT_SECRET = 16;

function secretPlan(args: RawArgs, env: Env, command: 'server' | 'client'): SecretPlan {
  const given = raw(args, env, 'secret');
  const givenFile = raw(args, env, 'secret-file');
  // Both: a usage error from the same kind of source, else the flag wins (keepFirst).
  const keepValue =
    given && givenFile
      ? keepFirst(
          given,
          givenFile,
          () => `give the secret once: ${given.source} or ${givenFile.source}, not both`,
          command,
        )
      : true;
  const value = keepValue ? given : undefined;
  const file = value ? undefined : givenFile;
  if (value?.text === '' || file?.text === '') throw new UsageError(`${(value ?? file)?.source}: empty`);
  return value ? { value } : file ? { file } : undefined;
}

type Pair = { first: Source; second: Source };

/** Both or neither of two flags (each may be a flag or its variable). */
function pair(args: RawArgs, env: Env, first: string, second: string): Pair | undefined {
  const a = raw(args, env, first);
  const b = raw(args, env, second);
  if (!a && !b) return undefined;
  if (!a || !b) throw new UsageError(`--${first} and --${second} go together: give both`);
  return { first: a, second: b };
}

/** `--tls-name`: a name for the self-signed certificate of --tls, besides localhost,
 * 127.0.0.1 and ::1. The flag may repeat (yargs hands us an array) and each value may list
 * several, comma-separated, as its variable BURROW_TLS_NAME does. */
export const TLS_NAME_FLAG = 'tls-name';
/** Its --help text (cli/server-flags.ts adds the variable's name). */
export const TLS_NAME_HELP =
  'Also name this host name or IP address in the self-signed certificate of --tls (besides localhost, 127.0.0.1, ::1), for clients that connect by it; repeat, or separate with commas. A kept certificate that lacks one is replaced';

type NameTexts = { texts: string[]; source: string };

/** The --tls-name values as given (or BURROW_TLS_NAME's). */
function tlsNameTexts(args: RawArgs, env: Env): NameTexts | undefined {
  const value = args[TLS_NAME_FLAG];
  if (value !== undefined && value !== null)
    return { texts: (Array.isArray(value) ? value : [value]).map(String), source: `--${TLS_NAME_FLAG}` };
  const fromEnv = env[envName(TLS_NAME_FLAG)];
  return fromEnv === undefined || fromEnv === '' ? undefined : { texts: [fromEnv], source: envName(TLS_NAME_FLAG) };
}

/** Those names validated, without duplicates. */
function tlsNames(given: NameTexts): { names: string[]; source: string } {
  const texts = given.texts.flatMap((text) => text.split(',')).filter((text) => text.trim() !== '');
  if (texts.length === 0) throw new UsageError(`${given.source}: give a host name or an IP address`);
  const names = texts.map((text) => {
    const name = tlsName(text);
    if (name === undefined) {
      throw new UsageError(
        `${given.source}: "${text.trim()}" is not a host name (like relay.example.com) or an IP address (like 203.0.113.7 or 2001:db8::7)`,
      );
    }
    return name;
  });
  return { names: [...new Set(names)], source: given.source };
}

/** --tls-cert and --tls-key as one setting for keepFirst: a flag if either is one. */
function filesSetting({ first, second }: Pair): Setting {
  return {
    source: isFlag(second.source) ? second.source : first.source,
    label: `${first.source} and ${second.source}`,
  };
}

export function resolveServerSecurity(args: RawArgs, env: Env): { secret: SecretPlan; tls: ServerTlsPlan | undefined } {
  let files = pair(args, env, 'tls-cert', 'tls-key');
  const givenDir = raw(args, env, 'tls-dir');
  const givenNames = tlsNameTexts(args, env);
  const clientCa = raw(args, env, 'tls-client-ca');
  // --tls-dir and --tls-name belong to the self-signed certificate that the files replace.
  // Each is settled against the files by keepFirst, flags first: a flag decides which
  // certificate, and only variables that disagree with it are ignored (not even checked).
  const rivals = [givenDir, givenNames]
    .filter((rival) => rival !== undefined)
    .sort((a, b) => Number(isFlag(b.source)) - Number(isFlag(a.source)));
  const ignored = new Set<Setting>();
  for (const rival of rivals) {
    if (files === undefined) break;
    const label = `${files.first.source} and ${files.second.source}`;
    const conflict = (): string =>
      rival === givenDir
        ? `${rival.source} is where --tls keeps its own certificate: drop it when you give ${label}`
        : `${rival.source} names the self-signed certificate of --tls; with ${label}, your certificate's own names count: drop ${rival.source}`;
    if (keepFirst(filesSetting(files), rival, conflict, 'server')) ignored.add(rival);
    else files = undefined;
  }
  const dir = givenDir && !ignored.has(givenDir) ? givenDir : undefined;
  const named = givenNames && !ignored.has(givenNames) ? tlsNames(givenNames) : undefined;
  // Like --tls-dir, a name for the self-signed certificate means TLS.
  const selfSigned = !files && (flagOn(args, env, 'tls') || dir !== undefined || named !== undefined);
  if (clientCa && !files && !selfSigned)
    throw new UsageError('--tls-client-ca needs TLS: add --tls, or --tls-cert and --tls-key');
  let tls: ServerTlsPlan | undefined;
  if (files) tls = { cert: files.first, key: files.second };
  else if (selfSigned)
    tls = { selfSignedDir: dir?.text ?? defaultTlsDir(env), ...(named ? { names: named.names } : {}) };
  if (tls && clientCa) tls.clientCa = clientCa;
  return { secret: secretPlan(args, env, 'server'), tls };
}

export function resolveClientSecurity(args: RawArgs, env: Env): { secret: SecretPlan; tls: ClientTlsPlan | undefined } {
  const ca = raw(args, env, 'tls-ca');
  const pin = raw(args, env, 'tls-fingerprint');
  const mine = pair(args, env, 'tls-client-cert', 'tls-client-key');
  const fingerprint = pin && normalizeFingerprint(pin.text);
  if (pin && fingerprint === undefined) {
    throw new UsageError(
      `${pin.source}: "${pin.text}" is not a SHA-256 fingerprint (64 hex digits, AB:CD:... as the server prints it)`,
    );
  }
  // Any TLS detail means TLS: --tls-ca alone is enough.
  const on = flagOn(args, env, 'tls') || ca !== undefined || pin !== undefined || mine !== undefined;
  const tls: ClientTlsPlan | undefined = on ? {} : undefined;
  if (tls && ca) tls.ca = ca;
  if (tls && fingerprint) tls.fingerprint = fingerprint;
  if (tls && mine) Object.assign(tls, { cert: mine.first, key: mine.second });
  return { secret: secretPlan(args, env, 'client'), tls };
}

/** The file a flag names; a usage error naming the flag if it cannot be read. */
export async function readSource({ text, source }: Source): Promise<Buffer> {
  try {
    return await readFile(text);
  } catch (error) {
    throw new UsageError(`${source}: cannot read ${text}: ${describeError(error)}`);
  }
}

/** The secret itself. A file's one trailing newline is not part of it (`echo` and
 * `openssl rand -base64 32 > file` add one). */
export async function loadSecret(plan: SecretPlan): Promise<string | undefined> {
  if (plan === undefined) return undefined;
  if ('value' in plan) return plan.value.text;
  const text = (await readSource(plan.file)).toString('utf8').replace(/\r?\n$/, '');
  if (text === '') throw new UsageError(`${plan.file.source}: ${plan.file.text} is empty`);
  return text;
}

export interface LoadedServerTls {
  options: ServerTlsOptions;
  fingerprint: string;
  /** The host names and IP addresses the certificate names (what clients may connect by),
   * for the line that prints the fingerprint. */
  names: string[];
  /** Where a self-signed certificate was created by this start, if it was. */
  createdIn?: string;
  /** Set when that certificate replaced the kept one, which lacked a --tls-name: the old
   * fingerprint, the names it lacked, and where the old pair was moved. */
  replaced?: ReplacedCertificate;
}

export async function loadServerTls(plan: ServerTlsPlan | undefined): Promise<LoadedServerTls | undefined> {
  if (plan === undefined) return undefined;
  const clientCa = plan.clientCa && (await readSource(plan.clientCa));
  if ('selfSignedDir' in plan) {
    const stored = await loadOrCreateCertificate(plan.selfSignedDir, plan.names);
    const options: ServerTlsOptions = { cert: stored.cert, key: stored.key, clientCa };
    const loaded: LoadedServerTls = {
      options,
      fingerprint: stored.fingerprint,
      names: stored.names,
      createdIn: stored.created ? plan.selfSignedDir : undefined,
    };
    if (stored.replaced) loaded.replaced = stored.replaced;
    return loaded;
  }
  // One after the other, so a missing file is always reported in the same order.
  const cert = await readSource(plan.cert);
  const key = await readSource(plan.key);
  try {
    return { options: { cert, key, clientCa }, ...certificateIdentity(cert) }; // the first of the chain: the server's own
  } catch (error) {
    throw new UsageError(`${plan.cert.source}: ${plan.cert.text} is not a PEM certificate: ${describeError(error)}`);
  }
}

export async function loadClientTls(plan: ClientTlsPlan | undefined): Promise<ClientTlsOptions | undefined> {
  if (plan === undefined) return undefined;
  const read = (source: Source | undefined): Promise<Buffer | undefined> =>
    source ? readSource(source) : Promise.resolve(undefined);
  // One after the other, so a missing file is always reported in the same order.
  const ca = await read(plan.ca);
  const cert = await read(plan.cert);
  const key = await read(plan.key);
  return { ca, cert, key, fingerprint: plan.fingerprint };
}
