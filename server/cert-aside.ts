// Where a replaced self-signed pair goes: beside the live one as `<file>.old-<time>`, never
// over an earlier one (link() fails where rename() would overwrite), and only the newest
// KEPT_ASIDE of them stay, so a relay restarted in a loop does not pile up keys.
import fs from 'node:fs/promises';
import path from 'node:path';
import createDebug from 'debug';
import { describe, systemCode } from '../shared/errors.ts';

const debug = createDebug('burrow:tls');

/** How many replaced pairs are kept aside: the newest; older ones are deleted. Enough to go
 * back a few --tls-name changes, without piling up keys on a relay restarted in a loop. */
export const KEPT_ASIDE = 5;

export interface PairFiles {
  certFile: string;
  keyFile: string;
}

// `20250102T030405.678Z`: an ISO time without the colons some file systems and shells mind;
// `-<n>` follows when a pair with that time is there already.
const ASIDE_SUFFIX = /^(\d{8}T\d{6}\.\d{3}Z)(?:-([1-9]\d*))?$/;

/** Links `holding` (the certificate) and `keyFile` to `<certFile>.old-<suffix>` +
 * `<keyFile>.old-<suffix>`, a suffix neither name has yet, then removes the originals.
 * link() never replaces a file, where rename() would: a pair kept aside earlier (in the same
 * millisecond, by another server) is never overwritten. */
export async function setAside(holding: string, certFile: string, keyFile: string): Promise<PairFiles> {
  const time = new Date().toISOString().replaceAll(/[-:]/g, '');
  // Past the highest number taken at this time, not in a gap prune() left: the suffixes
  // must sort in the order the pairs were set aside.
  const taken = (await asideSuffixes(certFile, keyFile)).filter(
    (suffix) => suffix === time || suffix.startsWith(`${time}-`),
  );
  const newest = taken.sort(newestFirst)[0];
  for (let n = newest === undefined ? 0 : numberOf(newest) + 1; ; n++) {
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

/** link(), false if `to` exists. */
async function linkNew(from: string, to: string): Promise<boolean> {
  try {
    await fs.link(from, to);
    return true;
  } catch (error) {
    if (systemCode(error) === 'EEXIST') return false;
    throw error;
  }
}

/** Deletes the pairs kept aside but the newest KEPT_ASIDE, `just` (the one this call set
 * aside) among them whatever the clock says. Best effort: the new certificate is already in
 * place, and an old file that stays is no reason not to serve it. */
export async function prune(certFile: string, keyFile: string, just: PairFiles): Promise<void> {
  const keep = just.certFile.slice(certFile.length + '.old-'.length);
  try {
    const suffixes = (await asideSuffixes(certFile, keyFile)).filter((suffix) => suffix !== keep);
    const older = suffixes.sort(newestFirst).slice(KEPT_ASIDE - 1);
    for (const suffix of older) {
      const files = [`${certFile}.old-${suffix}`, `${keyFile}.old-${suffix}`];
      await Promise.all(files.map((file) => fs.rm(file, { force: true })));
      debug('deleted %s (only the newest %d replaced pairs are kept)', files.join(' and '), KEPT_ASIDE);
    }
  } catch (error) {
    debug('could not delete old replaced pairs beside %s: %s', certFile, describe(error));
  }
}

/** The suffixes of the pairs kept aside beside `certFile` (either file of the pair). */
async function asideSuffixes(certFile: string, keyFile: string): Promise<string[]> {
  const prefixes = [certFile, keyFile].map((file) => `${path.basename(file)}.old-`);
  const suffixes = new Set<string>();
  for (const file of await fs.readdir(path.dirname(certFile))) {
    const prefix = prefixes.find((start) => file.startsWith(start));
    const suffix = prefix === undefined ? undefined : file.slice(prefix.length);
    if (suffix !== undefined && ASIDE_SUFFIX.test(suffix)) suffixes.add(suffix);
  }
  return [...suffixes];
}

/** The number after the time of an ASIDE_SUFFIX match; 0 if none. */
function numberOf(suffix: string): number {
  return Number(ASIDE_SUFFIX.exec(suffix)?.[2] ?? 0);
}

/** Orders ASIDE_SUFFIX matches newest first: by time, then by the number after it. */
function newestFirst(a: string, b: string): number {
  const [timeA = '', timeB = ''] = [a, b].map((suffix) => ASIDE_SUFFIX.exec(suffix)?.[1]);
  return timeA === timeB ? numberOf(b) - numberOf(a) : timeA < timeB ? 1 : -1;
}
