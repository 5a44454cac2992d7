import * as t from 'io-ts'
import { DrError, callAdapter, isDrError, toDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { RetryPolicy } from '../../kernel/retry.js'
import type { WorkflowContext } from '../../kernel/workflow.js'
import type { HostPort, VmInfo } from '../../ports/host.js'
import { VmInfoCodec } from '../../ports/host-codecs.js'
import type { StoragePort } from '../../ports/storage.js'
import { BackupMetadataCodec, HEADER_BYTES, decodeHeader, slotOffset, vmOfBackupVolume, type BackupMetadata } from './backup-layout.js'
import { readSuperblock } from './backup-volume.js'
import { siteOf, type VmContext } from './context.js'
import { stepWith } from './journaled-step.js'
import { VmOutcomeCodec, type VmOutcome } from './outcomes.js'
import { translatePath } from './path-map.js'
import { holdRecoveryPoint } from './recovery-point.js'
import { DiskChangesCodec, type DiskChanges, checkHost, forgetSafety, nameOf, registerRestored, reinstate, restoreDisks, restoredSpec, undoDisks } from './restore-steps.js'

export { translatePath } from './path-map.js'

/**
 * The workflow type of restoring one VM from one backup to one host.
 *
 * @public
 */
export const VM_RESTORE_WORKFLOW = 'vm.restore'

/**
 * Input of the restore workflow: where the backup is (site, backup volume, slot, and a snapshot of that volume to
 * read from: a test failover's held replica snapshot; for a single restore from a live mirror destination,
 * `replica` names the mirror whose recovery point the restore holds and reads), which backup is expected there (and, from a failover's scan, its metadata and
 * the byte offset of its slot, so nothing is read twice), the designated host and where its name came from, the
 * kind of restore (`dr`: a failover's; `test`: renamed VM and disks on an isolated network; `single`), the name
 * prefix of test resources and whether an existing VM of that id may be replaced.
 *
 * @public
 */
export const VmRestoreWorkflowInput = t.intersection([
  t.type({
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
  }),
  t.partial({ found: t.type({ metadata: BackupMetadataCodec, start: t.number }), replica: t.string }),
])

/**
 * Input of one restore run.
 *
 * @public
 */
export type VmRestoreWorkflowInput = t.TypeOf<typeof VmRestoreWorkflowInput>

/** Host calls that may time out are retried with the same idempotency key, so they never act twice. */
const HOST_RETRY: RetryPolicy = { attempts: 3, initialDelayMs: 200, retryOn: (error) => error.code === 'E_TIMEOUT' || error.code === 'E_UNAVAILABLE' }

const Found = t.type({ metadata: BackupMetadataCodec, start: t.number }, 'FoundSlot')
const Pin = t.type({ snapshot: t.string, held: t.boolean }, 'RestorePin')

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
 * Restores one VM: a single restore first pins what it reads (it holds the given replica snapshot, or snapshots
 * the backup volume), reads the backup's metadata (never rewriting it), translates its disk paths (an unmapped
 * path fails the restore before anything is created), checks the designated host (it exists, is
 * online and has room) before it replaces an existing VM of that id when asked, copies each disk out of the backup
 * into a volume on the site (a volume it overwrites is kept in a safety snapshot until the restore succeeds),
 * registers the VM on the designated host (the metadata's host name is overridden, not changed) and powers it on,
 * both with idempotency keys. A failure undoes what was done, in reverse: the VM is unregistered, the volumes get
 * their content back (created ones are deleted), an evicted VM is registered and started again (each undo is
 * tried once; one that fails is reported as `vm.restoreUndoFailed` and the run still ends, so no later recovery
 * undoes what a newer restore did). Every step is idempotent, so a crash anywhere resumes without a duplicate VM.
 *
 * @public
 */
export async function runRestore(ctx: VmContext, wf: WorkflowContext, input: VmRestoreWorkflowInput): Promise<Json> {
  const { storage, host } = siteOf(ctx, input.site)
  const token = ctx.token()
  const tag = nameOf(`drkit.vm.restore-${wf.workflowId}`)
  const undo = <A>(step: string, work: (result: A) => Promise<void>) => async (result: A): Promise<void> => {
    await work(result).catch((error: unknown) => ctx.events.emit('vm.restoreUndoFailed', 'error', { vmId: vmOfBackupVolume(input.volume) ?? input.volume, step, reason: toDrError(error).message }))
  }
  const pinned = input.kind === 'single' ? await stepWith(wf, Pin, 'pin', () => pin(ctx, input, tag), { compensate: undo('pin', (done: t.TypeOf<typeof Pin>) => unpin(storage, token, input.volume, done, tag)) }) : null
  const read = pinned?.snapshot ?? input.snapshot
  const source = read === null ? undefined : { snapshot: read }
  const found = input.found ?? (await stepWith(wf, Found, 'read-metadata', () => readSlot(storage, input, source)))
  const metadata = found.metadata
  const names = restoredNames(input, metadata)
  const mountPaths = metadata.disks.map((disk) => {
    const path = translatePath(input.pathMap, disk.mountPath)
    return input.kind === 'test' ? `/${input.prefix}${path}` : path
  })
  ctx.events.emit('vm.restoreStarted', 'info', {
    vmId: metadata.vmId,
    backupId: metadata.backupId,
    metadataHostName: metadata.hostName,
    designatedHostName: input.host,
    hostNameSource: input.hostNameSource,
  })
  if (input.overwrite) {
    await stepWith(
      wf,
      t.union([t.null, VmInfoCodec]),
      'evict',
      async () => {
        const current = await callAdapter(host.kind, 'getVm', () => host.getVm(names.vmId))
        await checkHost(host, input.host, metadata, current)
        if (current === undefined) return null
        await callAdapter(host.kind, 'powerOff', () => host.powerOff(names.vmId, token))
        await callAdapter(host.kind, 'unregisterVm', () => host.unregisterVm(names.vmId, token))
        return current
      },
      { compensate: undo('evict', async (evicted: VmInfo | null) => (evicted === null ? undefined : reinstate(host, evicted, token))) },
    )
  }
  const disks = metadata.disks.map((disk, index) => ({ from: { volume: input.volume, offset: found.start + disk.offset, source }, target: names.disks[index] ?? disk.volume, sizeBytes: disk.sizeBytes }))
  const restore = { backupId: metadata.backupId, run: nameOf(wf.workflowId), overwrite: input.overwrite, safety: nameOf(`drvm-safety-${wf.workflowId}`) }
  const changes = await stepWith(wf, DiskChangesCodec, 'disks', () => restoreDisks(storage, token, disks, restore), { compensate: undo('disks', (done: DiskChanges) => undoDisks(storage, token, done)) })
  const spec = restoredSpec(metadata, names, mountPaths, input.network)
  await stepWith(
    wf,
    t.boolean,
    'register',
    async (step) => {
      const registered = await registerRestored(host, input.host, spec, token, step.idempotencyKey)
      ctx.events.emit('vm.vmRegistered', 'info', { vmId: names.vmId, hostName: input.host })
      return registered
    },
    { retry: HOST_RETRY, compensate: undo('register', async (registered: boolean) => (registered ? unregister(host, names.vmId, token) : undefined)) },
  )
  await stepWith(
    wf,
    t.null,
    'power-on',
    async (step) => {
      await callAdapter(host.kind, 'powerOn', () => host.powerOn(names.vmId, token, { idempotencyKey: step.idempotencyKey }))
      ctx.events.emit('vm.vmPoweredOn', 'info', { vmId: names.vmId, hostName: input.host })
      return null
    },
    { retry: HOST_RETRY },
  )
  if (changes.saved.length > 0 || input.kind === 'single') {
    await stepWith(wf, t.null, 'release', async () => {
      await forgetSafety(storage, token, changes)
      if (pinned !== null) await unpin(storage, token, input.volume, pinned, tag)
      return null
    })
  }
  ctx.events.emit('vm.restoreCompleted', 'info', { vmId: metadata.vmId, hostName: input.host, backupId: metadata.backupId, restoredPointInTime: metadata.takenAt })
  const outcome: VmOutcome = { vmId: metadata.vmId, outcome: 'restored', host: input.host, backupId: metadata.backupId, restoredPointInTime: metadata.takenAt, reason: null }
  return VmOutcomeCodec.encode(outcome)
}

/**
 * Pins what a single restore reads: the recovery point of the live mirror `input.replica` (held), or a snapshot of
 * the backup volume taken now.
 */
async function pin(ctx: VmContext, input: VmRestoreWorkflowInput, tag: string): Promise<t.TypeOf<typeof Pin>> {
  const { storage } = siteOf(ctx, input.site)
  if (input.replica !== undefined) {
    const point = await holdRecoveryPoint(ctx, input.site, input.replica, tag, ctx.token())
    if (point === undefined) throw new DrError('E_NOT_FOUND', `nothing was replicated to ${input.site}/${input.volume} yet`, { volume: input.volume })
    return { snapshot: point.snapshot, held: true }
  }
  const created = await storage.createSnapshot(input.volume, tag, ctx.token(), { 'drkit.vm': 'restore-pin' }).catch((error: unknown) => {
    if (!isDrError(error, 'E_CONFLICT')) throw error
  })
  return { snapshot: created?.name ?? tag, held: false }
}

/** Lets go of what {@link pin} pinned. */
async function unpin(storage: StoragePort, token: FenceToken, volume: string, pinned: t.TypeOf<typeof Pin>, tag: string): Promise<void> {
  const gone = (error: unknown): void => {
    if (!isDrError(error, 'E_NOT_FOUND')) throw error
  }
  if (pinned.held) await callAdapter(storage.kind, 'releaseSnapshot', () => storage.releaseSnapshot(volume, pinned.snapshot, tag, token)).catch(gone)
  else await callAdapter(storage.kind, 'deleteSnapshot', () => storage.deleteSnapshot(volume, pinned.snapshot, token)).catch(gone)
}

/** Reads the metadata in the backup's slot (checking it is still the expected backup) and where the slot starts. */
async function readSlot(storage: StoragePort, input: VmRestoreWorkflowInput, source: { snapshot: string } | undefined): Promise<t.TypeOf<typeof Found>> {
  const superblock = await callAdapter(storage.kind, 'read', () => readSuperblock(storage, input.volume, source))
  if (superblock === undefined) throw new DrError('E_NOT_FOUND', `${input.site}/${input.volume} holds no backups`, { volume: input.volume })
  const start = slotOffset(superblock, input.slot)
  const metadata = decodeHeader(await callAdapter(storage.kind, 'read', () => storage.read(input.volume, start, HEADER_BYTES, source)))
  if (metadata === undefined || metadata.backupId !== input.backupId) {
    throw new DrError('E_NOT_FOUND', `backup "${input.backupId}" is no longer in slot ${input.slot} of ${input.site}/${input.volume}`, { backup: input.backupId })
  }
  return { metadata, start }
}

/** Powers off and unregisters a VM this restore registered (the compensation of the register step). */
async function unregister(host: HostPort, vmId: string, token: FenceToken): Promise<void> {
  await callAdapter(host.kind, 'powerOff', () => host.powerOff(vmId, token))
  await callAdapter(host.kind, 'unregisterVm', () => host.unregisterVm(vmId, token))
}
