// Where a replaced self-signed pair goes: beside the live one as `<file>.old-<time>`, never
// over an earlier one (link() fails where rename() would overwrite), and only the newest
// KEPT_ASIDE of them stay, so a relay restarted in a loop does not pile up keys.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import createDebug from 'debug';
import { describe, systemCode } from '../shared/errors.ts';

const debug = createDebug('burrow:tls');

/** How many replaced pairs are kept aside: the newest; older ones are deleted. Enough to go
 * back a few --tls-name changes, without piling up keys on a relay restarted in a loop. */
export const KEPT_ASIDE = 5;

/** The two files of a pair, live or kept aside. */
export interface PairFiles {
  certFile: string;
  keyFile: string;
}

// `20250102T030405.678Z`: an ISO time without the colons some file systems and shells mind;
// `-<n>` follows when a pair with that time is there already.
const ASIDE_SUFFIX = /^(\d{8}T\d{6}\.\d{3}Z)(?:-([1-9]\d*))?$/;

/** False where `operation` fails with `code`: a race lost to another server, not an error. */
async function unlessRaced(operation: Promise<unknown>, code: 'EEXIST' | 'ENOENT'): Promise<boolean> {
  try {
    await operation;
    return true;
  } catch (error) {
    if (systemCode(error) === code) return false;
    throw error;
  }
}

/** link(), false if `to` exists: unlike rename(), it never replaces a file. */
export const linkNew = (from: string, to: string): Promise<boolean> => unlessRaced(fs.link(from, to), 'EEXIST');

/** Moves the kept pair aside, if its certificate is still `examined`, and returns where it
 * went; undefined if it is not (another server replaced it meanwhile) or is gone. The
 * certificate goes first and the key after it, the reverse of how a pair is committed: a
 * key without its certificate is what a reader waits out, and only whoever holds the
 * certificate moves the key. */
export async function retire({ certFile, keyFile }: PairFiles, examined: string): Promise<PairFiles | undefined> {
  const holding = `${certFile}.${process.pid}.${randomBytes(4).toString('hex')}.retiring`;
  if (!(await unlessRaced(fs.rename(certFile, holding), 'ENOENT'))) return undefined;
  if ((await fs.readFile(holding, 'utf8')) !== examined) {
    // A pair committed since we looked: nobody can commit another while its key is
    // there, so the certificate goes back where it was.
    await fs.rename(holding, certFile);
    return undefined;
  }
  const aside = await setAside(holding, certFile, keyFile);
  await prune(certFile, keyFile, aside);
  return aside;
}

/** Links `holding` (the certificate) and `keyFile` to `<certFile>.old-<suffix>` +
 * `<keyFile>.old-<suffix>`, a suffix neither name has yet, then removes the originals: a
 * pair kept aside earlier (in the same millisecond, by another server) is never overwritten. */
async function setAside(holding: string, certFile: string, keyFile: string): Promise<PairFiles> {
  const time = new Date().toISOString().replaceAll(/[-:]/g, '');
  // Past the highest number taken at this time, not in a gap prune() left: the suffixes
  // must sort in the order the pairs were set aside.
  const newest = (await keptAside(certFile, keyFile)).find((kept) => kept.time === time);
  for (let n = newest === undefined ? 0 : newest.n + 1; ; n++) {
    const suffix = n === 0 ? time : `${time}-${n}`;
    const aside = { certFile: `${certFile}.old-${suffix}`, keyFile: `${keyFile}.old-${suffix}` };
    if (!(await linkNew(holding, aside.certFile))) continue;
    if (!(await linkNew(keyFile, aside.keyFile))) {
      await fs.unlink(aside.certFile); // a lone key of that name: try the next suffix
      continue;
    }
    await fs.unlink(keyFile);
    await fs.unlink(holding);
    return aside;
  }
}

/** Deletes the pairs kept aside but the newest KEPT_ASIDE, `just` (the one this call set
 * aside) among them whatever the clock says. Best effort: the new certificate is already in
 * place, and an old file that stays is no reason not to serve it. */
async function prune(certFile: string, keyFile: string, just: PairFiles): Promise<void> {
  try {
    const others = (await keptAside(certFile, keyFile)).filter(
      ({ suffix }) => just.certFile !== `${certFile}.old-${suffix}`,
    );
    for (const { suffix } of others.slice(KEPT_ASIDE - 1)) {
      const files = [`${certFile}.old-${suffix}`, `${keyFile}.old-${suffix}`];
      await Promise.all(files.map((file) => fs.rm(file, { force: true })));
      debug('deleted %s (only the newest %d replaced pairs are kept)', files.join(' and '), KEPT_ASIDE);
    }
  } catch (error) {
    debug('could not delete old replaced pairs beside %s: %s', certFile, describe(error));
  }
}

/** The pairs kept aside beside `certFile` (either file of the pair), newest first: by time,
 * then by the number after it (0 if none). */
async function keptAside(certFile: string, keyFile: string): Promise<{ suffix: string; time: string; n: number }[]> {
  const prefixes = [certFile, keyFile].map((file) => `${path.basename(file)}.old-`);
  const suffixes = new Set<string>();
  for (const file of await fs.readdir(path.dirname(certFile)))
    for (const prefix of prefixes) if (file.startsWith(prefix)) suffixes.add(file.slice(prefix.length));
  const kept = [...suffixes].flatMap((suffix) => {
    const [, time, n = 0] = ASIDE_SUFFIX.exec(suffix) ?? [];
    return time === undefined ? [] : [{ suffix, time, n: Number(n) }];
  });
  return kept.sort((a, b) => (a.time === b.time ? b.n - a.n : a.time < b.time ? 1 : -1));
}
