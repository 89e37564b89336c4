// What the bench process and its child processes (child.ts) say to each other over the
// fork() IPC channel.

/** What a child runs, given as its command-line argument (JSON). */
export type ChildArgs =
  /** The relay server (startServer), on ephemeral control and data ports, and with `http`
   * on an ephemeral HTTP port too (tunnels by name, `NAME.localhost`). */
  | { role: 'relay'; http: boolean }
  /** The burrow client (startClient): one tunnel per local port, to the relay's ports,
   * and with `httpTunnel` one HTTP tunnel by name to that local port too; with `inspector`
   * its inspector too (startInspector on any free port, which nobody opens). With
   * `webSocketUrl` (ws://127.0.0.1:<relay's HTTP port>) it reaches the relay over
   * WebSocket there instead of on the control and data ports (issue 18). */
  | {
      role: 'client';
      controlPort: number;
      dataPort: number;
      webSocketUrl?: string | undefined;
      localPorts: number[];
      httpTunnel?: HttpTunnelArgs;
      inspector: boolean;
    }
  /** The local services (services.ts): sink, source, echo and http. */
  | { role: 'services' }
  /** Figure 7's reference (services.ts, bareProxy()): a bare node:http proxy to `target`. */
  | { role: 'proxy'; target: number };

/** An HTTP tunnel by name: `http://<name>.localhost:<relay's HTTP port>` to `localPort`. */
export interface HttpTunnelArgs {
  localPort: number;
  name: string;
}

export type Role = ChildArgs['role'];

/** The services process's ports, in this order. */
export const SERVICES = ['sink', 'source', 'echo', 'http'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ProcessStats {
  /** Resident set size, bytes. */
  rss: number;
  heapUsed: number;
  /** CPU time of all its threads, µs: on Linux the scheduler's exact sum over the threads
   * alive now, elsewhere user + system (process.cpuUsage(), counted in clock ticks). */
  cpuUs: number;
  /** The main thread's alone (Linux), µs; -1 where /proc is missing. The rest of cpuUs is
   * helper threads: V8's optimizing compiler and its concurrent marking, libuv's pool. */
  mainCpuUs: number;
  /** Open file descriptors (sockets, mostly); -1 where /proc is missing. */
  fds: number;
}

/** Parent → child. `stats` with `gc` first runs two full GCs, so RSS is not inflated by
 * garbage; `inspector` starts (`on`) or closes the client's inspector; `close` shuts down
 * and exits. */
export type ToChild =
  { type: 'stats'; id: number; gc: boolean } | { type: 'inspector'; id: number; on: boolean } | { type: 'close' };

/** Child → parent. `ready.ports`: relay [control, data, HTTP (0: none)]; client: each
 * tunnel's public port, in the order of `localPorts`, then the HTTP tunnel's (the relay's
 * HTTP port) if there is one; services: SERVICES order; proxy: its port. */
export type FromChild =
  | { type: 'ready'; ports: number[] }
  | { type: 'failed'; message: string }
  | { type: 'stats'; id: number; stats: ProcessStats }
  /** The inspector is now as asked (or `failed`, with the reason). */
  | { type: 'inspector'; id: number; failed?: string };

const isObject = (value: unknown): value is { type: unknown } =>
  typeof value === 'object' && value !== null && 'type' in value;

export function isFromChild(value: unknown): value is FromChild {
  return isObject(value) && ['ready', 'failed', 'stats', 'inspector'].includes(String(value.type));
}

export function isToChild(value: unknown): value is ToChild {
  return isObject(value) && ['stats', 'inspector', 'close'].includes(String(value.type));
}
