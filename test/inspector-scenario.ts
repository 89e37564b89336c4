// The inspector in a real browser, as one scenario: a relay with an HTTP tunnel (`demo`, to
// a small JSON service) and a TCP tunnel (to an echo service), the inspector beside the
// client, and headless Chromium on its page while traffic flows. Each step checks what the
// page shows: rows that appear live, a connection's timeline, a request's headers and
// JSON body, replay (as captured and edited), the filter; then a full-page screenshot,
// checked not to be blank. test/inspector-browser.test.ts runs it (each step a subtest);
// scripts/inspector-screenshot.ts runs it to write docs/inspector.png (npm run screenshot),
// so the README's picture is of what the test saw. Needs Debian's `chromium`.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startInspector, type Inspector } from '../client/inspector/server.ts';
import { connectVisitor, echo, listenLocal, readAll, request, within } from './helpers.ts';
import { httpRig, localService, visit, type HttpRig, type LocalService } from './http-rig.ts';

export const CHROMIUM = '/usr/bin/chromium';
const NAME = 'demo';
/** How long the page may take to show anything the scenario waits for. */
const WAIT_MS = 10_000;
const VIEWPORT = { width: 1280, height: 800 };
/** The phases of a TCP visitor that sends, half-closes, and gets its echo and FIN back. */
const PHASES = ['announced', 'dialed', 'id-sent', 'paired', 'joined', 'visitor-fin', 'local-fin', 'closed'];

export interface ScenarioOptions {
  /** Where the full-page screenshot (PNG) goes. */
  screenshot: string;
  /** Runs one step: a subtest in the test, a line of output in the script. Rejects if the
   * step failed (the steps after it depend on it). */
  step?: (name: string, run: () => Promise<void>) => Promise<void>;
}

/** What the scenario found of its screenshot. */
export interface Screenshot {
  bytes: number;
  width: number;
  height: number;
  /** Distinct colours, and the share of the pixels the commonest one covers. */
  colours: number;
  commonest: number;
}

/** A small JSON API that answers every request under /api/ (and /health) with what it got,
 * and 404 elsewhere; `seen` gets `METHOD path` of each. */
function jsonService(seen: string[]): http.RequestListener {
  let next = 40;
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      seen.push(`${req.method} ${path}`);
      const text = Buffer.concat(chunks).toString('utf8');
      let received: unknown;
      try {
        received = text === '' ? null : JSON.parse(text);
      } catch {
        received = text;
      }
      const known = path.startsWith('/api/') || path === '/health';
      const body = known
        ? { ok: true, id: next++, method: req.method, path, received }
        : { ok: false, error: `no route for ${req.method} ${path}` };
      res.writeHead(known ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  };
}

/** The traffic of the HTTP tunnel, in order. */
const REQUESTS: { method: string; path: string; body?: unknown }[] = [
  { method: 'POST', path: '/api/orders', body: { item: 'espresso', size: 'double', qty: 2 } },
  { method: 'GET', path: '/api/orders/41' },
  { method: 'PATCH', path: '/api/orders/41', body: { qty: 3, note: 'no sugar' } },
  { method: 'GET', path: '/health' },
  { method: 'GET', path: '/favicon.ico' },
  { method: 'DELETE', path: '/api/orders/40' },
];
const ORDERED = REQUESTS[0] ?? { method: 'POST', path: '/api/orders' };

/** JavaScript (run in the page) for the rows of the table body `tbody`, newest first. */
const rowsOf = (tbody: string): string =>
  `[...document.querySelectorAll('#${tbody} tr')].map((row) => ({ id: row.dataset.id, ` +
  `selected: row.classList.contains('selected'), cells: [...row.cells].map((cell) => cell.textContent) }))`;
interface Row {
  id: string;
  selected: boolean;
  cells: string[];
}
/** JavaScript for the phases the timeline shows, in order. */
const PHASES_SHOWN = `[...document.querySelectorAll('#timeline li')].map((li) => li.dataset.phase)`;

/** Waits until `expression` (JavaScript, run in the page) is true; on a timeout, the error
 * says what was awaited and what `context` (a selector) showed instead. */
async function until(page: Page, what: string, expression: string, context = 'main'): Promise<void> {
  try {
    await page.waitForFunction(expression, undefined, { timeout: WAIT_MS });
  } catch (error) {
    const shown = await page
      .evaluate<string>(`document.querySelector(${JSON.stringify(context)})?.innerText ?? '(nothing)'`)
      .catch(() => '(the page is gone)');
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new Error(`the page never showed ${what} (${why}); ${context} showed:\n${shown.slice(0, 2000)}`, {
      cause: error,
    });
  }
}

