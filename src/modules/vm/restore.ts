import * as t from 'io-ts'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { VmSpec } from '../../ports/host.js'
import { BACKUP_BLOCK, slotOffset, type BackupMetadata } from './backup-layout.js'
import { copyRegion, readBackups, readSuperblock } from './backup-volume.js'
import { commit, siteOf, type VmContext } from './context.js'
import { decidePlace } from './decide.js'
import type { VmOutcome } from './events.js'

/**
 * The workflow type of restoring one VM from one backup to one host.
 *
 * @public
 */
export const VM_RESTORE_WORKFLOW = 'vm.restore'

/**
 * Input of the restore workflow: where the backup is (site, backup volume, slot, optionally a snapshot of that
 * volume to read from), which backup is expected there, the designated host and where its name came from, the
 * kind of restore (`dr`: recorded as the VM's new place; `test`: renamed VM and disks on an isolated network;
 * `single`), the name prefix of test resources and whether an existing VM of that id may be replaced.
 *
 * @public
 */
export const VmRestoreWorkflowInput = t.type({
  runId: t.string,
  planId: t.union([t.string, t.null]),
  site: t.string,
  volume: t.string,
  slot: t.number,
  snapshot: t.union([t.string, t.null]),
  backupId: t.string,
  host: t.string,
  hostNameSource: t.union([t.literal('dr-plan'), t.literal('caller'), t.literal('metadata')]),
  kind: t.union([t.literal('dr'), t.literal('test'), t.literal('single')]),
  prefix: t.string,
  network: t.union([t.string, t.null]),
  pathMap: t.union([t.null, t.record(t.string, t.string)]),
  overwrite: t.boolean,
  originalHost: t.string,
})

/**
 * Input of one restore run.
 *
 * @public
 */
export type VmRestoreWorkflowInput = t.TypeOf<typeof VmRestoreWorkflowInput>

const RESTORED_FROM = 'drkit.vm.restoredFrom'

/**
 * Translates a disk path of the backup metadata to the destination: the longest `pathMap` prefix that matches is
 * replaced (no map: the path is kept). A path no prefix matches is refused with `E_PRECONDITION` (an unmapped
 * reference), before anything is created for the VM.
 *
 * @public
 */
export function translatePath(pathMap: Readonly<Record<string, string>> | null, path: string): string {
  if (pathMap === null) return path
  const prefix = Object.keys(pathMap).filter((from) => path.startsWith(from)).sort((a, b) => b.length - a.length)[0]
  if (prefix === undefined) throw new DrError('E_PRECONDITION', `unmapped reference: disk path "${path}" has no entry in the plan's path map`, { path, reason: 'unmapped-reference' })
  return `${pathMap[prefix] ?? ''}${path.slice(prefix.length)}`
}

/**
 * The VM id and disk volume names a restore creates (renamed for a test restore).
 *
 * @public
 */
export function restoredNames(input: Pick<VmRestoreWorkflowInput, 'kind' | 'prefix'>, metadata: Pick<BackupMetadata, 'vmId' | 'disks'>): { vmId: string; disks: string[] } {
  const rename = (name: string): string => (input.kind === 'test' ? `${input.prefix}-${name}` : name)
  return { vmId: rename(metadata.vmId), disks: metadata.disks.map((d) => rename(d.volume)) }
}

/**
 * Restores one VM: reads the backup's metadata (never rewriting it), replaces an existing VM of that id when
 * asked, copies each disk out of the backup into a volume on the site, registers the VM on the designated host
 * (the metadata's host name is overridden, not changed; a VM already registered there by this restore counts
 * as done) and powers it on. Every step is idempotent, so a crash anywhere resumes without a duplicate VM.
 *
 * @public
 */
