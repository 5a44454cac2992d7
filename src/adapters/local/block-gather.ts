import { DrError } from '../../kernel/errors.js'
import { crc32 } from '../../kernel/crc32.js'
import { settleAll } from '../../kernel/settle.js'
import type { ByteRange } from '../../ports/storage.js'
import { EMPTY_SLOT, lookupRange, type NodePage } from './block-map.js'
import type { BlockStore } from './block-store.js'
import { slotRuns } from './slot-runs.js'

/** One allocated block a read needs: its slot and checksum, and the buffer its bytes are read into. */
interface Fetch {
  readonly slot: number
  readonly crc: number
  readonly block: number
  readonly target: Uint8Array
  /** For a block its range covers only in part: which bytes of `target` go where in the range's result. */
  readonly partial?: { readonly out: Uint8Array; readonly from: number; readonly to: number; readonly at: number }
}

/**
 * Adds the fetches of one range; its unallocated blocks read as zeros in `out` (which `zeroHoles` says to write:
 * a new buffer is zero already, a caller's buffer may hold anything).
 */
function plan(root: NodePage | null, blockSize: number, { offset, length }: ByteRange, out: Uint8Array, fetches: Fetch[], zeroHoles: boolean): void {
  if (length === 0) return
  const first = Math.floor(offset / blockSize)
  const count = Math.ceil((offset + length) / blockSize) - first
  const slots = new Uint32Array(count)
  const crcs = new Uint32Array(count)
  lookupRange(root, first, count, slots, crcs)
  for (let k = 0; k < count; k++) {
    const slot = slots[k]!
    const start = (first + k) * blockSize
    if (slot === EMPTY_SLOT) {
      if (zeroHoles) out.fill(0, Math.max(start - offset, 0), Math.min(start + blockSize - offset, length))
      continue
    }
    const block = first + k
    if (start >= offset && start + blockSize <= offset + length) {
      fetches.push({ slot, crc: crcs[k]!, block, target: out.subarray(start - offset, start - offset + blockSize) })
      continue
    }
    const from = Math.max(offset, start)
    const to = Math.min(offset + length, start + blockSize)
    const partial = { out, from: from - start, to: to - start, at: from - offset }
    fetches.push({ slot, crc: crcs[k]!, block, target: new Uint8Array(blockSize), partial })
  }
}

/**
 * Reads `ranges` through the block map rooted at `root`, one result per range in request order, unallocated
 * blocks as zeros: into the caller's buffers `into` when given (checked to match the ranges), into new ones
 * otherwise. The blocks of all ranges are sorted by slot and read in runs of consecutive slots, one `preadv` per
 * run straight into the results; every block's checksum is verified (`E_CORRUPT` naming the volume and block on
 * mismatch). The caller holds the volume's map lock, so no slot read here can be freed and reused meanwhile, and
 * all ranges see the same state.
 */
export async function gatherRanges(
  store: BlockStore,
  root: NodePage | null,
  volume: string,
  ranges: readonly ByteRange[],
  into?: readonly Uint8Array[],
): Promise<Uint8Array[]> {
  const results = into === undefined ? ranges.map(({ length }) => new Uint8Array(length)) : [...into]
  const fetches: Fetch[] = []
  ranges.forEach((range, i) => plan(root, store.blockSize, range, results[i]!, fetches, into !== undefined))
  fetches.sort((a, b) => a.slot - b.slot)
  // Every read settles before a failure is reported: the caller's buffers (`into`) are theirs again after it.
  await settleAll(
    slotRuns(fetches.map((fetch) => fetch.slot)).map(async ({ start, end }) => {
      const run = fetches.slice(start, end)
      await store.read(run[0]!.slot, run.map((fetch) => fetch.target))
      for (const { slot, crc, block, target, partial } of run) {
        if (crc32(target) !== crc) {
          throw new DrError('E_CORRUPT', `local: block ${block} of volume "${volume}" fails its checksum`, { adapter: 'local', volume, block, slot })
        }
        if (partial !== undefined) partial.out.set(target.subarray(partial.from, partial.to), partial.at)
      }
    }),
  )
  return results
}
