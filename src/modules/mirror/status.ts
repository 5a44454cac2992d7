import { callAdapter } from '../../kernel/errors.js'
import type { Coordinator } from './coordinator.js'
import { deltaSetSnapshot } from './naming.js'
import { otherSide, sideOf, type MirrorStateName, type Relationship, type RestartPoint } from './state.js'

/**
 * One side of a relationship in a status report: where it is and whether it is writable now (null when its
 * storage cannot be asked).
 *
 * @public
 */
export interface MirrorSideStatus {
  readonly site: string
  readonly volume: string
  readonly writable: boolean | null
}

/**
 * The status of a relationship: state, direction and epoch; the last delta set cut, sent, completely received
 * and played back; the lag (bytes not yet at the destination, and seconds since the recovery point when there
 * is any); the recovery point (the newest delta set applied at the destination and its age, i.e. the RPO now);
 * the restart point after a failover; and transfer counters.
 *
 * @public
 */
export interface MirrorStatus {
  readonly id: string
  readonly state: MirrorStateName
  readonly operation: string | null
  readonly epoch: number
  readonly direction: 'forward' | 'reverse'
  readonly source: MirrorSideStatus
  readonly destination: MirrorSideStatus
  readonly lastCut: { readonly deltaSet: number; readonly cutAt: number | null } | null
  readonly lastSent: number | null
  readonly lastReceived: number | null
  readonly lastPlayedBack: number | null
  readonly lagBytes: number | null
  readonly lagSeconds: number | null
  readonly recoveryPoint: { readonly deltaSet: number; readonly cutAt: number; readonly ageSeconds: number; readonly snapshot: string } | null
  readonly restartPoint: (RestartPoint & { readonly site: string; readonly volume: string }) | null
  readonly connected: boolean
  readonly fenced: boolean
  readonly lastError: string | null
  readonly transfer: { readonly chunkFramesSent: number; readonly bytesSent: number; readonly bandwidthBytesPerSecond: number | null }
}

async function writable(co: Coordinator, ref: { readonly site: string; readonly volume: string }): Promise<boolean | null> {
  try {
    const storage = co.storage(ref.site)
    return (await callAdapter(storage.kind, 'volumeInfo', () => storage.volumeInfo(ref.volume))).writable
  } catch {
    return null
  }
}

/**
 * Computes the status of `rel` from the coordinator's record and the live state of both sites' agents.
 *
 * @public
 */
export async function mirrorStatus(co: Coordinator, rel: Relationship): Promise<MirrorStatus> {
  const src = sideOf(rel, rel.primary)
  const dst = sideOf(rel, otherSide(rel.primary))
  const source = (await co.agent(src.site).catch(() => undefined))?.source(rel.id)
  const destination = (await co.agent(dst.site).catch(() => undefined))?.destination(rel.id)
  const sp = source?.progress()
  const dp = destination?.progress()
  const played = dp?.played ?? sp?.remotePlayed ?? null
  const received = [...(dp?.complete ?? sp?.remoteComplete ?? []), ...(played === null ? [] : [played])]
  let lagBytes: number | null = null
  if (source !== undefined) {
    try {
      lagBytes = (await source.cuts.pendingBytes()) + (await source.cuts.backlogBytes(played))
    } catch {
      lagBytes = null
    }
  }
  const now = co.deps.clock.now()
  const playedCutAt = dp?.playedCutAt ?? null
  const recoveryPoint =
    played === null || playedCutAt === null
      ? null
      : { deltaSet: played, cutAt: playedCutAt, ageSeconds: Math.max(0, now - playedCutAt) / 1000, snapshot: deltaSetSnapshot(rel.id, played) }
  const rp = rel.restartPoint
  return {
    id: rel.id,
    state: rel.state,
    operation: rel.operation?.kind ?? null,
    epoch: rel.epoch,
    direction: rel.primary === 'a' ? 'forward' : 'reverse',
    source: { ...src, writable: await writable(co, src) },
    destination: { ...dst, writable: await writable(co, dst) },
    lastCut: sp?.lastCut == null ? null : { deltaSet: sp.lastCut.n, cutAt: sp.lastCut.cutAt },
    lastSent: sp?.lastSent ?? null,
    lastReceived: received.length === 0 ? null : Math.max(...received),
    lastPlayedBack: played,
    lagBytes,
    lagSeconds: lagBytes === 0 ? 0 : (recoveryPoint?.ageSeconds ?? null),
    recoveryPoint,
    restartPoint: rp === null ? null : { ...rp, ...sideOf(rel, rp.side) },
    connected: (sp?.connected ?? false) || (dp?.connected ?? false),
    fenced: sp?.fenced ?? false,
    lastError: sp?.lastError ?? dp?.lastError ?? null,
    transfer: { chunkFramesSent: sp?.chunkFramesSent ?? 0, bytesSent: sp?.bytesSent ?? 0, bandwidthBytesPerSecond: rel.transfer.bandwidthBytesPerSecond ?? null },
  }
}
