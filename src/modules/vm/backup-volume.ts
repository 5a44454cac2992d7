import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { ReadSource, StoragePort } from '../../ports/storage.js'
import {
  BACKUP_BLOCK,
  HEADER_BYTES,
  SUPERBLOCK_BYTES,
  decodeHeader,
  decodeSuperblock,
  encodeHeader,
  encodeSuperblock,
  slotBytesFor,
  slotOffset,
  type BackupMetadata,
  type Superblock,
} from './backup-layout.js'

const CHUNK = 64 * BACKUP_BLOCK

/**
 * A backup found in a backup volume: its metadata, the slot that holds it and the byte offset where that slot
 * starts.
 *
 * @public
 */
export interface FoundBackup {
  readonly volume: string
  readonly slot: number
  readonly start: number
  readonly metadata: BackupMetadata
}

/**
 * Reads the superblock of a backup volume; undefined when the volume does not exist or holds none.
 *
 * @public
 */
export async function readSuperblock(storage: StoragePort, volume: string, source?: ReadSource): Promise<Superblock | undefined> {
  try {
    return decodeSuperblock(await storage.read(volume, 0, SUPERBLOCK_BYTES, source))
  } catch (error) {
    if (isDrError(error, 'E_NOT_FOUND')) return undefined
    throw error
  }
}

/**
 * Creates the backup volume of a VM (superblock + `slots` slots sized for the disks) or checks that the existing
 * one can hold them. Idempotent.
 *
 * @public
 */
export async function ensureBackupVolume(storage: StoragePort, token: FenceToken, volume: string, vmId: string, diskSizes: readonly number[], slots: number): Promise<Superblock> {
  const existing = await callAdapter(storage.kind, 'read', () => readSuperblock(storage, volume))
  const needed = slotBytesFor(diskSizes)
  if (existing !== undefined) {
    if (existing.slotBytes < needed || existing.vmId !== vmId) {
      throw new DrError('E_PRECONDITION', `backup volume "${volume}" cannot hold the disks of VM "${vmId}" (slot ${existing.slotBytes} < ${needed} bytes)`, { volume, vmId })
    }
    return existing
  }
  const superblock: Superblock = { magic: 'drkit.vm.backups', vmId, slots, slotBytes: needed }
  const info = await storage.volumeInfo(volume).catch((error: unknown) => (isDrError(error, 'E_NOT_FOUND') ? undefined : Promise.reject(error)))
  if (info === undefined) {
    await callAdapter(storage.kind, 'createVolume', () => storage.createVolume({ name: volume, sizeBytes: SUPERBLOCK_BYTES + slots * needed, blockSize: BACKUP_BLOCK }, token))
  }
  await callAdapter(storage.kind, 'write', () => storage.write(volume, 0, encodeSuperblock(superblock), token))
  return superblock
}

/**
 * Every complete backup in a backup volume (optionally as of one of its snapshots), oldest first. The slot
 * headers are read concurrently.
 *
 * @public
 */
export async function readBackups(storage: StoragePort, volume: string, source?: ReadSource): Promise<FoundBackup[]> {
  const superblock = await callAdapter(storage.kind, 'read', () => readSuperblock(storage, volume, source))
  if (superblock === undefined) return []
  const slots = Array.from({ length: superblock.slots }, (_, slot) => slot)
  const headers = await Promise.all(slots.map((slot) => callAdapter(storage.kind, 'read', () => storage.read(volume, slotOffset(superblock, slot), HEADER_BYTES, source))))
  const found: FoundBackup[] = []
  for (const slot of slots) {
    const metadata = decodeHeader(headers[slot] ?? new Uint8Array(0))
    if (metadata !== undefined && metadata.vmId === superblock.vmId) found.push({ volume, slot, start: slotOffset(superblock, slot), metadata })
  }
  return found.sort((a, b) => a.metadata.seq - b.metadata.seq)
}

/**
 * One disk to copy into a slot: the disk volume, the snapshot to copy and a snapshot the slot already holds.
 *
 * @public
 */
export interface SlotDisk {
  readonly volume: string
  readonly snapshot: string
  readonly base: string | null
  readonly offset: number
}

