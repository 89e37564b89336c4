// The results as table rows, each with its ratio (burrow / direct) and, where an issue
// sets one (issue 8; issue 16 for HTTP by name), its target, which names the issue, and
// whether it is met. The markdown table and the JSON's `rows` both come from here, so "is
// every target met" has one answer.
import { HTTP_NAME, type Phase } from './config.ts';
import {
  REFERENCES,
  type ConnsFigure,
  type HttpFigure,
  type InspectorFigure,
  type InspectorSide,
  type Interval,
  type LatencyFigure,
  type Results,
  type ThroughputFigure,
} from './results.ts';

export interface Row {
  figure: string;
  unit: string;
  /** undefined: not applicable ('-'); null: not measured. */
  direct: number | undefined | null;
  burrow: number | undefined | null;
  /** burrow / direct. */
  ratio: number | undefined;
  digits: number;
  target: string | undefined;
  /** undefined: no target, not measured, or (with a target and a measurement) not
   * decided by it, shown as '?'. */
  met: boolean | undefined;
}

/** The targets of issue 8 (ratios against direct, same run), and `httpNameRatio` of
 * issue 16 (HTTP tunnels by name: keep-alive and `Connection: close` alike). */
export const TARGETS = {
  throughputRatio: 0.35,
  cpuSecPerGiB: 1.6,
  setupP50Ratio: 3,
  setupP99OverP50: 3,
  rttP50Ratio: 2,
  connections: 10_000,
  rssPerConnKiB: 40,
  httpRatio: 0.5,
  httpNameRatio: 0.5,
} as const;

/** A target's text, saying which issue set it. */
const from = (issue: 8 | 16 | 17, text: string): string => `issue ${issue}: ${text}`;

const ratioOf = (direct: number | undefined | null, burrow: number | undefined | null): number | undefined =>
  typeof direct === 'number' && typeof burrow === 'number' && direct > 0 ? burrow / direct : undefined;

/** A row comparing both sides, with an optional target on the ratio. */
function compare(
  figure: string,
  unit: string,
  direct: number,
  burrow: number,
  digits: number,
  target?: { atLeast?: number; atMost?: number; issue?: 8 | 16 },
): Row {
  const ratio = ratioOf(direct, burrow);
  const issue = target?.issue ?? 8;
  let text: string | undefined;
  let met: boolean | undefined;
  if (target?.atLeast !== undefined) {
    text = from(issue, `ratio ≥ ${target.atLeast}`);
    met = ratio !== undefined && ratio >= target.atLeast;
  } else if (target?.atMost !== undefined) {
    text = from(issue, `ratio ≤ ${target.atMost}`);
    met = ratio !== undefined && ratio <= target.atMost;
  }
  return { figure, unit, direct, burrow, ratio, digits, target: text, met };
}

/** The row under `tcp` for burrow over WebSocket (issue 18, `--websocket`): `ws` in the
 * burrow column, its ratio to direct, and in the label its ratio to `tcp`'s burrow (TCP)
 * after `detail`. No target: issue 18 set none. */
function overWebSocket(tcp: Row, figure: string, ws: number, detail = ''): Row {
  const byTcp = ratioOf(tcp.burrow, ws);
  const versus = byTcp === undefined ? '' : `${byTcp.toFixed(2)} × TCP`;
  const label = detail || versus ? ` (${[detail, versus].filter(Boolean).join('; ')})` : '';
  const ratio = ratioOf(tcp.direct, ws);
  return { ...tcp, figure: `${figure}, over WebSocket${label}`, burrow: ws, ratio, target: undefined, met: undefined };
}

/** A row for a figure that was not measured (the reason goes in the target column). */
function missing(figure: string, unit: string, why: string): Row {
  return { figure, unit, direct: null, burrow: null, ratio: undefined, digits: 0, target: why, met: undefined };
}

const PERCENTILES = ['p50', 'p90', 'p99'] as const;
type Percentile = (typeof PERCENTILES)[number];

