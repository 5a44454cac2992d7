import type * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError, toDrError } from './errors.js'
import { JsonValue, type Json } from './codecs.js'
import type { Clock } from './clock.js'
import type { EventSink } from './events.js'
import { isStaleTokenError, type FenceToken, type Lease } from './fencing.js'
import type { StateStore, NewRecord } from './state-store.js'
import { backoffDelay, isRetryable, type RetryPolicy } from './retry.js'
import { foldWorkflowHistory, type WorkflowHistory, type RecordedStep } from './workflow-history.js'

/**
 * The events the workflow engine publishes for every run.
 *
 * @public
 */
export interface WorkflowEvents {
  'workflow.started': { id: string; type: string }
  'workflow.resumed': { id: string; type: string; replayedSteps: number }
  'workflow.stepCompleted': { id: string; step: string; index: number }
  'workflow.stepRetried': { id: string; step: string; attempt: number; delayMs: number; error: string }
  'workflow.progressed': { id: string; step: string; done: number; total: number; bytes?: number }
  'workflow.compensated': { id: string; step: string; index: number }
  'workflow.completed': { id: string; type: string }
  'workflow.failed': { id: string; type: string; code: string; message: string }
}

/**
 * What a step's body receives: the run's signal, the attempt number, a key that is the same on every attempt
 * and every replay (for idempotent side effects), the fence token, and a progress reporter.
 *
 * @public
 */
export interface StepContext {
  readonly signal: AbortSignal
  readonly attempt: number
  readonly idempotencyKey: string
  readonly token: FenceToken | undefined
  progress(done: number, total: number, bytes?: number): void
}

/**
 * Options of one step: a compensation that undoes it if a later step fails (receives the step's result), and a
 * retry policy for transient errors.
 *
 * @public
 */
export interface StepOptions<R> {
  readonly compensate?: (result: R, context: StepContext) => Promise<void>
  readonly retry?: RetryPolicy
}

/**
 * Where a crash can be injected: just before a step runs, after it ran but before its result is journaled
 * (the window where a side effect may repeat, which is why steps must be idempotent), or before a compensation.
 *
 * @public
 */
export interface CrashPoint {
  readonly workflowId: string
  readonly index: number
  readonly step: string
  readonly phase: 'before' | 'after' | 'compensate'
}

/**
 * Thrown by crash injection to simulate the coordinator process dying: nothing is journaled or compensated on
 * the way out, exactly as if the process had been killed. Tests then resume the workflow.
 *
 * @public
 */
export class InjectedCrash extends DrError {
  constructor(point: CrashPoint) {
    super('E_INTERNAL', `injected crash at step ${point.index} (${point.step}, ${point.phase})`, { ...point })
    this.name = 'InjectedCrash'
  }
}

/**
 * True when `error` means that this coordinator stopped acting, not that the operation failed: an injected crash
 * (tests) or a stale fence token refused by an adapter (the lease moved on, {@link isStaleTokenError}). Code that
 * records a failure must record nothing then: whoever holds the scope now resumes the run from the journal.
 *
 * @public
 */
export function isInterruption(error: unknown): boolean {
  return error instanceof InjectedCrash || isStaleTokenError(error)
}

/**
 * The API a workflow body uses. `step` runs a named unit of work once: its result is journaled, and a
 * re-run of the same workflow id replays it instead of running it again.
 *
 * @public
 */
export interface WorkflowContext {
  readonly workflowId: string
  readonly signal: AbortSignal
  readonly token: FenceToken | undefined
  readonly clock: Clock
  step<R extends Json>(name: string, run: (context: StepContext) => Promise<R>, options?: StepOptions<R>): Promise<R>
}

/**
 * A registered workflow type: the codec of its input (checked when starting and again when resuming from the
 * journal) and the body.
 *
 * @public
 */
export interface WorkflowDefinition<I extends Json, R extends Json> {
  readonly input: t.Type<I, unknown, unknown>
  readonly run: (context: WorkflowContext, input: I) => Promise<R>
}

/**
 * Per-run options: cancellation, the lease under which the run acts (instead of the engine's; see
 * {@link WorkflowEngine}), and crash injection for tests.
 *
 * @public
 */
export interface RunOptions {
  readonly signal?: AbortSignal
  readonly lease?: Lease
  readonly crashAt?: (point: CrashPoint) => boolean
}

