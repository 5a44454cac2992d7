import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { HostPort, VmInfo, VmSpec } from '../../ports/host.js'
import type { ReadSource, StoragePort } from '../../ports/storage.js'
import { BACKUP_BLOCK, type BackupMetadata } from './backup-layout.js'
import { copyRegion } from './backup-volume.js'

/** The config record a restored disk volume carries: the backup it was restored from. */
export const RESTORED_FROM = 'drkit.vm.restoredFrom'
/** The config record a restored disk volume carries: the restore run that wrote it. */
const RESTORED_BY = 'drkit.vm.restoredBy'

/**
 * What the `disks` step of a restore did: the volumes it created, and for each existing volume it overwrote the
 * safety snapshot that keeps its former content (so a later failure can put it back).
 *
 * @public
 */
export const DiskChangesCodec = t.type({ created: t.array(t.string), saved: t.array(t.type({ volume: t.string, snapshot: t.string })) }, 'DiskChanges')

/**
 * One restore's disk changes.
 *
 * @public
 */
export type DiskChanges = t.TypeOf<typeof DiskChangesCodec>

/** A resource name made of `text`: characters a name cannot hold become `-`, at most 128 characters. */
export function nameOf(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(-120)
}

/**
 * Checks that `host` can take a VM of `need` before anything is evicted: it exists (`E_NOT_FOUND`), is online and
 * has the CPU and memory free, counting what `replaced` (the VM of that id on that host, to be replaced) frees
 * (`E_PRECONDITION`).
 *
 * @public
 */
export async function checkHost(port: HostPort, host: string, need: { readonly cpus: number; readonly memoryMb: number }, replaced: VmInfo | undefined): Promise<void> {
  const info = await callAdapter(port.kind, 'hostInfo', () => port.hostInfo(host))
  if (!info.online) throw new DrError('E_PRECONDITION', `host "${host}" is not available`, { host })
  const freed = replaced?.host === host ? replaced : { cpus: 0, memoryMb: 0 }
  if (info.cpus - info.allocatedCpus + freed.cpus < need.cpus || info.memoryMb - info.allocatedMemoryMb + freed.memoryMb < need.memoryMb) {
    throw new DrError('E_PRECONDITION', `host "${host}" lacks the CPU or memory for the VM`, { host, cpus: need.cpus, memoryMb: need.memoryMb })
  }
}

/**
 * Puts a VM that a restore evicted back as it was (registered on its host, running if it ran): the compensation
 * of an eviction whose restore failed.
 *
 * @public
 */
export async function reinstate(port: HostPort, vm: VmInfo, token: FenceToken): Promise<void> {
  const spec: VmSpec = { id: vm.id, name: vm.name, cpus: vm.cpus, memoryMb: vm.memoryMb, disks: vm.disks, networks: vm.networks, tags: vm.tags, config: vm.config }
  const current = await callAdapter(port.kind, 'getVm', () => port.getVm(vm.id))
  if (current === undefined) await callAdapter(port.kind, 'registerVm', () => port.registerVm(vm.host, spec, token))
  if (vm.power === 'running') await callAdapter(port.kind, 'powerOn', () => port.powerOn(vm.id, token))
}

/** One disk of a restore: where its bytes are in the backup, the volume to restore it into and its size. */
export interface DiskCopy {
  readonly from: { readonly volume: string; readonly offset: number; readonly source: ReadSource | undefined }
  readonly target: string
  readonly sizeBytes: number
}

/**
 * Copies each disk out of the backup into its volume on the site (the restore run `run`): a missing volume is
 * created; an existing one is replaced only with `overwrite`, when it was restored from the same backup before (a
 * re-run) or when it is empty, after a safety snapshot `safety` of its content (taken once: a crash and a re-run of
 * this restore keeps the first one). Resolves with what changed, for the compensation.
 *
 * @public
 */
