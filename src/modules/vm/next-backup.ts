import { backupVolumeName } from './backup-layout.js'
import { readBackups } from './backup-volume.js'
import { siteOf, type VmContext } from './context.js'
import type { BackupTrigger } from './events.js'
import type { VmBackupWorkflowInput } from './backup.js'
import type { DrPlan } from './inputs.js'

/**
 * The input of the next backup of `vmId` on `site`: a sequence number above every backup the catalog or the
 * site's backup volume knows (a failback backup follows the replicated ones), the slot it takes (round robin
 * over the plan's retention) and its id.
 *
 * @public
 */
export async function nextBackup(ctx: VmContext, plan: DrPlan, site: string, vmId: string, trigger: BackupTrigger): Promise<VmBackupWorkflowInput> {
  const known = (ctx.store.state.backups[vmId] ?? []).map((b) => b.seq)
  const stored = (await readBackups(siteOf(ctx, site).storage, backupVolumeName(vmId)).catch(() => [])).map((b) => b.metadata.seq)
  const seq = Math.max(0, ...known, ...stored) + 1
  return { planId: plan.id, site, vmId, seq, slot: seq % plan.retain, backupId: `${vmId}-${site}-${seq}`, trigger }
}
