import { isDrError, toDrError } from '../../kernel/errors.js'
import { backupVolumeName } from './backup-layout.js'
import { commit, type VmContext } from './context.js'
import { decideRecordMirror } from './decide.js'
import type { DrPlan } from './inputs.js'

/** Cut period of backup-volume mirrors: the VM module cuts on its own schedule; this is the longest period a Node timer can hold (about 24 days), and a cut it makes is harmless: a slot is always a complete backup or none. */
const NEVER_MS = 2 ** 31 - 1

/**
 * The mirror relationship that replicates VM `vmId`'s backup volume to the plan's destination: the one the
 * catalog knows, else an existing relationship of that volume to that site (reused), else a new one (created,
 * with its initial copy). Emits `vm.replicationRelationshipReused` or `vm.replicationRelationshipCreated`.
 *
 * @public
 */
export async function ensureMirror(ctx: VmContext, plan: DrPlan, vmId: string): Promise<string> {
  const volume = backupVolumeName(vmId)
  const known = ctx.store.state.mirrors[vmId]
  if (known !== undefined) {
    const alive = await ctx.mirrors.status(known.mirror).then(() => true, (error: unknown) => (isDrError(error, 'E_NOT_FOUND') ? false : Promise.reject(error)))
    if (alive) return known.mirror
  }
  const existing = (await ctx.mirrors.list({ site: plan.source })).find(
    (m) => m.source.site === plan.source && m.source.volume === volume && m.destination.site === plan.destination,
  )
  const mirror =
    existing?.id ??
    (await ctx.mirrors.create({ source: { site: plan.source, volume }, destination: { site: plan.destination }, cut: { every: NEVER_MS } })).id
  await commit(ctx, (state) => decideRecordMirror(state, vmId, { mirror, planId: plan.id }))
  if (existing === undefined) ctx.events.emit('vm.replicationRelationshipCreated', 'info', { vmId, mirror })
  else ctx.events.emit('vm.replicationRelationshipReused', 'info', { vmId, mirror })
  return mirror
}

/**
 * Replicates what VM `vmId`'s backup volume holds now (its complete backups and their metadata): sets the
 * relationship up if needed and cuts a delta set. Failures are reported as `vm.replicationFailed` and retried
 * at the next interval; resolves with the delta set cut, or null.
 *
 * @public
 */
export async function replicateVm(ctx: VmContext, plan: DrPlan, vmId: string): Promise<number | null> {
  let mirror = ctx.store.state.mirrors[vmId]?.mirror ?? backupVolumeName(vmId)
  try {
    mirror = await ensureMirror(ctx, plan, vmId)
    const { deltaSet } = await ctx.mirrors.cutNow(mirror)
    ctx.events.emit('vm.replicationRequested', 'info', { vmId, mirror, deltaSet })
    return deltaSet
  } catch (error) {
    ctx.events.emit('vm.replicationFailed', 'warning', { vmId, mirror, reason: toDrError(error).message })
    return null
  }
}
