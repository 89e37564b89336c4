// Usage errors in a person's words: which command's --help to read, a "did you mean" for a
// mistyped flag, and the habits of other tunnels (bore's --to, localtunnel's --port).
// Pure, so it is tested without processes.

/** The commands, as the usage hint names them. */
export type CommandName = 'server' | 'client' | 'local';
export const COMMANDS: readonly CommandName[] = ['server', 'client', 'local'];

/** Edit distance where swapping two neighbours counts once (optimal string alignment):
 * `--remote-prot` is one slip from `--remote-port`, not two. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [];
    for (let j = 0; j <= b.length; j++) {
      if (i === 0 || j === 0) row.push(i + j);
      else {
        const diagonal = (rows[i - 1]?.[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
        let best = Math.min((rows[i - 1]?.[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, diagonal);
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
          best = Math.min(best, (rows[i - 2]?.[j - 2] ?? 0) + 1);
        row.push(best);
      }
    }
    rows.push(row);
  }
  return rows[a.length]?.[b.length] ?? 0;
}

/** The known name `word` was probably meant to be: the nearest within a slip per three
 * letters, else the only one that ends in `-word` (`--fingerprint` → `--tls-fingerprint`).
 * Undefined when nothing is close, or two are equally close: a wrong guess is worse. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  if (word.startsWith('no-')) {
    const meant = suggest(word.slice(3), known); // --no-recconect → --no-reconnect
    return meant === undefined ? undefined : `no-${meant}`;
  }
  const candidates = known.filter((name) => name.length > 1 && name !== word);
  const limit = Math.max(1, Math.floor(word.length / 3));
  const scored = candidates
    .map((name) => ({ name, distance: editDistance(word, name) }))
    .filter(({ distance }) => distance <= limit);
  const best = Math.min(...scored.map(({ distance }) => distance));
  const nearest = scored.filter(({ distance }) => distance === best);
  if (word.length >= 3 && nearest.length === 1) return nearest[0]?.name;
  const tails = candidates.filter((name) => name.endsWith(`-${word}`));
  return tails.length === 1 ? tails[0] : undefined;
}

/** `controlPort` → `control-port`: yargs takes either spelling of a flag. */
const kebab = (name: string): string => name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);

/** The flags in `tokens` (the command line as typed) that are not in `known`, as typed
 * (`--sever`, `-x`), each once. A known flag may also come as `--no-flag`, `--flag=value`
 * or in camelCase; everything after `--` is an argument. */
export function unknownFlags(tokens: readonly string[], known: readonly string[]): string[] {
  const names = new Set(known);
  const isKnown = (name: string): boolean =>
    names.has(kebab(name)) || (name.startsWith('no-') && names.has(kebab(name.slice(3))));
  const unknown = new Set<string>();
  for (const token of tokens) {
    if (token === '--') break;
    const long = /^--([^=]+)/.exec(token);
    const short = /^-([A-Za-z]+)/.exec(token); // -p3000 is -p with a value, as yargs reads it
    if (long) {
      if (!isKnown(long[1] ?? '')) unknown.add(`--${long[1]}`);
    } else if (short) {
      for (const letter of short[1] ?? '') if (!names.has(letter)) unknown.add(`-${letter}`);
    }
  }
  return [...unknown];
}

/** Flags of other tools, as the commands know them: bore's --to is our --server (and
 * the other way round in `burrow local`). */
const HABITS: Record<CommandName, Record<string, string>> = {
  server: {},
  client: { to: 'server' },
  local: { server: 'to', 'remote-port': 'port' },
};

/** `--sever (did you mean --server?)`, or just `--bogus`. */
function withSuggestion(flag: string, command: CommandName | undefined, known: readonly string[]): string {
  const name = flag.replace(/^--?/, '');
  const meant =
    (command === undefined ? undefined : HABITS[command][kebab(name)]) ??
    (flag.startsWith('--') ? suggest(kebab(name), known) : undefined);
  return meant === undefined ? flag : `${flag} (did you mean --${meant}?)`;
}

export interface UsageContext {
  /** The command yargs was running, if it got that far. */
  command: CommandName | undefined;
  /** The command line as typed (without `node burrow`). */
  tokens: readonly string[];
  /** Every flag (and single-letter alias) the command, or the top level, knows. */
  known: readonly string[];
}

/** What to say for a mistake yargs found (`message`, in its words): the same, but in ours
 * where we can say more. An unknown flag gets its likely meaning; `burrow client --port
 * 3000` (localtunnel's habit) is told how ports are given; a missing local port gets an
 * example; an unknown command gets the nearest one. */
export function explainUsage(message: string, { command, tokens, known }: UsageContext): string {
  const unknown = unknownFlags(tokens, known);
  if (command === 'client') {
    const portFlag = unknown.find((flag) => flag === '--port' || flag === '-p' || flag.startsWith('--port='));
    if (portFlag !== undefined) {
      const others = unknown.filter((flag) => flag !== portFlag).map((flag) => withSuggestion(flag, command, known));
      const rest =
        others.length === 0 ? '' : `; unknown ${others.length === 1 ? 'option' : 'options'} ${others.join(', ')}`;
      return `give the local port as an argument: burrow client 3000 (${portFlag} is not a flag of burrow client; --remote-port asks for a public port)${rest}`;
    }
  }
  if (unknown.length > 0)
    return `unknown ${unknown.length === 1 ? 'option' : 'options'} ${unknown.map((flag) => withSuggestion(flag, command, known)).join(', ')}`;
  if (command === undefined) {
    const word = tokens.find((token) => !token.startsWith('-'));
    if (word !== undefined && !(COMMANDS as readonly string[]).includes(word)) {
      const meant = suggest(word, COMMANDS);
      return `unknown command ${word} (${meant === undefined ? `give ${COMMANDS.slice(0, -1).join(', ')} or ${COMMANDS.at(-1)}` : `did you mean ${meant}?`})`;
    }
  }
  if (message.startsWith('Not enough non-option arguments')) {
    if (command === 'client') return 'give the local port(s) to expose as arguments: burrow client 3000 [5432 ...]';
    if (command === 'local') return 'give the local port as an argument: burrow local 3000 --to relay.example.com';
  }
  // Arguments beyond the command's own (no unknown flag: those were answered above).
  const extra = /^Unknown arguments?: (.*)$/.exec(message)?.[1];
  if (extra !== undefined) {
    const what = `unexpected ${extra.includes(',') ? 'arguments' : 'argument'} ${extra}`;
    if (command === 'server')
      return `${what}: burrow server takes none (its ports are flags: --control-port, --data-port)`;
    if (command === 'local') return `${what}: burrow local exposes one port (burrow client 3000 4000 exposes several)`;
  }
  return message;
}
