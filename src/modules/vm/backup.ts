import * as t from 'io-ts'
import { DrError, callAdapter, isDrError, toDrError } from '../../kernel/errors.js'
import type { Json } from '../../kernel/codecs.js'
import { isInterruption, type WorkflowContext } from '../../kernel/workflow.js'
import type { VmInfo } from '../../ports/host.js'
import { VmInfoCodec } from '../../ports/host-codecs.js'
import { BackupMetadataCodec, HEADER_BYTES, BACKUP_BLOCK, SuperblockCodec, backupVolumeName, type BackupMetadata } from './backup-layout.js'
import { ensureBackupVolume, writeSlot } from './backup-volume.js'
import { commit, planOf, siteOf, type VmContext } from './context.js'
import { decideRecordBackup } from './decide.js'
import type { BackupTrigger } from './events.js'
import { groupSnapshot } from './group-snapshot.js'
import { stepWith } from './journaled-step.js'
import { quiesceWithin, releaseQuiesce } from './quiesce.js'

/**
 * The workflow type of a VM backup.
 *
 * @public
 */
export const VM_BACKUP_WORKFLOW = 'vm.backup'

/**
 * Input of the backup workflow: plan, site, VM, the backup's sequence number, slot and id, and its trigger.
 *
 * @public
 */
export const VmBackupWorkflowInput = t.type({
  planId: t.string,
  site: t.string,
  vmId: t.string,
  seq: t.number,
  slot: t.number,
  backupId: t.string,
  trigger: t.union([t.literal('schedule'), t.literal('administrator'), t.literal('failback')]),
})

/**
 * Input of one backup run.
 *
 * @public
 */
export type VmBackupWorkflowInput = t.TypeOf<typeof VmBackupWorkflowInput>

const Consistency = t.type({ consistency: t.union([t.literal('application-consistent'), t.literal('crash-consistent')]), takenAt: t.number }, 'Consistency')
const Inspected = t.type({ info: VmInfoCodec, sizes: t.array(t.number) }, 'InspectedVm')

/** Stage names a failure is reported under. */
type Stage = 'quiesce' | 'snapshot' | 'store'

class StageError extends DrError {
  constructor(readonly stage: Stage, cause: DrError) {
    super(cause.code, cause.message, { ...cause.details, stage }, { cause })
  }
}

/**
 * Backs up one VM: quiesce its applications (falling back to crash-consistent, flagged, when they cannot, do not
 * answer in time — the wait is bounded on the kernel clock whatever the host does — and the plan allows it),
 * snapshot its disks as one consistency group, unquiesce (always; retried, and `vm.unquiesceFailed` when it
 * cannot be), store the backup with its metadata in a slot of the VM's backup volume, retire the snapshots of the
 * backup the slot held, and record the backup in the catalog. Every step is idempotent and journaled; journaled
 * results are decoded with their codecs on replay.
 *
 * @public
 */
