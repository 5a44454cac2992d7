import * as t from 'io-ts'
import { callAdapter } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import { BackupMetadataCodec, backupVolumeName } from './backup-layout.js'
import { VM_BACKUP_WORKFLOW, VmBackupWorkflowInput } from './backup.js'
import { commit, planOf, siteOf, type VmContext } from './context.js'
import { decideUnplace } from './decide.js'
import { runWith, stepWith } from './journaled-step.js'
import { nextBackup } from './next-backup.js'
import { VmOutcomeCodec } from './outcomes.js'
import { VM_RESTORE_WORKFLOW, VmRestoreWorkflowInput } from './restore.js'

/**
 * The workflow type of failing one VM back.
 *
 * @public
 */
export const VM_FAILBACK_VM_WORKFLOW = 'vm.failback-vm'

/**
 * Input of the failback of one VM: the plan and the failback run, the VM, the site and host it runs on since the
 * failover, the mirror of its backup volume towards that site, its original host, and what the reverse resync may
 * do with data the source wrote after the failover.
 *
 * @public
 */
export const VmFailbackVmWorkflowInput = t.type({
  planId: t.string,
  runId: t.string,
  vmId: t.string,
  site: t.string,
  host: t.string,
  mirror: t.string,
  originalHost: t.string,
  acknowledgeDataLoss: t.boolean,
  safetySnapshot: t.boolean,
})

/**
 * Input of the failback of one VM.
 *
 * @public
 */
export type VmFailbackVmWorkflowInput = t.TypeOf<typeof VmFailbackVmWorkflowInput>

/**
 * Fails one VM back to its original host, keeping it running as long as it can:
 *
 * 1. `reverse` — while the VM still runs, the backup mirror replicates from the failover site back to the source
 *    (resync after the failover; a relationship returned forward by an earlier, compensated attempt is swapped);
 * 2. `stop` — the VM is powered off on the failover site (its downtime starts here);
 * 3. `backup` — a final backup there (its metadata names the failover host), which the reverse mirror carries;
 * 4. `return` — the mirror fails back to its original direction, draining that final backup to the source;
 * 5. `restore` — the VM is restored on its original host from that backup (the override names the original host,
 *    since the new metadata names the failover host);
 * 6. `release` — the copy on the failover site is unregistered and the catalog forgets the failover placement.
 *
 * When `backup`, `return` or `restore` fails, the VM is powered on again where it ran (`vm.failbackCompensated`),
 * so a failed failback never leaves it off; re-issuing the failback starts over from `reverse`.
 *
 * @public
 */
export async function runFailbackVm(ctx: VmContext, wf: WorkflowContext, input: VmFailbackVmWorkflowInput): Promise<Json> {
  const plan = planOf(ctx, input.planId)
  const { host } = siteOf(ctx, input.site)
  const token = ctx.token()
  await stepWith(wf, t.null, 'reverse', async () => {
    const status = await ctx.mirrors.status(input.mirror)
    const loss = { ...(input.acknowledgeDataLoss ? { acknowledgeDataLoss: true as const } : {}), ...(input.safetySnapshot ? { safetySnapshot: true as const } : {}) }
    if (status.state === 'failedOver') await ctx.mirrors.resync(input.mirror, loss)
    else if (status.direction === 'forward') await ctx.mirrors.swap(input.mirror)
    return null
  })
  await stepWith(
    wf,
    t.null,
    'stop',
    async () => {
      await callAdapter(host.kind, 'powerOff', () => host.powerOff(input.vmId, token))
      return null
    },
    {
      compensate: async () => {
        await callAdapter(host.kind, 'powerOn', () => host.powerOn(input.vmId, token))
        ctx.events.emit('vm.failbackCompensated', 'warning', { vmId: input.vmId, site: input.site, reason: 'the failback failed after the VM was stopped; it runs again where it ran' })
      },
    },
  )
  const backup = await stepWith(wf, BackupMetadataCodec, 'backup', async () => {
    const next = await nextBackup(ctx, plan, input.site, input.vmId, 'failback')
    return runWith(ctx.workflows, BackupMetadataCodec, VM_BACKUP_WORKFLOW, `${wf.workflowId}/backup`, next, VmBackupWorkflowInput)
  })
  await stepWith(wf, t.null, 'return', async () => {
    if ((await ctx.mirrors.status(input.mirror)).direction === 'reverse') await ctx.mirrors.failback(input.mirror)
    return null
  })
  const child: VmRestoreWorkflowInput = {
    runId: input.runId,
    planId: plan.id,
    site: plan.source,
    volume: backupVolumeName(input.vmId),
    slot: backup.seq % plan.retain,
    snapshot: null,
    backupId: backup.backupId,
    host: input.originalHost,
    hostNameSource: 'dr-plan',
    kind: 'single',
    prefix: '',
    network: null,
    pathMap: null,
    overwrite: true,
    originalHost: input.originalHost,
  }
  const outcome = await stepWith(wf, VmOutcomeCodec, 'restore', () => runWith(ctx.workflows, VmOutcomeCodec, VM_RESTORE_WORKFLOW, `${wf.workflowId}/restore`, child, VmRestoreWorkflowInput))
  await stepWith(wf, t.null, 'release', async () => {
    if ((await callAdapter(host.kind, 'getVm', () => host.getVm(input.vmId))) !== undefined) {
      await callAdapter(host.kind, 'unregisterVm', () => host.unregisterVm(input.vmId, token))
    }
    await commit(ctx, (state) => decideUnplace(state, input.vmId))
    return null
  })
  return VmOutcomeCodec.encode(outcome)
}
