import { randomUUID } from 'node:crypto'
import type { Json } from '../../kernel/codecs.js'
import { getOrThrow } from '../../kernel/either.js'
import { DrError, toDrError } from '../../kernel/errors.js'
import { isInterruption, type WorkflowEngine } from '../../kernel/workflow.js'
import type { WorkflowHistory } from '../../kernel/workflow-history.js'
import type { GroupContext } from './context.js'
import { decideBegin, decideEnd, type GroupRequest } from './decide.js'
import type { GroupOperation } from './state.js'

/**
 * How a group operation is started: what it is (`request`), its workflow type, whether an interrupted run's
 * journaled input is this same call re-issued (`matches`: then that run is resumed instead), and the input of a
 * new run (built only once the group is known to be free: prevalidation may refuse here, changing nothing; null
 * when there turns out to be nothing to do).
 *
 * @public
 */
export interface GroupOperationCall {
  readonly request: GroupRequest
  readonly type: string
  readonly matches: (journaled: Json) => boolean
  readonly input: () => Promise<Json | null>
}

/**
 * Runs the operations of server groups as durable workflows, one at a time per group. The operation is journaled
 * on the group (`group.operation`) before its workflow starts and cleared once the workflow has settled; while it
 * is there, another operation on the group is refused with `E_CONFLICT` by {@link decideBegin} — a decision on the
 * journal (`details.running` names the operation), never a side effect of two appends racing. Re-issuing the call
 * that an interrupted run was started by resumes that run; {@link GroupOperations.recover} resumes every
 * interrupted run. A run that fails is reported by `serverGroup.operationFailed` once its compensations have run.
 *
 * @public
 */
export class GroupOperations {
  readonly #cx: GroupContext
  readonly #workflows: WorkflowEngine
  /** The operations this process is starting or driving (never driven twice at once). */
  readonly #live = new Set<string>()

  /**
   * @param cx - the module's toolbox
   * @param workflows - the engine the group workflows are registered with
   */
  constructor(cx: GroupContext, workflows: WorkflowEngine) {
    this.#cx = cx
    this.#workflows = workflows
  }

  /** Resumes the interrupted run `call` re-issues, or starts a new one; resolves with the workflow's result (null: nothing to do). */
  async run(name: string, call: GroupOperationCall): Promise<Json> {
    const recorded = this.#cx.group(name).operation
    if (recorded !== null && !this.#live.has(recorded.workflowId)) {
      const history = await this.#workflows.history(recorded.workflowId)
      if (history?.status !== 'running') await this.#close(name, recorded, history)
      else if (recorded.kind === call.request.kind && call.matches(history.input)) return this.#drive(name, recorded, () => this.#workflows.resume(recorded.workflowId))
    }
    const operation: GroupOperation = { kind: call.request.kind, workflowId: `${call.type}:${name}:${randomUUID()}` }
    // Refused here, before the input is built, when the journal already says no; decided again when journaled.
    getOrThrow(decideBegin(this.#cx.store.state, name, operation.workflowId, call.request))
    const input = await call.input()
    if (input === null) return null
    this.#live.add(operation.workflowId)
    try {
      await this.#cx.commit((state) => decideBegin(state, name, operation.workflowId, call.request))
    } catch (error) {
      this.#live.delete(operation.workflowId)
      throw error
    }
    return this.#drive(name, operation, () => this.#workflows.run(call.type, operation.workflowId, input))
  }

  /**
   * Resumes every operation a crash interrupted (and closes the record of one whose workflow has ended meanwhile —
   * the system may have resumed it already); resolves once they have settled.
   */
  async recover(): Promise<void> {
    for (const group of Object.values(this.#cx.store.state.groups)) {
      const op = group.operation
      if (op === null || this.#live.has(op.workflowId)) continue
      const history = await this.#workflows.history(op.workflowId)
      if (history?.status !== 'running') await this.#close(group.name, op, history)
      else await this.#drive(group.name, op, () => this.#workflows.resume(op.workflowId)).catch(() => undefined)
    }
  }

  /** Runs (or resumes) an operation's workflow in this process and closes its record once it has settled. */
  async #drive(name: string, operation: GroupOperation, run: () => Promise<Json>): Promise<Json> {
    this.#live.add(operation.workflowId)
    try {
      const result = await run()
      await this.#close(name, operation, undefined)
      return result
    } catch (error) {
      if (isInterruption(error)) throw error
      const history = await this.#workflows.history(operation.workflowId)
      if (history?.status !== 'running') await this.#close(name, operation, history)
      throw toDrError(error)
    } finally {
      this.#live.delete(operation.workflowId)
    }
  }

  /** Clears the operation record; when its run failed, reports it (once: only the call that clears the record does). */
  async #close(name: string, operation: GroupOperation, history: WorkflowHistory | undefined): Promise<void> {
    const closed = await this.#cx.commit((state) => decideEnd(state, name, operation.workflowId))
    if (closed.length === 0 || history?.status !== 'failed') return
    const error = history.error ?? new DrError('E_INTERNAL', `workflow "${operation.workflowId}" failed`, { name })
    this.#cx.deps.events.emit('serverGroup.operationFailed', 'error', {
      name,
      operation: operation.kind,
      workflowId: operation.workflowId,
      code: error.code,
      message: error.message,
      compensated: history.steps.filter((s) => s.compensated).map((s) => s.name),
    })
  }
}
