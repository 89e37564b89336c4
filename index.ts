// burrow as a library: start a relay server or a client in-process.
export {
  startServer,
  BurrowServer,
  type ServerOptions,
  type ServerTlsOptions,
  type ServerStats,
  type BurrowServerEvents,
  type RefusedEvent,
  type ServerTotals,
} from './server/server.ts';
export { startMetrics, parseMetricsAddress, type MetricsOptions, type MetricsEndpoint } from './server/metrics.ts';
export { loadOrCreateCertificate, defaultTlsDir, type StoredCertificate } from './server/self-signed-cert.ts';
export { fingerprintOf } from './shared/fingerprint.ts';
export { DEFAULT_LIMITS, type Limits } from './server/limits.ts';
export {
  startClient,
  BurrowClient,
  type ClientOptions,
  type TunnelRequest,
  type OpenTunnel,
  type ConnectionEvent,
  type BurrowClientEvents,
} from './client/client.ts';
export type { ConnectionTotals } from './client/connection.ts';
export type { ClientTlsOptions } from './client/tls.ts';
export { BurrowError, type BurrowErrorCode } from './shared/errors.ts';
export { formatTrace, type TraceEvent } from './shared/trace.ts';
export * as protocol from './shared/protocol.ts';
