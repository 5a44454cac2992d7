import * as t from 'io-ts'
import { DrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import { runChildren } from './children.js'
import { planOf, type VmContext } from './context.js'
import { VM_FAILBACK_VM_WORKFLOW, VmFailbackVmWorkflowInput } from './failback-vm.js'
import { runWith, stepWith } from './journaled-step.js'
import { VmOutcomeCodec, failedOutcome } from './outcomes.js'
import { mirrorKey } from './sites.js'
import { siteAnswers } from './source-probe.js'

/**
 * The workflow type of a failback.
 *
 * @public
 */
export const VM_FAILBACK_WORKFLOW = 'vm.failback'

/**
 * Input of the failback workflow: the plan, the run id, and what the reverse resync may do with data the source
 * wrote after the failover (absent in runs journaled before they were options: nothing).
 *
 * @public
 */
export const VmFailbackWorkflowInput = t.intersection([t.type({ planId: t.string, runId: t.string }), t.partial({ acknowledgeDataLoss: t.boolean, safetySnapshot: t.boolean })])

const Selected = t.array(VmFailbackVmWorkflowInput)

/**
 * The failback of a plan: select the VMs a failover restored on the destination, make sure the source site answers
 * (a failback while it is still down stops nothing and fails with `E_PRECONDITION`), then fail the VMs back
 * independently, `maxParallel` at once, each as its own workflow (see `runFailbackVm`). The result lists each VM
 * with its outcome; a VM failed over to a tertiary site is listed as failed (its backups reach the source only
 * through the destination, so it must be failed over to the destination first).
 *
 * @public
 */
export async function runFailback(ctx: VmContext, wf: WorkflowContext, input: t.TypeOf<typeof VmFailbackWorkflowInput>): Promise<Json> {
  const plan = planOf(ctx, input.planId)
  const vms = await stepWith(wf, Selected, 'select', async () => {
    const selected = Object.entries(ctx.store.state.placed)
      .filter(([vmId, placed]) => placed.site !== plan.source && ctx.store.state.mirrors[mirrorKey(plan, vmId, placed.site)]?.planId === plan.id)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([vmId, placed]) => ({
        planId: plan.id,
        runId: input.runId,
        vmId,
        site: placed.site,
        host: placed.host,
        mirror: ctx.store.state.mirrors[mirrorKey(plan, vmId, placed.site)]?.mirror ?? '',
        originalHost: placed.originalHost,
        acknowledgeDataLoss: input.acknowledgeDataLoss === true,
        safetySnapshot: input.safetySnapshot === true,
      }))
    if (selected.length === 0) throw new DrError('E_PRECONDITION', `DR plan "${plan.id}" has no VM failed over`, { plan: plan.id })
    return selected
  })
  await stepWith(wf, t.null, 'probe', async () => {
    if (!(await siteAnswers(ctx, plan.source))) {
      throw new DrError('E_PRECONDITION', `site ${plan.source} cannot be reached: the failback stopped nothing; the VMs keep running where they were failed over to`, { plan: plan.id, site: plan.source })
    }
    return null
  })
  const outcomes = await stepWith(wf, t.array(VmOutcomeCodec), 'failback-all', async () => {
    const tertiary = vms.filter((vm) => vm.site !== plan.destination)
    const returned = await runChildren(
      vms.filter((vm) => vm.site === plan.destination),
      plan.maxParallel,
      (vm) => runWith(ctx.workflows, VmOutcomeCodec, VM_FAILBACK_VM_WORKFLOW, `${input.runId}/vm/${vm.vmId}`, vm, VmFailbackVmWorkflowInput),
      (vm, reason) => failedOutcome(vm.vmId, reason, vm.host),
    )
    const unsupported = tertiary.map((vm) => failedOutcome(vm.vmId, `failed over to tertiary site ${vm.site}: fail it over to ${plan.destination} before failing it back`, vm.host))
    return [...returned, ...unsupported].sort((a, b) => (a.vmId < b.vmId ? -1 : 1))
  })
  const restored = outcomes.filter((o) => o.outcome !== 'failed').map((o) => o.vmId)
  const failed = outcomes.filter((o) => o.outcome === 'failed').map((o) => o.vmId)
  ctx.events.emit('vm.failbackCompleted', failed.length === 0 ? 'info' : 'error', { planId: plan.id, restored, failed })
  return t.array(VmOutcomeCodec).encode(outcomes)
}
