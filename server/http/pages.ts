// The relay's own answers on its HTTP port, when a request cannot reach a tunnel: a small
// page that says what happened, as HTML for a browser and as one line of text otherwise.
import type http from 'node:http';

export interface Page {
  status: number;
  /** One short sentence: what happened and what to do. */
  text: string;
  /** Extra headers (`Retry-After`, `WWW-Authenticate`). */
  headers?: Record<string, string>;
}

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Authentication required',
  404: 'No tunnel here',
  408: 'Request timeout',
  421: 'Misdirected request',
  426: 'Upgrade required',
  431: 'Request header too large',
  502: 'The tunnel cannot reach its service',
  503: 'Tunnel unavailable',
  504: 'The tunnel did not answer',
};

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The body and headers of `page`, in the form the request's `Accept` asks for. */
export function renderPage(page: Page, accept: string | undefined): { headers: Record<string, string>; body: string } {
  const title = TITLES[page.status] ?? 'Error';
  const html = accept?.includes('text/html') ?? false;
  const body = html
    ? `<!doctype html><html><head><meta charset="utf-8"><title>${page.status} ${title}</title></head>` +
      `<body style="font-family:system-ui,sans-serif;max-width:40em;margin:4em auto">` +
      `<h1>${page.status} ${title}</h1><p>${escapeHtml(page.text)}</p><hr><p><small>burrow relay</small></p></body></html>\n`
    : `${page.status} ${title}: ${page.text}\n`;
  const type = html ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8';
  const headers = { 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...page.headers };
  return { headers: { ...headers, 'cache-control': 'no-store' }, body };
}

/** Answers `res` with `page`, unless a response has begun (then it is cut). */
export function sendPage(req: http.IncomingMessage, res: http.ServerResponse, page: Page): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { headers, body } = renderPage(page, req.headers.accept);
  res.writeHead(page.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The same page as raw bytes, for a socket that has no response object (a malformed
 * request, an upgrade that cannot be routed); the connection closes after it. */
export function rawPage(page: Page, accept?: string): string {
  const { headers, body } = renderPage(page, accept);
  const lines = Object.entries({ ...headers, connection: 'close' }).map(([name, value]) => `${name}: ${value}`);
  return `HTTP/1.1 ${page.status} ${TITLES[page.status] ?? 'Error'}\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}
