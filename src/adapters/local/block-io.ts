import { DrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import { EMPTY_SLOT, lookupRange, type BlockEntry, type NodePage } from './block-map.js'
import type { BlockStore } from './block-store.js'
import { crc32 } from '../../kernel/crc32.js'
import { checkBytes, checkData, checkRange } from './inputs.js'
import type { LocalPool } from './local-pool.js'
import type { VolumeState } from './pool-state.js'

/** Most blocks moved by one vectored read or write. */
const MAX_RUN = 256

/** A run of blocks stored in consecutive slots: block indexes `[start, end)` relative to the request. */
interface Run {
  readonly start: number
  readonly end: number
}

function runs(slots: Uint32Array, count: number): Run[] {
  const found: Run[] = []
  let i = 0
  while (i < count) {
    if (slots[i] === EMPTY_SLOT) {
      i++
      continue
    }
    let j = i + 1
    while (j < count && j - i < MAX_RUN && slots[j] === slots[j - 1]! + 1) j++
    found.push({ start: i, end: j })
    i = j
  }
  return found
}

/**
 * Reads `length` bytes at `offset` through the block map rooted at `root`, verifying every block's checksum
 * (`E_CORRUPT` with the volume and block on mismatch). Unallocated blocks read as zeros. The caller holds the
 * volume's map lock, so no slot read here can be freed and reused meanwhile.
 */
async function readRange(
  store: BlockStore,
  root: NodePage | null,
  volume: string,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const result = new Uint8Array(length)
  if (length === 0) return result
  const bs = store.blockSize
  const first = Math.floor(offset / bs)
  const count = Math.ceil((offset + length) / bs) - first
  const slots = new Uint32Array(count)
  const crcs = new Uint32Array(count)
  lookupRange(root, first, count, slots, crcs)
  await Promise.all(
    runs(slots, count).map(async ({ start, end }) => {
      const runOffset = (first + start) * bs
      const runBytes = (end - start) * bs
      const direct = runOffset >= offset && runOffset + runBytes <= offset + length
      const target = direct ? result.subarray(runOffset - offset, runOffset - offset + runBytes) : new Uint8Array(runBytes)
      await store.read(slots[start]!, target)
      for (let k = start; k < end; k++) {
        const at = (k - start) * bs
        if (crc32(target.subarray(at, at + bs)) !== crcs[k]) {
          throw new DrError('E_CORRUPT', `local: block ${first + k} of volume "${volume}" fails its checksum`, {
            adapter: 'local',
            volume,
            block: first + k,
            slot: slots[k],
          })
        }
      }
      if (!direct) {
        const from = Math.max(offset, runOffset)
        const to = Math.min(offset + length, runOffset + runBytes)
        result.set(target.subarray(from - runOffset, to - runOffset), from - offset)
      }
    }),
  )
  return result
}

/**
 * Writes `data` at `offset` of the live volume: partial blocks are merged with their current contents, every
 * block goes to a fresh slot (redirect-on-write, so snapshots keep the old one), the data is written, then the
 * map change is committed. Resolves once the change is visible, with the promise of its durability. The
 * caller holds the volume's map lock exclusively.
 */
async function writeRange(
  pool: LocalPool,
  volume: VolumeState,
  offset: number,
  data: Uint8Array,
): Promise<{ readonly durable: Promise<void> }> {
  const store = pool.state.store(volume.blockSize)
  const bs = volume.blockSize
  const first = Math.floor(offset / bs)
  const count = Math.ceil((offset + data.length) / bs) - first
  const payloads: Uint8Array[] = []
  for (let k = 0; k < count; k++) {
    const blockOffset = (first + k) * bs
    if (blockOffset >= offset && blockOffset + bs <= offset + data.length) {
      payloads.push(data.subarray(blockOffset - offset, blockOffset - offset + bs))
      continue
    }
    const merged = await readRange(store, volume.root, volume.name, blockOffset, bs)
    const from = Math.max(offset, blockOffset)
    const to = Math.min(offset + data.length, blockOffset + bs)
    merged.set(data.subarray(from - offset, to - offset), from - blockOffset)
    payloads.push(merged)
  }
  const slots = store.allocate(count)
  const entries: BlockEntry[] = payloads.map((payload, k) => ({ block: first + k, slot: slots[k]!, crc: crc32(payload) }))
  try {
    const slotArray = Uint32Array.from(slots)
    await Promise.all(runs(slotArray, count).map(({ start, end }) => store.write(slots[start]!, payloads.slice(start, end))))
  } catch (error) {
    store.unreserve(slots)
    throw error
  }
  return { durable: pool.commit({ op: 'write', volume: volume.name, entries }) }
}

function precondition(message: string, volume: string): DrError {
  return new DrError('E_PRECONDITION', `local: ${message}`, { adapter: 'local', volume })
}

function checkIo(volume: VolumeState, sizeBytes: number, offset: number, length: number, writing: boolean): void {
  checkRange(offset, length, sizeBytes, volume.name)
  if (!volume.online) throw precondition(`volume "${volume.name}" is offline`, volume.name)
  if (writing && !volume.writable) throw precondition(`volume "${volume.name}" is read-only`, volume.name)
}

/**
 * Reads a range of a volume or of one of its snapshots: waits while the volume is fenced, then reads under the
 * shared map lock. Checks run before waiting and again after, since the volume may change meanwhile.
 */
export async function readVolume(pool: LocalPool, volumeName: string, offset: number, length: number, snapshotName: string | undefined): Promise<Uint8Array> {
  checkBytes(offset, 'offset')
  checkBytes(length, 'length')
  const volume = pool.state.volume(volumeName)
  const snapshot = snapshotName === undefined ? undefined : pool.state.snapshot(volumeName, snapshotName)
  checkIo(volume, snapshot?.sizeBytes ?? volume.sizeBytes, offset, length, false)
  const ticket = await pool.io(volume).enter('shared')
  try {
    pool.current(volume)
    if (snapshot !== undefined) pool.currentSnapshot(volume, snapshot)
    checkIo(volume, snapshot?.sizeBytes ?? volume.sizeBytes, offset, length, false)
    const root = snapshot === undefined ? volume.root : snapshot.root
    return await readRange(pool.state.store(volume.blockSize), root, volumeName, offset, length)
  } finally {
    ticket.leave()
  }
}

/**
 * Runs a change of a volume's blocks as fenced I/O: waits while the volume is fenced, re-checks the token and
 * the volume, makes the change under the exclusive map lock, and stays in flight (so a fence waits for it)
 * until the change is durable.
 */
async function changeBlocks(
  pool: LocalPool,
  volumeName: string,
  token: FenceToken,
  operation: string,
  offset: number,
  length: number,
  change: (volume: VolumeState) => Promise<{ readonly durable: Promise<void> } | undefined>,
): Promise<void> {
  const volume = pool.state.volume(volumeName)
  checkIo(volume, volume.sizeBytes, offset, length, true)
  const ticket = await pool.io(volume).enter('exclusive')
  try {
    pool.authorize(token, operation)
    pool.current(volume)
    checkIo(volume, volume.sizeBytes, offset, length, true)
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
  await changeBlocks(pool, volumeName, token, 'write', offset, bytes.length, async (volume) =>
    bytes.length === 0 ? undefined : writeRange(pool, volume, offset, bytes),
  )
}

/** Unmaps the whole blocks inside `[offset, offset + length)` of a volume; partial edge blocks are kept. */
export async function trimVolume(pool: LocalPool, volumeName: string, offset: number, length: number, token: FenceToken): Promise<void> {
  pool.authorize(token, 'trim')
  checkBytes(offset, 'offset')
  checkBytes(length, 'length')
  await changeBlocks(pool, volumeName, token, 'trim', offset, length, async (volume) => {
    const first = Math.ceil(offset / volume.blockSize)
    const end = Math.floor((offset + length) / volume.blockSize)
    return first < end ? { durable: pool.commit({ op: 'trim', volume: volumeName, first, end }) } : undefined
  })
}
