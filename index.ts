// burrow as a library: start a relay server or a client in-process. The `burrow` command
// (cli/) is built on this file alone: what it needs is public here, and nothing else is.
export {
  startServer,
  BurrowServer,
  type ServerOptions,
  type ServerTlsOptions,
  type ServerStats,
  type BurrowServerEvents,
  type RefusedEvent,
  type ServerTotals,
  type ClientEvent,
  type HttpOptions,
  type HttpPageEvent,
} from './server/server.ts';
/** Every server default, in one table: what an option left out (or undefined) becomes. */
export { SERVER_DEFAULTS } from './server/options.ts';
export { startMetrics, parseMetricsAddress, type MetricsOptions, type MetricsEndpoint } from './server/metrics.ts';
// The self-signed certificate of `burrow server --tls`, and what clients see of any
// certificate: its fingerprint (what they pin) and its names (what they connect by).
export {
  loadOrCreateCertificate,
  defaultTlsDir,
  tlsName,
  certificateIdentity,
  type CertificateIdentity,
  type StoredCertificate,
  type ReplacedCertificate,
} from './server/self-signed-cert.ts';
/** fingerprintOf: a PEM certificate's SHA-256 fingerprint; normalizeFingerprint: one as a
 * user types it (`ab:cd...`, bare hex), as burrow prints it, or undefined if it is none. */
export { fingerprintOf, normalizeFingerprint } from './shared/fingerprint.ts';
export { DEFAULT_LIMITS, type Limits } from './server/limits.ts';
/** The defaults of the HTTP options (`httpPort`, `domain`, ...) of a relay that has an HTTP
 * or HTTPS port. */
export { DEFAULT_HTTP_LIMITS } from './server/http/options.ts';
export {
  startClient,
  BurrowClient,
  type ClientOptions,
  type TunnelRequest,
  type OpenTunnel,
  type ConnectionEvent,
  type BurrowClientEvents,
  type HttpTunnelOptions,
  type RequestEvent,
  type PhaseEvent,
  type CapturedExchange,
} from './client/client.ts';
/** Every client default, in one table: what an option left out (or undefined) becomes
 * (DEFAULT_MAX_CONNECTIONS is its maxConnections). */
export { CLIENT_DEFAULTS, DEFAULT_MAX_CONNECTIONS, type ConnectionClosed } from './client/types.ts';
export type { ConnectionTotals } from './client/connection.ts';
/** The inspector: a live page and a JSON API of a client's traffic (`burrow client` serves
 * it at http://127.0.0.1:4040/). */
export {
  startInspector,
  DEFAULT_INSPECT_PORT,
  type Inspector,
  type InspectorOptions,
} from './client/inspector/server.ts';
export type { ConnectionRecord, RequestRecord } from './client/inspector/history.ts';
export type { ReplayEdits, ReplayAnswer } from './client/inspector/replay.ts';
export type { ClientTlsOptions } from './client/tls.ts';
/** The WebSocket transport (ClientOptions.webSocket; the relay's is on with an HTTP port). */
export type { WebSocketOptions } from './client/websocket.ts';
/** A DNS label in lower case: what an HTTP tunnel's name must be. */
export { DEFAULT_WEBSOCKET_PING_MS, DNS_LABEL } from './shared/protocol.ts';
/** The PROXY protocol header versions a tunnel may send its local service (TunnelRequest.proxyProtocol). */
export { PROXY_PROTOCOL_VERSIONS, type ProxyProtocolVersion } from './shared/proxy-header.ts';
/** describeError: a system error in the few words burrow's own messages use for it
 * (`permission denied`, `address already in use`; else its message). */
export { BurrowError, describe as describeError, type BurrowErrorCode } from './shared/errors.ts';
export { formatTrace, type TraceEvent } from './shared/trace.ts';
export * as protocol from './shared/protocol.ts';
