import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { crc32 } from '../../kernel/crc32.js'
import { JsonValue } from '../../kernel/codecs.js'

/**
 * Bytes of the superblock at the start of a backup volume.
 *
 * @public
 */
export const SUPERBLOCK_BYTES = 4096
/**
 * Bytes of the metadata header at the start of every slot.
 *
 * @public
 */
export const HEADER_BYTES = 65536
/**
 * Block size of backup volumes.
 *
 * @public
 */
export const BACKUP_BLOCK = 4096

/**
 * The backup metadata stored with every backup, in the same volume as its data (and so replicated with it):
 * the VM's identity, the host it ran on, when the backup was taken, how consistent it is, its disks and its
 * configuration (CPU, memory, networks, tags, embedder config). Never rewritten by a restore.
 *
 * @public
 */
export const BackupMetadataCodec = t.type(
  {
    backupId: t.string,
    seq: t.number,
    vmId: t.string,
    name: t.string,
    hostName: t.string,
    takenAt: t.number,
    consistency: t.union([t.literal('application-consistent'), t.literal('crash-consistent')]),
    trigger: t.union([t.literal('schedule'), t.literal('administrator'), t.literal('failback')]),
    cpus: t.number,
    memoryMb: t.number,
    networks: t.array(t.string),
    tags: t.array(t.string),
    config: JsonValue,
    disks: t.array(t.type({ volume: t.string, mountPath: t.string, sizeBytes: t.number, offset: t.number })),
  },
  'BackupMetadata',
)

/**
 * One backup's metadata.
 *
 * @public
 */
export type BackupMetadata = t.TypeOf<typeof BackupMetadataCodec>

/**
 * Codec of a backup volume's superblock.
 *
 * @public
 */
export const SuperblockCodec = t.type({ magic: t.literal('drkit.vm.backups'), vmId: t.string, slots: t.number, slotBytes: t.number }, 'Superblock')

/**
 * The layout of a VM's backup volume: how many slots it has and how many bytes each holds.
 *
 * @public
 */
export type Superblock = t.TypeOf<typeof SuperblockCodec>

/**
 * The name of the backup volume of VM `vmId`.
 *
 * @public
 */
export function backupVolumeName(vmId: string): string {
  return `drvm-${vmId}`
}

/**
 * The VM id a backup volume belongs to, or undefined for another volume.
 *
 * @public
 */
export function vmOfBackupVolume(volume: string): string | undefined {
  return volume.startsWith('drvm-') ? volume.slice('drvm-'.length) : undefined
}

/**
 * Bytes of one slot for disks of these sizes.
 *
 * @public
 */
export function slotBytesFor(diskSizes: readonly number[]): number {
  return HEADER_BYTES + diskSizes.reduce((sum, size) => sum + Math.ceil(size / BACKUP_BLOCK) * BACKUP_BLOCK, 0)
}

/**
 * Byte offset of slot `slot`.
 *
 * @public
 */
export function slotOffset(superblock: Superblock, slot: number): number {
  return SUPERBLOCK_BYTES + slot * superblock.slotBytes
}

function frame(value: unknown, size: number): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(value))
  if (body.length + 8 > size) throw new RangeError(`backup record of ${body.length} bytes does not fit in ${size}`)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  view.setUint32(0, body.length, true)
  view.setUint32(4, crc32(body), true)
  out.set(body, 8)
  return out
}

function unframe<A>(codec: t.Type<A, unknown, unknown>, bytes: Uint8Array): A | undefined {
  if (bytes.length < 8) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const length = view.getUint32(0, true)
  if (length === 0 || length + 8 > bytes.length) return undefined
  const body = bytes.subarray(8, 8 + length)
  if (crc32(body) !== view.getUint32(4, true)) return undefined
  try {
    const decoded = codec.decode(JSON.parse(new TextDecoder().decode(body)))
    return isLeft(decoded) ? undefined : decoded.right
  } catch {
    return undefined
  }
}

/**
 * Encodes a superblock.
 *
 * @public
 */
export function encodeSuperblock(superblock: Superblock): Uint8Array {
  return frame(superblock, SUPERBLOCK_BYTES)
}

/**
 * Decodes a superblock; undefined when the bytes are not a valid one.
 *
 * @public
 */
export function decodeSuperblock(bytes: Uint8Array): Superblock | undefined {
  return unframe(SuperblockCodec, bytes)
}

/**
 * Encodes a slot header holding backup metadata (checksummed).
 *
 * @public
 */
export function encodeHeader(metadata: BackupMetadata): Uint8Array {
  return frame(metadata, HEADER_BYTES)
}

/**
 * Decodes a slot header; undefined when the slot holds no complete backup (empty, invalidated or damaged).
 *
 * @public
 */
export function decodeHeader(bytes: Uint8Array): BackupMetadata | undefined {
  return unframe(BackupMetadataCodec as t.Type<BackupMetadata, unknown, unknown>, bytes)
}
