// The inspector's page: plain JavaScript, no framework, no network but the inspector's own
// API (/api/...). It loads the history once, then follows /api/events (Server-Sent Events).

const token = new URLSearchParams(location.search).get('token');
const withToken = (path) =>
  token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : path;
const api = async (path, init) => {
  const response = await fetch(withToken(path), init);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ?? `${response.status}`);
  return body;
};
const MAX_ROWS = 500;
const $ = (id) => document.getElementById(id);

/** An element with text (never HTML) and children. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
const time = (ms) => new Date(ms).toLocaleTimeString();
const size = (bytes) => (bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`);
/** Marks the row of `id` in `rows` as the one shown below the table. */
function select(rows, id) {
  for (const row of rows.rows) row.classList.toggle('selected', row.dataset.id === String(id));
}

// Views.
for (const button of document.querySelectorAll('nav button')) {
  button.addEventListener('click', () => {
    for (const other of document.querySelectorAll('nav button')) other.classList.toggle('active', other === button);
    for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== button.dataset.view;
  });
}

// Tunnels.
async function showTunnels() {
  const { state, tunnels } = await api('/api/tunnels');
  $('tunnels').replaceChildren(
    ...tunnels.map((t) =>
      el(
        'div',
        { class: 'tunnel' },
        el('b', {}, t.url),
        ` → ${t.localHost}:${t.localPort} (${state}) · ${t.totals.connections} connections,` +
          ` ${t.totals.requests} requests, ${size(t.totals.bytesIn)} in, ${size(t.totals.bytesOut)} out`,
      ),
    ),
  );
}
/** The totals change with every connection and request: redrawn at most once a second. */
let tunnelsDue = false;
function refreshTunnelsSoon() {
  if (tunnelsDue) return;
  tunnelsDue = true;
  setTimeout(() => {
    tunnelsDue = false;
    void showTunnels();
  }, 1000);
}

// Connections and their timelines.
const connections = new Map();
const PHASES = {
  announced: 'the relay sent CONNECTION <id>: a visitor is parked there, waiting',
  dialed: 'this client opened a data connection to the relay',
  'id-sent': 'this client said ID <id> on it',
  paired: 'the relay answered OK: its end is joined to the visitor',
  joined: 'this client joined its end to the local service: bytes flow',
  'visitor-fin': 'the visitor half-closed (FIN), passed on',
  'local-fin': 'the local service half-closed (FIN), passed on',
  closed: 'closed',
  failed: 'failed',
};
function connectionRow(c) {
  const row = el(
    'tr',
    { 'data-id': c.id, class: $('timeline').dataset.id === c.id ? 'selected' : '' },
    el('td', {}, time(c.startedAt)),
    el('td', {}, c.visitor ?? ''),
    el('td', {}, c.url),
    el('td', { class: c.state }, c.state),
    el('td', {}, size(c.bytesIn)),
    el('td', {}, size(c.bytesOut)),
    el('td', {}, c.durationMs ?? ''),
    el('td', { class: c.ending ?? '' }, c.ending ?? ''),
  );
  row.addEventListener('click', () => showTimeline(c.id));
  return row;
}
function putConnection(c) {
  connections.set(c.id, c);
  const row = connectionRow(c);
  const old = $('connection-rows').querySelector(`tr[data-id="${CSS.escape(c.id)}"]`);
  if (old) old.replaceWith(row);
  else $('connection-rows').prepend(row);
  while ($('connection-rows').rows.length > MAX_ROWS) $('connection-rows').lastElementChild.remove();
  if ($('timeline').dataset.id === c.id) showTimeline(c.id);
}
function showTimeline(id) {
  const c = connections.get(id);
  if (!c) return;
  const start = c.timeline[0]?.at ?? c.startedAt;
  const items = c.timeline.map((step) =>
    el(
      'li',
      { 'data-phase': step.phase },
      el('span', { class: 'at' }, `+${step.at - start} ms`),
      `${step.phase}: ${PHASES[step.phase] ?? ''}${step.detail ? ` (${step.detail})` : ''}`,
    ),
  );
  $('timeline').dataset.id = id;
  $('timeline').hidden = false;
  select($('connection-rows'), id);
  $('timeline').replaceChildren(el('h3', {}, `connection ${id}`), el('ol', { class: 'timeline' }, ...items));
}

// Requests, their details, and replay.
const filter = () => Object.fromEntries(new URLSearchParams(new FormData($('filter'))));
const matches = (r, f) =>
  (!f.path || r.path.includes(f.path)) &&
  (!f.status || String(r.status).startsWith(f.status.replace(/x+$/i, ''))) &&
  (!f.method || r.method === f.method);
