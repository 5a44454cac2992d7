import { decode } from '../../kernel/decode.js'
import {
  ByteRangesCodec,
  RangeChangesCodec,
  WriteRangesOptionsCodec,
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

/** Decodes the ranges of a `readRanges` call (`E_INVALID_INPUT` naming the field otherwise). */
export function decodeRanges(operation: string, ranges: unknown): readonly ByteRange[] {
  return decode(ByteRangesCodec, ranges, `${MEMORY_KIND}.${operation} ranges`)
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
