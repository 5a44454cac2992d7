import { callAdapter, isDrError } from '../../kernel/errors.js'
import type { BackupMetadata } from './backup-layout.js'
import { siteOf, type VmContext } from './context.js'
import { restoredNames } from './restore.js'

/**
 * Removes what a test failover created on `site`: the renamed VMs (powered off, unregistered) and their disk
 * volumes. Idempotent; what is already gone is skipped.
 *
 * @public
 */
export async function cleanupTest(ctx: VmContext, site: string, prefix: string, backups: readonly BackupMetadata[]): Promise<void> {
  const { storage, host } = siteOf(ctx, site)
  const token = ctx.token()
  for (const metadata of backups) {
    const names = restoredNames({ kind: 'test', prefix }, metadata)
    if ((await callAdapter(host.kind, 'getVm', () => host.getVm(names.vmId))) !== undefined) {
      await callAdapter(host.kind, 'powerOff', () => host.powerOff(names.vmId, token))
      await callAdapter(host.kind, 'unregisterVm', () => host.unregisterVm(names.vmId, token))
    }
    for (const volume of names.disks) {
      await callAdapter(storage.kind, 'deleteVolume', () => storage.deleteVolume(volume, token)).catch((error: unknown) => {
        if (!isDrError(error, 'E_NOT_FOUND')) throw error
      })
    }
  }
}
