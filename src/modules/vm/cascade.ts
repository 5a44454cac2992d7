import { callAdapter, isDrError, toDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StoragePort } from '../../ports/storage.js'
import { copyChangedBlocks, copyRegion } from './backup-volume.js'
import { siteOf, type VmContext } from './context.js'
import type { DrPlan } from './inputs.js'
import { holdRecoveryPoint } from './recovery-point.js'
import { replicateVm } from './replication.js'

/** The config record of a cascade volume: the replicated snapshot it holds a copy of. */
const CASCADED_FROM = 'drkit.vm.cascadedFrom'
/** The hold the cascade keeps on the replicated snapshot it copied last (the base of the next copy). */
const CASCADE_HOLD = 'drkit.vm.cascade'

/**
 * The name of the cascade volume of VM `vmId` on a plan's destination: the local copy of the newest replicated
 * snapshot of its backup volume, which is replicated on to the plan's tertiary sites.
 *
 * @public
 */
export function cascadeVolumeName(vmId: string): string {
  return `drvmc-${vmId}`
}

/**
 * Cascades VM `vmId`'s backups from the plan's destination to tertiary site `site` (note 003 ¶0046: secondary
 * storage objects replicated again to tertiary ones, vol-s → vol-t). The destination's replica of the backup
 * volume cannot be a mirror source itself (replication writes it), so the cascade first brings a local volume on
 * the destination up to the replica's newest replicated snapshot — a consistent point, held while it is copied and
 * kept as the base of the next copy, so only changed blocks are copied — and then replicates that volume to the
 * tertiary site, where it arrives as the VM's backup volume. Nothing happens while the destination's replica is
 * not replicating (after a failover) or has no replicated snapshot yet. A tertiary site therefore lags the
 * destination by up to one replication interval. Failures are reported as `vm.replicationFailed`; resolves with
 * the delta set cut towards `site`, or null.
 *
 * @public
 */
export async function cascadeVm(ctx: VmContext, plan: DrPlan, vmId: string, site: string): Promise<number | null> {
  const tier1 = ctx.store.state.mirrors[vmId]
  if (tier1 === undefined || tier1.planId !== plan.id) return null
  try {
    const status = await ctx.mirrors.status(tier1.mirror)
    if (status.state !== 'replicating' || status.destination.site !== plan.destination) return null
    const token = ctx.token()
    const point = await holdRecoveryPoint(ctx, plan.destination, tier1.mirror, CASCADE_HOLD, token)
    if (point === undefined) return null
    await refreshCascade(siteOf(ctx, plan.destination).storage, token, point.volume, point.snapshot, cascadeVolumeName(vmId))
  } catch (error) {
    ctx.events.emit('vm.replicationFailed', 'warning', { vmId, mirror: tier1.mirror, reason: `cascade to ${site}: ${toDrError(error).message}` })
    return null
  }
  return replicateVm(ctx, plan, vmId, { from: { site: plan.destination, volume: cascadeVolumeName(vmId) }, to: site })
}

/** Brings cascade volume `local` up to snapshot `snapshot` of replica `replica`, which the cascade holds (see {@link cascadeVm}). */
async function refreshCascade(storage: StoragePort, token: FenceToken, replica: string, snapshot: string, local: string): Promise<void> {
  const info = await callAdapter(storage.kind, 'volumeInfo', () => storage.volumeInfo(replica))
  const existing = await storage.volumeInfo(local).catch((error: unknown) => (isDrError(error, 'E_NOT_FOUND') ? undefined : Promise.reject(error)))
  if (existing === undefined) {
    await callAdapter(storage.kind, 'createVolume', () => storage.createVolume({ name: local, sizeBytes: info.sizeBytes, blockSize: info.blockSize }, token))
  } else if (existing.sizeBytes < info.sizeBytes) {
    await callAdapter(storage.kind, 'resizeVolume', () => storage.resizeVolume(local, info.sizeBytes, token))
  }
  const from = await storage.getConfig(local, CASCADED_FROM)
  if (from === snapshot) return
  const base = typeof from === 'string' && (await held(storage, replica, from)) ? from : null
  if (base === null) await copyRegion({ storage, volume: replica, offset: 0, source: { snapshot } }, { storage, volume: local, offset: 0 }, info.sizeBytes, token)
  else await copyChangedBlocks(storage, { volume: replica, base, snapshot }, { volume: local, offset: 0 }, token)
  await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(local, CASCADED_FROM, snapshot, token))
  for (const older of await callAdapter(storage.kind, 'listSnapshots', () => storage.listSnapshots(replica))) {
    if (older.name === snapshot || !older.holds.includes(CASCADE_HOLD)) continue
    await callAdapter(storage.kind, 'releaseSnapshot', () => storage.releaseSnapshot(replica, older.name, CASCADE_HOLD, token)).catch((error: unknown) => {
      if (!isDrError(error, 'E_NOT_FOUND')) throw error
    })
  }
}

/** True when snapshot `snapshot` of `volume` still exists with the cascade's hold (so it is an exact base). */
async function held(storage: StoragePort, volume: string, snapshot: string): Promise<boolean> {
  try {
    return (await storage.snapshotInfo(volume, snapshot)).holds.includes(CASCADE_HOLD)
  } catch (error) {
    if (isDrError(error, 'E_NOT_FOUND')) return false
    throw error
  }
}