export async function runRestore(ctx: VmContext, wf: WorkflowContext, input: VmRestoreWorkflowInput): Promise<Json> {
  const { storage, host } = siteOf(ctx, input.site)
  const token = ctx.token()
  const source = input.snapshot === null ? undefined : { snapshot: input.snapshot }
  const metadata = (await wf.step('read-metadata', async () => {
    const found = (await readBackups(storage, input.volume, source)).find((b) => b.slot === input.slot)
    if (found === undefined || found.metadata.backupId !== input.backupId) {
      throw new DrError('E_NOT_FOUND', `backup "${input.backupId}" is no longer in slot ${input.slot} of ${input.site}/${input.volume}`, { backup: input.backupId })
    }
    return found.metadata as unknown as Json
  })) as unknown as BackupMetadata
  const names = restoredNames(input, metadata)
  const mountPaths = (await wf.step('translate', async () => metadata.disks.map((disk) => translatePath(input.pathMap, disk.mountPath)))) as string[]
  ctx.events.emit('vm.restoreStarted', 'info', {
    vmId: metadata.vmId,
    backupId: metadata.backupId,
    metadataHostName: metadata.hostName,
    designatedHostName: input.host,
    hostNameSource: input.hostNameSource,
  })
  if (input.overwrite) {
    await wf.step('evict', async () => {
      const current = await callAdapter(host.kind, 'getVm', () => host.getVm(names.vmId))
      if (current === undefined) return null
      await callAdapter(host.kind, 'powerOff', () => host.powerOff(names.vmId, token))
      await callAdapter(host.kind, 'unregisterVm', () => host.unregisterVm(names.vmId, token))
      return null
    })
  }
  await wf.step('disks', async () => {
    const superblock = await readSuperblock(storage, input.volume, source)
    if (superblock === undefined) throw new DrError('E_CORRUPT', `backup volume ${input.site}/${input.volume} lost its superblock`, { volume: input.volume })
    const start = slotOffset(superblock, input.slot)
    for (const [index, disk] of metadata.disks.entries()) {
      const target = names.disks[index] ?? disk.volume
      const info = await storage.volumeInfo(target).catch((error: unknown) => (isDrError(error, 'E_NOT_FOUND') ? undefined : Promise.reject(error)))
      if (info === undefined) {
        await callAdapter(storage.kind, 'createVolume', () => storage.createVolume({ name: target, sizeBytes: Math.ceil(disk.sizeBytes / BACKUP_BLOCK) * BACKUP_BLOCK, blockSize: BACKUP_BLOCK }, token))
      } else if (!input.overwrite && (await storage.getConfig(target, RESTORED_FROM)) !== metadata.backupId) {
        throw new DrError('E_CONFLICT', `volume ${input.site}/${target} exists; pass overwrite to replace it`, { volume: target })
      } else if (info.sizeBytes < disk.sizeBytes) {
        await callAdapter(storage.kind, 'resizeVolume', () => storage.resizeVolume(target, Math.ceil(disk.sizeBytes / info.blockSize) * info.blockSize, token))
      }
      await callAdapter(storage.kind, 'setWritable', () => storage.setWritable(target, true, token))
      await copyRegion({ storage, volume: input.volume, offset: start + disk.offset, ...(source === undefined ? {} : { source }) }, { storage, volume: target, offset: 0 }, disk.sizeBytes, token)
      await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(target, RESTORED_FROM, metadata.backupId, token))
    }
    return null
  })
  await wf.step('register', async () => {
    const current = await callAdapter(host.kind, 'getVm', () => host.getVm(names.vmId))
    if (current !== undefined) {
      if (current.host === input.host) return null
      throw new DrError('E_CONFLICT', `VM "${names.vmId}" is registered on host "${current.host}" already`, { vm: names.vmId, host: current.host })
    }
    const spec: VmSpec = {
      id: names.vmId,
      name: metadata.name,
      cpus: metadata.cpus,
      memoryMb: metadata.memoryMb,
      disks: metadata.disks.map((d, index) => ({ volume: names.disks[index] ?? d.volume, mountPath: input.kind === 'test' ? `/${input.prefix}${mountPaths[index] ?? d.mountPath}` : (mountPaths[index] ?? d.mountPath) })),
      networks: input.network === null ? metadata.networks : [input.network],
      tags: metadata.tags,
      config: metadata.config,
    }
    await callAdapter(host.kind, 'registerVm', () => host.registerVm(input.host, spec, token))
    ctx.events.emit('vm.vmRegistered', 'info', { vmId: names.vmId, hostName: input.host })
    return null
  })
  await wf.step('power-on', async () => {
    await callAdapter(host.kind, 'powerOn', () => host.powerOn(names.vmId, token))
    const state = await callAdapter(host.kind, 'getVm', () => host.getVm(names.vmId))
    if (state?.power !== 'running') throw new DrError('E_ADAPTER', `VM "${names.vmId}" did not start on host "${input.host}"`, { vm: names.vmId, host: input.host })
    ctx.events.emit('vm.vmPoweredOn', 'info', { vmId: names.vmId, hostName: input.host })
    return null
  })
  if (input.kind === 'dr') {
    await wf.step('record', async () => {
      await commit(ctx, (state) =>
        decidePlace(state, metadata.vmId, { site: input.site, host: input.host, backupId: metadata.backupId, runId: input.runId, originalHost: input.originalHost }),
      )
      return null
    })
  }
  ctx.events.emit('vm.restoreCompleted', 'info', { vmId: metadata.vmId, hostName: input.host, backupId: metadata.backupId, restoredPointInTime: metadata.takenAt })
  const outcome: VmOutcome = { vmId: metadata.vmId, outcome: 'restored', host: input.host, backupId: metadata.backupId, restoredPointInTime: metadata.takenAt, reason: null }
  return outcome as unknown as Json
}
