import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import { JsonValue, type Json } from '../../kernel/codecs.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { MountInfo } from '../../ports/host.js'
import { freezeActors, thawActors, rearmActorTimeouts, type FreezeScope } from './actor-freezer.js'
import type { FreezeContext } from './context.js'
import { decideFinish, decideRepoint, decideStartRestore, heldIoError } from './decide.js'
import { RestoreSourceCodec, type RestoreSource } from './inputs.js'
import { mountMatches, remountVolume, restoreOriginalMount } from './mounting.js'
import { planRestore, restoreData } from './restore-plan.js'
import { retrying } from './retrying.js'
import type { ProtectionRecord, RestoreSummary } from './state.js'
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

const RestoredCodec = t.type({
  source: t.type({ kind: t.keyof({ snapshot: null, replica: null, standby: null }), ref: t.string }),
  fromVolume: t.string,
  toVolume: t.string,
  copiedBlocks: t.number,
  restorePointAt: t.union([t.number, t.null]),
  durationMs: t.number,
})
type Restored = t.TypeOf<typeof RestoredCodec>

/** Which stage a restore failed in: before anything was frozen (`assess`) or later. */
interface Failure {
  stage: 'assess' | 'restore'
  error?: DrError
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
 * compensations put the original volume back at its path, write the journal back if the caches that held it are
 * gone, release the lock, thaw the actors, and fail the held I/O with a clear error.
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
    const failure: Failure = { stage: 'assess' }
    try {
      return await this.#run(wf, input, failure)
    } catch (thrown) {
      failure.error = toDrError(thrown)
      throw thrown
    }
  }

  async #run(wf: WorkflowContext, input: RestoreWorkflowInput, failure: Failure): Promise<Json> {
    const ctx = this.#ctx
    const runtime = this.#runtime(input.key)
    const startedAt = await wf.step(
      'begin',
      async () => {
        const at = ctx.clock.now()
        await ctx.state.execute((state) => decideStartRestore(state, input.key, { restoreId: input.restoreId, workflowId: wf.workflowId, startedAt: at, channel: input.channel }))
        const started = ctx.state.protection(input.key).restore
        if (started?.restoreId !== input.restoreId) {
          const last = ctx.state.protection(input.key).lastRestore
          if (last?.restoreId === input.restoreId) return last.startedAt
          throw new DrError('E_CONFLICT', `restore ${input.restoreId} of volume ${input.key} could not start`, { key: input.key, restoreId: input.restoreId })
        }
        return started.startedAt
      },
      { compensate: async () => this.#finishFailed(input, runtime, failure) },
    )
    const protection = (): ProtectionRecord => ctx.state.protection(input.key)
    const scope = this.#scope(input, protection())
    const plan = (await wf.step('assess', async () => {
      const run = { record: protection(), restoreId: input.restoreId, guardRollback: guardsRollback(input, protection()) }
      return [...(await planRestore(this.#ctx, run, input.sources ?? protection().sources, wf.signal))] as unknown as Json
    })) as unknown as RestoreSource[]
    failure.stage = 'restore'
    rearmActorTimeouts(ctx, runtime, scope)
    const sweep = this.#armLateSweep(runtime, scope)
    try {
      return await this.#restore(wf, input, { runtime, scope, plan, startedAt: startedAt as number, protection })
    } finally {
      sweep()
    }
  }

  async #restore(
    wf: WorkflowContext,
    input: RestoreWorkflowInput,
    run: { runtime: VolumeRuntime; scope: FreezeScope; plan: RestoreSource[]; startedAt: number; protection: () => ProtectionRecord },
  ): Promise<Json> {
    const ctx = this.#ctx
    const { runtime, scope, plan, protection } = run
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
    const captured = CapturedCodec.encode(
      (await wf.step('capture', async () => CapturedCodec.encode(await this.#capture(protection())) as unknown as Json)) as unknown as Captured,
    )
    const journal = await wf.step(
      'journal',
      async () => {
        runtime.gate.close()
        await runtime.gate.drain()
        const writes = runtime.cachedWrites()
        const saved = await ctx.journal.save(input.restoreId, writes)
        runtime.journaled = { restoreId: input.restoreId, seqs: new Set(writes.map((w) => w.seq)) }
        return { count: saved.count, bytes: saved.bytes, oldestAt: saved.oldestAt }
      },
      { compensate: async () => this.#writeBack(input, runtime) },
    )
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
      { compensate: async () => restoreOriginalMount(ctx, protection(), captured.mount, input.restoreId) },
    )
    const restored = RestoredCodec.encode(
      (await wf.step('restore', async () => {
        const run = { key: input.key, restoreId: input.restoreId, record: protection(), runtime, oldestJournaled: journal.oldestAt, guardRollback: guardsRollback(input, protection()) }
        return RestoredCodec.encode(await restoreData(ctx, run, plan, wf.signal)) as unknown as Json
      })) as unknown as Restored,
    )
    await wf.step('remount', async () => {
      await remountVolume(ctx, protection(), captured, restored.toVolume, input.restoreId)
      await ctx.state.execute((state) => decideRepoint(state, input.key, restored.toVolume))
      runtime.forgetSize()
      return true
    })
    const replayed = await wf.step('replay', async () => {
      const loaded = await ctx.journal.load(input.restoreId)
      if (loaded.removed) return 0
      const storage = ctx.storage(record.site)
      for (const write of loaded.writes) {
        await retrying(ctx.clock, () => callAdapter(storage.kind, 'write', () => storage.write(restored.toVolume, write.offset, write.data, ctx.token())), { signal: wf.signal })
      }
      runtime.noteFlush(ctx.clock.now())
      if (runtime.journaled?.restoreId === input.restoreId) runtime.forgetWrites(runtime.journaled.seqs)
      runtime.journaled = undefined
      await ctx.journal.remove(input.restoreId)
      return loaded.writes.length
    })
    await wf.step('unlock', async () => ctx.locks.release(record.site, record.volume, holder))
    return wf.step('thaw', async () => {
      runtime.disarmAll()
      const thawed = await thawActors(ctx, runtime, scope)
      runtime.forgetReleased(input.restoreId)
      const opened = ownsGate(runtime, input.restoreId) ? runtime.gate.open() : { released: 0, windowMs: null }
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

  /** Reads the mount as the host has it (else as configured) and what the embedder's hooks keep with it. */
  async #capture(record: ProtectionRecord): Promise<Captured> {
    const ctx = this.#ctx
    const host = ctx.host(record.site)
    const found = await retrying(ctx.clock, () => callAdapter(host.kind, 'getMount', () => host.getMount(record.mountPath)))
    const mount: MountInfo =
      found !== undefined && mountMatches(found, record)
        ? found
        : { path: record.mountPath, volume: record.activeVolume, identity: record.identity, options: record.mountOptions, readOnly: record.readOnly }
    const hooks: Record<string, Json> = {}
    for (const hook of ctx.hooks) {
      hooks[hook.name] = await callAdapter(`hook ${hook.name}`, 'capture', () => hook.capture({ site: record.site, volume: record.volume, mount }))
    }
    return { mount: { ...mount, options: { ...mount.options } }, hooks }
  }

  /**
   * After a failure: the journaled writes go back to the volume (in order, idempotently) and then leave the caches
   * that still hold them, so that they survive even if this process dies before the caches would have flushed.
   */
  async #writeBack(input: RestoreWorkflowInput, runtime: VolumeRuntime): Promise<void> {
    const ctx = this.#ctx
    const record = ctx.state.protection(input.key)
    const loaded = await ctx.journal.load(input.restoreId).catch(() => undefined)
    if (loaded === undefined || loaded.removed) return
    const storage = ctx.storage(record.site)
    try {
      for (const write of loaded.writes) {
        await retrying(ctx.clock, () => callAdapter(storage.kind, 'write', () => storage.write(record.activeVolume, write.offset, write.data, ctx.token())))
      }
      runtime.noteFlush(ctx.clock.now())
      if (runtime.journaled?.restoreId === input.restoreId) runtime.forgetWrites(runtime.journaled.seqs)
      runtime.journaled = undefined
      await ctx.journal.remove(input.restoreId)
    } catch (thrown) {
      const error = toDrError(thrown)
      ctx.events.emit('freeze.journalRetained', 'critical', {
        site: record.site,
        volume: record.volume,
        restoreId: input.restoreId,
        writes: loaded.writes.length,
        code: error.code,
        message: error.message,
      })
    }
  }

  /** The last compensation: record the failure and release the held I/O with a clear error. */
  async #finishFailed(input: RestoreWorkflowInput, runtime: VolumeRuntime, failure: Failure): Promise<void> {
    const ctx = this.#ctx
    const error = failure.error ?? new DrError('E_INTERNAL', `restore ${input.restoreId} failed`)
    const record = ctx.state.protection(input.key)
    const impossible = failure.stage === 'assess'
    runtime.disarmAll()
    const released = ownsGate(runtime, input.restoreId) ? runtime.gate.fail(heldIoError(input.key, error)) : 0
    const summary: RestoreSummary = {
      restoreId: input.restoreId,
      outcome: impossible ? 'impossible' : 'failed',
      startedAt: record.restore?.startedAt ?? ctx.clock.now(),
      finishedAt: ctx.clock.now(),
      source: null,
      freezeWindowMs: null,
      code: error.code,
      message: error.message,
    }
    await ctx.state.execute((state) => decideFinish(state, input.key, summary))
    runtime.forgetReleased(input.restoreId)
    const where = { site: record.site, volume: record.volume, restoreId: input.restoreId }
    if (impossible) ctx.events.emit('freeze.restoreImpossible', 'error', { ...where, reason: error.message, released })
    else ctx.events.emit('freeze.restoreFailed', 'error', { ...where, code: error.code, message: error.message, released })
  }

  /** Freezes, every so often while the restore runs, actors that started doing I/O to the volume since. */
  #armLateSweep(runtime: VolumeRuntime, scope: FreezeScope): () => void {
    const ctx = this.#ctx
    let cancel: (() => void) | undefined
    let stopped = false
    const tick = (): void => {
      cancel = undefined
      void freezeActors(ctx, runtime, scope, { late: true })
        .catch(() => undefined)
        .then(() => {
          if (!stopped) cancel = ctx.clock.setTimer(LATE_SWEEP_MS, tick)
        })
    }
    cancel = ctx.clock.setTimer(LATE_SWEEP_MS, tick)
    const stop = (): void => {
      stopped = true
      cancel?.()
      runtime.disarm.delete(stop)
    }
    runtime.disarm.add(stop)
    return stop
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

/**
 * True when restore `restoreId` is the one holding the runtime's gate (or none is); it then stops being the one
 * detections coalesce into, so that a disruption seen after its thaw starts a new restore.
 */
function ownsGate(runtime: VolumeRuntime, restoreId: string): boolean {
  if (runtime.active !== undefined && runtime.active.restoreId !== restoreId) return false
  runtime.active = undefined
  return true
}

/** An unplanned restore never rolls the volume back past writes already on it, unless the protection allows it. */
function guardsRollback(input: RestoreWorkflowInput, record: ProtectionRecord): boolean {
  return !input.planned && record.allowRollback !== true
}

/** How often a running restore looks for actors that started doing I/O to the volume. */
const LATE_SWEEP_MS = 100

/**
 * The update-lock holder name of a restore.
 *
 * @public
 */
export function lockHolder(restoreId: string): string {
  return `restore-${restoreId}`
}