const shares = (cpu: { relay: number; client: number }, digits: number): string =>
  `relay ${cpu.relay.toFixed(digits)} + client ${cpu.client.toFixed(digits)}`;

function throughputRows(t: Record<'upload' | 'download', ThroughputFigure>): Row[] {
  const size = `${t.upload.bytes / 2 ** 30 >= 1 ? `${t.upload.bytes / 2 ** 30} GiB` : `${t.upload.bytes / 2 ** 20} MiB`}`;
  const rows: Row[] = [];
  for (const direction of ['upload', 'download'] as const) {
    const f = t[direction];
    const figure = `1. throughput, 1 conn, ${direction} ${size}`;
    const tcp = compare(figure, 'MB/s', f.mbPerSec.direct, f.mbPerSec.burrow, 0, { atLeast: TARGETS.throughputRatio });
    rows.push(tcp, ...(f.webSocket ? [overWebSocket(tcp, figure, f.webSocket.mbPerSec)] : []));
  }
  for (const direction of ['upload', 'download'] as const) {
    const { cpuSecPerGiB: cpu, webSocket } = t[direction];
    const tcp: Row = {
      figure: `6. tunnel CPU per GiB, ${direction} (${shares(cpu, 2)})`,
      unit: 's',
      direct: undefined,
      burrow: cpu.tunnel,
      ratio: undefined,
      digits: 2,
      target: from(8, `≤ ${TARGETS.cpuSecPerGiB} s`),
      met: cpu.tunnel <= TARGETS.cpuSecPerGiB,
    };
    const ws = webSocket?.cpuSecPerGiB;
    rows.push(tcp);
    if (ws) rows.push(overWebSocket(tcp, `6. tunnel CPU per GiB, ${direction}`, ws.tunnel, shares(ws, 2)));
  }
  return rows;
}

function setupRows(s: LatencyFigure, count: number): Row[] {
  const { direct, burrow } = s.sides;
  const ws = s.webSocket;
  const figure = (p: Percentile): string => `2. connection setup ×${count}, ${p}`;
  const p99OverP50 = burrow.p99 / burrow.p50;
  const tcp: Record<Percentile, Row> = {
    p50: compare(figure('p50'), 'ms', direct.p50, burrow.p50, 3, { atMost: TARGETS.setupP50Ratio }),
    p90: compare(figure('p90'), 'ms', direct.p90, burrow.p90, 3),
    p99: {
      ...compare(figure('p99'), 'ms', direct.p99, burrow.p99, 3),
      target: from(8, `burrow p99 ≤ ${TARGETS.setupP99OverP50} × its p50 (is ${p99OverP50.toFixed(1)}×)`),
      met: p99OverP50 <= TARGETS.setupP99OverP50,
    },
  };
  const rows: Row[] = [];
  for (const p of PERCENTILES) {
    rows.push(tcp[p]);
    const detail = p === 'p99' && ws ? `${(ws.p99 / ws.p50).toFixed(1)} × its p50` : '';
    if (ws) rows.push(overWebSocket(tcp[p], figure(p), ws[p], detail));
  }
  const cpu = s.cpuUsPerConn;
  if (cpu === undefined) return rows;
  const label = '2. CPU per connection';
  const cpuRow = compare(
    `${label} (direct: echo service; burrow: ${shares(cpu, 0)})`,
    'µs',
    cpu.service,
    cpu.relay + cpu.client,
    0,
  );
  rows.push(cpuRow);
  const wsCpu = cpu.webSocket;
  if (wsCpu) rows.push(overWebSocket(cpuRow, label, wsCpu.relay + wsCpu.client, shares(wsCpu, 0)));
  return rows;
}

/** Figure 8: the direct column holds the side without the inspector, the burrow column
 * the side with it. Issue 17's target, no measurable difference: met when 0 is within the
 * interval of the client's extra CPU (all threads: what the user's machine pays) and the
 * interval is narrow enough to see 5% of it; missed when 0 is outside; else undecided. */
