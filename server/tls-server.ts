// TLS on the control and data ports. The handshake runs in a real tls.Server that never
// listens: admit.ts hands it each connection that began with a TLS record. A tls.Server,
// not a bare TLSSocket, because only it checks client certificates: a bare server-side
// TLSSocket never fills in `authorized`.
import { constants } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { BurrowError, describe } from '../shared/errors.ts';

/** PEM certificate (chain) and key; `clientCa` turns on mutual TLS. */
export interface ServerTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** Require every client to present a certificate signed by this CA. */
  clientCa?: string | Buffer;
}

/** `socket` is set if the handshake completed; `rejected` then says why the client's
 * certificate is not accepted (mutual TLS), and the caller answers it with an ERR line. */
export type HandshakeResult = { socket: tls.TLSSocket; rejected?: string } | { socket?: undefined; failed: string };

export class ServerTls {
  readonly requireClientCert: boolean;
  private readonly server: tls.Server;
  /** Handshakes in progress, by connection: its TCP 4-tuple, unique while it is open (the
   * tls.Server hands back a TLS socket, not ours, so this is how we find our own). */
  private readonly waiting = new Map<string, (result: HandshakeResult) => void>();

  /** Throws a `listen-failed` BurrowError if the certificate or key cannot be used. */
  constructor({ cert, key, clientCa }: ServerTlsOptions) {
    this.requireClientCert = clientCa !== undefined;
    try {
      this.server = tls.createServer({
        cert,
        key,
        ca: clientCa,
        minVersion: 'TLSv1.2',
        // No session resumption: our clients do not use it, and a resumed TLS 1.3 session
        // counts as `authorized` even when the client never showed a certificate.
        secureOptions: constants.SSL_OP_NO_TICKET,
        requestCert: this.requireClientCert,
        // We check `authorized` ourselves, after the handshake: the client can then be told
        // in words why it is turned away, which a TLS alert cannot do.
        rejectUnauthorized: false,
      });
    } catch (error) {
      const message = `cannot use the TLS certificate and key: ${describe(error)}`;
      throw new BurrowError('listen-failed', message, { cause: error });
    }
    this.server.on('secureConnection', (socket) => {
      socket.allowHalfOpen = true; // see handshake()
      // A certificate must be there as well as verified (see secureOptions above).
      const verified = socket.authorized && socket.getPeerX509Certificate() !== undefined;
      if (!this.requireClientCert || verified) return this.settle(keyOf(socket), { socket });
      const why = socket.getPeerX509Certificate()
        ? `not signed by the client CA (${socket.authorizationError})`
        : 'none presented';
      this.settle(keyOf(socket), { socket, rejected: `client certificate: ${why}` });
    });
    this.server.on('tlsClientError', (error, socket) => {
      this.settle(keyOf(socket), { failed: `TLS handshake failed: ${error.message.split('\n')[0]}` });
      socket.destroy();
    });
  }

  /** Runs the server side of the handshake on `tcp` (whose first bytes are still unread),
   * closing it if the handshake is not done within `timeoutMs`. */
  handshake(tcp: net.Socket, timeoutMs: number): Promise<HandshakeResult> {
    const key = keyOf(tcp); // now: a closed socket no longer knows its own address
    if (this.waiting.has(key)) {
      tcp.destroy(); // cannot happen for two live connections; never cross two handshakes
      return Promise.resolve({ failed: 'a connection with the same addresses is already in its TLS handshake' });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settle(key, { failed: 'TLS handshake not completed in time' });
        tcp.destroy();
      }, timeoutMs);
      this.waiting.set(key, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
      tcp.once('close', () =>
        this.settle(key, { failed: 'the client hung up during the TLS handshake (does it trust our certificate?)' }),
      );
      // A client that distrusts our certificate hangs up mid-handshake. A half-open socket
      // would wait for the rest of a handshake that never comes: half-close only once the
      // handshake is done (the TLS socket takes this setting from `tcp`).
      tcp.allowHalfOpen = false;
      this.server.emit('connection', tcp);
    });
  }

  private settle(key: string, result: HandshakeResult): void {
    const resolve = this.waiting.get(key);
    this.waiting.delete(key);
    if (resolve) resolve(result);
    else result.socket?.destroy(); // its TCP connection has closed already
  }
}

const keyOf = (socket: net.Socket): string =>
  `${socket.localAddress} ${socket.localPort} ${socket.remoteAddress} ${socket.remotePort}`;
