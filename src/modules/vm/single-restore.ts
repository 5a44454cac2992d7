import { DrError, callAdapter } from '../../kernel/errors.js'
import { backupVolumeName } from './backup-layout.js'
import { readBackups } from './backup-volume.js'
import { siteOf, type VmContext } from './context.js'
import type { VmRestoreOptions } from './inputs.js'
import { checkHost } from './restore-steps.js'
import type { VmRestoreWorkflowInput } from './restore.js'

/**
 * The mirror whose live destination on `site` is VM `vmId`'s backup volume there, with its newest replicated
 * snapshot (replication may rewrite the volume at any moment, so a restore reads a replicated snapshot, held);
 * undefined when the volume is not one (a source, or a mirror broken by a failover).
 *
 * @public
 */
export async function liveReplica(ctx: VmContext, vmId: string, site: string): Promise<{ mirror: string; snapshot: string } | undefined> {
  for (const [key, record] of Object.entries(ctx.store.state.mirrors)) {
    if ((key.split('@')[0] ?? key) !== vmId) continue
    const status = await ctx.mirrors.status(record.mirror)
    if (status.destination.site !== site || status.state === 'failedOver') continue
    if (status.recoveryPoint === null) throw new DrError('E_NOT_FOUND', `no backup of VM "${vmId}" has been replicated to ${site} yet`, { vm: vmId, site })
    return { mirror: record.mirror, snapshot: status.recoveryPoint.snapshot }
  }
  return undefined
}

/**
 * Prepares the restore of one VM (`vms.restore`) and checks it before anything happens: the backup exists
 * (`E_NOT_FOUND`), the designated host exists (`E_NOT_FOUND`), is online and has room (`E_PRECONDITION`), and a
 * VM of that id registered on the site is replaced only with `overwrite` (`E_CONFLICT`). Resolves with the input
 * of the restore workflow.
 *
 * @public
 */
export async function prepareRestore(ctx: VmContext, input: VmRestoreOptions, runId: string): Promise<VmRestoreWorkflowInput> {
  const { storage, host } = siteOf(ctx, input.site)
  const volume = backupVolumeName(input.vm)
  const replica = await liveReplica(ctx, input.vm, input.site)
  const backups = await readBackups(storage, volume, replica === undefined ? undefined : { snapshot: replica.snapshot })
  const chosen = input.backup === undefined ? backups[backups.length - 1] : backups.find((b) => b.metadata.backupId === input.backup)
  if (chosen === undefined) throw new DrError('E_NOT_FOUND', `no backup ${input.backup ?? ''} of VM "${input.vm}" on site ${input.site}`.replace('  ', ' '), { vm: input.vm, site: input.site })
  const designated = input.mode === 'alternate-host' && input.host !== undefined ? input.host : chosen.metadata.hostName
  const current = await callAdapter(host.kind, 'getVm', () => host.getVm(input.vm))
  if (current !== undefined && input.overwrite !== true) {
    throw new DrError('E_CONFLICT', `VM "${input.vm}" is registered on site ${input.site} (host "${current.host}"); pass overwrite to replace it`, { vm: input.vm, host: current.host })
  }
  await checkHost(host, designated, chosen.metadata, current)
  return {
    runId,
    planId: null,
    site: input.site,
    volume,
    slot: chosen.slot,
    snapshot: null,
    backupId: chosen.metadata.backupId,
    host: designated,
    hostNameSource: input.mode === 'alternate-host' ? 'caller' : 'metadata',
    kind: 'single',
    prefix: '',
    network: null,
    pathMap: null,
    overwrite: input.overwrite === true,
    originalHost: chosen.metadata.hostName,
    ...(replica === undefined ? {} : { replica: replica.mirror }),
  }
}
