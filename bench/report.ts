// The report: a markdown table (figure | direct | burrow | ratio | target | met) with the
// machine and the run above it, and the same results as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './config.ts';
import type { Results } from './results.ts';
import type { Row } from './rows.ts';

const cell = (value: number | undefined | null, digits: number): string =>
  value === null ? 'not measured' : value === undefined ? '-' : Number.isFinite(value) ? value.toFixed(digits) : 'n/a';

function header(config: Config, r: Results): string[] {
  const m = r.machine;
  const q = r.quietness;
  const lines = [
    `burrow bench (${r.mode}), ${m.date}`,
    `machine: ${m.cpuModel}, ${m.cores} cores, ${m.kernel}, Node ${m.node}; burrow commit ${m.commit}`,
    'load generator in the bench process; local services, relay and client each in their own process; wrk for HTTP; all on 127.0.0.1' +
      (config.inspector ? '; the client runs its inspector (--inspector), which nobody opens' : ''),
    ...(config.webSocket
      ? [
          '--websocket: a second relay and client, the client reaching the relay over WebSocket on its HTTP port; ' +
            'in rows "over WebSocket" the burrow column is that pair, the ratio is to direct, "× TCP" to burrow over TCP; ' +
            `ws masks frames ${r.webSocketMasking === 'bufferutil' ? 'with bufferutil' : 'in JavaScript (no bufferutil)'}`,
        ]
      : []),
    `medians of ${config.repeat} throughput runs, ${config.connRepeat} concurrency runs and ${config.wrkRepeat} wrk runs per side; latency samples in 10 interleaved blocks`,
  ];
  if (q) {
    const steal = q.stolenCpus === undefined ? '' : `, hypervisor steal ${q.stolenCpus.toFixed(2)}`;
    const busy = q.otherProcessesCpus + (q.stolenCpus ?? 0) > 0.2;
    lines.push(
      `other processes kept ${q.otherProcessesCpus.toFixed(2)} CPUs busy on average over the ${q.wallSeconds.toFixed(0)} s run${steal}; load average ${q.loadAverageAtStart.toFixed(2)} at start` +
        (busy ? ' — NOT QUIET: absolute numbers are disturbed, ratios less so' : ' (quiet)'),
    );
  }
  return lines;
}

function table(rows: Row[]): string[] {
  const lines = ['| figure | unit | direct | burrow | ratio | target | met |', '|---|---|--:|--:|--:|---|:-:|'];
  for (const row of rows) {
    const undecided = row.target !== undefined && row.burrow !== null;
    const met = row.met === undefined ? (undecided ? '?' : '') : row.met ? '✓' : '✗';
    const ratio = row.ratio === undefined ? '' : row.ratio.toFixed(2);
    lines.push(
      `| ${row.figure} | ${row.unit} | ${cell(row.direct, row.digits)} | ${cell(row.burrow, row.digits)} | ${ratio} | ${row.target ?? ''} | ${met} |`,
    );
  }
  return lines;
}

function summary(r: Results, rows: Row[]): string[] {
  const judged = rows.filter((row) => row.met !== undefined);
  const missed = judged.filter((row) => row.met === false);
  const undecided = rows.filter((row) => row.met === undefined && row.target !== undefined && row.burrow !== null);
  const lines = [
    `targets met: ${judged.length - missed.length} of ${judged.length} decided` +
      (undecided.length > 0 ? `, ${undecided.length} undecided (?)` : '') +
      (missed.length > 0 ? `; missed: ${missed.map((row) => row.figure).join('; ')}` : ''),
  ];
  for (const c of r.conns) {
    if (c.note) lines.push(`note: ${c.count} connections: ${c.note}`);
    for (const [side, s] of Object.entries(c.sides)) {
      for (const [message, n] of Object.entries(s.errors))
        lines.push(`failures, ${c.count} conns ${side}: ${n} × ${message}`);
    }
  }
  for (const [phase, message] of Object.entries(r.failures)) lines.push(`FAILED ${phase}: ${message}`);
  return lines;
}

export function tableText(config: Config, r: Results, rows: Row[]): string {
  return [...header(config, r), '', ...table(rows), '', ...summary(r, rows)].join('\n');
}

export function jsonOf(config: Config, r: Results, rows: Row[]): string {
  const json = { config: { ...config, phases: [...config.phases] }, results: r, rows };
  // NaN and undefined become null rather than vanishing or breaking the JSON.
  return JSON.stringify(
    json,
    (_, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : (value ?? null)),
    2,
  );
}

/** Writes the JSON to `file`, creating its folder. */
export function writeJson(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${text}\n`);
}