export async function restoreDisks(storage: StoragePort, token: FenceToken, disks: readonly DiskCopy[], restore: { readonly backupId: string; readonly run: string; readonly overwrite: boolean; readonly safety: string }): Promise<DiskChanges> {
  const changes: { created: string[]; saved: Array<{ volume: string; snapshot: string }> } = { created: [], saved: [] }
  for (const disk of disks) {
    const info = await storage.volumeInfo(disk.target).catch((error: unknown) => (isDrError(error, 'E_NOT_FOUND') ? undefined : Promise.reject(error)))
    if (info === undefined) {
      await callAdapter(storage.kind, 'createVolume', () => storage.createVolume({ name: disk.target, sizeBytes: Math.ceil(disk.sizeBytes / BACKUP_BLOCK) * BACKUP_BLOCK, blockSize: BACKUP_BLOCK }, token))
      await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(disk.target, RESTORED_BY, restore.run, token))
      changes.created.push(disk.target)
    } else {
      const thisRun = (await storage.getConfig(disk.target, RESTORED_BY)) === restore.run
      const safe = await hasSnapshot(storage, disk.target, restore.safety)
      if (thisRun && !safe) {
        changes.created.push(disk.target)
      } else {
        const sameBackup = (await storage.getConfig(disk.target, RESTORED_FROM)) === restore.backupId
        if (!restore.overwrite && !sameBackup && !thisRun && info.allocatedBytes > 0) {
          throw new DrError('E_CONFLICT', `volume ${disk.target} exists; pass overwrite to replace it`, { volume: disk.target })
        }
        if (!safe) await callAdapter(storage.kind, 'createSnapshot', () => storage.createSnapshot(disk.target, restore.safety, token, { 'drkit.vm': 'restore-safety' }))
        await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(disk.target, RESTORED_BY, restore.run, token))
        changes.saved.push({ volume: disk.target, snapshot: restore.safety })
      }
      if (info.sizeBytes < disk.sizeBytes) {
        await callAdapter(storage.kind, 'resizeVolume', () => storage.resizeVolume(disk.target, Math.ceil(disk.sizeBytes / info.blockSize) * info.blockSize, token))
      }
    }
    await callAdapter(storage.kind, 'setWritable', () => storage.setWritable(disk.target, true, token))
    await copyRegion({ storage, volume: disk.from.volume, offset: disk.from.offset, ...(disk.from.source === undefined ? {} : { source: disk.from.source }) }, { storage, volume: disk.target, offset: 0 }, disk.sizeBytes, token)
    await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(disk.target, RESTORED_FROM, restore.backupId, token))
  }
  return changes
}

/** Undoes {@link restoreDisks}: overwritten volumes get their former content back, created ones are deleted. */
export async function undoDisks(storage: StoragePort, token: FenceToken, changes: DiskChanges): Promise<void> {
  for (const saved of changes.saved) {
    await callAdapter(storage.kind, 'restoreSnapshot', () => storage.restoreSnapshot(saved.volume, saved.snapshot, token))
  }
  await forgetSafety(storage, token, changes)
  for (const volume of changes.created) {
    await callAdapter(storage.kind, 'deleteVolume', () => storage.deleteVolume(volume, token)).catch((error: unknown) => {
      if (!isDrError(error, 'E_NOT_FOUND')) throw error
    })
  }
}

/** Deletes the safety snapshots of a restore (it succeeded, or they were restored). */
export async function forgetSafety(storage: StoragePort, token: FenceToken, changes: DiskChanges): Promise<void> {
  for (const saved of changes.saved) {
    await callAdapter(storage.kind, 'deleteSnapshot', () => storage.deleteSnapshot(saved.volume, saved.snapshot, token)).catch((error: unknown) => {
      if (!isDrError(error, 'E_NOT_FOUND')) throw error
    })
  }
}

async function hasSnapshot(storage: StoragePort, volume: string, snapshot: string): Promise<boolean> {
  return storage.snapshotInfo(volume, snapshot).then(
    () => true,
    (error: unknown) => (isDrError(error, 'E_NOT_FOUND') ? false : Promise.reject(error)),
  )
}

/**
 * Registers the restored VM on `host` with an idempotency key (a retry after a lost reply registers nothing
 * twice). A VM of that id registered already counts as this restore's when it is on `host` with the restored
 * disks (an earlier attempt registered it); otherwise `E_CONFLICT`. Resolves with whether this call registered it.
 *
 * @public
 */
export async function registerRestored(port: HostPort, host: string, spec: VmSpec, token: FenceToken, idempotencyKey: string): Promise<boolean> {
  try {
    await port.registerVm(host, spec, token, { idempotencyKey })
    return true
  } catch (error) {
    if (!isDrError(error, 'E_CONFLICT')) throw error
    const current = await callAdapter(port.kind, 'getVm', () => port.getVm(spec.id))
    const disks = (vm: { readonly disks: VmSpec['disks'] }): string => JSON.stringify(vm.disks.map((d) => d.volume))
    if (current !== undefined && current.host === host && disks(current) === disks(spec)) return false
    throw new DrError('E_CONFLICT', `VM "${spec.id}" is registered on host "${current?.host ?? '?'}" already`, { vm: spec.id, host: current?.host ?? null })
  }
}

/**
 * The VM spec a restore registers: the backup's VM (renamed for a test restore) with the restored disks at their
 * translated paths, attached to the isolated network of a test restore or to its own networks.
 *
 * @public
 */
export function restoredSpec(metadata: BackupMetadata, names: { readonly vmId: string; readonly disks: readonly string[] }, mountPaths: readonly string[], network: string | null): VmSpec {
  return {
    id: names.vmId,
    name: metadata.name,
    cpus: metadata.cpus,
    memoryMb: metadata.memoryMb,
    disks: metadata.disks.map((d, index) => ({ volume: names.disks[index] ?? d.volume, mountPath: mountPaths[index] ?? d.mountPath })),
    networks: network === null ? metadata.networks : [network],
    tags: metadata.tags,
    config: metadata.config,
  }
}
