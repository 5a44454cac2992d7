import * as t from 'io-ts'
import { DrError, DrErrorCodes, callAdapter, isDrError, toDrError, type DrErrorCode } from '../../kernel/errors.js'
import { isInterruption } from '../../kernel/workflow.js'
import { JsonValue, type Json } from '../../kernel/codecs.js'
import type { StepContext, StepOptions, WorkflowContext } from '../../kernel/workflow.js'
import { armLateSweep, freezeActors, thawActors, rearmActorTimeouts, type FreezeScope } from './actor-freezer.js'
import type { FreezeContext } from './context.js'
import { decideFinish, decideRepoint } from './decide.js'
import { RestoreSourceCodec, type RestoreSource } from './inputs.js'
import { journalCachedWrites, replayJournal } from './journal-steps.js'
import { captureMount, remountVolume, restoreOriginalMount } from './mounting.js'
import { finishFailed, keepsDismounted, releaseGate, writeBackJournal, type RestoreProgress } from './restore-failure.js'
import { BeginCodec, awaitJoined, beginRestore, type Begin } from './restore-join.js'
import { planRestore, restoreData } from './restore-plan.js'
import { retrying } from './retrying.js'
import { RestoreSummaryCodec, type ProtectionRecord, type RestoreSummary } from './state.js'
import type { VolumeRuntime } from './volume-runtime.js'

/**
 * The workflow type of a non-disruptive restore.
 *
 * @public
 */
export const RESTORE_WORKFLOW = 'freeze.restore'

/**
 * The journaled input of a restore: the protected volume, the restore id, how the disruption was detected, the
 * sources to use (null: the protection's own), actors a report named, and the error that revealed it.
 *
 * @public
 */
export const RestoreWorkflowInput = t.type(
  {
    key: t.string,
    restoreId: t.string,
    channel: t.string,
    planned: t.boolean,
    sources: t.union([t.array(RestoreSourceCodec), t.null]),
    actors: t.array(t.string),
  },
  'RestoreWorkflowInput',
)

/**
 * One restore's journaled input.
 *
 * @public
 */
export type RestoreWorkflowInput = t.TypeOf<typeof RestoreWorkflowInput>

/**
 * What a finished restore returns: its summary (outcome, source, freeze window), the volume now backing the mount,
 * the blocks copied and how many journaled writes were replayed.
 *
 * @public
 */
export interface RestoreResult {
  readonly summary: RestoreSummary
  readonly activeVolume: string
  readonly copiedBlocks: number
  readonly replayedWrites: number
}

/** The mount as captured before the dismount, with what the embedder's hooks saved. */
const CapturedCodec = t.type({
  mount: t.type({ path: t.string, volume: t.string, identity: t.string, options: t.record(t.string, t.string), readOnly: t.boolean }),
  hooks: t.record(t.string, JsonValue),
})
type Captured = t.TypeOf<typeof CapturedCodec>

/** What the `restore` step recorded (without the size, as earlier versions recorded it). */
const RestoredCodec = t.intersection([
  t.type({
    source: t.type({ kind: t.keyof({ snapshot: null, replica: null, standby: null }), ref: t.string }),
    fromVolume: t.string,
    toVolume: t.string,
    copiedBlocks: t.number,
    restorePointAt: t.union([t.number, t.null]),
    durationMs: t.number,
  }),
  t.partial({ sizeBytes: t.number }),
])
type Restored = t.TypeOf<typeof RestoredCodec>

/** What the steps after `assess` share. */
interface RestoreRun {
  readonly runtime: VolumeRuntime
  readonly scope: FreezeScope
  readonly plan: RestoreSource[]
  readonly startedAt: number
  readonly progress: RestoreProgress
  readonly protection: () => ProtectionRecord
}

/**
 * The non-disruptive restore of one protected volume (seed 004, FIG. 4 with FIG. 5 spliced in), as a durable
 * workflow of twelve steps:
 *
 * `begin` → `assess` (host and sources; infeasible: nothing is frozen or dismounted) → `freeze` (only the actors
 * doing I/O to the volume) → `capture` (mount path, identity, options, the embedder's hooks) → `journal` (cached
 * writes, off the volume) → `lock` (update lock, random backoff, bounded) → `dismount` → `restore` (each planned
 * source in turn) → `remount` (same path and identity, checked) → `replay` (journaled writes, in order) →
 * `unlock` → `thaw` (actors, then held I/O in arrival order).
 *
 * Every step is idempotent, so a crash anywhere is resumed by running the workflow again. On failure the
 * compensations put the original volume back at its path — unless the restore had started changing its data and
 * did not finish, or it was dismounted already: then it stays dismounted (seed 004, behaviour 27) — write the
 * journal back if the caches that held it are gone, release the lock, thaw the actors, and fail the held I/O with
 * a clear error.
 *
 * @public
 */