/**
 * Runs durable workflows over a {@link StateStore}, in the spirit of Temporal: step results are journaled; after a
 * crash, running the same id again replays recorded steps and continues from the first unrecorded one; on failure
 * (or abort) completed steps are compensated in reverse order; a completed run returns its recorded result.
 *
 * Every run acts under a lease (the engine's, or the run's own): once it is lost — it expired, was taken over, or
 * a step was refused with a stale fence token ({@link isStaleTokenError}) — the run stops with `E_FENCED` and stays
 * resumable: nothing more is journaled and nothing is compensated, so the coordinator that now holds the scope
 * resumes it from the journal.
 *
 * @public
 */
export class WorkflowEngine {
  readonly #store: StateStore
  readonly #clock: Clock
  readonly #events: EventSink<WorkflowEvents> | undefined
  readonly #definitions = new Map<string, WorkflowDefinition<Json, Json>>()
  readonly #crashAt: ((point: CrashPoint) => boolean) | undefined
  readonly #lease: Lease | undefined

  /**
   * @param options - the journal, the clock, where to publish events, the lease every run acts under (the
   * coordinator's; a run's own `lease` replaces it) and an engine-wide crash hook for tests (consulted for every
   * run that has no `crashAt` of its own)
   */
  constructor(options: { stateStore: StateStore; clock: Clock; events?: EventSink<WorkflowEvents>; lease?: Lease; crashAt?: (point: CrashPoint) => boolean }) {
    this.#store = options.stateStore
    this.#clock = options.clock
    this.#events = options.events
    this.#lease = options.lease
    this.#crashAt = options.crashAt
  }

