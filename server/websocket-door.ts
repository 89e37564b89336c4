// The control and data ports over WebSocket, for clients behind firewalls that let only
// HTTPS out: on the relay's HTTP and HTTPS ports, `/_burrow/control` and `/_burrow/data`
// take WebSocket upgrades. Each WebSocket becomes one end of a socket pair; the other end
// enters the core exactly as a connection to the control or data port would, so the line
// protocol, the secret, the deadlines and the limits are the same ones.
import type http from 'node:http';
import type net from 'node:net';
import createDebug from 'debug';
import { WebSocketServer, type WebSocket } from 'ws';
import { formatAddress, WEBSOCKET_PATHS, type RelayPort } from '../shared/protocol.ts';
import { SocketPairs } from '../shared/socket-pair.ts';
import { bridge, pauseUntilBridged, DEFAULT_WEBSOCKET_PING_MS, MAX_MESSAGE_BYTES } from '../shared/websocket-bridge.ts';
import type { Page } from './http/pages.ts';

const debug = createDebug('burrow:server');

export interface WebSocketDoorParts {
  /** Ping interval of every WebSocket. */
  pingIntervalMs?: number;
  /** Hands `socket` to the core as a connection to the `door` port. Its remoteAddress and
   * remotePort are those of the WebSocket's client, not of the pair. */
  enter(socket: net.Socket, door: RelayPort): void;
  /** The WebSocket's own TCP connection has become a control connection: the server
   * closes it with those, after the rest has drained. */
  adoptControl(socket: net.Socket): void;
}

/** `url` is `path`, or `path` with a query string. (No split: every request asks.) */
const isPath = (url: string, path: string): boolean =>
  url.startsWith(path) && (url.length === path.length || url[path.length] === '?');

/** Which door a request path names (a query string is ignored), if any. */
export function doorOf(url: string | undefined): RelayPort | undefined {
  if (url === undefined) return undefined;
  if (isPath(url, WEBSOCKET_PATHS.control)) return 'control';
  return isPath(url, WEBSOCKET_PATHS.data) ? 'data' : undefined;
}

export class WebSocketDoor {
  private readonly server = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false, // compression off: tunnelled bytes are often compressed already
    maxPayload: MAX_MESSAGE_BYTES,
    clientTracking: false, // the server's socket sets own every connection
  });
  private readonly pairs = new SocketPairs();
  private readonly pingIntervalMs: number;
  private closed = false;

  constructor(private readonly parts: WebSocketDoorParts) {
    this.pingIntervalMs = parts.pingIntervalMs ?? DEFAULT_WEBSOCKET_PING_MS;
  }

  /** The page for a plain request to one of the paths. */
  page(door: RelayPort): Page {
    const text = `this is burrow's ${door} port over WebSocket: connect with burrow client --server wss://HOST (or ws://).`;
    return { status: 426, text, headers: { upgrade: 'websocket', connection: 'Upgrade' } };
  }

  /** Takes an upgrade request for `door`; ws answers a malformed one (400) itself. */
  upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, door: RelayPort): void {
    if (this.closed) return void socket.destroy();
    if (door === 'control') this.parts.adoptControl(socket);
    const address = socket.remoteAddress ?? 'unknown';
    const port = socket.remotePort;
    this.server.handleUpgrade(req, socket, head, (ws) => {
      pauseUntilBridged(ws);
      this.join(ws, door, address, port).catch((error: unknown) => {
        debug('websocket %s connection from %s: %O', door, formatAddress(address, port), error);
        ws.terminate();
      });
    });
  }

  /** No new WebSockets; those joined already close with their sockets. */
  close(): void {
    this.closed = true;
    this.pairs.close();
  }

  private async join(ws: WebSocket, door: RelayPort, address: string, port: number | undefined): Promise<void> {
    const { accepted, dialed } = await this.pairs.pair();
    bridge(ws, dialed, accepted, this.pingIntervalMs);
    // The core counts clients and handshakes per address and names them in its log: it
    // must see the WebSocket's client, not the loopback pair.
    Object.defineProperties(accepted, { remoteAddress: { value: address }, remotePort: { value: port } });
    this.parts.enter(accepted, door);
  }
}
