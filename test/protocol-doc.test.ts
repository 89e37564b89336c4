// docs/PROTOCOL.md and the code name the same lines and the same reasons: every verb in the
// grammar's table is documented for the same sender and port, every documented verb is in
// the table, and the reasons table lists exactly ERR_REASONS. The document is read as it
// presents them: tables whose first column is `line` (under a `## … connection` section and
// a `### Client → server` or `### Server → client` heading) and the table whose first
// column is `reason`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { GRAMMAR } from '../shared/grammar.ts';
import { ERR_REASONS } from '../shared/protocol.ts';

/** The first cells of the rows of every table, by the title of its first column, each with
 * the `##` and `###` headings above it. */
function tables(markdown: string): { column: string; cell: string; section: string; heading: string }[] {
  const rows: { column: string; cell: string; section: string; heading: string }[] = [];
  let section = '';
  let heading = '';
  let column: string | undefined; // the title of the current table's first column
  for (const line of markdown.split('\n')) {
    if (line.startsWith('## ')) [section, heading] = [line.slice(3), ''];
    if (line.startsWith('### ')) heading = line.slice(4);
    if (!line.startsWith('|')) {
      column = undefined;
      continue;
    }
    const cell = line.split('|')[1]?.trim() ?? '';
    if (column === undefined) column = cell;
    else if (!/^-+$/.test(cell)) rows.push({ column, cell, section, heading });
  }
  return rows;
}

const doc = tables(readFileSync(new URL('../docs/PROTOCOL.md', import.meta.url), 'utf8'));

/** `<sender> <port> <verb>` for every line either names, sorted. */
function documentedLines(): string[] {
  const lines = doc.filter(({ column }) => column === 'line');
  assert.ok(lines.length > 0, 'PROTOCOL.md has tables of lines');
  return [
    ...new Set(
      lines.map(({ cell, section, heading }) => {
        const port = /^(control|data) connection/i.exec(section)?.[1]?.toLowerCase();
        const sender = /^(client|server) (→|->) (client|server)$/i.exec(heading)?.[1]?.toLowerCase();
        const verb = /^`([A-Z]+)/.exec(cell)?.[1];
        assert.ok(
          port && sender && verb,
          `a line of PROTOCOL.md the test cannot place: ${section} / ${heading} / ${cell}`,
        );
        return `${sender} ${port} ${verb}`;
      }),
    ),
  ].sort();
}

function grammarLines(): string[] {
  const lines = GRAMMAR.flatMap(([verb, from, on]) =>
    (from === 'both' ? ['client', 'server'] : [from]).flatMap((sender) =>
      // `auth` is the control connection while the client authenticates.
      on.map((where) => `${sender} ${where === 'auth' ? 'control' : where} ${verb}`),
    ),
  );
  return [...new Set(lines)].sort();
}

test('every line in the grammar is documented in PROTOCOL.md, for the same sender and port, and nothing else is', () => {
  const documented = documentedLines();
  const grammar = grammarLines();
  const missing = grammar.filter((line) => !documented.includes(line));
  const extra = documented.filter((line) => !grammar.includes(line));
  assert.deepEqual(missing, [], 'in shared/grammar.ts but not in the tables of docs/PROTOCOL.md');
  assert.deepEqual(extra, [], 'in the tables of docs/PROTOCOL.md but not in shared/grammar.ts');
});

test('the reasons table of PROTOCOL.md lists exactly ERR_REASONS, each once', () => {
  const documented = doc
    .filter(({ column }) => column === 'reason')
    .map(({ cell }) => /^`([a-z-]+)`$/.exec(cell)?.[1] ?? `(not a reason word: ${cell})`);
  assert.equal(new Set(documented).size, documented.length, `listed twice: ${documented.join(' ')}`);
  assert.deepEqual(
    ERR_REASONS.filter((reason) => !documented.includes(reason)),
    [],
    'in ERR_REASONS but not in docs/PROTOCOL.md, *Reasons*',
  );
  assert.deepEqual(
    documented.filter((reason) => !(ERR_REASONS as readonly string[]).includes(reason)),
    [],
    'in docs/PROTOCOL.md, *Reasons*, but not in ERR_REASONS',
  );
});
