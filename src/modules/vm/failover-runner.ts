import { DrError } from '../../kernel/errors.js'
import { commit, planOf, type VmContext } from './context.js'
import { decideBeginFailover, decideEndFailover } from './decide.js'
import { VM_FAILOVER_WORKFLOW, VmFailoverWorkflowInput } from './failover-input.js'
import { resumeWith, runWith } from './journaled-step.js'
import { VmFailoverReportCodec, type VmFailoverReport } from './outcomes.js'
import { placementAt } from './sites.js'

/**
 * Starts and resumes failover runs: one run per plan at a time, journaled with its workflow input before the
 * workflow starts, so a coordinator that stops between the two leaves a run that is started (not wedged) by the
 * next request or by `recover()`. Keeps track of the runs this process drives.
 *
 * @public
 */
export class FailoverRunner {
  readonly #ctx: VmContext
  /** The plans this process is failing over now, by plan id. */
  readonly #driving = new Map<string, Promise<unknown>>()
  readonly #runId: (prefix: string) => string

  constructor(ctx: VmContext, runId: (prefix: string) => string) {
    this.#ctx = ctx
    this.#runId = runId
  }

  /**
   * Fails plan `planId` over to `site` (or rehearses it, `test`): resumes the plan's interrupted run if there is
   * one (whatever the request), else begins a new run. `E_CONFLICT` while a run of the plan is under way.
   */
  async request(planId: string, request: Omit<VmFailoverWorkflowInput, 'planId' | 'runId'> & { readonly site: string }): Promise<VmFailoverReport> {
    const plan = planOf(this.#ctx, planId)
    placementAt(plan, request.site)
    return this.#exclusive(planId, async () => {
      const resumed = await this.#continue(planId)
      if (resumed !== undefined) return resumed
      const runId = this.#runId(`${VM_FAILOVER_WORKFLOW}.${planId}`)
      const input: VmFailoverWorkflowInput = { planId, runId, ...request, failedHosts: request.failedHosts === null ? null : [...request.failedHosts] }
      await commit(this.#ctx, (state) => decideBeginFailover(state, planId, runId, request.by, input))
      this.#ctx.events.emit('vm.failoverInitiated', 'warning', { planId, runId, by: request.by, test: request.test, site: request.site })
      return runWith(this.#ctx.workflows, VmFailoverReportCodec, VM_FAILOVER_WORKFLOW, runId, input, VmFailoverWorkflowInput)
    })
  }

  /** Continues the interrupted failover of every plan not under way here (started, never started, or unrecorded). */
  async recover(): Promise<void> {
    for (const planId of Object.keys(this.#ctx.store.state.failovers)) {
      if (!this.#driving.has(planId)) await this.#exclusive(planId, () => this.#continue(planId)).catch(() => undefined)
    }
  }

  /** True while this process fails plan `planId` over. */
  busy(planId: string): boolean {
    return this.#driving.has(planId)
  }

  /**
   * The interrupted run of plan `planId`, driven to its end: a run whose workflow never started is started from
   * its journaled input; one whose workflow ended without the catalog recording it is recorded. Undefined when the
   * plan has no such run.
   */
  async #continue(planId: string): Promise<VmFailoverReport | undefined> {
    const current = this.#ctx.store.state.failovers[planId]
    if (current?.running !== true) return undefined
    const { runId } = current
    const history = await this.#ctx.workflows.history(runId)
    if (history === undefined) {
      const input = current.input
      if (input !== undefined) return runWith(this.#ctx.workflows, VmFailoverReportCodec, VM_FAILOVER_WORKFLOW, runId, input, VmFailoverWorkflowInput)
      await commit(this.#ctx, (state) => decideEndFailover(state, planId, runId, 'failed'))
      return undefined
    }
    if (history.status === 'running') return resumeWith(this.#ctx.workflows, VmFailoverReportCodec, runId)
    const outcome = history.status === 'completed' && VmFailoverReportCodec.is(history.result) ? history.result.outcome : 'failed'
    await commit(this.#ctx, (state) => decideEndFailover(state, planId, runId, outcome))
    return undefined
  }

  /** Runs `work` as the one failover activity of plan `planId` in this process (`E_CONFLICT` if there is one). */
  async #exclusive<R>(planId: string, work: () => Promise<R>): Promise<R> {
    const current = this.#driving.get(planId)
    if (current !== undefined) {
      const runId = this.#ctx.store.state.failovers[planId]?.runId ?? ''
      throw new DrError('E_CONFLICT', `DR plan "${planId}" is failing over already (run ${runId})`, { plan: planId, runId })
    }
    const running = work()
    this.#driving.set(planId, running)
    try {
      return await running
    } finally {
      this.#driving.delete(planId)
    }
  }
}
