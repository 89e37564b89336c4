// One control connection: reads EXPOSE lines, opens a tunnel for each, and carries the
// CONNECTION lines of its tunnels. When it closes, its tunnels close with it.
import type { Socket } from 'node:net';
import createDebug from 'debug';
import { readControlLines, closeWithLine } from '../shared/control-lines.ts';
import { formatErr, formatOk, MAX_LINE_LENGTH, parseClientControlLine } from '../shared/protocol.ts';
import type { ServerContext } from './context.ts';
import { PortError } from './ports.ts';
import { Tunnel } from './tunnel.ts';

const debug = createDebug('burrow:server');

/** Reply bytes a client may leave unread before we close its connection: far more than
 * an honest client ever has in flight (a reply is under 100 bytes). */
export const MAX_UNREAD_REPLY_BYTES = 256 * 1024;

export class ControlSession {
  readonly label: string;
  private readonly tunnels = new Set<Tunnel>();
  /** EXPOSEs are answered strictly in the order they arrived: each waits for the last. */
  private replies: Promise<void> = Promise.resolve();
  private exposing = 0;
  private closed = false;
  /** Set after an over-long line: later lines are not read, the close is queued. */
  private failed = false;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: ServerContext,
  ) {
    this.label = ctx.label('control');
    ctx.track(socket);
    ctx.trace(this.label, 'event', `client connected from ${socket.remoteAddress}:${socket.remotePort}`);
    socket.setNoDelay(true);
    socket.on('error', (error) => debug('%s: %s', this.label, error.message));
    socket.once('close', () => this.close());
    readControlLines(socket, {
      onLine: (line) => this.onLine(line),
      onTooLong: () => this.fail(formatErr('line-too-long', `limit is ${MAX_LINE_LENGTH} bytes`)),
      onEnd: () => this.close(),
    });
  }

  /** Sends one line (newline included) to the client. A client that lets our replies
   * pile up unread is cut off: it would otherwise grow our memory without bound. */
  send(line: string): void {
    if (this.closed) return;
    this.ctx.trace(this.label, 'send', line.trimEnd());
    this.socket.write(line);
    if (this.socket.writableLength > MAX_UNREAD_REPLY_BYTES) {
      debug('%s: %d reply bytes unread; closing', this.label, this.socket.writableLength);
      this.close();
    }
  }

  /** Closes the connection and every tunnel it holds; `finalLine` is sent first. */
  close(finalLine?: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const tunnel of this.tunnels) tunnel.close();
    this.tunnels.clear();
    if (finalLine === undefined) {
      this.socket.destroy();
    } else {
      this.ctx.trace(this.label, 'send', finalLine.trimEnd());
      closeWithLine(this.socket, finalLine);
    }
    this.ctx.trace(this.label, 'event', 'closed; its public ports are free again');
  }

  /** Resolves when no EXPOSE of this session is still binding a port (after close(), a
   * bind in flight finishes and its listener is closed at once). */
  settled(): Promise<void> {
    return this.replies;
  }

  private onLine(line: string): void {
    if (this.closed || this.failed) return;
    this.ctx.trace(this.label, 'recv', line);
    const parsed = parseClientControlLine(line);
    if (!parsed.ok) {
      const reply = formatErr(parsed.reason, parsed.detail);
      // A line we could not even frame means the stream cannot be trusted: close it.
      if (parsed.reason === 'line-too-long') this.fail(reply);
      else this.inOrder(() => this.send(reply));
      return;
    }
    if (this.tunnels.size + this.exposing >= this.ctx.maxTunnelsPerClient) {
      const limit = this.ctx.maxTunnelsPerClient;
      this.inOrder(() => this.send(formatErr('too-many-tunnels', `limit is ${limit} per connection`)));
      return;
    }
    const { localPort, remotePort } = parsed.message;
    this.exposing++; // counted now, so that pipelined EXPOSEs cannot overshoot the limit
    this.inOrder(() => this.expose(localPort, remotePort).finally(() => this.exposing--));
  }

  /** Stops reading and closes with `finalLine` once earlier replies have been sent. */
  private fail(finalLine: string): void {
    this.failed = true;
    this.inOrder(() => this.close(finalLine));
  }

  /** Runs `step` after every earlier one: this is what keeps replies in request order,
   * even when an early EXPOSE is still binding its port. */
  private inOrder(step: () => unknown): void {
    this.replies = this.replies.then(async () => void (await step())).catch((error: unknown) => {
      // Not a refusal we know how to word: log it and drop this client, not the server.
      debug('%s: %O', this.label, error);
      void this.close();
    });
  }

  private async expose(localPort: number, remotePort: number): Promise<void> {
    if (this.closed) return;
    let tunnel: Tunnel | undefined;
    let listener;
    try {
      listener = await this.ctx.ports.listen(
        remotePort,
        (visitor) => (tunnel ? tunnel.acceptVisitor(visitor) : visitor.destroy()),
        () => this.closed,
      );
    } catch (error) {
      if (!(error instanceof PortError)) throw error;
      this.send(formatErr(error.reason, error.message));
      return;
    }
    const address = listener.address();
    const publicPort = typeof address === 'object' && address !== null ? address.port : remotePort;
    tunnel = new Tunnel(publicPort, localPort, listener, (line) => this.send(line), this.ctx);
    if (this.closed) {
      tunnel.close(); // the client left while we were binding
      return;
    }
    this.tunnels.add(tunnel);
    this.send(formatOk(publicPort));
    this.ctx.trace(this.label, 'event', `public port ${publicPort} now forwards to the client's port ${localPort}`);
  }
}
