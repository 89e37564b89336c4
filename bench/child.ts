// A process of the bench: the relay server, the burrow client, the local services, or
// figure 7's bare proxy.
// Started by children.ts (`node --expose-gc --import tsx bench/child.ts '<ChildArgs JSON>'`)
// so its CPU time and RSS are its own; answers `stats` over IPC, and exits when told to
// close or when the bench process goes away.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import type * as Library from '../index.ts';
import type { Inspector, TunnelRequest } from '../index.ts';
import { HOST } from './io.ts';
import { isToChild, type ChildArgs, type FromChild, type ProcessStats } from './messages.ts';
import { bareProxy, echo, listenHttp, listenTcp, sink, source } from './services.ts';

/** The built library (`npm run build`, which `npm run bench` runs first): what `burrow`
 * and an `import 'burrow-tunnel'` run. The sources through tsx cost more per call (its
 * transform wraps every function; bench/README.md, *Performance, round two*). */
const LIBRARY = new URL('../dist/index.js', import.meta.url).href;
const { startClient, startInspector, startServer } = (await import(LIBRARY)) as typeof Library;

/** The library's defaults cap a tunnel at 512 connections, 64 waiting visitors and a
 * client at 1024 connections (sane for a public relay); the concurrency figure holds
 * 10,000 on one tunnel, so the bench lifts them. Timeouts stay at their defaults. */
const UNLIMITED = 1_000_000;

interface Running {
  ports: number[];
  /** The client's: starts or closes its inspector. */
  inspect?: (on: boolean) => Promise<void>;
  close(): Promise<void>;
}