function inspectorRows(f: InspectorFigure): Row[] {
  const n = f.connections.toLocaleString('en-US');
  const within = (i: Interval): string =>
    `${i.mean >= 0 ? '+' : ''}${i.mean.toFixed(1)} µs, from ${i.low.toFixed(1)} to ${i.high.toFixed(1)}`;
  const row = (what: string, key: keyof InspectorSide): Row =>
    compare(
      `8. inspector (nobody watching), ${what} per conn, without → with (${within(f.extra[key])}; ${n} conns each, ${f.blocks} turns)`,
      'µs',
      f.off[key],
      f.on[key],
      0,
    );
  const { low, high } = f.extra.client;
  const measurable = low > 0 || high < 0;
  const fine = (high - low) / 2 <= INSPECTOR_RESOLUTION * f.off.client;
  return [
    {
      ...row('client CPU', 'client'),
      target: from(17, `no measurable difference (0 within the interval, ±${INSPECTOR_RESOLUTION * 100}% at most)`),
      met: measurable ? false : fine ? true : undefined,
    },
    row('client main-thread CPU', 'clientMain'),
    row('relay CPU (control: no inspector there)', 'relay'),
  ];
}

/** Figure 8 decides only with an interval this narrow, as a share of the client's CPU. */
const INSPECTOR_RESOLUTION = 0.05;

function rttRows(r: LatencyFigure, count: number): Row[] {
  const { direct, burrow } = r.sides;
  const figure = (p: Percentile): string => `3. round trip ${r.bytes} B ×${count}, ${p}`;
  const ws = r.webSocket;
  const tcp = {
    p50: compare(figure('p50'), 'µs', direct.p50, burrow.p50, 0, { atMost: TARGETS.rttP50Ratio }),
    p99: compare(figure('p99'), 'µs', direct.p99, burrow.p99, 0),
  };
  return (['p50', 'p99'] as const).flatMap((p) => (ws ? [tcp[p], overWebSocket(tcp[p], figure(p), ws[p])] : [tcp[p]]));
}

function connsRows(c: ConnsFigure, withTargets: boolean): Row[] {
  const n = c.count.toLocaleString('en-US');
  const label = c.count < c.requested ? `${n} (of ${c.requested.toLocaleString('en-US')} asked: fd limit)` : n;
  const { direct, burrow } = c.sides;
  const mib = (bytes: number | undefined): number | undefined => (bytes === undefined ? undefined : bytes / 2 ** 20);
  const short = withTargets && c.count < TARGETS.connections ? ` (only ${n} measured)` : '';
  const failures: Row = {
    figure: `4. ${label} conns held at once: failures`,
    unit: 'conns',
    direct: direct.failures,
    burrow: burrow.failures,
    ratio: undefined,
    digits: 0,
    target: withTargets ? from(8, `0 at ${TARGETS.connections.toLocaleString('en-US')}${short}`) : undefined,
    // Fewer than the target held without a failure proves nothing either way: '?'.
    met: !withTargets ? undefined : burrow.failures > 0 ? false : c.count >= TARGETS.connections ? true : undefined,
  };
  const perConn: Row = {
    ...compare(
      `4. ${n} conns: RSS per conn (direct: services process; burrow: relay + client)`,
      'KiB',
      direct.rssPerConnKiB,
      burrow.rssPerConnKiB,
      1,
    ),
    target: withTargets ? from(8, `burrow ≤ ${TARGETS.rssPerConnKiB} KiB${short}`) : undefined,
    met: withTargets ? burrow.rssPerConnKiB <= TARGETS.rssPerConnKiB : undefined,
  };
  const held = (name: string): number | undefined => mib(burrow.processes[name]?.heldRss);
  const idle = (name: string): string => (mib(burrow.processes[name]?.idleRss) ?? Number.NaN).toFixed(0);
  return [
    failures,
    compare(`4. ${n} conns: time to open and echo all`, 'ms', direct.openMs, burrow.openMs, 0),
    {
      figure: `4. ${n} conns: relay RSS holding them (idle ${idle('relay')})`,
      unit: 'MiB',
      direct: undefined,
      burrow: held('relay'),
      ratio: undefined,
      digits: 1,
      target: undefined,
      met: undefined,
    },
    {
      figure: `4. ${n} conns: client RSS holding them (idle ${idle('client')})`,
      unit: 'MiB',
      direct: undefined,
      burrow: held('client'),
      ratio: undefined,
      digits: 1,
      target: undefined,
      met: undefined,
    },
    perConn,
  ];
}