/** A visitor's request through the HTTP tunnel, JSON in and out. */
async function send(rig: HttpRig, { method, path, body }: { method: string; path: string; body?: unknown }) {
  const headers: http.OutgoingHttpHeaders = { accept: 'application/json', 'user-agent': 'demo-app/1.4' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const answer = await visit(rig.port, `${NAME}.localhost:${rig.port}`, {
    method,
    path,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.match(String(answer.headers['content-type']), /json/, `${method} ${path}`);
  return answer;
}

/** Decodes `png` in the browser (a canvas) and counts its colours. */
async function analyse(browser: Browser, png: Buffer): Promise<Screenshot> {
  const viewer = await browser.newPage();
  try {
    const source = JSON.stringify(`data:image/png;base64,${png.toString('base64')}`);
    const stats = await viewer.evaluate<Omit<Screenshot, 'bytes'>>(`(async () => {
      const image = new Image();
      image.src = ${source};
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      const context = canvas.getContext('2d');
      context.drawImage(image, 0, 0);
      const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
      const counts = new Map();
      for (let i = 0; i < data.length; i += 4) {
        const colour = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
        counts.set(colour, (counts.get(colour) ?? 0) + 1);
      }
      const pixels = data.length / 4;
      return {
        width: canvas.width,
        height: canvas.height,
        colours: counts.size,
        commonest: Math.max(...counts.values()) / pixels,
      };
    })()`);
    return { bytes: png.length, ...stats };
  } finally {
    await viewer.close();
  }
}

/** Runs the scenario; resolves with what it found of the screenshot it wrote. */
export async function inspectorScenario({
  screenshot,
  step = (_name, run) => run(),
}: ScenarioOptions): Promise<Screenshot> {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} not found: install Debian's chromium (apt-get install -y --no-install-recommends chromium)`,
  );
  const seen: string[] = [];
  let web: LocalService | undefined;
  let tcp: Awaited<ReturnType<typeof listenLocal>> | undefined;
  let rig: HttpRig | undefined;
  let inspector: Inspector | undefined;
  let browser: Browser | undefined;
  let result: Screenshot | undefined;
  try {
    web = await localService(jsonService(seen));
    tcp = await listenLocal(echo);
    rig = await httpRig([{ localPort: web.port, http: { name: NAME } }, { localPort: tcp.port }]);
    inspector = await startInspector(rig.client, { port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--no-proxy-server'] });
    const page = await browser.newPage({ viewport: VIEWPORT });
    page.setDefaultTimeout(WAIT_MS);
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(error.message));
    const [httpTunnel, tcpTunnel] = rig.client.tunnels;
    assert.ok(httpTunnel && tcpTunnel, 'two tunnels');
    const tunnels = { http: httpTunnel, tcp: tcpTunnel };
    const liveRig = rig;
    const shown = inspector.url;
    const open = browser;

    await step('the page loads, lists the tunnels and goes live', async () => {
      const answer = await page.goto(shown);
      assert.equal(answer?.status(), 200);
      await until(page, 'the live dot', `document.querySelector('#live')?.classList.contains('on')`, 'header');
      const text = await page.locator('#tunnels').innerText();
      assert.ok(text.includes(tunnels.http.url) && text.includes(tunnels.tcp.url), text);
      // Set once: still there at the end means every row came without a reload.
      await page.evaluate(`window.sameLoad = true`);
    });

    await step('TCP visitors appear live in Connections, closed cleanly', async () => {
      for (const word of ['hello', 'burrow']) {
        assert.equal((await request(tunnels.tcp.publicPort, word)).toString(), word);
      }
      await until(
        page,
        'two closed TCP connections',
        `${rowsOf('connection-rows')}.filter((r) => r.cells[2] === ${JSON.stringify(tunnels.tcp.url)} ` +
          `&& r.cells[3] === 'closed' && r.cells[7] === 'fin').length === 2`,
      );
      const rows = (await page.evaluate<Row[]>(rowsOf('connection-rows'))).filter(
        (r) => r.cells[2] === tunnels.tcp.url,
      );
      assert.deepEqual(
        rows.map((r) => [r.cells[4], r.cells[5]]),
        [
          ['6 B', '6 B'],
          ['5 B', '5 B'],
        ],
        'bytes each way, newest first',
      );
      assert.ok(
        rows.every((r) => /^127\.0\.0\.1:[0-9]+$/.test(r.cells[1] ?? '')),
        'the visitor addresses',
      );
    });

    await step('a connection’s timeline follows it live, from announced to closed', async () => {
      const visitor = await connectVisitor(tunnels.tcp.publicPort);
      try {
        visitor.write('ping');
        await within(once(visitor, 'data'), WAIT_MS, 'the echo of ping');
        const isOpen = `${rowsOf('connection-rows')}.find((r) => r.cells[2] === ${JSON.stringify(tunnels.tcp.url)} && r.cells[3] === 'open')`;
        await until(page, 'an open TCP connection', `${isOpen} !== undefined`);
        const id = (await page.evaluate<Row>(isOpen)).id;
        await page.locator(`#connection-rows tr[data-id="${id}"]`).click();
        await until(page, 'the timeline up to joined', `${PHASES_SHOWN}.at(-1) === 'joined'`, '#timeline');
        assert.deepEqual(await page.evaluate<string[]>(PHASES_SHOWN), PHASES.slice(0, 5));
        assert.equal(await page.locator('#timeline h3').innerText(), `connection ${id}`);
        const ended = readAll(visitor);
        visitor.end();
        await within(ended, WAIT_MS, 'the visitor’s end');
        await until(page, 'the timeline up to closed', `${PHASES_SHOWN}.at(-1) === 'closed'`, '#timeline');
        assert.deepEqual(await page.evaluate<string[]>(PHASES_SHOWN), PHASES);
        const text = await page.locator('#timeline').innerText();
        assert.match(text, /paired: the relay answered OK/);
        assert.match(text, new RegExp(`joined: .*\\(127\\.0\\.0\\.1:${tcp?.port}\\)`));
        const row = (await page.evaluate<Row[]>(rowsOf('connection-rows'))).find((r) => r.id === id);
        assert.deepEqual([row?.cells[3], row?.cells[7], row?.selected], ['closed', 'fin', true]);
      } finally {
        visitor.destroy();
      }
    });

    await step('HTTP requests appear live in Requests, newest first', async () => {
      await page.locator('nav button[data-view="requests"]').click();
      await page.locator('#requests').waitFor({ state: 'visible' });
      for (const [i, sent] of REQUESTS.entries()) {
        await send(liveRig, sent);
        await until(
          page,
          `${sent.method} ${sent.path} on top`,
          `(() => { const rows = ${rowsOf('request-rows')}; return rows.length === ${i + 1} && ` +
            `rows[0].cells[1] === ${JSON.stringify(sent.method)} && rows[0].cells[2] === ${JSON.stringify(sent.path)}; })()`,
          '#requests',
        );
      }
      const rows = await page.evaluate<Row[]>(rowsOf('request-rows'));
      assert.deepEqual(
        rows.map((r) => [r.cells[1], r.cells[2], r.cells[3], r.cells[6]]).reverse(),
        REQUESTS.map(({ method, path }) => [method, path, path === '/favicon.ico' ? '404' : '200', tunnels.http.url]),
      );
      assert.deepEqual(
        seen,
        REQUESTS.map(({ method, path }) => `${method} ${path}`),
      );
    });

    await step('the filter keeps the rows that match, live ones too', async () => {
      const paths = `${rowsOf('request-rows')}.map((r) => r.cells[1] + ' ' + r.cells[2])`;
      await page.locator('#filter input[name="path"]').fill('orders');
      const orders = REQUESTS.filter(({ path }) => path.includes('orders'))
        .map(({ method, path }) => `${method} ${path}`)
        .reverse(); // newest first
      await until(page, 'the orders only', `${paths}.join() === ${JSON.stringify(orders.join())}`, '#requests');
      await send(liveRig, { method: 'GET', path: '/health' });
      await send(liveRig, { method: 'GET', path: '/api/orders?page=2' });
      await until(page, 'the new order on top', `${paths}[0] === 'GET /api/orders?page=2'`, '#requests');
      assert.deepEqual(await page.evaluate<string[]>(paths), ['GET /api/orders?page=2', ...orders]);
      await page.locator('#filter input[name="status"]').fill('4xx');
      await until(page, 'the 404 only', `${paths}.join() === ''`, '#requests');
      await page.locator('#filter input[name="path"]').fill('');
      await until(page, 'the 404', `${paths}.join() === 'GET /favicon.ico'`, '#requests');
      await page.locator('#filter input[name="status"]').fill('');
      await until(page, 'every request again', `${paths}.length === ${REQUESTS.length + 2}`, '#requests');
    });

    const selectOrder = async (): Promise<void> => {
      const rows = await page.evaluate<Row[]>(rowsOf('request-rows'));
      const id = rows.find((r) => r.cells[1] === ORDERED.method && r.cells[2] === ORDERED.path)?.id;
      assert.ok(id !== undefined, 'the order’s row');
      await page.locator(`#request-rows tr[data-id="${id}"]`).click();
      await until(
        page,
        'the order’s details',
        `document.querySelector('#request h3')?.textContent === 'POST /api/orders (HTTP/1.1)' && ` +
          `document.querySelector('#request-rows tr.selected')?.dataset.id === ${JSON.stringify(id)}`,
        '#request',
      );
    };
    const original = page.locator('#request .columns > div').first();
    const replayed = page.locator('#replayed');

    await step('a request’s details: headers, and JSON bodies pretty-printed', async () => {
      await selectOrder();
      const [headers, body] = await page.locator('#request > pre').allInnerTexts();
      assert.match(headers ?? '', /^content-type: application\/json$/m);
      assert.match(headers ?? '', new RegExp(`^host: ${NAME}\\.localhost:${liveRig.port}$`, 'm'));
      assert.match(headers ?? '', /^x-forwarded-for: 127\.0\.0\.1$/im);
      assert.equal(body, JSON.stringify(ORDERED.body, null, 2));
      assert.equal(await original.locator('h3').innerText(), 'response: 200');
      const answer = await original.locator('pre').nth(1).innerText();
      assert.ok(answer.includes('\n  "path": "/api/orders",\n'), answer);
      assert.deepEqual((JSON.parse(answer) as { received: unknown }).received, ORDERED.body);
    });

    await step('Replay: the answer beside the original', async () => {
      const before = seen.length;
      await page.locator('#replay').click();
      await until(
        page,
        'the replayed answer',
        `document.querySelector('#replayed h3')?.textContent === 'replayed: 200'`,
        '#request',
      );
      const answer = JSON.parse(await replayed.locator('pre').nth(1).innerText()) as Record<string, unknown>;
      assert.deepEqual([answer.method, answer.path, answer.received], ['POST', '/api/orders', ORDERED.body]);
      assert.deepEqual(seen.slice(before), ['POST /api/orders'], 'the service got it once more');
      const [left, right] = [await original.boundingBox(), await replayed.boundingBox()];
      assert.ok(left && right && right.x >= left.x + left.width && Math.abs(right.y - left.y) < 2, 'side by side');
    });

    await step('Edit and replay: a new path and body, and the answer reflects them', async () => {
      const before = seen.length;
      await page.locator('#edit-replay').click();
      const form = page.locator('#edit');
      await form.waitFor({ state: 'visible' });
      await form.locator('input[name="path"]').fill('/api/orders?dry-run=1');
      await form.locator('textarea[name="body"]').fill('{"item": "flat white", "qty": 1}');
      await form.locator('button[type="submit"]').click();
      await until(
        page,
        'the edited answer',
        `document.querySelector('#replayed')?.innerText.includes('"path": "/api/orders?dry-run=1"')`,
        '#request',
      );
      const answer = JSON.parse(await replayed.locator('pre').nth(1).innerText()) as Record<string, unknown>;
      assert.deepEqual(answer.received, { item: 'flat white', qty: 1 });
      assert.deepEqual(seen.slice(before), ['POST /api/orders?dry-run=1']);
      assert.equal(await original.locator('h3').innerText(), 'response: 200', 'the original stays');
    });

    await step('the screenshot: a request, its details and its replay, full page', async () => {
      // The view the README shows: the order selected afresh and replayed as it was.
      await selectOrder();
      await page.locator('#replay').click();
      await until(
        page,
        'the replayed answer',
        `document.querySelector('#replayed h3')?.textContent === 'replayed: 200'`,
        '#request',
      );
      assert.equal(await page.evaluate<boolean>(`window.sameLoad === true`), true, 'no reload');
      assert.deepEqual(failures, [], 'errors on the page');
      await page.mouse.move(0, 0); // no hover highlight
      const png = await page.screenshot({ fullPage: true, type: 'png' });
      await writeFile(screenshot, png);
      result = await analyse(open, png);
      assert.ok(result.bytes > 20_000, `${result.bytes} bytes`);
      assert.equal(result.width, VIEWPORT.width);
      assert.ok(result.height >= VIEWPORT.height, `${result.height} px high`);
      assert.ok(result.colours >= 64, `${result.colours} colours`);
      assert.ok(result.commonest < 0.9, `the commonest colour covers ${Math.round(result.commonest * 100)}%`);
    });
  } finally {
    await browser?.close();
    await inspector?.close();
    await rig?.close();
    await web?.close();
    await tcp?.close();
  }
  assert.ok(result, 'the screenshot');
  return result;
}
