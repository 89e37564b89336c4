// The client's side of the WebSocket transport: each connection to the relay's control or
// data port becomes a WebSocket to `/_burrow/control` or `/_burrow/data` on the relay's
// HTTP(S) port, through an HTTP proxy if one is set, and the core gets one end of a socket
// pair whose other end is bridged to it (shared/websocket-bridge.ts).
import type { IncomingMessage } from 'node:http';
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import createDebug from 'debug';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { WebSocket } from 'ws';
import { BurrowError, describe, systemCode } from '../shared/errors.ts';
import { WEBSOCKET_PATHS, type RelayPort } from '../shared/protocol.ts';
import { SocketPairs } from '../shared/socket-pair.ts';
import { bridge, DEFAULT_WEBSOCKET_PING_MS, MAX_MESSAGE_BYTES, pauseUntilBridged } from '../shared/websocket-bridge.ts';
import { onAbort } from './cancel.ts';
import { checkPin, tlsFailure, type ClientTls } from './tls.ts';

const debug = createDebug('burrow:client');

/** Over wss://, frames go out with a zero masking key, which ws (at both ends) takes as
 * "nothing to XOR". Masking keeps an intermediary that does not speak WebSocket from
 * reading a client's bytes as HTTP (RFC 6455, 10.3); inside TLS no intermediary reads
 * them at all, and masking in JavaScript cost download over WebSocket most of its speed
 * (bench/README.md). Over plain ws://, frames are masked as the RFC asks. */
const NO_MASK = (mask: Buffer): void => void mask.fill(0);

/** Errors that say the proxy itself did not answer. */
const PROXY_DOWN = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export interface WebSocketOptions {
  /** The relay's HTTP or HTTPS port as a URL: `wss://relay.example.com` (port 443),
   * `ws://127.0.0.1:8080`. */
  url: string;
  /** An HTTP proxy to go through with CONNECT (`http://user:password@proxy:3128`); `false`
   * for none. Default: from HTTPS_PROXY (for wss://) or HTTP_PROXY (for ws://), and
   * NO_PROXY, as curl reads them. */
  proxy?: string | false;
  /** Ping every WebSocket this often; one that answers nothing until the next ping is
   * closed. Default 25 s. */
  pingIntervalMs?: number;
}

export interface WebSocketDialOptions {
  timeoutMs: number;
  signal: AbortSignal;
  /** Receives the socket the core is given (see dial()). */
  track: (socket: net.Socket) => void;
}

/** The relay's URL, checked: ws:// or wss://, a host, no path, query or credentials. */
export function webSocketUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`"${text}" is not a URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError(`"${text}" is not a ws:// or wss:// URL`);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '')
    throw new TypeError(`"${text}": give the relay's address only, like wss://relay.example.com`);
  return url;
}

/** The proxy for `url` from the environment (HTTPS_PROXY for wss://, HTTP_PROXY for ws://,
 * ALL_PROXY, NO_PROXY), or undefined. */
export function proxyFromEnv(url: URL): string | undefined {
  const asHttp = new URL(url);
  asHttp.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  return getProxyForUrl(asHttp.href) || undefined;
}

/** A proxy URL for messages: without its password. */
export function redactProxy(proxy: string): string {
  try {
    const url = new URL(proxy);
    if (url.password !== '') url.password = '***';
    return url.href.replace(/\/$/, '');
  } catch {
    return '(a proxy URL that cannot be parsed)';
  }
}

export class WebSocketDialer {
  readonly url: URL;
  readonly proxy: string | undefined;
  private readonly agent: HttpsProxyAgent<string> | undefined;
  private readonly pairs = new SocketPairs();
  private readonly pingIntervalMs: number;
  /** Each door's URL, and how messages name it. */
  private readonly doors: Record<RelayPort, { url: URL; where: string }>;

  constructor(
    options: WebSocketOptions,
    private readonly tls: ClientTls | undefined,
  ) {
    this.url = webSocketUrl(options.url);
    this.proxy = options.proxy === false ? undefined : (options.proxy ?? proxyFromEnv(this.url));
    if (this.proxy !== undefined) {
      try {
        // keepAlive off: every CONNECT is one WebSocket, which never goes back to a pool.
        this.agent = new HttpsProxyAgent(this.proxy, { keepAlive: false });
      } catch (error) {
        throw new TypeError(`the proxy "${redactProxy(this.proxy)}" is not a URL: ${describe(error)}`, {
          cause: error,
        });
      }
    }
    this.pingIntervalMs = options.pingIntervalMs ?? DEFAULT_WEBSOCKET_PING_MS;
    // Made once: every visitor dials the data door.
    const via = this.proxy === undefined ? '' : ` via the proxy ${redactProxy(this.proxy)}`;
    const doorAt = (door: RelayPort): { url: URL; where: string } => {
      const url = new URL(WEBSOCKET_PATHS[door], this.url);
      return { url, where: `${url.href}${via}` };
    };
    this.doors = { control: doorAt('control'), data: doorAt('data') };
  }