function requestRow(r) {
  const row = el(
    'tr',
    { 'data-id': String(r.id), class: $('request').dataset.id === String(r.id) ? 'selected' : '' },
    el('td', {}, time(r.at)),
    el('td', {}, r.method),
    el('td', { class: 'path' }, r.path),
    el('td', { class: `s${String(r.status)[0]}` }, r.status),
    el('td', {}, r.durationMs),
    el('td', {}, size(r.bytesOut)),
    el('td', {}, r.url),
  );
  row.addEventListener('click', () => void showRequest(r.id));
  return row;
}
/** Live requests that came while a list was loading: put back once it is shown. */
let arrivedWhileListing = [];
function putRequest(r) {
  if (listing !== shown) arrivedWhileListing.push(r);
  if (!matches(r, filter())) return;
  if ($('request-rows').querySelector(`tr[data-id="${r.id}"]`)) return; // shown already
  $('request-rows').prepend(requestRow(r));
  while ($('request-rows').rows.length > MAX_ROWS) $('request-rows').lastElementChild.remove();
}
let listing = 0;
let shown = 0;
async function showRequests() {
  const mine = ++listing;
  const query = new URLSearchParams(Object.entries(filter()).filter(([, v]) => v !== ''));
  const list = await api(`/api/requests?${query}`);
  if (mine !== listing) return; // the filter changed while this list was on its way
  shown = mine;
  $('request-rows').replaceChildren(...list.map(requestRow));
  const arrived = arrivedWhileListing;
  arrivedWhileListing = [];
  for (const r of arrived) putRequest(r);
}
$('filter').addEventListener('input', () => void showRequests());

/** A body as pretty JSON, text, or hex. */
function bodyView(body, headers) {
  if (!body || body.length === 0) return el('pre', {}, '(empty)');
  if (body.text !== undefined) {
    const type = headers.find(([name]) => name.toLowerCase() === 'content-type')?.[1] ?? '';
    if (type.includes('json')) {
      try {
        return el('pre', {}, JSON.stringify(JSON.parse(body.text), null, 2));
      } catch {
        // not JSON after all: shown as text
      }
    }
    return el('pre', {}, body.text);
  }
  const bytes = Uint8Array.from(atob(body.base64), (c) => c.charCodeAt(0));
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16)
    lines.push(Array.from(bytes.subarray(i, i + 16), (b) => b.toString(16).padStart(2, '0')).join(' '));
  return el('pre', {}, lines.join('\n'));
}
const headerText = (headers) => headers.map(([name, value]) => `${name}: ${value}`).join('\n');
function answerView(title, status, headers, body) {
  return el(
    'div',
    {},
    el('h3', {}, `${title}: ${status}`),
    el('pre', {}, headerText(headers)),
    bodyView(body, headers),
  );
}

async function showRequest(id) {
  const r = await api(`/api/requests/${id}`);
  const box = $('request');
  box.hidden = false;
  box.dataset.id = String(id);
  select($('request-rows'), id);
  if (!r.captured) return box.replaceChildren(el('p', {}, `${r.method} ${r.path}: not captured`));
  const x = r.exchange;
  const original = answerView('response', r.status, x.responseHeaders, x.responseBody);
  const replayed = el('div', { id: 'replayed' });
  const edit = el(
    'form',
    { id: 'edit', hidden: '' },
    el('input', { name: 'method', value: r.method, size: '8' }),
    el('input', { name: 'path', value: r.path, size: '40' }),
    el('textarea', { name: 'headers', rows: '6' }, headerText(x.requestHeaders)),
    el('textarea', { name: 'body', rows: '6' }, x.requestBody.text ?? ''),
    el('button', { type: 'submit' }, 'Send edited'),
  );
  const replayButton = el('button', { id: 'replay' }, 'Replay');
  const editButton = el('button', { id: 'edit-replay' }, 'Edit and replay');
  replayButton.addEventListener('click', () => void replay(id, {}, replayed));
  editButton.addEventListener('click', () => edit.toggleAttribute('hidden'));
  edit.addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(edit);
    const headers = String(form.get('headers'))
      .split('\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')).trim(), line.slice(line.indexOf(':') + 1).trim()]);
    const edits = { method: form.get('method'), path: form.get('path'), headers, body: form.get('body') };
    void replay(id, edits, replayed);
  });
  box.replaceChildren(
    el('h3', {}, `${r.method} ${r.path} (HTTP/${x.httpVersion})`),
    el('pre', {}, headerText(x.requestHeaders)),
    bodyView(x.requestBody, x.requestHeaders),
    el('p', {}, replayButton, ' ', editButton),
    edit,
    el('div', { class: 'columns' }, original, replayed),
  );
}

async function replay(id, edits, into) {
  into.replaceChildren(el('p', {}, 'sending…'));
  try {
    const answer = await api(`/api/requests/${id}/replay`, { method: 'POST', body: JSON.stringify(edits) });
    into.replaceChildren(answerView('replayed', answer.status, answer.headers, answer.body));
  } catch (error) {
    into.replaceChildren(el('p', { class: 'failed' }, `replay failed: ${error.message}`));
  }
}

// Live.
function follow() {
  const events = new EventSource(withToken('/api/events'));
  events.addEventListener('open', () => {
    $('live').textContent = 'live';
    $('live').classList.add('on');
  });
  events.addEventListener('error', () => {
    $('live').textContent = 'reconnecting…';
    $('live').classList.remove('on');
  });
  events.addEventListener('connection', (event) => {
    putConnection(JSON.parse(event.data));
    refreshTunnelsSoon();
  });
  events.addEventListener('request', (event) => {
    putRequest(JSON.parse(event.data));
    refreshTunnelsSoon();
  });
  events.addEventListener('tunnels', () => void showTunnels());
}

async function start() {
  // Live first, then the history: nothing that happens in between is missed (a record that
  // comes both ways is shown once: rows are keyed by id).
  follow();
  await showTunnels();
  for (const c of (await api('/api/connections')).reverse()) {
    const newer = connections.get(c.id);
    if (!newer || newer.timeline.length <= c.timeline.length) putConnection(c);
  }
  await showRequests();
}
void start();
