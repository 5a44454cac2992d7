import type { Json } from '../../kernel/codecs.js'
import type { VolumeInfo } from '../../ports/storage.js'
import { BlockMap, type Allocation, type DataBlock } from './storage-block-map.js'
import { IoGate } from './storage-fences.js'
import { storageError } from './storage-inputs.js'

/** A snapshot as the memory storage keeps it: its frozen block map and the generation it was taken at. */
export interface SnapshotState {
  readonly name: string
  readonly createdAt: number
  readonly sizeBytes: number
  readonly generation: number
  readonly labels: Readonly<Record<string, string>>
  readonly holds: Set<string>
  /** Names of the volumes cloned from this snapshot. */
  readonly clones: Set<string>
  readonly map: BlockMap
}

/** A volume as the memory storage keeps it: settings, live block map, snapshots (oldest first), fence and config. */
export interface VolumeState {
  readonly name: string
  readonly blockSize: number
  readonly createdAt: number
  readonly origin: { readonly volume: string; readonly snapshot: string } | undefined
  sizeBytes: number
  online: boolean
  writable: boolean
  readonly map: BlockMap
  readonly allocation: Allocation
  readonly snapshots: Map<string, SnapshotState>
  readonly config: Map<string, Json>
  readonly gate: IoGate
}

/** A new online, writable volume over `map` (empty for a new volume, shared with a snapshot for a clone). */
export function newVolume(
  fields: Pick<VolumeState, 'name' | 'blockSize' | 'sizeBytes' | 'createdAt' | 'origin'>,
  map: BlockMap,
): VolumeState {
  return {
    ...fields,
    online: true,
    writable: true,
    map,
    allocation: { bytes: 0 },
    snapshots: new Map(),
    config: new Map(),
    gate: new IoGate(),
  }
}

/** The public description of a volume. */
export function describeVolume(volume: VolumeState): VolumeInfo {
  const info: VolumeInfo = {
    name: volume.name,
    sizeBytes: volume.sizeBytes,
    blockSize: volume.blockSize,
    online: volume.online,
    writable: volume.writable,
    allocatedBytes: volume.allocation.bytes,
    createdAt: volume.createdAt,
  }
  return volume.origin === undefined ? info : { ...info, origin: `${volume.origin.volume}@${volume.origin.snapshot}` }
}

/** Freezes the live contents of `volume` as snapshot `name` at `generation`, sharing every block (O(1)). */
export function takeSnapshot(
  volume: VolumeState,
  name: string,
  labels: Readonly<Record<string, string>>,
  createdAt: number,
  generation: number,
): SnapshotState {
  const snapshot: SnapshotState = {
    name,
    createdAt,
    sizeBytes: volume.sizeBytes,
    generation,
    labels,
    holds: new Set(),
    clones: new Set(),
    map: volume.map.share(),
  }
  volume.snapshots.set(name, snapshot)
  return snapshot
}

/** Deletes a snapshot and frees the blocks only it referenced; `E_PRECONDITION` while it is held or cloned. */
export function dropSnapshot(operation: string, volume: VolumeState, snapshot: SnapshotState): void {
  const label = `snapshot "${volume.name}@${snapshot.name}"`
  const details = { volume: volume.name, snapshot: snapshot.name }
  if (snapshot.holds.size > 0) throw storageError('E_PRECONDITION', operation, `${label} is held: ${[...snapshot.holds].join(', ')}`, details)
  if (snapshot.clones.size > 0) {
    throw storageError('E_PRECONDITION', operation, `${label} has clones: ${[...snapshot.clones].join(', ')}`, details)
  }
  volume.snapshots.delete(snapshot.name)
  snapshot.map.release()
}

/** Rejects I/O on an offline volume with `E_PRECONDITION`. */
export function requireOnline(operation: string, volume: VolumeState): void {
  if (!volume.online) throw storageError('E_PRECONDITION', operation, `volume "${volume.name}" is offline`, { volume: volume.name })
}

/** Rejects a write or trim on an offline or read-only volume with `E_PRECONDITION`. */
export function requireWritable(operation: string, volume: VolumeState): void {
  requireOnline(operation, volume)
  if (!volume.writable) throw storageError('E_PRECONDITION', operation, `volume "${volume.name}" is read-only`, { volume: volume.name })
}

/** Reads `[offset, offset + length)` from a block map into a new array; blocks without data read as zeros. */
export function readBlocks(map: BlockMap, blockSize: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  if (length === 0) return out
  const end = offset + length
  for (const [index, leaf] of map.range(Math.floor(offset / blockSize), Math.ceil(end / blockSize))) {
    if (leaf.data === null) continue
    const blockStart = index * blockSize
    const from = Math.max(offset, blockStart)
    const to = Math.min(end, blockStart + blockSize)
    out.set(leaf.data.bytes.subarray(from - blockStart, to - blockStart), from - offset)
  }
  return out
}

/** Writes `data` at `offset` of the live volume, merging partial blocks, as new blocks born at `birth`. */
export function writeBlocks(volume: VolumeState, offset: number, data: Uint8Array, birth: number): void {
  const { blockSize, map } = volume
  const end = offset + data.length
  for (let index = Math.floor(offset / blockSize); index * blockSize < end; index++) {
    const blockStart = index * blockSize
    const from = Math.max(offset, blockStart)
    const to = Math.min(end, blockStart + blockSize)
    const bytes = new Uint8Array(blockSize)
    if (to - from < blockSize) {
      const previous = map.get(index)?.data ?? null
      if (previous !== null) bytes.set(previous.bytes)
    }
    bytes.set(data.subarray(from - offset, to - offset), from - blockStart)
    const block: DataBlock = { bytes, owner: volume.allocation, refs: 0 }
    map.set(index, { data: block, birth })
  }
}

/** Turns every block with data in block indexes `[first, end)` into a hole born at `birth`, freeing its data. */
export function punchHoles(map: BlockMap, first: number, end: number, birth: number): void {
  const filled = [...map.range(first, end)].filter(([, leaf]) => leaf.data !== null)
  for (const [index] of filled) map.set(index, { data: null, birth })
}

/**
 * Rolls the live volume back to `snapshot`: every block born since the snapshot takes the snapshot's data (or
 * becomes a hole) with a new birth, so changed-block lists still see it as changed. Costs O(blocks changed since).
 */
export function restoreBlocks(volume: VolumeState, snapshot: SnapshotState, birth: number): void {
  const changed = [...volume.map.bornAfter(snapshot.generation)].map(([index]) => index)
  for (const index of changed) volume.map.set(index, { data: snapshot.map.get(index)?.data ?? null, birth })
  volume.sizeBytes = snapshot.sizeBytes
}

/** One end of a changed-block comparison: a block map and the generation it stands for. */
export interface ChangePoint {
  readonly map: BlockMap
  readonly generation: number
}

/**
 * The blocks that may differ between `from` and `to`, ascending, and those of them without data at `to`. Walks
 * only the blocks of the later point born after the earlier point's generation.
 */
export function changedBetween(from: ChangePoint, to: ChangePoint): { blocks: number[]; holes: number[] } {
  const [earlier, later] = from.generation <= to.generation ? [from, to] : [to, from]
  const blocks: number[] = []
  const holes: number[] = []
  for (const [index, leaf] of later.map.bornAfter(earlier.generation)) {
    blocks.push(index)
    const atTo = later === to ? leaf : to.map.get(index)
    if ((atTo?.data ?? null) === null) holes.push(index)
  }
  return { blocks, holes }
}
