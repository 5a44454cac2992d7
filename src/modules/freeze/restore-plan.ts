import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { FreezeContext } from './context.js'
import { decideAltered, decideRestorePlan, describeSource, sourceView, type SourceFact } from './decide.js'
import type { SourceView } from './events.js'
import type { RestoreSource } from './inputs.js'
import { changedSince, probeSource, restoreFrom, type SourceContext } from './restore-sources.js'
import { retrying } from './retrying.js'
import type { ProtectionRecord } from './state.js'
import type { VolumeRuntime } from './volume-runtime.js'

/**
 * What one restore's data step did: the source that worked, the volume that holds the data now (the standby after
 * a swap) and its size, the blocks copied, when the restored data was captured (null: current) and how long the restore alone took.
 *
 * @public
 */
export interface RestoredData {
  readonly source: SourceView
  readonly fromVolume: string
  readonly toVolume: string
  readonly sizeBytes: number
  readonly copiedBlocks: number
  readonly restorePointAt: number | null
  readonly durationMs: number
}

/**
 * The restore sources of a protection as the source functions see them: its site and active volume, with the
 * module's storage, fence token, replica resolver and clock.
 *
 * @public
 */
export function sourceContextOf(ctx: FreezeContext, record: ProtectionRecord, signal: AbortSignal): SourceContext {
  return {
    site: record.site,
    volume: record.activeVolume,
    readOnly: record.readOnly,
    storage: ctx.storage,
    token: ctx.token,
    resolveReplica: ctx.resolveReplica,
    clock: ctx.clock,
    signal,
  }
}

/**
 * What a restore plan and its data step know about the restore: the protection, the restore, and whether a
 * rollback that would discard writes already on the volume must be refused (an unplanned restore of a protection
 * without `allowRollback`).
 *
 * @public
 */
export interface PlanContext {
  readonly record: ProtectionRecord
  readonly restoreId: string
  readonly guardRollback: boolean
}

/**
 * Decides, before anything is frozen, whether a non-disruptive restore of `run.record` is possible and from which
 * of `sources`, in order: the host must answer and at least one source must be reachable (and, when
 * `run.guardRollback`, a snapshot must not lack writes already on the volume); else `E_PRECONDITION`.
 *
 * @public
 */
export async function planRestore(ctx: FreezeContext, run: PlanContext, sources: readonly RestoreSource[], signal: AbortSignal): Promise<readonly RestoreSource[]> {
  const { record } = run
  const host = ctx.host(record.site)
  let hostReachable = true
  let hostReason: string | null = null
  try {
    await retrying(ctx.clock, () => callAdapter(host.kind, 'listMounts', () => host.listMounts()), { signal })
  } catch (error) {
    hostReachable = false
    hostReason = toDrError(error).message
  }
  const sourceCtx = sourceContextOf(ctx, record, signal)
  const facts: SourceFact[] = []
  for (const source of sources) {
    const fact = await probeSource(sourceCtx, source)
    const refused = fact.reachable && source.kind === 'snapshot' && run.guardRollback ? await refuseRollback(ctx, run, sourceCtx, source.snapshot) : null
    facts.push(refused === null ? fact : { source, reachable: false, reason: refused })
  }
  const plan = decideRestorePlan({ hostReachable, hostReason, sources: facts })
  if (plan._tag === 'Left') throw plan.left
  return plan.right
}

/**
 * Restores the data of `run.record` from the planned sources, each in turn (`freeze.sourceFailed` for each that
 * fails; `freeze.restored` for the one that works, with a consistency warning when writes reached the volume after
 * the restore point, or may have: this process saw no flushes before it started). Before the first call that changes the volume's data it records that the restore altered
 * it (`restore.altered`). With `run.guardRollback`, a snapshot is checked again right before the rollback (writes in
 * flight when the plan was made have landed since) and refused if it lacks any. `E_UNAVAILABLE` naming every
 * failure when no source works.
 *
 * @public
 */
export async function restoreData(
  ctx: FreezeContext,
  run: PlanContext & { readonly key: string; readonly runtime: VolumeRuntime },
  plan: readonly RestoreSource[],
  signal: AbortSignal,
): Promise<RestoredData> {
  const { record, runtime } = run
  const where = { site: record.site, volume: record.volume, restoreId: run.restoreId }
  const failed: Array<{ source: SourceView; code: string; message: string }> = []
  const sourceCtx: SourceContext = {
    ...sourceContextOf(ctx, record, signal),
    beforeChange: async () => void (await ctx.state.execute((state) => decideAltered(state, run.key, run.restoreId))),
  }
  for (const source of plan) {
    const began = ctx.clock.now()
    try {
      const refused = source.kind === 'snapshot' && run.guardRollback ? await refuseRollback(ctx, run, sourceCtx, source.snapshot) : null
      if (refused !== null) throw new DrError('E_PRECONDITION', refused, { reason: 'rollback', snapshot: source.kind === 'snapshot' ? source.snapshot : null })
      const outcome = await restoreFrom(sourceCtx, source)
      const durationMs = ctx.clock.now() - began
      const restorePointAt = outcome.restorePointAt
      // Writes that reached the volume after the restore point are gone, and the journal replays onto a state that
      // lacks them: a state the applications never saw (seed 004, A11). Without such writes, the restore point plus
      // the replayed journal is exactly what they saw, however old the journaled writes are. A guarded rollback
      // went ahead only because nothing reached the volume after the restore point.
      const consistencyWarning = !run.guardRollback && restorePointAt !== null && runtime.flushedSince(restorePointAt)
      const view = sourceView(source)
      const restored: RestoredData = {
        source: view,
        fromVolume: record.activeVolume,
        toVolume: outcome.toVolume,
        sizeBytes: outcome.sizeBytes,
        copiedBlocks: outcome.copiedBlocks,
        restorePointAt,
        durationMs,
      }
      ctx.events.emit('freeze.restored', consistencyWarning ? 'warning' : 'info', { ...where, ...restored, consistencyWarning, failedSources: failed })
      return restored
    } catch (thrown) {
      const error = toDrError(thrown)
      if (error.code === 'E_ABORTED') throw error
      failed.push({ source: sourceView(source), code: error.code, message: error.message })
      ctx.events.emit('freeze.sourceFailed', 'warning', { ...where, source: sourceView(source), code: error.code, message: error.message })
    }
  }
  const reasons = failed.map((f) => `${f.source.kind} "${f.source.ref}": ${f.message}`).join('; ')
  throw new DrError('E_UNAVAILABLE', `every restore source of volume ${run.key} failed (${reasons || plan.map(describeSource).join(', ')})`, { key: run.key, failed })
}

/**
 * Why rolling the volume back to `snapshot` is refused — it would discard blocks written or trimmed since the
 * snapshot, or what changed since cannot be known — after reporting it (`freeze.rollbackRefused`); null when the
 * rollback discards nothing.
 */
async function refuseRollback(ctx: FreezeContext, run: PlanContext, sourceCtx: SourceContext, snapshot: string): Promise<string | null> {
  const changed = await changedSince(sourceCtx, snapshot)
  if (changed === 0) return null
  const what = changed === null ? 'what changed since it cannot be known' : `${changed} blocks were written or trimmed since`
  const message = `rolling back to snapshot "${snapshot}" would discard writes already on the volume (${what}); set allowRollback to allow it`
  ctx.events.emit('freeze.rollbackRefused', 'warning', { site: run.record.site, volume: run.record.volume, restoreId: run.restoreId, snapshot, changedBlocks: changed, message })
  return message
}