async function start(args: ChildArgs): Promise<Running> {
  switch (args.role) {
    case 'relay': {
      const server = await startServer({
        controlPort: 0,
        dataPort: 0,
        bind: HOST,
        maxConnectionsPerTunnel: UNLIMITED,
        maxPendingPerTunnel: UNLIMITED,
        maxPending: UNLIMITED,
        ...(args.http ? { httpPort: 0 } : {}),
      });
      const http = server.httpPorts.http ?? 0;
      return { ports: [server.controlPort, server.dataPort, http], close: () => server.destroy() };
    }
    case 'client': {
      const tunnels: TunnelRequest[] = args.localPorts.map((localPort) => ({ localPort }));
      const named = args.httpTunnel;
      if (named) tunnels.push({ localPort: named.localPort, http: { name: named.name } });
      const client = await startClient({
        tunnels,
        server: HOST,
        localHost: HOST,
        controlPort: args.controlPort,
        dataPort: args.dataPort,
        maxConnections: UNLIMITED,
        // No proxy: a bench machine's HTTP_PROXY must not carry loopback traffic.
        ...(args.webSocketUrl === undefined ? {} : { webSocket: { url: args.webSocketUrl, proxy: false } }),
      });
      client.on('warning', (warning) => process.stderr.write(`bench client: ${warning.message}\n`));
      const last = client.tunnels.at(-1);
      const expected = named && last && `http://${named.name}.localhost:${last.publicPort}`;
      if (expected !== undefined && last?.url !== expected) {
        await client.destroy();
        throw new Error(`the HTTP tunnel's url is ${last?.url ?? 'missing'}, expected ${expected}`);
      }
      const ports = client.tunnels.map((tunnel) => tunnel.publicPort);
      // The inspector can be started and closed while the client runs (the inspector
      // figure measures the client with it and without it, in turns).
      let inspector: Inspector | undefined;
      const inspect = async (on: boolean): Promise<void> => {
        if (on && !inspector) inspector = await startInspector(client, { port: 0 });
        if (!on && inspector) {
          const closing = inspector;
          inspector = undefined;
          await closing.close();
        }
      };
      try {
        await inspect(args.inspector);
      } catch (error) {
        await client.destroy();
        throw error;
      }
      return {
        ports,
        inspect,
        close: async () => {
          if (inspector)
            await reportInspector(inspector).catch((error: unknown) =>
              process.stderr.write(`bench client: the inspector's API did not answer: ${String(error)}\n`),
            );
          await inspect(false);
          await client.destroy();
        },
      };
    }
    case 'proxy': {
      const proxy = await bareProxy(args.target);
      return { ports: [proxy.port], close: () => proxy.close() };
    }
    case 'services': {
      const services = [await listenTcp(sink), await listenTcp(source), await listenTcp(echo), await listenHttp()]; // SERVICES order
      return {
        ports: services.map((service) => service.port),
        close: async () => {
          for (const service of services) await service.close();
        },
      };
    }
  }
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Once the measurements are over (when told to close): what the inspector kept, from its
 * own JSON API (the only time anyone asks it), and the heap after GC, on stderr. So a run
 * with --inspector shows that it was capturing, and whether its history stayed bounded. */
async function reportInspector(inspector: Inspector): Promise<void> {
  const count = async (path: string): Promise<unknown[]> => {
    const answer = await fetch(new URL(path, inspector.url), { signal: AbortSignal.timeout(5_000) });
    const body: unknown = await answer.json();
    if (!answer.ok || !Array.isArray(body)) throw new Error(`${path}: ${answer.status} ${JSON.stringify(body)}`);
    return body as unknown[];
  };
  const connections = await count('/api/connections');
  const requests = await count('/api/requests');
  const captured = requests.filter((r) => typeof r === 'object' && r !== null && 'captured' in r && r.captured).length;
  const { heapUsed, rss, fds } = await stats(true);
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  process.stderr.write(
    `bench client: the inspector (${inspector.url}) kept ${connections.length} connections and ` +
      `${requests.length} requests (${captured} with headers and bodies); heap ${mib(heapUsed)}, RSS ${mib(rss)} after GC, ${fds} fds open\n`,
  );
}

async function stats(collect: boolean): Promise<ProcessStats> {
  if (collect && gc) {
    // Two GCs with a pause: V8 frees ArrayBuffer memory on a helper thread.
    gc();
    await delay(10);
    gc();
  }
  const cpu = process.cpuUsage();
  const threads = threadsCpuUs();
  const memory = process.memoryUsage();
  let fds = -1;
  try {
    fds = readdirSync('/proc/self/fd').length;
  } catch {
    // not Linux
  }
  const cpuUs = threads?.all ?? cpu.user + cpu.system;
  return { rss: memory.rss, heapUsed: memory.heapUsed, cpuUs, mainCpuUs: threads?.main ?? -1, fds };
}

/** CPU time from the kernel's scheduler, µs, of every thread (`all`) and of the main one:
 * each thread's schedstat starts with its run time in ns, exact where process.cpuUsage()
 * is counted in clock ticks. Undefined where /proc is missing. */
function threadsCpuUs(): { all: number; main: number } | undefined {
  const runNs = (tid: string): number =>
    Number(readFileSync(`/proc/${process.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  try {
    let all = 0;
    for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
      try {
        all += runNs(tid);
      } catch {
        // the thread ended since the listing
      }
    }
    const main = runNs(String(process.pid));
    return Number.isFinite(all) && Number.isFinite(main) ? { all: all / 1000, main: main / 1000 } : undefined;
  } catch {
    return undefined; // not Linux
  }
}

const send = (message: FromChild): void => {
  process.send?.(message);
};

let running: Running | undefined;
let exiting = false;
async function exit(code: number): Promise<void> {
  if (exiting) return;
  exiting = true;
  const backstop = setTimeout(() => process.exit(code), 10_000); // a close that hangs
  backstop.unref();
  await running?.close().catch(() => undefined);
  process.exit(code); // also writes the --cpu-prof profile
}

process.on('message', (message: unknown) => {
  if (!isToChild(message)) return;
  if (message.type === 'close') void exit(0);
  else if (message.type === 'stats')
    void stats(message.gc).then((value) => send({ type: 'stats', id: message.id, stats: value }));
  else {
    const { id, on } = message;
    const inspect = running?.inspect ?? (() => Promise.reject(new Error('only the client has an inspector')));
    inspect(on).then(
      () => send({ type: 'inspector', id }),
      (error: unknown) =>
        send({ type: 'inspector', id, failed: error instanceof Error ? error.message : String(error) }),
    );
  }
});
process.once('disconnect', () => void exit(0)); // the bench process is gone

try {
  running = await start(JSON.parse(process.argv[2] ?? '') as ChildArgs);
  send({ type: 'ready', ports: running.ports });
} catch (error) {
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  await exit(1);
}