  /** Registers a workflow type. Registering a type twice is refused with `E_CONFLICT`. */
  register<I extends Json, R extends Json>(type: string, definition: WorkflowDefinition<I, R>): void {
    if (this.#definitions.has(type)) throw new DrError('E_CONFLICT', `workflow type "${type}" is already registered`, { type })
    this.#definitions.set(type, definition as unknown as WorkflowDefinition<Json, Json>)
  }

  /**
   * Starts workflow `id` of `type` with `input`, or continues it if it was started before (same type required):
   * recorded steps are replayed, a completed run resolves with its recorded result, a failed run rejects with
   * its recorded error.
   */
  async run<R extends Json>(type: string, id: string, input: Json, options: RunOptions = {}): Promise<R> {
    const definition = this.#definition(type)
    const decodedInput = definition.input.decode(input)
    if (isLeft(decodedInput)) throw new DrError('E_INVALID_INPUT', `invalid input for workflow "${type}"`, { type, id })
    let history = await this.history(id)
    if (history === undefined) {
      const lease = options.lease ?? this.#lease
      if (lease !== undefined && !lease.isValid()) throw lostLease(id, lease)
      const version = await this.#store.append(streamOf(id), 0, [{ type: 'workflow.started', data: { workflowType: type, input } }])
      history = { id, workflowType: type, input, status: 'running', steps: [], version }
      this.#events?.emit('workflow.started', 'info', { id, type })
    } else if (history.workflowType !== type) {
      throw new DrError('E_CONFLICT', `workflow "${id}" exists with type "${history.workflowType}"`, { id, type })
    }
    return (await this.#continue(history, definition, options)) as R
  }

  /** Continues a run that was started before (after a crash or a lost lease), from its journal alone. */
  async resume<R extends Json>(id: string, options: RunOptions = {}): Promise<R> {
    const history = await this.history(id)
    if (history === undefined) throw new DrError('E_NOT_FOUND', `workflow "${id}" was never started`, { id })
    const definition = this.#definition(history.workflowType)
    if (isLeft(definition.input.decode(history.input))) {
      throw new DrError('E_CORRUPT', `journaled input of workflow "${id}" no longer decodes`, { id, type: history.workflowType })
    }
    return (await this.#continue(history, definition, options)) as R
  }

  /** The folded journal of run `id`, or undefined if it never started. */
  async history(id: string): Promise<WorkflowHistory | undefined> {
    return foldWorkflowHistory(id, await this.#store.read(streamOf(id)))
  }

  /** Ids of runs that started and have not completed or failed (to resume after a restart). */
  async listRunning(): Promise<readonly string[]> {
    const running: string[] = []
    for (const stream of await this.#store.listStreams(STREAM_PREFIX)) {
      const id = stream.slice(STREAM_PREFIX.length)
      const history = await this.history(id)
      if (history?.status === 'running') running.push(id)
    }
    return running
  }

  async #continue(history: WorkflowHistory, definition: WorkflowDefinition<Json, Json>, options: RunOptions): Promise<Json> {
    if (history.status === 'completed') return history.result ?? null
    if (history.status === 'failed') throw history.error ?? new DrError('E_INTERNAL', `workflow "${history.id}" failed`)
    if (history.steps.length > 0) {
      this.#events?.emit('workflow.resumed', 'info', { id: history.id, type: history.workflowType, replayedSteps: history.steps.length })
    }
    const crashAt = options.crashAt ?? this.#crashAt
    const lease = options.lease ?? this.#lease
    const run = new Run(history, this.#store, this.#clock, this.#events, { ...options, ...(crashAt === undefined ? {} : { crashAt }), ...(lease === undefined ? {} : { lease }) })
    const decoded = definition.input.decode(history.input)
    if (isLeft(decoded)) throw new DrError('E_CORRUPT', `journaled input of workflow "${history.id}" no longer decodes`, { id: history.id })
    try {
      const result = await definition.run(run.context, decoded.right)
      if (!JsonValue.is(result)) throw new DrError('E_INTERNAL', `workflow "${history.id}" returned a value that is not JSON`)
      await run.append({ type: 'workflow.completed', data: { result } })
      this.#events?.emit('workflow.completed', 'info', { id: history.id, type: history.workflowType })
      return result
    } catch (thrown) {
      if (thrown instanceof InjectedCrash) throw thrown
      run.assertHeld()
      if (isStaleTokenError(thrown)) throw thrown
      const error = toDrError(thrown)
      await run.compensateAll()
      await run.append({ type: 'workflow.failed', data: { error: error.toJSON() as unknown as Json } })
      this.#events?.emit('workflow.failed', 'error', { id: history.id, type: history.workflowType, code: error.code, message: error.message })
      throw error
    }
  }

  #definition(type: string): WorkflowDefinition<Json, Json> {
    const definition = this.#definitions.get(type)
    if (definition === undefined) throw new DrError('E_NOT_FOUND', `workflow type "${type}" is not registered`, { type })
    return definition
  }
}

const STREAM_PREFIX = 'workflow/'
function streamOf(id: string): string {
  return `${STREAM_PREFIX}${id}`
}

function lostLease(id: string, lease: Lease): DrError {
  return new DrError('E_FENCED', `workflow "${id}" lost its lease; it stays resumable`, { id, scope: lease.scope, token: lease.token.value })
}

interface LiveStep {
  readonly index: number
  readonly name: string
  readonly result: Json
  readonly compensate: ((result: never, context: StepContext) => Promise<void>) | undefined
  compensated: boolean
}

/** One execution of a workflow body: replays recorded steps, runs new ones, compensates on failure. */
class Run {
  readonly #history: WorkflowHistory
  readonly #store: StateStore
  readonly #clock: Clock
  readonly #events: EventSink<WorkflowEvents> | undefined
  readonly #options: RunOptions
  readonly #signal: AbortSignal
  readonly #live: LiveStep[] = []
  #version: number
  #next = 0
  readonly context: WorkflowContext

  constructor(history: WorkflowHistory, store: StateStore, clock: Clock, events: EventSink<WorkflowEvents> | undefined, options: RunOptions) {
    this.#history = history
    this.#store = store
    this.#clock = clock
    this.#events = events
    this.#options = options
    this.#version = history.version
    const signals = [options.signal, options.lease?.signal].filter((s): s is AbortSignal => s !== undefined)
    this.#signal = signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals)
    this.context = {
      workflowId: history.id,
      signal: this.#signal,
      token: options.lease?.token,
      clock,
      step: (name, run, stepOptions) => this.#step(name, run, stepOptions ?? {}),
    }
  }

  /** `E_FENCED` once the run's lease is lost; undefined while it holds (or when the run has none). */
  lost(): DrError | undefined {
    const lease = this.#options.lease
    return lease !== undefined && !lease.isValid() ? lostLease(this.#history.id, lease) : undefined
  }

  /** Throws `E_FENCED` once the run's lease is lost. */
  assertHeld(): void {
    const lost = this.lost()
    if (lost !== undefined) throw lost
  }

  /** Journals `record`, unless the lease was lost: a deposed coordinator writes nothing more. */
  async append(record: NewRecord): Promise<void> {
    this.assertHeld()
    this.#version = await this.#store.append(streamOf(this.#history.id), this.#version, [record])
  }

  async #step<R extends Json>(name: string, run: (context: StepContext) => Promise<R>, options: StepOptions<R>): Promise<R> {
    const index = this.#next++
    const recorded: RecordedStep | undefined = this.#history.steps[index]
    if (recorded !== undefined) {
      if (recorded.name !== name) {
        throw new DrError('E_CORRUPT', `workflow "${this.#history.id}" is not deterministic: step ${index} was "${recorded.name}", now "${name}"`, {
          id: this.#history.id,
          index,
        })
      }
      if (!recorded.outcome.ok) throw recorded.outcome.error
      this.#live.push({ index, name, result: recorded.outcome.result, compensate: options.compensate as LiveStep['compensate'], compensated: recorded.compensated })
      return recorded.outcome.result as R
    }
    this.#checkRunnable()
    this.#crash(index, name, 'before')
    let result: R
    try {
      result = await this.#attempts(index, name, run, options.retry)
    } catch (thrown) {
      // A crash, a lost lease or a stale token: the step is not recorded, so whoever holds the scope runs it again.
      if (thrown instanceof InjectedCrash || this.lost() !== undefined || isStaleTokenError(thrown)) throw thrown
      const error = toDrError(thrown)
      await this.append({ type: 'step.failed', data: { index, name, error: error.toJSON() as unknown as Json } })
      throw error
    }
    if (!JsonValue.is(result)) throw new DrError('E_INTERNAL', `step "${name}" returned a value that is not JSON`, { step: name })
    this.#crash(index, name, 'after')
    await this.append({ type: 'step.completed', data: { index, name, result } })
    this.#live.push({ index, name, result, compensate: options.compensate as LiveStep['compensate'], compensated: false })
    this.#events?.emit('workflow.stepCompleted', 'info', { id: this.#history.id, step: name, index })
    return result
  }

  async #attempts<R>(index: number, name: string, run: (context: StepContext) => Promise<R>, retry: RetryPolicy | undefined): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run(this.#stepContext(index, name, attempt))
      } catch (thrown) {
        if (thrown instanceof InjectedCrash) throw thrown
        const error = toDrError(thrown, 'E_INTERNAL')
        if (retry === undefined || attempt >= retry.attempts || !isRetryable(retry, error) || isStaleTokenError(error) || this.#signal.aborted) throw error
        const delayMs = backoffDelay(retry, attempt)
        this.#events?.emit('workflow.stepRetried', 'warning', { id: this.#history.id, step: name, attempt, delayMs, error: error.message })
        await this.#clock.sleep(delayMs, this.#signal)
      }
    }
  }

  #stepContext(index: number, name: string, attempt: number): StepContext {
    return {
      signal: this.#signal,
      attempt,
      idempotencyKey: `${this.#history.id}/${index}`,
      token: this.#options.lease?.token,
      progress: (done, total, bytes) => {
        const payload = bytes === undefined ? { id: this.#history.id, step: name, done, total } : { id: this.#history.id, step: name, done, total, bytes }
        this.#events?.emit('workflow.progressed', 'info', payload)
      },
    }
  }

  /** Undoes completed steps in reverse order, journaling each so a crash mid-way resumes where it stopped. */
  async compensateAll(): Promise<void> {
    for (const step of [...this.#live].reverse()) {
      if (step.compensated || step.compensate === undefined) continue
      this.assertHeld()
      this.#crash(step.index, step.name, 'compensate')
      await step.compensate(step.result as never, this.#stepContext(step.index, step.name, 1))
      await this.append({ type: 'step.compensated', data: { index: step.index, name: step.name } })
      step.compensated = true
      this.#events?.emit('workflow.compensated', 'warning', { id: this.#history.id, step: step.name, index: step.index })
    }
  }

  #checkRunnable(): void {
    this.assertHeld()
    if (this.#signal.aborted) throw new DrError('E_ABORTED', `workflow "${this.#history.id}" was aborted`, { id: this.#history.id })
  }

  #crash(index: number, step: string, phase: CrashPoint['phase']): void {
    const point: CrashPoint = { workflowId: this.#history.id, index, step, phase }
    if (this.#options.crashAt?.(point) === true) throw new InjectedCrash(point)
  }
}