export async function runBackup(ctx: VmContext, wf: WorkflowContext, input: VmBackupWorkflowInput): Promise<Json> {
  const plan = planOf(ctx, input.planId)
  const { storage, host } = siteOf(ctx, input.site)
  const token = ctx.token()
  const snapshot = `drvm-${input.backupId}`
  try {
    const vm = await stepWith(wf, Inspected, 'inspect', async () => {
      const info = await callAdapter(host.kind, 'getVm', () => host.getVm(input.vmId))
      if (info === undefined) throw new DrError('E_NOT_FOUND', `VM "${input.vmId}" is not registered on site ${input.site}`, { vm: input.vmId, site: input.site })
      const sizes = []
      for (const disk of info.disks) sizes.push((await callAdapter(storage.kind, 'volumeInfo', () => storage.volumeInfo(disk.volume))).sizeBytes)
      return { info, sizes }
    })
    const volume = backupVolumeName(input.vmId)
    const superblock = await stepWith(wf, SuperblockCodec, 'backup-volume', () => ensureBackupVolume(storage, token, volume, input.vmId, vm.sizes, plan.retain))
    const taken = await stepWith(wf, Consistency, 'consistent-snapshot', async () => {
      let consistency: 'application-consistent' | 'crash-consistent' = 'crash-consistent'
      try {
        const quiesced = await quiesceWithin(ctx, host, input.vmId, plan.quiesceTimeoutMs).catch((error: unknown) => {
          if (plan.requireAppConsistent && input.trigger !== 'failback') throw new StageError('quiesce', toDrError(error))
          return undefined
        })
        if (quiesced !== undefined && !quiesced.applicationConsistent && plan.requireAppConsistent && input.trigger !== 'failback') {
          throw new StageError('quiesce', new DrError('E_PRECONDITION', `VM "${input.vmId}" could not be made application-consistent`, { vm: input.vmId }))
        }
        if (quiesced?.applicationConsistent === true) {
          consistency = 'application-consistent'
          ctx.events.emit('vm.applicationsQuiesced', 'info', { vmId: input.vmId, applicationConsistent: true, writers: quiesced.writers })
        }
        const takenAt = ctx.clock.now()
        await groupSnapshot(storage, token, vm.info.disks.map((d) => d.volume), snapshot).catch((error: unknown) => {
          throw new StageError('snapshot', toDrError(error))
        })
        ctx.events.emit('vm.snapshotCreated', 'info', { vmId: input.vmId, backupId: input.backupId, volumes: vm.info.disks.map((d) => d.volume) })
        return { consistency, takenAt }
      } finally {
        await releaseQuiesce(ctx, host, input.vmId)
      }
    }, {
      compensate: async () => {
        for (const disk of vm.info.disks) await storage.deleteSnapshot(disk.volume, snapshot, token).catch(() => undefined)
      },
    })
    const previous = (ctx.store.state.backups[input.vmId] ?? []).find((b) => b.site === input.site && b.slot === input.slot && b.backupId !== input.backupId)
    const metadata = metadataOf(input, vm.info, vm.sizes, taken.consistency, taken.takenAt)
    await wf.step('store', async () => {
      const disks = []
      for (const [index, disk] of vm.info.disks.entries()) {
        const base = previous === undefined ? null : await existing(ctx, input.site, disk.volume, previous.snapshot)
        disks.push({ volume: disk.volume, snapshot, base, offset: metadata.disks[index]?.offset ?? HEADER_BYTES })
      }
      await writeSlot(storage, token, volume, superblock, input.slot, disks, metadata).catch((error: unknown) => {
        throw new StageError('store', toDrError(error))
      })
      ctx.events.emit('vm.backupMetadataStored', 'info', { vmId: input.vmId, backupId: input.backupId, volume, slot: input.slot })
      return null
    })
    await wf.step('retire', async () => {
      if (previous === undefined) return null
      for (const disk of vm.info.disks) {
        await callAdapter(storage.kind, 'deleteSnapshot', () => storage.deleteSnapshot(disk.volume, previous.snapshot, token)).catch((error: unknown) => {
          if (!isDrError(error, 'E_NOT_FOUND')) throw error
        })
      }
      return null
    })
    await wf.step('record', async () => {
      await commit(ctx, (state) =>
        decideRecordBackup(state, input.vmId, {
          backupId: input.backupId,
          seq: input.seq,
          site: input.site,
          slot: input.slot,
          takenAt: taken.takenAt,
          hostName: vm.info.host,
          consistency: taken.consistency,
          snapshot,
          planId: input.planId,
        }),
      )
      return null
    })
    ctx.events.emit('vm.backupCompleted', 'info', { vmId: input.vmId, backupId: input.backupId, consistency: taken.consistency, takenAt: taken.takenAt })
    return BackupMetadataCodec.encode(metadata)
  } catch (error) {
    if (isInterruption(error)) throw error
    const failure = toDrError(error)
    const stage = typeof failure.details['stage'] === 'string' ? (failure.details['stage'] as Stage) : 'snapshot'
    ctx.events.emit('vm.backupFailed', 'error', { vmId: input.vmId, stage, reason: failure.message })
    throw failure
  }
}

async function existing(ctx: VmContext, site: string, volume: string, snapshot: string): Promise<string | null> {
  const { storage } = siteOf(ctx, site)
  const found = await storage.snapshotInfo(volume, snapshot).catch(() => undefined)
  return found === undefined ? null : snapshot
}

function metadataOf(input: VmBackupWorkflowInput, vm: VmInfo, sizes: readonly number[], consistency: BackupMetadata['consistency'], takenAt: number): BackupMetadata {
  let offset = HEADER_BYTES
  const disks = vm.disks.map((disk, index) => {
    const sizeBytes = sizes[index] ?? 0
    const entry = { volume: disk.volume, mountPath: disk.mountPath, sizeBytes, offset }
    offset += Math.ceil(sizeBytes / BACKUP_BLOCK) * BACKUP_BLOCK
    return entry
  })
  return {
    backupId: input.backupId,
    seq: input.seq,
    vmId: vm.id,
    name: vm.name,
    hostName: vm.host,
    takenAt,
    consistency,
    trigger: input.trigger satisfies BackupTrigger,
    cpus: vm.cpus,
    memoryMb: vm.memoryMb,
    networks: [...vm.networks],
    tags: [...vm.tags],
    config: vm.config,
    disks,
  }
}