export class RestoreWorkflow {
  readonly #ctx: FreezeContext
  readonly #runtime: (key: string) => VolumeRuntime

  /** @param runtime - the in-memory side of a protected volume in this process (created on demand) */
  constructor(ctx: FreezeContext, runtime: (key: string) => VolumeRuntime) {
    this.#ctx = ctx
    this.#runtime = runtime
  }

  /** The workflow body. */
  async run(wf: WorkflowContext, input: RestoreWorkflowInput): Promise<Json> {
    const progress: RestoreProgress = { stage: 'begin', begun: false, dataRestored: false }
    const step = <R extends Json>(name: string, work: (context: StepContext) => Promise<R>, options?: StepOptions<R>): Promise<R> => {
      progress.stage = name
      return wf.step(name, work, options)
    }
    try {
      return await this.#run({ ...wf, step }, input, progress)
    } catch (thrown) {
      progress.error = toDrError(thrown)
      // A restore that could not even begin has no compensation to run: its held I/O is released here. A crash, a
      // stale token or a lost lease (E_FENCED) leaves the run to be resumed by whoever acts for the scope now.
      const stopped = isInterruption(thrown) || isDrError(thrown, 'E_FENCED')
      if (!progress.begun && !stopped) await finishFailed(this.#ctx, input, this.#runtime(input.key), progress)
      throw thrown
    }
  }

  async #run(wf: WorkflowContext, input: RestoreWorkflowInput, progress: RestoreProgress): Promise<Json> {
    const ctx = this.#ctx
    const runtime = this.#runtime(input.key)
    const begun = BeginCodec.encode(
      (await wf.step('begin', async () => (await beginRestore(ctx, wf, input)) as unknown as Json, {
        compensate: async () => finishFailed(ctx, input, runtime, progress),
      })) as unknown as Begin,
    )
    progress.begun = true
    if (typeof begun === 'object' && 'join' in begun) return this.#join(wf, input, runtime, begun.join)
    const startedAt = typeof begun === 'number' ? begun : begun.startedAt
    const protection = (): ProtectionRecord => ctx.state.protection(input.key)
    const scope = this.#scope(input, protection())
    const plan = (await wf.step('assess', async () => {
      const run = { record: protection(), restoreId: input.restoreId, guardRollback: guardsRollback(input, protection()) }
      return [...(await planRestore(this.#ctx, run, input.sources ?? protection().sources, wf.signal))] as unknown as Json
    })) as unknown as RestoreSource[]
    rearmActorTimeouts(ctx, runtime, scope)
    const sweep = armLateSweep(ctx, runtime, scope)
    try {
      return await this.#restore(wf, input, { runtime, scope, plan, startedAt, progress, protection })
    } finally {
      sweep()
    }
  }

  async #restore(wf: WorkflowContext, input: RestoreWorkflowInput, run: RestoreRun): Promise<Json> {
    const ctx = this.#ctx
    const { runtime, scope, plan, protection, progress } = run
    const record = protection()
    const where = { site: record.site, volume: record.volume, restoreId: input.restoreId }
    await wf.step(
      'freeze',
      async () => {
        const frozen = await freezeActors(ctx, runtime, scope, { late: false, extra: input.actors })
        ctx.events.emit('freeze.frozen', 'info', { ...where, actors: frozen, lateJoiner: false, handles: runtime.handles().length, heldIo: runtime.gate.pending })
        return frozen
      },
      { compensate: async () => void (await thawActors(ctx, runtime, scope)) },
    )
    const captured = CapturedCodec.encode((await wf.step('capture', async () => CapturedCodec.encode(await captureMount(ctx, protection())) as unknown as Json)) as unknown as Captured)
    const journal = await wf.step('journal', async () => ({ ...(await journalCachedWrites(ctx, runtime, input.restoreId, protection())) }), {
      compensate: async () => writeBackJournal(ctx, input, runtime, progress),
    })
    const holder = lockHolder(input.restoreId)
    await wf.step(
      'lock',
      async () => {
        const grant = await ctx.locks.acquire(record.site, record.volume, holder, record.lockRetry, {
          signal: wf.signal,
          onContended: (other, attempt, delayMs) => ctx.events.emit('freeze.lockContended', 'warning', { ...where, holder: other, attempt, delayMs }),
        })
        return grant.attempts
      },
      { compensate: async () => void (await ctx.locks.release(record.site, record.volume, holder)) },
    )
    await wf.step(
      'dismount',
      async () => {
        const host = ctx.host(record.site)
        await retrying(ctx.clock, () => callAdapter(host.kind, 'dismount', () => host.dismount(record.mountPath, ctx.token())))
        return true
      },
      {
        compensate: async () => {
          if (!keepsDismounted(protection(), progress)) await restoreOriginalMount(ctx, protection(), captured.mount, input.restoreId)
        },
      },
    )
    const restored = RestoredCodec.encode(
      (await wf.step('restore', async () => {
        const data = { key: input.key, restoreId: input.restoreId, record: protection(), runtime, guardRollback: guardsRollback(input, protection()) }
        return RestoredCodec.encode(await restoreData(ctx, data, plan, wf.signal)) as unknown as Json
      })) as unknown as Restored,
    )
    progress.dataRestored = true
    await wf.step('remount', async () => {
      await remountVolume(ctx, protection(), captured, restored.toVolume, input.restoreId)
      await ctx.state.execute((state) => decideRepoint(state, input.key, restored.toVolume))
      runtime.knowSize(restored.sizeBytes)
      return true
    })
    const replayed = await wf.step('replay', async () =>
      journal.count === 0 ? 0 : replayJournal(ctx, runtime, input.restoreId, { site: record.site, volume: restored.toVolume }, wf.signal),
    )
    await wf.step('unlock', async () => ctx.locks.release(record.site, record.volume, holder))
    return wf.step('thaw', async () => {
      // Held I/O runs from now on, while the actors are thawed; an actor timeout that fires meanwhile finds its
      // actor released already (each is released exactly once).
      const opened = releaseGate(runtime, input.restoreId) ? runtime.gate.open() : { released: 0, windowMs: null }
      const thawed = await thawActors(ctx, runtime, scope)
      runtime.disarmAll()
      runtime.forgetReleased(input.restoreId)
      const now = ctx.clock.now()
      const summary: RestoreSummary = {
        restoreId: input.restoreId,
        outcome: 'restored',
        startedAt: run.startedAt,
        finishedAt: now,
        source: restored.source,
        freezeWindowMs: opened.windowMs,
        code: null,
        message: null,
      }
      await ctx.state.execute((state) => decideFinish(state, input.key, summary))
      const after = protection()
      ctx.events.emit('freeze.thawed', 'info', {
        site: after.site,
        volume: after.volume,
        restoreId: input.restoreId,
        mountPath: after.mountPath,
        activeVolume: after.activeVolume,
        identityPreserved: true,
        actors: thawed,
        replayedWrites: replayed,
        freezeWindowMs: opened.windowMs,
        frozenForMs: now - run.startedAt,
      })
      const result: RestoreResult = { summary, activeVolume: after.activeVolume, copiedBlocks: restored.copiedBlocks, replayedWrites: replayed }
      return result as unknown as Json
    })
  }

  /**
   * Another coordinator was restoring the volume already: this restore waits for that one to end, then runs the I/O
   * it holds against the restored volume, or fails it with that restore's failure.
   */
  async #join(wf: WorkflowContext, input: RestoreWorkflowInput, runtime: VolumeRuntime, other: { restoreId: string; workflowId: string }): Promise<Json> {
    const ctx = this.#ctx
    const summary = RestoreSummaryCodec.encode((await wf.step('join', async () => awaitJoined(ctx, wf, input.key, other))) as unknown as RestoreSummary)
    if (summary.outcome !== 'restored') {
      const code = (DrErrorCodes as readonly string[]).includes(summary.code ?? '') ? (summary.code as DrErrorCode) : 'E_UNAVAILABLE'
      throw new DrError(code, `the restore this one joined (${other.restoreId}) failed: ${summary.message ?? summary.outcome}`, { key: input.key, joined: other.restoreId })
    }
    runtime.knowSize(undefined)
    if (releaseGate(runtime, input.restoreId)) runtime.gate.open()
    const result: RestoreResult = { summary, activeVolume: ctx.state.protection(input.key).activeVolume, copiedBlocks: 0, replayedWrites: 0 }
    return result as unknown as Json
  }

  #scope(input: RestoreWorkflowInput, record: ProtectionRecord): FreezeScope {
    return {
      site: record.site,
      key: input.key,
      volumes: [...new Set([record.volume, record.activeVolume])],
      restoreId: input.restoreId,
      actorTimeoutMs: record.actorTimeoutMs,
    }
  }
}

/** An unplanned restore never rolls the volume back past writes already on it, unless the protection allows it. */
function guardsRollback(input: RestoreWorkflowInput, record: ProtectionRecord): boolean {
  return !input.planned && record.allowRollback !== true
}

/**
 * The update-lock holder name of a restore.
 *
 * @public
 */
export function lockHolder(restoreId: string): string {
  return `restore-${restoreId}`
}
