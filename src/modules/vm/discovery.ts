import * as t from 'io-ts'
import { callAdapter } from '../../kernel/errors.js'
import type { StoragePort } from '../../ports/storage.js'
import { BackupMetadataCodec } from './backup-layout.js'
import { readBackups } from './backup-volume.js'
import { mapBounded } from './bounded.js'

/**
 * A backup a failover's scan found: the newest complete one of its VM, where it is (volume, slot, the byte
 * offset of the slot), the snapshot to read it from (a test failover's held replica snapshot) and its metadata.
 *
 * @public
 */
export const DiscoveredBackupCodec = t.type(
  { volume: t.string, slot: t.number, start: t.number, snapshot: t.union([t.string, t.null]), metadata: BackupMetadataCodec },
  'DiscoveredBackup',
)

/**
 * One discovered backup.
 *
 * @public
 */
export type DiscoveredBackup = t.TypeOf<typeof DiscoveredBackupCodec>

/**
 * Where to look for one VM's backups: the VM, its backup volume on the site, and the snapshot of that volume to
 * read (null: the volume itself).
 *
 * @public
 */
export const ScanTargetCodec = t.type({ vmId: t.string, volume: t.string, snapshot: t.union([t.string, t.null]) }, 'ScanTarget')

/**
 * One scan target.
 *
 * @public
 */
export type ScanTarget = t.TypeOf<typeof ScanTargetCodec>

/**
 * Scans a site for the backups of `targets`, `parallel` volumes at a time: lists the site's volumes (a failover
 * reads what the storage holds now; a test failover reads held snapshots and lists nothing), reads each target's
 * backup volume once and keeps its newest complete backup that `wanted` accepts. Sorted by VM id.
 *
 * @public
 */
export async function scanBackups(
  storage: StoragePort,
  targets: readonly ScanTarget[],
  parallel: number,
  wanted: (metadata: DiscoveredBackup['metadata']) => boolean,
): Promise<DiscoveredBackup[]> {
  const live = targets.some((target) => target.snapshot === null)
  const present = live ? new Set((await callAdapter(storage.kind, 'listVolumes', () => storage.listVolumes())).map((v) => v.name)) : new Set<string>()
  const candidates = targets.filter((target) => target.snapshot !== null || present.has(target.volume))
  const newest = await mapBounded(candidates, parallel, async (target): Promise<DiscoveredBackup | undefined> => {
    const found = (await readBackups(storage, target.volume, target.snapshot === null ? undefined : { snapshot: target.snapshot }))
      .filter((b) => b.metadata.vmId === target.vmId && wanted(b.metadata))
      .pop()
    return found === undefined ? undefined : { volume: target.volume, slot: found.slot, start: found.start, snapshot: target.snapshot, metadata: found.metadata }
  })
  return newest.filter((d): d is DiscoveredBackup => d !== undefined)
}
