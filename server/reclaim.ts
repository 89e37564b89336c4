// A client presenting the lease of a public port gets it back: from a lease kept after it
// dropped, or from a tunnel of its old connection that the server has not yet seen die
// (a zombie). The token stays the same, so it names the client's tunnel across reconnects.
import { sameToken } from '../shared/secret.ts';
import type { ServerContext } from './context.ts';
import type { TunnelSession } from './tunnel.ts';

/** At most this long to hear from the holder of a live tunnel before taking it over. */
const HOLDER_PING_MS = 2_000;

/**
 * Takes `port` for `claimant` if `lease` is its token. Returns the address the port was
 * counted for (the caller moves it), `'no'` if the lease does not match or the port is
 * unknown (the port is then asked for as any other: taken, it is refused), or `'in-use'`
 * when another process that is still alive holds the tunnel with that same lease (two
 * clients sharing one lease file): it keeps it.
 */
export async function reclaimPort(
  ctx: ServerContext,
  claimant: TunnelSession,
  port: number,
  lease: string,
): Promise<{ address: string } | 'no' | 'in-use'> {
  const live = ctx.liveTunnels.get(port);
  if (live) {
    if (!sameToken(live.lease, lease)) return 'no';
    const holder = live.session;
    if (holder !== claimant && !sameProcess(holder, claimant) && !(await isGone(holder, ctx))) return 'in-use';
    // The holder's connection may have closed while we asked (a zombie answering the PING
    // with a reset): its tunnel then went under lease, which the claim below takes.
    if (ctx.liveTunnels.get(port) === live) {
      live.close('handover');
      holder.forget(live);
      return { address: holder.address };
    }
  }
  const claim = ctx.leases.claim(port, lease);
  if (typeof claim !== 'object') return 'no';
  ctx.ports.release(port);
  return claim;
}

/** Both connections come from one client process (the same `fin-check` instance). */
const sameProcess = (a: TunnelSession, b: TunnelSession): boolean =>
  a.clientInstance !== undefined && a.clientInstance === b.clientInstance;

/** True if the holder does not answer a PING soon (a zombie of a crashed client, or one
 * that never agreed to heartbeats, so it cannot say). */
function isGone(holder: TunnelSession, ctx: ServerContext): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(true), Math.min(HOLDER_PING_MS, ctx.limits.heartbeatTimeoutMs));
    holder.confirmAlive((alive) => {
      clearTimeout(timer);
      resolve(!alive);
    });
  });
}
