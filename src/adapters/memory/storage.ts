import { systemClock, type Clock } from '../../kernel/clock.js'
import type { Json } from '../../kernel/codecs.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type {
  ByteRange,
  ChangedBlocks,
  CreateVolumeRequest,
  RangeChange,
  ReadRangesOptions,
  ReadSource,
  ShareInfo,
  ShareProbe,
  SnapshotInfo,
  StoragePort,
  VolumeInfo,
  WriteRangesOptions,
} from '../../ports/storage.js'
import { copyChanges } from '../storage-common/range-changes.js'
import { describeSnapshot } from '../storage-common/snapshot-info.js'
import { BlockMap } from './storage-block-map.js'
import { MemoryCalls } from './storage-calls.js'
import { decodeRangeRead, decodeRangeWrite, readRangesOf, writeRangesOf } from './storage-ranges.js'
import { ShareTable } from './storage-shares.js'
import {
  MEMORY_KIND,
  requireBlockSize,
  requireBytes,
  requireFlag,
  requireJson,
  requireKey,
  requireLabels,
  requireName,
  requireRange,
  requireRecord,
  requireVolumeSize,
  storageError,
} from './storage-inputs.js'
import {
  changedBetween,
  describeVolume,
  dropSnapshot,
  newVolume,
  punchHoles,
  readBlocks,
  requireOnline,
  requireWritable,
  restoreBlocks,
  takeSnapshot,
  writeBlocks,
  type ChangePoint,
  type SnapshotState,
  type VolumeState,
} from './storage-volume.js'

/**
 * Settings of {@link memoryStorage}: the block size of volumes created without one (default 64 KiB), an
 * artificial latency added to every call (a fixed number of milliseconds or a function drawn per call, so
 * benchmarks can simulate a slow adapter), and the clock that latency and timestamps use (default the system
 * clock).
 *
 * @public
 */
export interface MemoryStorageOptions {
  readonly defaultBlockSize?: number
  readonly latencyMs?: number | (() => number)
  readonly clock?: Clock
}

/**
 * A {@link StoragePort} that keeps everything in memory, for tests, examples and benchmarks. Snapshots and clones
 * share blocks copy-on-write and cost O(1); changed blocks are found from per-block birth generations; I/O fences
 * defer I/O in arrival order. A volume's `allocatedBytes` counts the blocks it wrote that its live data or its
 * snapshots still reference (a clone is charged only for the blocks it wrote itself).
 *
 * Every call takes effect at once and settles after the configured latency. I/O that waited on a fence checks its
 * fence token again when it runs, so a write queued by a coordinator that lost its lease in the meantime is refused.
 *
 * @public
 */
export class MemoryStorage implements StoragePort {
  readonly kind = MEMORY_KIND
  readonly #clock: Clock
  readonly #defaultBlockSize: number
  readonly #volumes = new Map<string, VolumeState>()
  readonly #shares = new ShareTable()
  readonly #calls: MemoryCalls
  /** The birth of blocks written now; a snapshot records it and moves it on. */
  #generation = 1

  constructor(options: MemoryStorageOptions = {}) {
    this.#clock = options.clock ?? systemClock
    this.#defaultBlockSize =
      options.defaultBlockSize === undefined ? 64 * 1024 : requireBlockSize('create', 'defaultBlockSize', options.defaultBlockSize)
    const latency = options.latencyMs ?? 0
    if (typeof latency === 'number' && !(Number.isFinite(latency) && latency >= 0)) {
      throw storageError('E_INVALID_INPUT', 'create', 'latencyMs must be a non-negative number of milliseconds', { field: 'latencyMs' })
    }
    this.#calls = new MemoryCalls(this.#clock, typeof latency === 'number' ? () => latency : latency, this.#volumes)
  }

