// The lease tokens of a client's requested ports, kept in a small file so that a client
// restarted after a crash (or a reboot) reclaims its ports at once: without them, its own
// ports answer `port-in-use` for the server's whole grace period. The file holds secrets
// (a token lets its holder take the port during the grace period), so it is written with
// mode 0600, in a directory of mode 0700, and its content is never printed.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { BurrowError, describe, systemCode } from '../shared/errors.ts';

/** Most entries kept in all (the oldest go first): bounds the file. An entry has no age
 * limit of its own: a lease stays good as long as its client runs, however long that is,
 * and a stale one does no harm (a server that does not know it opens the port as for
 * any request). */
export const LEASE_FILE_MAX_ENTRIES = 256;

interface Entry {
  lease: string;
  /** When it was written (ms since the epoch). */
  saved: number;
}

/** What the file holds: `server` is `host:controlPort`, then the public port. */
type Contents = Record<string, Record<string, Entry>>;

export class LeaseFile {
  constructor(
    readonly path: string,
    /** Problems reading or writing are reported, never fatal: the file only saves time. */
    private readonly warn: (warning: BurrowError) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** The lease kept for `port` (or an HTTP tunnel's `http:NAME`) on `server`, if any. */
  get(server: string, port: number | string): string | undefined {
    return this.read()[server]?.[String(port)]?.lease;
  }

  /** Keeps `lease` for `port` on `server` (undefined: forgets it). */
  set(server: string, port: number | string, lease: string | undefined): void {
    const contents = this.read();
    const ports = contents[server] ?? {};
    if (ports[String(port)]?.lease === lease) return;
    if (lease === undefined) delete ports[String(port)];
    else ports[String(port)] = { lease, saved: this.now() };
    contents[server] = ports;
    this.write(contents);
  }

  private read(): Contents {
    let text: string;
    try {
      text = readFileSync(this.path, 'latin1');
    } catch (error) {
      // No file yet (or no directory): nothing kept. Writing it will say what is wrong.
      const code = systemCode(error);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.warn(this.problem('read', error));
      return {};
    }
    return this.fresh(parse(text));
  }

  /** Writes a new file and renames it over the old one, so that a crash mid-write never
   * leaves a torn file (and two clients at once lose at most one's latest entry). */
  private write(contents: Contents): void {
    const temporary = `${this.path}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      writeFileSync(temporary, `${JSON.stringify({ version: 1, leases: this.fresh(contents) })}\n`, { mode: 0o600 });
      chmodSync(temporary, 0o600); // an old temporary file keeps its mode on rewrite
      renameSync(temporary, this.path);
    } catch (error) {
      this.warn(this.problem('write', error));
    }
  }

  /** Drops the oldest entries beyond the limit. */
  private fresh(contents: Contents): Contents {
    const all = Object.entries(contents).flatMap(([server, ports]) =>
      Object.entries(ports).map(([port, entry]) => ({ server, port, entry })),
    );
    const kept = all.sort((a, b) => b.entry.saved - a.entry.saved).slice(0, LEASE_FILE_MAX_ENTRIES);
    const result: Contents = {};
    for (const { server, port, entry } of kept) (result[server] ??= {})[port] = entry;
    return result;
  }

  private problem(doing: 'read' | 'write', error: unknown): BurrowError {
    const message = `cannot ${doing} the lease file ${this.path}: ${describe(error)}`;
    return new BurrowError('lease-file', message, { cause: error });
  }
}

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** The file's entries, or none if it is not what we wrote (a damaged file is replaced). */
function parse(text: string): Contents {
  const contents: Contents = {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return contents;
  }
  const leases = isObject(value) && value.version === 1 ? value.leases : undefined;
  for (const [server, ports] of Object.entries(isObject(leases) ? leases : {})) {
    for (const [port, entry] of Object.entries(isObject(ports) ? ports : {})) {
      const { lease, saved } = isObject(entry) ? entry : {};
      if (typeof lease !== 'string' || !TOKEN.test(lease) || typeof saved !== 'number') continue;
      (contents[server] ??= {})[port] = { lease, saved };
    }
  }
  return contents;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
