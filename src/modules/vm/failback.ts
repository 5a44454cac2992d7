import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import { InjectedCrash, type WorkflowContext } from '../../kernel/workflow.js'
import { backupVolumeName, type BackupMetadata } from './backup-layout.js'
import { VM_BACKUP_WORKFLOW } from './backup.js'
import { commit, planOf, siteOf, type VmContext } from './context.js'
import { decideUnplace } from './decide.js'
import type { PlacedVm } from './state.js'
import type { VmOutcome } from './events.js'
import { nextBackup } from './next-backup.js'
import { VM_RESTORE_WORKFLOW, type VmRestoreWorkflowInput } from './restore.js'

/**
 * The workflow type of a failback.
 *
 * @public
 */
export const VM_FAILBACK_WORKFLOW = 'vm.failback'

/**
 * Input of the failback workflow: the plan and the run id.
 *
 * @public
 */
export const VmFailbackWorkflowInput = t.type({ planId: t.string, runId: t.string })

/**
 * The failback, per VM a failover restored: stop it on the destination, take a final backup there (its
 * metadata names the destination host), resync the mirror in reverse and return it to its original direction
 * (so the source holds that backup before anything is restored there), restore the VM on its original host
 * (the override names the original host, since the new metadata names the alternate one), and unregister the
 * destination copy. VMs fail back independently; the result lists each with its outcome.
 *
 * @public
 */
export async function runFailback(ctx: VmContext, wf: WorkflowContext, input: t.TypeOf<typeof VmFailbackWorkflowInput>): Promise<Json> {
  const plan = planOf(ctx, input.planId)
  const destination = siteOf(ctx, plan.destination)
  const token = ctx.token()
  const vms = (await wf.step('select', async () => {
    const selected = Object.entries(ctx.store.state.placed)
      .filter(([vmId, placed]) => placed.site === plan.destination && ctx.store.state.mirrors[vmId]?.planId === plan.id)
      .sort(([a], [b]) => (a < b ? -1 : 1))
    if (selected.length === 0) throw new DrError('E_PRECONDITION', `DR plan "${plan.id}" has no VM failed over to ${plan.destination}`, { plan: plan.id })
    return selected as unknown as Json
  })) as unknown as Array<[string, PlacedVm]>
  const outcomes: VmOutcome[] = []
  for (const [vmId, placed] of vms) {
    const mirror = ctx.store.state.mirrors[vmId]?.mirror as string
    try {
      await wf.step(`stop:${vmId}`, async () => {
        await callAdapter(destination.host.kind, 'powerOff', () => destination.host.powerOff(vmId, token))
        return null
      })
      const backup = (await wf.step(`backup:${vmId}`, async () => {
        const next = await nextBackup(ctx, plan, plan.destination, vmId, 'failback')
        return ctx.workflows.run(VM_BACKUP_WORKFLOW, `${input.runId}/backup/${vmId}`, next as unknown as Json)
      })) as unknown as BackupMetadata
      await wf.step(`reverse:${vmId}`, async () => {
        const status = await ctx.mirrors.status(mirror)
        if (status.state === 'failedOver') await ctx.mirrors.resync(mirror, { acknowledgeDataLoss: true })
        return null
      })
      await wf.step(`return:${vmId}`, async () => {
        const status = await ctx.mirrors.status(mirror)
        if (status.direction === 'reverse') await ctx.mirrors.failback(mirror)
        return null
      })
      const child: VmRestoreWorkflowInput = {
        runId: input.runId,
        planId: plan.id,
        site: plan.source,
        volume: backupVolumeName(vmId),
        slot: backup.seq % plan.retain,
        snapshot: null,
        backupId: backup.backupId,
        host: placed.originalHost,
        hostNameSource: 'dr-plan',
        kind: 'single',
        prefix: '',
        network: null,
        pathMap: null,
        overwrite: true,
        originalHost: placed.originalHost,
      }
      const outcome = (await wf.step(`restore:${vmId}`, () => ctx.workflows.run(VM_RESTORE_WORKFLOW, `${input.runId}/restore/${vmId}`, child as unknown as Json))) as unknown as VmOutcome
      await wf.step(`release:${vmId}`, async () => {
        if ((await callAdapter(destination.host.kind, 'getVm', () => destination.host.getVm(vmId))) !== undefined) {
          await callAdapter(destination.host.kind, 'unregisterVm', () => destination.host.unregisterVm(vmId, token))
        }
        await commit(ctx, (state) => decideUnplace(state, vmId))
        return null
      })
      outcomes.push(outcome)
    } catch (error) {
      if (error instanceof InjectedCrash) throw error
      outcomes.push({ vmId, outcome: 'failed', host: null, backupId: null, restoredPointInTime: null, reason: toDrError(error).message })
    }
  }
  const restored = outcomes.filter((o) => o.outcome !== 'failed').map((o) => o.vmId)
  const failed = outcomes.filter((o) => o.outcome === 'failed').map((o) => o.vmId)
  ctx.events.emit('vm.failbackCompleted', failed.length === 0 ? 'info' : 'error', { planId: plan.id, restored, failed })
  return outcomes as unknown as Json
}