  createVolume(request: CreateVolumeRequest, token: FenceToken): Promise<VolumeInfo> {
    return this.#calls.op('createVolume', token, (op) => {
      const { name: requested, blockSize: requestedBlockSize, sizeBytes: requestedSize } = requireRecord(op, 'request', request)
      const name = requireName(op, 'name', requested)
      const blockSize = requestedBlockSize === undefined ? this.#defaultBlockSize : requireBlockSize(op, 'blockSize', requestedBlockSize)
      const sizeBytes = requireVolumeSize(op, requestedSize, blockSize)
      if (this.#volumes.has(name)) throw storageError('E_CONFLICT', op, `volume "${name}" already exists`, { volume: name })
      const volume = newVolume({ name, blockSize, sizeBytes, createdAt: this.#clock.now(), origin: undefined }, BlockMap.empty())
      this.#volumes.set(name, volume)
      return describeVolume(volume)
    })
  }

  deleteVolume(name: string, token: FenceToken): Promise<void> {
    return this.#calls.op('deleteVolume', token, (op) => {
      const volume = this.#calls.volume(op, name)
      if (volume.snapshots.size > 0) {
        throw storageError('E_PRECONDITION', op, `volume "${name}" has snapshots: ${[...volume.snapshots.keys()].join(', ')}`, { volume: name })
      }
      const shares = this.#shares.namesOn(name)
      if (shares.length > 0) throw storageError('E_PRECONDITION', op, `volume "${name}" has shares: ${shares.join(', ')}`, { volume: name })
      this.#volumes.delete(name)
      volume.map.release()
      if (volume.origin !== undefined) this.#volumes.get(volume.origin.volume)?.snapshots.get(volume.origin.snapshot)?.clones.delete(name)
      volume.gate.unfence()
    })
  }

  resizeVolume(name: string, sizeBytes: number, token: FenceToken): Promise<VolumeInfo> {
    return this.#calls.op('resizeVolume', token, (op) => {
      const volume = this.#calls.volume(op, name)
      const size = requireVolumeSize(op, sizeBytes, volume.blockSize)
      if (size < volume.sizeBytes) punchHoles(volume.map, size / volume.blockSize, Infinity, this.#generation)
      volume.sizeBytes = size
      return describeVolume(volume)
    })
  }

  volumeInfo(name: string): Promise<VolumeInfo> {
    return this.#calls.op('volumeInfo', undefined, (op) => describeVolume(this.#calls.volume(op, name)))
  }

  listVolumes(): Promise<readonly VolumeInfo[]> {
    return this.#calls.op('listVolumes', undefined, () => [...this.#volumes.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(describeVolume))
  }

  setOnline(name: string, online: boolean, token: FenceToken): Promise<void> {
    return this.#calls.op('setOnline', token, (op) => {
      const volume = this.#calls.volume(op, name)
      volume.online = requireFlag(op, 'online', online)
    })
  }

  setWritable(name: string, writable: boolean, token: FenceToken): Promise<void> {
    return this.#calls.op('setWritable', token, (op) => {
      const volume = this.#calls.volume(op, name)
      volume.writable = requireFlag(op, 'writable', writable)
    })
  }

  read(name: string, offset: number, length: number, source?: ReadSource): Promise<Uint8Array> {
    return this.#calls.io('read', name, undefined, (op, volume) => {
      requireOnline(op, volume)
      const snapshot = source?.snapshot === undefined ? undefined : this.#snapshot(op, volume, source.snapshot)
      const range = requireRange(op, offset, length, snapshot?.sizeBytes ?? volume.sizeBytes)
      return readBlocks(snapshot?.map ?? volume.map, volume.blockSize, range.offset, range.length)
    })
  }

  write(name: string, offset: number, data: Uint8Array, token: FenceToken): Promise<void> {
    const copy: unknown = data instanceof Uint8Array ? data.slice() : data
    return this.#calls.io('write', name, token, (op, volume) => {
      const bytes = requireBytes(op, copy)
      requireWritable(op, volume)
      const range = requireRange(op, offset, bytes.length, volume.sizeBytes)
      writeBlocks(volume, range.offset, bytes, this.#generation)
    })
  }

  trim(name: string, offset: number, length: number, token: FenceToken): Promise<void> {
    return this.#calls.io('trim', name, token, (op, volume) => {
      requireWritable(op, volume)
      const range = requireRange(op, offset, length, volume.sizeBytes)
      const first = Math.ceil(range.offset / volume.blockSize)
      const end = Math.floor((range.offset + range.length) / volume.blockSize)
      if (first < end) punchHoles(volume.map, first, end, this.#generation)
    })
  }

  readRanges(name: string, ranges: readonly ByteRange[], options?: ReadRangesOptions): Promise<Uint8Array[]> {
    return this.#calls.decoded('readRanges', (op) => decodeRangeRead(op, ranges, options), ({ ranges: requested, snapshot: snapshotName, into }) =>
      this.#calls.io('readRanges', name, undefined, (op, volume) => {
        requireOnline(op, volume)
        const snapshot = snapshotName === undefined ? undefined : this.#snapshot(op, volume, snapshotName)
        const data = readRangesOf(op, snapshot?.map ?? volume.map, volume.blockSize, snapshot?.sizeBytes ?? volume.sizeBytes, requested)
        if (into === undefined) return data
        into.forEach((buffer, i) => buffer.set(data[i] as Uint8Array))
        return [...into]
      }),
    )
  }

  writeRanges(name: string, changes: readonly RangeChange[], token: FenceToken, options?: WriteRangesOptions): Promise<void> {
    const copy = copyChanges(changes)
    return this.#calls.decoded('writeRanges', (op) => decodeRangeWrite(op, copy, options), (request) =>
      this.#calls.io('writeRanges', name, token, (op, volume) => writeRangesOf(op, volume, request, this.#generation)),
    )
  }

  createSnapshot(name: string, snapshotName: string, token: FenceToken, labels?: Readonly<Record<string, string>>): Promise<SnapshotInfo> {
    return this.#calls.op('createSnapshot', token, (op) => {
      const volume = this.#calls.volume(op, name)
      const snapshot = requireName(op, 'name', snapshotName)
      const copiedLabels = requireLabels(op, labels)
      if (volume.snapshots.has(snapshot)) {
        throw storageError('E_CONFLICT', op, `snapshot "${name}@${snapshot}" already exists`, { volume: name, snapshot })
      }
      return describeSnapshot(volume, takeSnapshot(volume, snapshot, copiedLabels, this.#clock.now(), this.#generation++))
    })
  }

  deleteSnapshot(name: string, snapshotName: string, token: FenceToken): Promise<void> {
    return this.#calls.op('deleteSnapshot', token, (op) => {
      const volume = this.#calls.volume(op, name)
      dropSnapshot(op, volume, this.#snapshot(op, volume, snapshotName))
    })
  }

  snapshotInfo(name: string, snapshotName: string): Promise<SnapshotInfo> {
    return this.#calls.op('snapshotInfo', undefined, (op) => {
      const volume = this.#calls.volume(op, name)
      return describeSnapshot(volume, this.#snapshot(op, volume, snapshotName))
    })
  }

  listSnapshots(name: string): Promise<readonly SnapshotInfo[]> {
    return this.#calls.op('listSnapshots', undefined, (op) => {
      const volume = this.#calls.volume(op, name)
      return [...volume.snapshots.values()].map((snapshot) => describeSnapshot(volume, snapshot))
    })
  }

  restoreSnapshot(name: string, snapshotName: string, token: FenceToken): Promise<void> {
    return this.#calls.op('restoreSnapshot', token, (op) => {
      const volume = this.#calls.volume(op, name)
      restoreBlocks(volume, this.#snapshot(op, volume, snapshotName), this.#generation)
    })
  }

  cloneSnapshot(name: string, snapshotName: string, cloneName: string, token: FenceToken): Promise<VolumeInfo> {
    return this.#calls.op('cloneSnapshot', token, (op) => {
      const volume = this.#calls.volume(op, name)
      const snapshot = this.#snapshot(op, volume, snapshotName)
      const clone = requireName(op, 'cloneName', cloneName)
      if (this.#volumes.has(clone)) throw storageError('E_CONFLICT', op, `volume "${clone}" already exists`, { volume: clone })
      const state = newVolume(
        {
          name: clone,
          blockSize: volume.blockSize,
          sizeBytes: snapshot.sizeBytes,
          createdAt: this.#clock.now(),
          origin: { volume: name, snapshot: snapshotName },
        },
        snapshot.map.share(),
      )
      this.#volumes.set(clone, state)
      snapshot.clones.add(clone)
      return describeVolume(state)
    })
  }

  holdSnapshot(name: string, snapshotName: string, tag: string, token: FenceToken): Promise<void> {
    return this.#calls.op('holdSnapshot', token, (op) => {
      const snapshot = this.#snapshot(op, this.#calls.volume(op, name), snapshotName)
      snapshot.holds.add(requireKey(op, 'tag', tag))
    })
  }

  releaseSnapshot(name: string, snapshotName: string, tag: string, token: FenceToken): Promise<void> {
    return this.#calls.op('releaseSnapshot', token, (op) => {
      const snapshot = this.#snapshot(op, this.#calls.volume(op, name), snapshotName)
      snapshot.holds.delete(requireKey(op, 'tag', tag))
    })
  }

  changedBlocks(name: string, from: string | null, to: string): Promise<ChangedBlocks> {
    return this.#calls.op('changedBlocks', undefined, (op) => {
      const volume = this.#calls.volume(op, name)
      const start: ChangePoint = from === null ? { map: BlockMap.empty(), generation: 0 } : this.#snapshot(op, volume, from)
      const target = to === 'live' ? undefined : this.#snapshot(op, volume, to)
      const end: ChangePoint = target ?? { map: volume.map, generation: Infinity }
      const { blocks, holes } = changedBetween(start, end)
      return { volume: name, from, to, blockSize: volume.blockSize, sizeBytes: target?.sizeBytes ?? volume.sizeBytes, blocks, holes }
    })
  }

  fence(name: string, token: FenceToken): Promise<void> {
    return this.#calls.op('fence', token, (op) => {
      const volume = this.#calls.volume(op, name)
      if (volume.gate.fenced) throw storageError('E_CONFLICT', op, `volume "${name}" is already fenced`, { volume: name })
      return volume.gate.fence()
    })
  }

  unfence(name: string, token: FenceToken): Promise<void> {
    return this.#calls.op('unfence', token, (op) => this.#calls.volume(op, name).gate.unfence())
  }

  isFenced(name: string): Promise<boolean> {
    return this.#calls.op('isFenced', undefined, (op) => this.#calls.volume(op, name).gate.fenced)
  }

  createShare(share: Omit<ShareInfo, 'createdAt'>, token: FenceToken): Promise<ShareInfo> {
    return this.#calls.op('createShare', token, (op) => this.#shares.create(op, share, (name) => this.#calls.volume(op, name).name, this.#clock.now()))
  }

  deleteShare(name: string, token: FenceToken): Promise<void> {
    return this.#calls.op('deleteShare', token, (op) => this.#shares.delete(op, name))
  }

  setShareAccess(name: string, access: readonly ('read' | 'write')[], token: FenceToken): Promise<void> {
    return this.#calls.op('setShareAccess', token, (op) => this.#shares.setAccess(op, name, access))
  }

  getShare(name: string): Promise<ShareInfo | undefined> {
    return this.#calls.op('getShare', undefined, () => this.#shares.get(name))
  }

  listShares(): Promise<readonly ShareInfo[]> {
    return this.#calls.op('listShares', undefined, () => this.#shares.list())
  }

  probeShare(name: string, access: readonly ('read' | 'write')[]): Promise<ShareProbe> {
    return this.#calls.op('probeShare', undefined, (op) => this.#shares.probe(op, name, access, (volume) => this.#volumes.get(volume)?.online === true))
  }

  putConfig(name: string, key: string, value: Json, token: FenceToken): Promise<void> {
    return this.#calls.op('putConfig', token, (op) => {
      const volume = this.#calls.volume(op, name)
      volume.config.set(requireKey(op, 'key', key), requireJson(op, value))
    })
  }

  getConfig(name: string, key: string): Promise<Json | undefined> {
    return this.#calls.op('getConfig', undefined, (op) => {
      const value = this.#calls.volume(op, name).config.get(key)
      return value === undefined ? undefined : structuredClone(value)
    })
  }

  listConfig(name: string): Promise<ReadonlyArray<readonly [string, Json]>> {
    return this.#calls.op('listConfig', undefined, (op) => {
      const entries = [...this.#calls.volume(op, name).config.entries()].sort(([a], [b]) => (a < b ? -1 : 1))
      return entries.map(([key, value]): readonly [string, Json] => [key, structuredClone(value)])
    })
  }

  deleteConfig(name: string, key: string, token: FenceToken): Promise<void> {
    return this.#calls.op('deleteConfig', token, (op) => {
      this.#calls.volume(op, name).config.delete(requireKey(op, 'key', key))
    })
  }

  async close(): Promise<void> {
    if (!this.#calls.close()) return
    for (const volume of this.#volumes.values()) volume.gate.unfence()
  }

  async presentToken(token: FenceToken): Promise<void> {
    await this.#calls.op('presentToken', token, () => undefined)
  }

  #snapshot(operation: string, volume: VolumeState, name: string): SnapshotState {
    const snapshot = volume.snapshots.get(name)
    if (snapshot === undefined) {
      throw storageError('E_NOT_FOUND', operation, `snapshot "${volume.name}@${name}" does not exist`, { volume: volume.name, snapshot: name })
    }
    return snapshot
  }
}

/**
 * Creates an in-memory {@link StoragePort}: real block data, copy-on-write snapshots and clones, changed-block
 * tracking, I/O fences, shares and configuration records, with an optional artificial latency.
 *
 * @public
 */
export function memoryStorage(options?: MemoryStorageOptions): MemoryStorage {
  return new MemoryStorage(options)
}
