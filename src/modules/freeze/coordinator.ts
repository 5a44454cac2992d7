import { randomUUID } from 'node:crypto'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import { isRetryable } from '../../kernel/retry.js'
import type { Json } from '../../kernel/codecs.js'
import type { FreezeContext } from './context.js'
import { decideRecovered } from './decide.js'
import type { DetectionChannel } from './events.js'
import type { RestoreSource } from './inputs.js'
import { RESTORE_WORKFLOW, RestoreWorkflow, RestoreWorkflowInput, type RestoreResult } from './restore-workflow.js'
import { autoRestoreLimitOf, type ProtectionRecord } from './state.js'
import { FREEZE_RETRY } from './retrying.js'
import { VolumeRuntime } from './volume-runtime.js'

/**
 * A disruption as the coordinator is told about it: how it was seen, whether it is a planned restore, the sources
 * to use (default: the protection's), actors to freeze besides those the host lists, and the error behind it.
 *
 * @public
 */
export interface Detection {
  readonly channel: DetectionChannel
  readonly planned: boolean
  readonly sources?: readonly RestoreSource[]
  readonly actors?: readonly string[]
  readonly error?: DrError
}

/**
 * A restore the coordinator started (or that a detection was coalesced into) and its outcome.
 *
 * @public
 */
export interface StartedRestore {
  readonly restoreId: string
  readonly coalesced: boolean
  readonly done: Promise<RestoreResult>
}

/** Errors of a volume operation that are the caller's own, never a disruption. */
const CALLER_ERRORS = new Set(['E_INVALID_INPUT', 'E_CLOSED', 'E_FENCED', 'E_ABORTED', 'E_CONFLICT'])

/**
 * Runs the freeze module in this process: the in-memory side of each protected volume (its I/O gate and handles),
 * disruption detection (intercepted I/O errors, health probes, reports, planned restores — duplicates of one
 * disruption start one restore), the restore workflows, and their recovery after a crash.
 *
 * @public
 */
export class FreezeCoordinator {
  readonly ctx: FreezeContext
  readonly #runtimes = new Map<string, VolumeRuntime>()
  readonly #probes = new Map<string, () => void>()
  /** The restore workflows this process runs (started or resumed here). */
  readonly #running = new Set<string>()
  readonly #workflow: RestoreWorkflow
  #closed = false

