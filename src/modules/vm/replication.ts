import { isDrError, toDrError } from '../../kernel/errors.js'
import { backupVolumeName } from './backup-layout.js'
import { commit, type VmContext } from './context.js'
import { decideRecordMirror } from './decide.js'
import type { DrPlan } from './inputs.js'
import { mirrorKey } from './sites.js'

/** Cut period of backup-volume mirrors: the VM module cuts on its own schedule; this is the longest period a Node timer can hold (about 24 days), and a cut it makes is harmless: a slot is always a complete backup or none. */
const NEVER_MS = 2 ** 31 - 1

/**
 * One hop of a plan's replication: the source volume (site and name) and the site it is replicated to, where the
 * replica takes the name of the VM's backup volume.
 *
 * @public
 */
export interface ReplicationHop {
  readonly from: { readonly site: string; readonly volume: string }
  readonly to: string
}

/**
 * The mirror relationship of hop `hop` of VM `vmId`'s backups (its backup volume to the plan's destination, or a
 * tertiary site's cascade): the one the catalog knows, else an existing relationship of that volume to that site
 * (reused), else a new one (created, with its initial copy). Emits `vm.replicationRelationshipReused` or
 * `vm.replicationRelationshipCreated`.
 *
 * @public
 */
export async function ensureMirror(ctx: VmContext, plan: DrPlan, vmId: string, hop: ReplicationHop): Promise<string> {
  const key = mirrorKey(plan, vmId, hop.to)
  const known = ctx.store.state.mirrors[key]
  if (known !== undefined) {
    const alive = await ctx.mirrors.status(known.mirror).then(() => true, (error: unknown) => (isDrError(error, 'E_NOT_FOUND') ? false : Promise.reject(error)))
    if (alive) return known.mirror
  }
  const existing = (await ctx.mirrors.list({ site: hop.from.site })).find(
    (m) => m.source.site === hop.from.site && m.source.volume === hop.from.volume && m.destination.site === hop.to,
  )
  const created = async (): Promise<string> =>
    (await ctx.mirrors.create({ source: hop.from, destination: { site: hop.to, volume: backupVolumeName(vmId) }, cut: { every: NEVER_MS } })).id
  const mirror = existing?.id ?? (await created())
  await commit(ctx, (state) => decideRecordMirror(state, key, hop.to === plan.destination ? { mirror, planId: plan.id } : { mirror, planId: plan.id, site: hop.to }))
  if (existing === undefined) ctx.events.emit('vm.replicationRelationshipCreated', 'info', { vmId, mirror })
  else ctx.events.emit('vm.replicationRelationshipReused', 'info', { vmId, mirror })
  return mirror
}

/**
 * Replicates what hop `hop` of VM `vmId`'s backups holds now (complete backups and their metadata): sets the
 * relationship up if needed and cuts a delta set. Failures are reported as `vm.replicationFailed` and retried at
 * the next interval; resolves with the delta set cut, or null.
 *
 * @public
 */
export async function replicateVm(ctx: VmContext, plan: DrPlan, vmId: string, hop: ReplicationHop): Promise<number | null> {
  let mirror = ctx.store.state.mirrors[mirrorKey(plan, vmId, hop.to)]?.mirror ?? hop.from.volume
  try {
    mirror = await ensureMirror(ctx, plan, vmId, hop)
    const { deltaSet } = await ctx.mirrors.cutNow(mirror)
    ctx.events.emit('vm.replicationRequested', 'info', { vmId, mirror, deltaSet })
    return deltaSet
  } catch (error) {
    ctx.events.emit('vm.replicationFailed', 'warning', { vmId, mirror, reason: toDrError(error).message })
    return null
  }
}