/**
 * Writes a backup into `slot`: the header is invalidated first, then every disk's changed blocks (against the
 * snapshot the slot already holds, or the whole disk) are copied from its snapshot, then the header is written.
 * At any instant the slot is a complete backup or no backup at all, so a replication cut taken mid-way never
 * exposes a mix. Idempotent.
 *
 * @public
 */
export async function writeSlot(storage: StoragePort, token: FenceToken, volume: string, superblock: Superblock, slot: number, disks: readonly SlotDisk[], metadata: BackupMetadata): Promise<void> {
  const start = slotOffset(superblock, slot)
  await callAdapter(storage.kind, 'trim', () => storage.trim(volume, start, HEADER_BYTES, token))
  for (const disk of disks) {
    const target = start + disk.offset
    if (disk.base === null) {
      await callAdapter(storage.kind, 'trim', () => storage.trim(volume, target, superblock.slotBytes - disk.offset, token))
    }
    await copyChangedBlocks(storage, { volume: disk.volume, base: disk.base, snapshot: disk.snapshot }, { volume, offset: target }, token)
  }
  await callAdapter(storage.kind, 'write', () => storage.write(volume, start, encodeHeader(metadata), token))
}

/**
 * Copies the blocks of snapshot `from.snapshot` of `from.volume` that changed since `from.base` (every allocated
 * block when `base` is null) into `to.volume` at byte `to.offset`, on the same storage: data is written in runs
 * of up to 256 KiB and holes are trimmed.
 *
 * @public
 */
export async function copyChangedBlocks(
  storage: StoragePort,
  from: { readonly volume: string; readonly base: string | null; readonly snapshot: string },
  to: { readonly volume: string; readonly offset: number },
  token: FenceToken,
): Promise<void> {
  const changed = await callAdapter(storage.kind, 'changedBlocks', () => storage.changedBlocks(from.volume, from.base, from.snapshot))
  const holes = new Set(changed.holes)
  for (const run of runs(changed.blocks, Math.max(1, CHUNK / changed.blockSize))) {
    const at = run.first * changed.blockSize
    const length = Math.min(run.count * changed.blockSize, changed.sizeBytes - at)
    if (length <= 0) continue
    if (holes.has(run.first)) {
      await callAdapter(storage.kind, 'trim', () => storage.trim(to.volume, to.offset + at, length, token))
      continue
    }
    const data = await callAdapter(storage.kind, 'read', () => storage.read(from.volume, at, length, { snapshot: from.snapshot }))
    await callAdapter(storage.kind, 'write', () => storage.write(to.volume, to.offset + at, data, token))
  }
}

/** Consecutive blocks grouped into runs of at most `max`, holes and data kept apart. */
function runs(blocks: readonly number[], max: number): Array<{ first: number; count: number }> {
  const out: Array<{ first: number; count: number }> = []
  for (const block of blocks) {
    const last = out[out.length - 1]
    if (last !== undefined && last.first + last.count === block && last.count < max) last.count += 1
    else out.push({ first: block, count: 1 })
  }
  return out
}

/**
 * Copies `length` bytes from a region of one volume (or snapshot) to another volume, chunk by chunk, writing
 * chunks with data and trimming chunks of zeros, so the target ends up byte-identical and sparse.
 *
 * @public
 */
export async function copyRegion(
  from: { storage: StoragePort; volume: string; offset: number; source?: ReadSource },
  to: { storage: StoragePort; volume: string; offset: number },
  length: number,
  token: FenceToken,
): Promise<void> {
  for (let at = 0; at < length; at += CHUNK) {
    const size = Math.min(CHUNK, length - at)
    const data = await callAdapter(from.storage.kind, 'read', () => from.storage.read(from.volume, from.offset + at, size, from.source))
    if (data.every((byte) => byte === 0)) {
      await callAdapter(to.storage.kind, 'trim', () => to.storage.trim(to.volume, to.offset + at, size, token))
    } else {
      await callAdapter(to.storage.kind, 'write', () => to.storage.write(to.volume, to.offset + at, data, token))
    }
  }
}