  /** Where `door` is, for messages. */
  where(door: RelayPort): string {
    return this.doors[door].where;
  }

  /** Opens a WebSocket to `door` and resolves with the socket the core speaks on. Rejects
   * with `unreachable` (after a network error, a refusal by the proxy or an answer other
   * than the upgrade), `tls`, or the signal's reason. */
  async dial(door: RelayPort, options: WebSocketDialOptions): Promise<net.Socket> {
    const ws = await this.open(door, options);
    try {
      const { accepted, dialed } = await this.pairs.pair();
      bridge(ws, accepted, dialed, this.pingIntervalMs);
      options.track(dialed);
      return dialed;
    } catch (error) {
      ws.terminate();
      throw error;
    }
  }

  /** Makes no more socket pairs; WebSockets open already close with their sockets. */
  close(): void {
    this.pairs.close();
  }

  private open(door: RelayPort, { timeoutMs, signal }: WebSocketDialOptions): Promise<WebSocket> {
    const { url, where } = this.doors[door];
    const failure = (message: string, cause?: unknown): BurrowError =>
      new BurrowError('unreachable', `cannot connect to ${where}: ${message}`, { cause });
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        maxPayload: MAX_MESSAGE_BYTES,
        handshakeTimeout: timeoutMs,
        agent: this.agent,
        ...(this.url.protocol === 'wss:' && { generateMask: NO_MASK }),
        ...this.tls?.connect,
      });
      let done = false;
      const settle = (error?: BurrowError): void => {
        if (done) return;
        done = true;
        release();
        if (!error) return resolve(ws);
        ws.terminate();
        reject(error);
      };
      const release = onAbort(signal, () =>
        settle(signal.reason instanceof BurrowError ? signal.reason : failure('stopped')),
      );
      ws.on('error', (error) => {
        debug('%s: %s', where, error.message);
        if (/timed out/i.test(error.message)) return settle(failure(`no answer within ${timeoutMs} ms`, error));
        // Through a proxy, a network error is the proxy's: the relay is behind its CONNECT.
        const proxyDown = this.proxy !== undefined && PROXY_DOWN.has(systemCode(error) ?? '');
        if (proxyDown)
          return settle(failure(`the proxy cannot be reached (${describe(error)}): is it running?`, error));
        settle(tlsFailure(error, `cannot connect to ${where}`) ?? failure(describe(error), error));
      });
      ws.on('unexpected-response', (_request, response: IncomingMessage) => {
        settle(failure(this.refusal(response)));
        response.resume();
      });
      ws.once('upgrade', (response: IncomingMessage) => {
        const pinError = this.tls && checkPin(response.socket as TLSSocket, this.tls.pin, `the relay at ${where}`);
        if (pinError) settle(pinError);
      });
      ws.once('open', () => {
        pauseUntilBridged(ws);
        settle();
      });
    });
  }

  /** Why an answer other than the upgrade is a refusal, in words. */
  private refusal(response: IncomingMessage): string {
    const status = `${response.statusCode ?? '?'} ${response.statusMessage ?? ''}`.trim();
    // 407 is the proxy's by definition; some proxies (tinyproxy) answer CONNECT with 401.
    const credentials = response.statusCode === 407 || (this.proxy !== undefined && response.statusCode === 401);
    if (credentials && this.proxy !== undefined && new URL(this.proxy).username === '')
      return `the proxy wants a user name and password (HTTP ${status}): put them in the proxy URL, http://user:password@host:port`;
    if (credentials)
      return `the proxy did not accept our credentials (HTTP ${status}): check the user and password in the proxy URL`;
    if (this.proxy !== undefined && (response.statusCode === 403 || response.statusCode === 502))
      return `the proxy or the relay refused (HTTP ${status}); the proxy may not allow CONNECT to ${this.url.host}`;
    if (response.statusCode === 404 || response.statusCode === 426)
      return `HTTP ${status}: is this a burrow relay with an HTTP port, and WebSocket clients allowed?`;
    return `the relay answered HTTP ${status}, not a WebSocket upgrade`;
  }
}