  constructor(ctx: FreezeContext) {
    this.ctx = ctx
    this.#workflow = new RestoreWorkflow(ctx, (key) => this.runtime(key))
    ctx.workflows.register(RESTORE_WORKFLOW, { input: RestoreWorkflowInput, run: (wf, input) => this.#workflow.run(wf, input) })
  }

  /** The in-memory side of protected volume `key` (created on first use). */
  runtime(key: string): VolumeRuntime {
    let runtime = this.#runtimes.get(key)
    if (runtime === undefined) {
      const created = new VolumeRuntime({
        key,
        clock: this.ctx.clock,
        protection: () => this.ctx.state.protection(key),
        storage: () => this.ctx.storage(this.ctx.state.protection(key).site),
        token: this.ctx.token,
        intercept: (error, requeued) => this.#intercept(key, error, requeued),
        onTimeout: (released) => {
          const record = this.ctx.state.state.protections[key]
          this.ctx.events.emit('freeze.timedOut', 'warning', {
            site: record?.site ?? key,
            volume: record?.volume ?? key,
            restoreId: record?.restore?.restoreId ?? created.active?.restoreId ?? null,
            kind: 'io',
            actor: null,
            released,
            volumeRestored: false,
          })
        },
      })
      runtime = created
      this.#runtimes.set(key, runtime)
    }
    return runtime
  }

  /** Forgets the in-memory side of a volume that is no longer protected. */
  forget(key: string): void {
    this.#probes.get(key)?.()
    this.#probes.delete(key)
    this.#runtimes.get(key)?.disarmAll()
    this.#runtimes.delete(key)
  }

  /**
   * Starts a restore of `key`, or joins the one that is running (a duplicate detection starts none). The I/O of a
   * disrupted (or dismounted) volume is held from this moment, that of a planned restore from its journal step.
   * Emits `freeze.disruptionDetected` for the restore it starts.
   */
  detect(key: string, detection: Detection): StartedRestore {
    if (this.#closed) throw new DrError('E_CLOSED', 'the freeze module is closed', { key })
    const record = this.ctx.state.protection(key)
    const runtime = this.runtime(key)
    const active = runtime.active
    if (active !== undefined) return { restoreId: active.restoreId, coalesced: true, done: active.done as Promise<RestoreResult> }
    // A disrupted volume holds its I/O from now on; a planned restore of a healthy one only from its journal step,
    // so that planning and freezing the actors cost the applications nothing.
    if (!detection.planned || record.dismounted === true) runtime.gate.close()
    const restoreId = `${record.volume}-${this.ctx.clock.now().toString(36)}-${randomUUID().slice(0, 8)}`
    const input: RestoreWorkflowInput = {
      key,
      restoreId,
      channel: detection.channel,
      planned: detection.planned,
      sources: detection.sources === undefined ? null : [...detection.sources],
      actors: [...(detection.actors ?? [])],
    }
    this.ctx.events.emit('freeze.disruptionDetected', detection.planned ? 'info' : 'warning', {
      site: record.site,
      volume: record.volume,
      restoreId,
      channel: detection.channel,
      planned: detection.planned,
      code: detection.error?.code ?? null,
      message: detection.error?.message ?? null,
      actors: input.actors,
    })
    const workflowId = workflowIdOf(restoreId)
    this.#running.add(workflowId)
    const done = runtime.chain.then(() => this.ctx.workflows.run<Json>(RESTORE_WORKFLOW, workflowId, input as unknown as Json))
    const settled = done.then(
      (result) => result as unknown as RestoreResult,
      (error: unknown) => {
        throw toDrError(error)
      },
    )
    const started = { restoreId, done: settled }
    runtime.active = started
    runtime.chain = settled.then(
      () => this.#settle(runtime, restoreId, workflowId),
      () => this.#settle(runtime, restoreId, workflowId),
    )
    return { restoreId, coalesced: false, done: settled }
  }

  /**
   * Resumes every restore a crash interrupted (every running restore workflow this process does not run already,
   * including one that a restore started here since has joined); resolves once they have all settled. Returns how
   * many there were.
   */
  async recover(): Promise<number> {
    let resumed = 0
    for (const workflowId of await this.ctx.workflows.listRunning()) {
      if (this.#running.has(workflowId)) continue
      const history = await this.ctx.workflows.history(workflowId)
      if (history?.workflowType !== RESTORE_WORKFLOW || !RestoreWorkflowInput.is(history.input)) continue
      const input = history.input
      if (this.ctx.state.state.protections[input.key] === undefined) continue
      const runtime = this.runtime(input.key)
      runtime.gate.close()
      this.#running.add(workflowId)
      const done = this.ctx.workflows.resume<Json>(workflowId).then((result) => result as unknown as RestoreResult)
      runtime.active ??= { restoreId: input.restoreId, done }
      resumed++
      await done.then(
        () => this.#settle(runtime, input.restoreId, workflowId),
        () => this.#settle(runtime, input.restoreId, workflowId),
      )
    }
    return resumed
  }

  /** Starts (or restarts) the health probe of `key` per its protection (none when `probeEveryMs` is null). */
  armProbe(key: string): void {
    this.#probes.get(key)?.()
    this.#probes.delete(key)
    const every = this.ctx.state.state.protections[key]?.probeEveryMs ?? null
    if (every === null || this.#closed) return
    let cancel = (): void => undefined
    let stopped = false
    const tick = (): void => {
      void this.#probe(key).finally(() => {
        if (!stopped && !this.#closed) cancel = this.ctx.clock.setTimer(every, tick)
      })
    }
    cancel = this.ctx.clock.setTimer(every, tick)
    this.#probes.set(key, () => {
      stopped = true
      cancel()
    })
  }

  /** Stops the probes and timers and waits for the running restores to settle. */
  async close(): Promise<void> {
    this.#closed = true
    for (const stop of this.#probes.values()) stop()
    this.#probes.clear()
    await Promise.all([...this.#runtimes.values()].map((runtime) => runtime.chain))
    for (const runtime of this.#runtimes.values()) runtime.disarmAll()
  }

  async #probe(key: string): Promise<void> {
    const record = this.ctx.state.state.protections[key]
    // A volume kept dismounted answers its probe, but only a restore that succeeds may bring it back.
    if (record === undefined || record.dismounted === true) return
    const runtime = this.runtime(key)
    if (runtime.active !== undefined) return
    const problem = await this.#health(key, record)
    const now = this.ctx.state.state.protections[key]
    if (now === undefined || this.#closed) return
    if (problem === undefined) {
      if (now.status === 'failed') await this.ctx.state.execute((state) => decideRecovered(state, key))
      return
    }
    if (now.status === 'protected' && runtime.active === undefined && this.#admit(runtime, now, 'probe', problem)) {
      const started = this.detect(key, { channel: 'probe', planned: false, error: problem })
      void started.done.catch(() => undefined)
    }
  }

  /**
   * A failed volume operation: held for a restore when it is a disruption, else the error the caller gets — its
   * own for the caller's mistakes and while the volume is not restored automatically, `E_UNAVAILABLE` when it
   * fails again after the restore that re-ran it (a restore does not cure it, and another would loop).
   */
  async #intercept(key: string, error: DrError, requeued: boolean): Promise<'hold' | DrError> {
    if (this.#closed || CALLER_ERRORS.has(error.code)) return error
    const record = this.ctx.state.state.protections[key]
    if (record === undefined || record.status === 'failed') return error
    const runtime = this.runtime(key)
    if (runtime.active === undefined) {
      if (requeued) return uncured(key, error, record.lastRestore?.restoreId ?? null)
      // A transient failure has been retried already; it is a disruption only if the volume fails its probe too.
      if (isRetryable(FREEZE_RETRY, error) && (await this.#health(key, record)) === undefined) return error
      if (this.#closed) return error
      if (runtime.active === undefined && !this.#admit(runtime, record, 'io-error', error)) return error
    }
    const started = this.detect(key, { channel: 'io-error', planned: false, error })
    void started.done.catch(() => undefined)
    return 'hold'
  }

  /** What is wrong with the volume backing a protection (it does not answer, or is offline), or undefined. */
  async #health(key: string, record: ProtectionRecord): Promise<DrError | undefined> {
    const storage = this.ctx.storage(record.site)
    try {
      const info = await callAdapter(storage.kind, 'volumeInfo', () => storage.volumeInfo(record.activeVolume))
      return info.online ? undefined : new DrError('E_UNAVAILABLE', `volume ${record.activeVolume} is offline`, { key })
    } catch (error) {
      return toDrError(error)
    }
  }

  /** Whether one more automatic restore of the volume may start now; reports the first refusal of a window. */
  #admit(runtime: VolumeRuntime, record: ProtectionRecord, channel: DetectionChannel, error: DrError): boolean {
    const limit = autoRestoreLimitOf(record)
    const admission = runtime.admitAutoRestore(limit, this.ctx.clock.now())
    if (admission === 'limited') {
      this.ctx.events.emit('freeze.autoRestoreLimited', 'critical', {
        site: record.site,
        volume: record.volume,
        channel,
        restores: limit.restores,
        windowMs: limit.windowMs,
        code: error.code,
        message: error.message,
      })
    }
    return admission === 'admitted'
  }

  #settle(runtime: VolumeRuntime, restoreId: string, workflowId: string): void {
    this.#running.delete(workflowId)
    if (runtime.active?.restoreId === restoreId) runtime.active = undefined
  }
}

/** The error of an operation that failed again after the restore that re-ran it. */
function uncured(key: string, error: DrError, restoreId: string | null): DrError {
  const after = restoreId === null ? 'a restore' : `restore ${restoreId}`
  return new DrError(
    'E_UNAVAILABLE',
    `volume ${key}: the operation failed again after ${after} (${error.code}: ${error.message}); restoring the volume does not cure it`,
    { key, reason: 'uncured', cause: error.code, restoreId },
    { cause: error },
  )
}

/**
 * The workflow id of restore `restoreId`.
 *
 * @public
 */
export function workflowIdOf(restoreId: string): string {
  return `freeze-restore-${restoreId}`
}
