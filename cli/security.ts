// The security flags of both commands: which secret and which TLS files to use (pure,
// tested without processes), then reading those files. A secret can come from a file or
// the environment so that it need not show in `ps`.
import { readFile } from 'node:fs/promises';
import type { ClientTlsOptions } from '../client/tls.ts';
import { describe } from '../shared/errors.ts';
import { fingerprintOf, normalizeFingerprint } from '../shared/fingerprint.ts';
import { defaultTlsDir, loadOrCreateCertificate } from '../server/self-signed-cert.ts';
import type { ServerTlsOptions } from '../server/server.ts';
import { flagOn, raw, UsageError, type Env, type RawArgs } from './options.ts';

type Source = { text: string; source: string };
/** Where the secret comes from: given as is, or a file to read. */
export type SecretPlan = { value: Source } | { file: Source } | undefined;
/** Files to read, or the self-signed certificate kept in `dir`. */
export type ServerTlsPlan = ({ cert: Source; key: Source } | { selfSignedDir: string }) & { clientCa?: Source };
export type ClientTlsPlan = { ca?: Source; fingerprint?: string; cert?: Source; key?: Source };

/** Shorter than this, a secret recorded in a plain-text handshake may be guessed offline. */
export const SHORT_SECRET = 16;

function secretPlan(args: RawArgs, env: Env): SecretPlan {
  const value = raw(args, env, 'secret');
  const file = raw(args, env, 'secret-file');
  if (value && file) throw new UsageError(`give the secret once: ${value.source} or ${file.source}, not both`);
  if (value?.text === '' || file?.text === '') throw new UsageError(`${(value ?? file)?.source}: empty`);
  return value ? { value } : file ? { file } : undefined;
}

/** Both or neither of two flags. */
function pair(args: RawArgs, env: Env, first: string, second: string): { first: Source; second: Source } | undefined {
  const a = raw(args, env, first);
  const b = raw(args, env, second);
  if (!a && !b) return undefined;
  if (!a || !b) throw new UsageError(`--${first} and --${second} go together: give both`);
  return { first: a, second: b };
}

export function resolveServerSecurity(args: RawArgs, env: Env): { secret: SecretPlan; tls: ServerTlsPlan | undefined } {
  const files = pair(args, env, 'tls-cert', 'tls-key');
  const dir = raw(args, env, 'tls-dir');
  const clientCa = raw(args, env, 'tls-client-ca');
  if (files && dir) throw new UsageError(`--tls-dir is where --tls keeps its own certificate: drop it when you give --tls-cert and --tls-key`);
  const selfSigned = !files && (flagOn(args, env, 'tls') || dir !== undefined);
  if (clientCa && !files && !selfSigned) throw new UsageError('--tls-client-ca needs TLS: add --tls, or --tls-cert and --tls-key');
  let tls: ServerTlsPlan | undefined;
  if (files) tls = { cert: files.first, key: files.second };
  else if (selfSigned) tls = { selfSignedDir: dir?.text ?? defaultTlsDir(env) };
  if (tls && clientCa) tls.clientCa = clientCa;
  return { secret: secretPlan(args, env), tls };
}

export function resolveClientSecurity(args: RawArgs, env: Env): { secret: SecretPlan; tls: ClientTlsPlan | undefined } {
  const ca = raw(args, env, 'tls-ca');
  const pin = raw(args, env, 'tls-fingerprint');
  const mine = pair(args, env, 'tls-client-cert', 'tls-client-key');
  const fingerprint = pin && normalizeFingerprint(pin.text);
  if (pin && fingerprint === undefined) {
    throw new UsageError(`${pin.source}: "${pin.text}" is not a SHA-256 fingerprint (64 hex digits, AB:CD:... as the server prints it)`);
  }
  // Any TLS detail means TLS: --tls-ca alone is enough.
  const on = flagOn(args, env, 'tls') || ca !== undefined || pin !== undefined || mine !== undefined;
  const tls: ClientTlsPlan | undefined = on ? {} : undefined;
  if (tls && ca) tls.ca = ca;
  if (tls && fingerprint) tls.fingerprint = fingerprint;
  if (tls && mine) Object.assign(tls, { cert: mine.first, key: mine.second });
  return { secret: secretPlan(args, env), tls };
}

async function readSource({ text, source }: Source): Promise<Buffer> {
  try {
    return await readFile(text);
  } catch (error) {
    throw new UsageError(`${source}: cannot read ${text}: ${describe(error)}`);
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
  /** Where a self-signed certificate was created by this start, if it was. */
  createdIn?: string;
}

export async function loadServerTls(plan: ServerTlsPlan | undefined): Promise<LoadedServerTls | undefined> {
  if (plan === undefined) return undefined;
  const clientCa = plan.clientCa && (await readSource(plan.clientCa));
  if ('selfSignedDir' in plan) {
    const stored = await loadOrCreateCertificate(plan.selfSignedDir);
    const options: ServerTlsOptions = { cert: stored.cert, key: stored.key, clientCa };
    return { options, fingerprint: stored.fingerprint, createdIn: stored.created ? plan.selfSignedDir : undefined };
  }
  const [cert, key] = await Promise.all([readSource(plan.cert), readSource(plan.key)]);
  let fingerprint: string;
  try {
    fingerprint = fingerprintOf(cert);
  } catch (error) {
    throw new UsageError(`${plan.cert.source}: ${plan.cert.text} is not a PEM certificate: ${describe(error)}`);
  }
  return { options: { cert, key, clientCa }, fingerprint };
}

export async function loadClientTls(plan: ClientTlsPlan | undefined): Promise<ClientTlsOptions | undefined> {
  if (plan === undefined) return undefined;
  const read = (source: Source | undefined): Promise<Buffer | undefined> => (source ? readSource(source) : Promise.resolve(undefined));
  const [ca, cert, key] = await Promise.all([read(plan.ca), read(plan.cert), read(plan.key)]);
  return { ca, cert, key, fingerprint: plan.fingerprint };
}
