import { decode } from '../../kernel/decode.js'
import { DrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import { ByteRangesCodec, RangeChangesCodec, ReadRangesOptionsCodec, WriteRangesOptionsCodec, checkReadTargets, type ByteRange } from '../../ports/storage.js'
import { changeRange, checkWithin } from '../storage-common/range-changes.js'
import { gatherRanges } from './block-gather.js'
import { changeVolumeBlocks } from './block-write.js'
import { checkBytes, checkData, checkRange, invalid } from './inputs.js'
import type { LocalPool } from './local-pool.js'
import type { VolumeState } from './pool-state.js'

/** What an I/O does to a volume: reads it, changes it, or changes it for the replication engine. */
type Access = 'read' | 'write' | 'replicate'

function precondition(message: string, volume: string): DrError {
  return new DrError('E_PRECONDITION', `local: ${message}`, { adapter: 'local', volume })
}

/** Checks that `volume` accepts the access now: online, and writable for a write (a replication write need not). */
function checkAccess(volume: VolumeState, access: Access): void {
  if (!volume.online) throw precondition(`volume "${volume.name}" is offline`, volume.name)
  if (access === 'write' && !volume.writable) throw precondition(`volume "${volume.name}" is read-only`, volume.name)
}

/**
 * Reads ranges of a volume or of one of its snapshots (into the caller's buffers `into` when given): waits while
 * the volume is fenced, then reads them all under one hold of the shared map lock. `checkRanges` gets the size
 * read from; it and the volume's state are checked before waiting and again after, since the volume may change
 * meanwhile.
 */
async function readLocked(
  pool: LocalPool,
  volumeName: string,
  snapshotName: string | undefined,
  ranges: readonly ByteRange[],
  checkRanges: (sizeBytes: number) => void,
  into?: readonly Uint8Array[],
): Promise<Uint8Array[]> {
  const volume = pool.state.volume(volumeName)
  const snapshot = snapshotName === undefined ? undefined : pool.state.snapshot(volumeName, snapshotName)
  const check = (): void => {
    checkRanges(snapshot?.sizeBytes ?? volume.sizeBytes)
    checkAccess(volume, 'read')
  }
  check()
  const ticket = await pool.io(volume).enter('shared')
  try {
    pool.current(volume)
    if (snapshot !== undefined) pool.currentSnapshot(volume, snapshot)
    check()
    const root = snapshot === undefined ? volume.root : snapshot.root
    return await gatherRanges(pool.state.store(volume.blockSize), root, volumeName, ranges, into)
  } finally {
    ticket.leave()
  }
}

/** Reads `length` bytes at `offset` of a volume or of one of its snapshots. */
export async function readVolume(pool: LocalPool, volumeName: string, offset: number, length: number, snapshotName: string | undefined): Promise<Uint8Array> {
  checkBytes(offset, 'offset')
  checkBytes(length, 'length')
  const [bytes] = await readLocked(pool, volumeName, snapshotName, [{ offset, length }], (size) => checkRange(offset, length, size, volumeName))
  return bytes!
}

/** Reads many ranges of a volume or of one of its snapshots from one state, in few large reads. */
export async function readVolumeRanges(pool: LocalPool, volumeName: string, ranges: unknown, options: unknown): Promise<Uint8Array[]> {
  const decoded = decode(ByteRangesCodec, ranges, 'readRanges ranges')
  const { snapshot, into } = decode(ReadRangesOptionsCodec, options, 'readRanges options') ?? {}
  if (into !== undefined) checkReadTargets(decoded, into, invalid)
  return readLocked(pool, volumeName, snapshot, decoded, (size) => checkWithin(decoded, size, 'ranges', invalid), into)
}

/**
 * Runs a change of a volume's blocks as fenced I/O: waits while the volume is fenced, re-checks the token and
 * the volume (`check`), makes the change under the exclusive map lock, and stays in flight (so a fence waits for
 * it) until the change is durable.
 */
async function changeBlocks(
  pool: LocalPool,
  volumeName: string,
  token: FenceToken,
  operation: string,
  check: (volume: VolumeState) => void,
  change: (volume: VolumeState) => Promise<{ readonly durable: Promise<void> } | undefined>,
): Promise<void> {
  const volume = pool.state.volume(volumeName)
  check(volume)
  const ticket = await pool.io(volume).enter('exclusive')
  try {
    pool.authorize(token, operation)
    pool.current(volume)
    check(volume)
    const changed = await change(volume)
    ticket.unlock()
    await changed?.durable
  } finally {
    ticket.leave()
  }
}

/** Writes `data` (already copied from the caller's buffer) at `offset` of a volume; resolves once durable. */
export async function writeVolume(pool: LocalPool, volumeName: string, offset: number, data: unknown, token: FenceToken): Promise<void> {
  pool.authorize(token, 'write')
  checkBytes(offset, 'offset')
  const bytes = checkData(data)
  const check = (volume: VolumeState): void => {
    checkRange(offset, bytes.length, volume.sizeBytes, volumeName)
    checkAccess(volume, 'write')
  }
  await changeBlocks(pool, volumeName, token, 'write', check, async (volume) =>
    bytes.length === 0 ? undefined : changeVolumeBlocks(pool, volume, [{ offset, data: bytes }], 'extent'),
  )
}

/**
 * Applies the changes of a `writeRanges` call (data already copied from the caller's buffers) as one change of
 * the volume: one hold of the exclusive lock, consecutive slots, one commit; resolves once durable.
 */
export async function writeVolumeRanges(pool: LocalPool, volumeName: string, changes: unknown, token: FenceToken, options: unknown): Promise<void> {
  pool.authorize(token, 'writeRanges')
  const decoded = decode(RangeChangesCodec, changes, 'writeRanges changes')
  const access: Access = decode(WriteRangesOptionsCodec, options, 'writeRanges options')?.replication === true ? 'replicate' : 'write'
  const ranges = decoded.map(changeRange)
  const check = (volume: VolumeState): void => {
    checkWithin(ranges, volume.sizeBytes, 'changes', invalid)
    checkAccess(volume, access)
  }
  await changeBlocks(pool, volumeName, token, 'writeRanges', check, (volume) => changeVolumeBlocks(pool, volume, decoded, 'run'))
}

/** Unmaps the whole blocks inside `[offset, offset + length)` of a volume; partial edge blocks are kept. */
export async function trimVolume(pool: LocalPool, volumeName: string, offset: number, length: number, token: FenceToken): Promise<void> {
  pool.authorize(token, 'trim')
  checkBytes(offset, 'offset')
  checkBytes(length, 'length')
  const check = (volume: VolumeState): void => {
    checkRange(offset, length, volume.sizeBytes, volumeName)
    checkAccess(volume, 'write')
  }
  await changeBlocks(pool, volumeName, token, 'trim', check, async (volume) => {
    const first = Math.ceil(offset / volume.blockSize)
    const end = Math.floor((offset + length) / volume.blockSize)
    return first < end ? { durable: pool.commit({ op: 'trim', volume: volumeName, first, end }) } : undefined
  })
}
