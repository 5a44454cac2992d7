import type { ByteRange, RangeChange } from '../../ports/storage.js'
import type { BufferPool } from '../../kernel/buffer-pool.js'
import type { DrError } from '../../kernel/errors.js'

/** Blocks `[first, end)` unmapped by a hole. */
export interface BlockSpan {
  readonly first: number
  readonly end: number
}

/** The whole new contents of one block. */
export interface BlockWrite {
  readonly block: number
  readonly bytes: Uint8Array
}

/**
 * The net effect of one `writeRanges` call on whole blocks: the spans to unmap, then the blocks to write
 * (ascending). Applying `holes` first and `blocks` second gives the same volume as applying the changes one by
 * one in order, since a block written after a hole in the call is in `blocks` and a block unmapped after a write
 * is not.
 */
export interface BlockChanges {
  readonly holes: readonly BlockSpan[]
  readonly blocks: readonly BlockWrite[]
}

/** Contents of block `block` before the call, for blocks a partial write merges with. */
export type BaseBlock = (block: number) => Uint8Array

/**
 * Folds `changes` (already decoded and checked to lie within the volume) into the blocks they leave behind.
 * Partial blocks are merged with what the call wrote before, with zeros where the call punched a hole, and
 * otherwise with `base(block)`. A full block is kept as a view into its change's data, so the caller copies the
 * data when it takes it from a client.
 */
export function foldChanges(changes: readonly RangeChange[], blockSize: number, base: BaseBlock): BlockChanges {
  const staged = new Map<number, Uint8Array>()
  const holes: BlockSpan[] = []
  const inHole = (block: number): boolean => holes.some((span) => block >= span.first && block < span.end)
  for (const change of changes) {
    if (change.hole === true) {
      const first = Math.ceil(change.offset / blockSize)
      const end = Math.floor((change.offset + change.length) / blockSize)
      if (first >= end) continue
      holes.push({ first, end })
      for (const block of [...staged.keys()]) if (block >= first && block < end) staged.delete(block)
      continue
    }
    const { offset, data } = change
    if (data.length === 0) continue
    const end = offset + data.length
    for (let block = Math.floor(offset / blockSize); block * blockSize < end; block++) {
      const start = block * blockSize
      if (offset <= start && start + blockSize <= end) {
        staged.set(block, data.subarray(start - offset, start - offset + blockSize))
        continue
      }
      const merged = new Uint8Array(blockSize)
      const before = staged.get(block) ?? (inHole(block) ? undefined : base(block))
      if (before !== undefined) merged.set(before)
      const from = Math.max(offset, start)
      merged.set(data.subarray(from - offset, Math.min(end, start + blockSize) - offset), from - start)
      staged.set(block, merged)
    }
  }
  const blocks = [...staged.entries()].sort(([a], [b]) => a - b).map(([block, bytes]) => ({ block, bytes }))
  return { holes, blocks }
}

/** The blocks whose current contents {@link foldChanges} needs (partial writes the call had not covered yet), ascending. */
export function blocksToMerge(changes: readonly RangeChange[], blockSize: number): number[] {
  const needed: number[] = []
  const none = new Uint8Array(0)
  foldChanges(changes, blockSize, (block) => {
    needed.push(block)
    return none
  })
  return needed.sort((a, b) => a - b)
}

/** The byte range a change covers. */
export function changeRange(change: RangeChange): ByteRange {
  return { offset: change.offset, length: change.hole === true ? change.length : change.data.length }
}

/**
 * Checks that every range lies within a volume (or snapshot) of `sizeBytes`: `E_INVALID_INPUT` naming the first
 * range past the end, as `field[index]`, with `error(message, details)` building the adapter's error.
 */
export function checkWithin(
  ranges: readonly ByteRange[],
  sizeBytes: number,
  field: string,
  error: (message: string, details: Record<string, unknown>) => DrError,
): void {
  ranges.forEach(({ offset, length }, index) => {
    if (offset + length > sizeBytes) {
      throw error(`${field}[${index}]: range [${offset}, ${offset + length}) ends past the end (${sizeBytes} bytes)`, {
        field: `${field}.${index}`,
        offset,
        length,
        sizeBytes,
      })
    }
  })
}

/** `changes` with the data of every change that has some replaced by `copy(data)`; anything else as it is. */
function withCopiedData(changes: unknown, copy: (data: Uint8Array) => Uint8Array): unknown {
  if (!Array.isArray(changes)) return changes
  return changes.map((change: unknown) => {
    const data = dataOf(change)
    return data === undefined ? change : { ...(change as object), data: copy(data) }
  })
}

function dataOf(change: unknown): Uint8Array | undefined {
  if (typeof change !== 'object' || change === null) return undefined
  const data = (change as { readonly data?: unknown }).data
  return data instanceof Uint8Array ? data : undefined
}

/**
 * Copies the data of every change taken from a client before the call goes on, so the caller may reuse its
 * buffers at once; anything that is not an array of changes is passed on as it is, for the decoder to reject.
 */
export function copyChanges(changes: unknown): unknown {
  return withCopiedData(changes, (data) => data.slice())
}

/**
 * Copies the data of every change, as {@link copyChanges} does, into one buffer taken from `pool`, for an adapter
 * that is done with the copies once the call settled (it wrote them out): `release` gives the buffer back then.
 */
export function copyChangesPooled(changes: unknown, pool: BufferPool): { readonly changes: unknown; readonly release: () => void } {
  if (!Array.isArray(changes)) return { changes, release: () => undefined }
  let total = 0
  for (const change of changes) total += dataOf(change)?.length ?? 0
  const buffer = pool.take(total)
  let at = 0
  const copied = withCopiedData(changes, (data) => {
    const copy = buffer.bytes.subarray(at, (at += data.length))
    copy.set(data)
    return copy
  })
  return { changes: copied, release: buffer.release }
}
