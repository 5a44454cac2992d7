import { decode } from '../../kernel/decode.js'
import {
  ByteRangesCodec,
  RangeChangesCodec,
  ReadRangesOptionsCodec,
  WriteRangesOptionsCodec,
  checkReadTargets,
  type ByteRange,
  type RangeChange,
} from '../../ports/storage.js'
import { changeRange, checkWithin, foldChanges } from '../storage-common/range-changes.js'
import type { BlockMap } from './storage-block-map.js'
import { MEMORY_KIND, storageError } from './storage-inputs.js'
import { punchHoles, readBlocks, requireOnline, requireWritable, writeBlocks, type VolumeState } from './storage-volume.js'

/** A decoded `writeRanges` request: its changes and whether the replication engine makes it. */
export interface RangeWrite {
  readonly changes: readonly RangeChange[]
  readonly replication: boolean
}

/** A decoded `readRanges` request: its ranges, the snapshot read from, and the caller's buffers to read into. */
export interface RangeRead {
  readonly ranges: readonly ByteRange[]
  readonly snapshot: string | undefined
  readonly into: readonly Uint8Array[] | undefined
}

/**
 * Decodes the ranges and options of a `readRanges` call, and checks the `into` buffers against the ranges
 * (`E_INVALID_INPUT` naming the field otherwise).
 */
export function decodeRangeRead(operation: string, ranges: unknown, options: unknown): RangeRead {
  const decoded = decode(ByteRangesCodec, ranges, `${MEMORY_KIND}.${operation} ranges`)
  const { snapshot, into } = decode(ReadRangesOptionsCodec, options, `${MEMORY_KIND}.${operation} options`) ?? {}
  if (into !== undefined) checkReadTargets(decoded, into, invalid(operation))
  return { ranges: decoded, snapshot, into }
}

/** Decodes the changes and options of a `writeRanges` call (`E_INVALID_INPUT` naming the field otherwise). */
export function decodeRangeWrite(operation: string, changes: unknown, options: unknown): RangeWrite {
  const decoded = decode(RangeChangesCodec, changes, `${MEMORY_KIND}.${operation} changes`)
  const settings = decode(WriteRangesOptionsCodec, options, `${MEMORY_KIND}.${operation} options`)
  return { changes: decoded, replication: settings?.replication === true }
}

function invalid(operation: string): (message: string, details: Record<string, unknown>) => ReturnType<typeof storageError> {
  return (message, details) => storageError('E_INVALID_INPUT', operation, message, details)
}

/** Reads every range of `map` (a volume or snapshot of `sizeBytes`) at once; all ranges are checked first. */
export function readRangesOf(operation: string, map: BlockMap, blockSize: number, sizeBytes: number, ranges: readonly ByteRange[]): Uint8Array[] {
  checkWithin(ranges, sizeBytes, 'ranges', invalid(operation))
  return ranges.map(({ offset, length }) => readBlocks(map, blockSize, offset, length))
}

/**
 * Applies a `writeRanges` request to the live volume as new blocks born at `birth`, after checking all of it:
 * the volume online, writable unless the replication engine asks, and every change within it. Nothing changes
 * when a check fails.
 */
export function writeRangesOf(operation: string, volume: VolumeState, request: RangeWrite, birth: number): void {
  if (request.replication) requireOnline(operation, volume)
  else requireWritable(operation, volume)
  checkWithin(request.changes.map(changeRange), volume.sizeBytes, 'changes', invalid(operation))
  const { blockSize } = volume
  const { holes, blocks } = foldChanges(request.changes, blockSize, (block) => readBlocks(volume.map, blockSize, block * blockSize, blockSize))
  for (const { first, end } of holes) punchHoles(volume.map, first, end, birth)
  for (const { block, bytes } of blocks) writeBlocks(volume, block * blockSize, bytes, birth)
}
