import { crc32 } from '../../kernel/crc32.js'
import { settleAll } from '../../kernel/settle.js'
import type { RangeChange } from '../../ports/storage.js'
import { blocksToMerge, foldChanges } from '../storage-common/range-changes.js'
import type { BlockEntry } from './block-map.js'
import { gatherRanges } from './block-gather.js'
import type { BlockStore } from './block-store.js'
import type { LocalPool } from './local-pool.js'
import type { VolumeState } from './pool-state.js'
import type { LogRecord } from './records.js'
import { slotRuns } from './slot-runs.js'

/** How a change reserves slots for its new blocks: along the current free extent, or in one free run. */
export type SlotPolicy = 'extent' | 'run'

/**
 * Applies `changes` (decoded and checked to lie within the volume) to the live volume: partial blocks are merged
 * with their current contents (read in one vectored read), every block written goes to a fresh slot
 * (redirect-on-write, so snapshots keep the old one) in one `pwritev` per run of consecutive slots, then the
 * whole map change — the holes' trims and one write record — is committed as one change that a crash keeps
 * whole or drops whole. Resolves once the change is visible, with the promise of its durability (undefined when
 * nothing changes). The caller holds the volume's map lock exclusively.
 */
export async function changeVolumeBlocks(
  pool: LocalPool,
  volume: VolumeState,
  changes: readonly RangeChange[],
  policy: SlotPolicy,
): Promise<{ readonly durable: Promise<void> } | undefined> {
  const store = pool.state.store(volume.blockSize)
  const bs = volume.blockSize
  const merging = blocksToMerge(changes, bs)
  const current = await gatherRanges(store, volume.root, volume.name, merging.map((block) => ({ offset: block * bs, length: bs })))
  const bases = new Map(merging.map((block, i) => [block, current[i]!]))
  const { holes, blocks } = foldChanges(changes, bs, (block) => bases.get(block) ?? new Uint8Array(bs))
  const slots = await writeSlots(store, blocks.map(({ bytes }) => bytes), policy)
  const records: LogRecord[] = holes.map(({ first, end }) => ({ op: 'trim', volume: volume.name, first, end }))
  if (blocks.length > 0) {
    const entries: BlockEntry[] = blocks.map(({ block, bytes }, k) => ({ block, slot: slots[k]!, crc: crc32(bytes) }))
    records.push({ op: 'write', volume: volume.name, entries })
  }
  return records.length === 0 ? undefined : { durable: pool.commitAll(records) }
}

/** Writes `payloads` to newly reserved slots, one `pwritev` per run of consecutive slots; returns the slots. */
async function writeSlots(store: BlockStore, payloads: readonly Uint8Array[], policy: SlotPolicy): Promise<number[]> {
  if (payloads.length === 0) return []
  const slots = policy === 'run' ? store.allocateRun(payloads.length) : store.allocate(payloads.length)
  // Every write settles before a failure frees the slots: a write still in flight must not land in a slot reused since.
  try {
    await settleAll(slotRuns(slots).map(({ start, end }) => store.write(slots[start]!, payloads.slice(start, end))))
  } catch (error) {
    store.unreserve(slots)
    throw error
  }
  return slots
}