/** Figure 5 (through a TCP tunnel's public port) or, `byName`, figure 7 (through the
 * relay's HTTP port, by Host). Figure 7's requests/s are not a measurement if wrk saw an
 * error on either side (a wrong route answers 404s, fast): its target is then missed. */
function httpRows(h: HttpFigure, byName: boolean): Row[] {
  const mode = h.mode === 'keep-alive' ? 'keep-alive' : 'Connection: close';
  const name = byName ? `7. HTTP by name (${HTTP_NAME}.localhost), ${mode}` : `5. HTTP ${mode}`;
  const { direct, burrow } = h.sides;
  const rate = compare(`${name}, requests/s`, 'req/s', direct.requestsPerSec, burrow.requestsPerSec, 0, {
    atLeast: byName ? TARGETS.httpNameRatio : TARGETS.httpRatio,
    issue: byName ? 16 : 8,
  });
  const errors = direct.errors + burrow.errors;
  // No target: what one and two hops of HTTP routing in Node reach, for the ratio above.
  const references = REFERENCES.flatMap((reference) => {
    const side = h.references?.[reference];
    if (side === undefined) return [];
    const label = `${name}: reference, not burrow: ${reference === 'one hop' ? 'one bare node:http proxy' : 'two bare node:http proxies chained'} (bench/services.ts), requests/s`;
    return [compare(label, 'req/s', direct.requestsPerSec, side.requestsPerSec, 0)];
  });
  return [
    byName && errors > 0 ? { ...rate, target: `${rate.target ?? ''}; void: ${errors} wrk errors`, met: false } : rate,
    ...references,
    compare(`${name}, p99 latency`, 'ms', direct.p99Ms, burrow.p99Ms, 2),
    { ...compare(`${name}, errors (socket + non-2xx)`, 'count', direct.errors, burrow.errors, 0), ratio: undefined },
  ];
}

/** Every row, in figure order; a figure not measured gets one row saying why. */
export function rowsOf(r: Results, counts: { setups: number; rounds: number }, ran: ReadonlySet<Phase>): Row[] {
  const why = (phase: Phase): string => r.failures[phase] ?? (ran.has(phase) ? 'failed' : 'not run (--only)');
  const rows: Row[] = [];
  rows.push(
    ...(r.throughput
      ? throughputRows(r.throughput)
      : [missing('1, 6. throughput and tunnel CPU', '', why('throughput'))]),
  );
  rows.push(...(r.setup ? setupRows(r.setup, counts.setups) : [missing('2. connection setup', '', why('setup'))]));
  rows.push(...(r.rtt ? rttRows(r.rtt, counts.rounds) : [missing('3. round trip', '', why('rtt'))]));
  const largest = Math.max(...r.conns.map((c) => c.requested));
  for (const c of r.conns) rows.push(...connsRows(c, c.requested === largest));
  if (r.conns.length === 0 || r.failures.conns !== undefined)
    rows.push(missing('4. connections held at once', '', why('conns')));
  if (typeof r.http === 'string') rows.push(missing('5. HTTP (wrk)', '', r.http));
  else if (r.http) for (const h of r.http) rows.push(...httpRows(h, false));
  else rows.push(missing('5. HTTP (wrk)', '', why('http')));
  if (typeof r.httpName === 'string') rows.push(missing('7. HTTP by name (wrk)', '', r.httpName));
  else if (r.httpName) for (const h of r.httpName) rows.push(...httpRows(h, true));
  else rows.push(missing('7. HTTP by name (wrk)', '', why('httpname')));
  rows.push(...(r.inspector ? inspectorRows(r.inspector) : [missing("8. the inspector's cost", '', why('inspector'))]));
  return rows;
}
