import { DrError, toDrError } from '../../kernel/errors.js'
import type { FreezeContext } from './context.js'
import { decideFinish, heldIoError } from './decide.js'
import { replayJournal } from './journal-steps.js'
import type { ProtectionRecord, RestoreSummary } from './state.js'
import type { VolumeRuntime } from './volume-runtime.js'

/**
 * How far one run of a restore got, as its compensations need to know: the step running when it failed (`begin`
 * and `assess` mean nothing was frozen or dismounted: the restore was impossible), the error, whether its `begin`
 * step completed (else no compensation runs), and whether its data step completed (the volume then holds whole
 * restored data, even if a later step failed).
 *
 * @internal
 */
export interface RestoreProgress {
  stage: string
  error?: DrError
  begun: boolean
  dataRestored: boolean
}

/**
 * True when a failed restore must leave the volume dismounted rather than mount it again with its identity (seed
 * 004, behaviour 27 and A14): the volume was dismounted already when the restore began, or the restore started
 * changing its data (`restore.altered`) and its data step did not complete, so the data may be damaged.
 *
 * @internal
 */
export function keepsDismounted(record: ProtectionRecord, progress: RestoreProgress): boolean {
  return record.dismounted === true || (record.restore?.altered === true && !progress.dataRestored)
}

/**
 * After a failure: the journaled writes go back to the volume (in order, idempotently) and then leave the caches
 * that still hold them, so that they survive even if this process dies before the caches would have flushed. Onto a
 * volume kept dismounted they do not go (the next restore would overwrite them): they stay in the caches, which
 * journal them again for that restore. Either way a journal that is kept is reported (`freeze.journalRetained`).
 *
 * @internal
 */
export async function writeBackJournal(ctx: FreezeContext, restore: { key: string; restoreId: string }, runtime: VolumeRuntime, progress: RestoreProgress): Promise<void> {
  const record = ctx.state.protection(restore.key)
  const loaded = await ctx.journal.load(restore.restoreId).catch(() => undefined)
  if (loaded === undefined || loaded.removed || loaded.writes.length === 0) return
  const retained = (error: DrError): void =>
    void ctx.events.emit('freeze.journalRetained', 'critical', {
      site: record.site,
      volume: record.volume,
      restoreId: restore.restoreId,
      writes: loaded.writes.length,
      code: error.code,
      message: error.message,
    })
  if (keepsDismounted(record, progress)) {
    retained(new DrError('E_UNAVAILABLE', `volume ${restore.key} stays dismounted; its journaled writes wait in the caches for the next restore`, { key: restore.key }))
    return
  }
  try {
    await replayJournal(ctx, runtime, restore.restoreId, { site: record.site, volume: record.activeVolume }, new AbortController().signal)
  } catch (thrown) {
    retained(toDrError(thrown))
  }
}

/**
 * The last compensation of a failed restore: records how it ended (and whether the volume stays dismounted),
 * releases the held I/O with a clear error, and reports it (`freeze.restoreImpossible` when nothing was frozen,
 * else `freeze.restoreFailed`).
 *
 * @internal
 */
export async function finishFailed(ctx: FreezeContext, restore: { key: string; restoreId: string }, runtime: VolumeRuntime, progress: RestoreProgress): Promise<void> {
  const error = progress.error ?? new DrError('E_INTERNAL', `restore ${restore.restoreId} failed`)
  const record = ctx.state.protection(restore.key)
  const impossible = progress.stage === 'begin' || progress.stage === 'assess'
  const volumeDismounted = keepsDismounted(record, progress)
  const retainedJournal = volumeDismounted ? await retainedJournalOf(ctx, restore.restoreId, record) : null
  runtime.disarmAll()
  const released = releaseGate(runtime, restore.restoreId) ? runtime.gate.fail(heldIoError(restore.key, error)) : 0
  const summary: RestoreSummary = {
    restoreId: restore.restoreId,
    outcome: impossible ? 'impossible' : 'failed',
    startedAt: record.restore?.startedAt ?? ctx.clock.now(),
    finishedAt: ctx.clock.now(),
    source: null,
    freezeWindowMs: null,
    code: error.code,
    message: error.message,
    volumeDismounted,
    retainedJournal,
  }
  await ctx.state.execute((state) => decideFinish(state, restore.key, summary))
  runtime.forgetReleased(restore.restoreId)
  const where = { site: record.site, volume: record.volume, restoreId: restore.restoreId }
  if (impossible) ctx.events.emit('freeze.restoreImpossible', 'error', { ...where, reason: error.message, released })
  else ctx.events.emit('freeze.restoreFailed', 'error', { ...where, stage: progress.stage, code: error.code, message: error.message, released, volumeDismounted })
}

/**
 * The journal the next restore of a volume kept dismounted must replay: this restore's, when it saved one (it holds
 * whatever an earlier retained journal held too), else the one retained before.
 */
async function retainedJournalOf(ctx: FreezeContext, restoreId: string, record: ProtectionRecord): Promise<string | null> {
  const own = await ctx.journal.load(restoreId).catch(() => undefined)
  return own !== undefined && !own.removed ? restoreId : (record.retainedJournal ?? null)
}

/**
 * True when restore `restoreId` is the one holding the runtime's gate (or none is); it then stops being the one
 * detections coalesce into, so that a disruption seen after it ends starts a new restore.
 *
 * @internal
 */
export function releaseGate(runtime: VolumeRuntime, restoreId: string): boolean {
  if (runtime.active !== undefined && runtime.active.restoreId !== restoreId) return false
  runtime.active = undefined
  return true
}
