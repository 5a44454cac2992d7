import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { FreezeContext } from './context.js'
import { decideRestorePlan, describeSource, sourceView } from './decide.js'
import type { SourceView } from './events.js'
import type { RestoreSource } from './inputs.js'
import { probeSource, restoreFrom, type SourceContext } from './restore-sources.js'
import { retrying } from './retrying.js'
import type { ProtectionRecord } from './state.js'
import type { VolumeRuntime } from './volume-runtime.js'

/**
 * What one restore's data step did: the source that worked, the volume that holds the data now (the standby after
 * a swap), the blocks copied, when the restored data was captured (null: current) and how long the restore alone took.
 *
 * @public
 */
export interface RestoredData {
  readonly source: SourceView
  readonly fromVolume: string
  readonly toVolume: string
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
 * Decides, before anything is frozen, whether a non-disruptive restore of `record` is possible and from which of
 * `sources`, in order: the host must answer and at least one source must be reachable; else `E_PRECONDITION`.
 *
 * @public
 */
export async function planRestore(ctx: FreezeContext, record: ProtectionRecord, sources: readonly RestoreSource[], signal: AbortSignal): Promise<readonly RestoreSource[]> {
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
  const facts = []
  for (const source of sources) facts.push(await probeSource(sourceCtx, source))
  const plan = decideRestorePlan({ hostReachable, hostReason, sources: facts })
  if (plan._tag === 'Left') throw plan.left
  return plan.right
}

/**
 * Restores the data of `record` from the planned sources, each in turn (`freeze.sourceFailed` for each that fails;
 * `freeze.restored` for the one that works, with a consistency warning when writes reached the volume after the
 * restore point). `E_UNAVAILABLE` naming every failure when none works.
 *
 * @public
 */
export async function restoreData(
  ctx: FreezeContext,
  run: { readonly key: string; readonly restoreId: string; readonly record: ProtectionRecord; readonly runtime: VolumeRuntime; readonly oldestJournaled: number | null },
  plan: readonly RestoreSource[],
  signal: AbortSignal,
): Promise<RestoredData> {
  const { record, runtime } = run
  const where = { site: record.site, volume: record.volume, restoreId: run.restoreId }
  const failed: Array<{ source: SourceView; code: string; message: string }> = []
  for (const source of plan) {
    const began = ctx.clock.now()
    try {
      const outcome = await restoreFrom(sourceContextOf(ctx, record, signal), source)
      const durationMs = ctx.clock.now() - began
      const restorePointAt = outcome.restorePointAt
      const consistencyWarning = restorePointAt !== null && (runtime.flushedSince(restorePointAt) || (run.oldestJournaled !== null && run.oldestJournaled < restorePointAt))
      const view = sourceView(source)
      const restored: RestoredData = { source: view, fromVolume: record.activeVolume, toVolume: outcome.toVolume, copiedBlocks: outcome.copiedBlocks, restorePointAt, durationMs }
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
