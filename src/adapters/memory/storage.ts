import { systemClock, type Clock } from '../../kernel/clock.js'
import type { Json } from '../../kernel/codecs.js'
import { FenceGuard, type FenceToken } from '../../kernel/fencing.js'
import type {
  ChangedBlocks,
  CreateVolumeRequest,
  ReadSource,
  ShareInfo,
  ShareProbe,
  SnapshotInfo,
  StoragePort,
  VolumeInfo,
} from '../../ports/storage.js'
import { BlockMap } from './storage-block-map.js'
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
  describeSnapshot,
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
  readonly #latency: () => number
  readonly #defaultBlockSize: number
  readonly #guard = new FenceGuard(MEMORY_KIND)
  readonly #volumes = new Map<string, VolumeState>()
  readonly #shares = new ShareTable()
  /** The birth of blocks written now; a snapshot records it and moves it on. */
  #generation = 1
  #closed = false

  constructor(options: MemoryStorageOptions = {}) {
    this.#clock = options.clock ?? systemClock
    this.#defaultBlockSize =
      options.defaultBlockSize === undefined ? 64 * 1024 : requireBlockSize('create', 'defaultBlockSize', options.defaultBlockSize)
    const latency = options.latencyMs ?? 0
    if (typeof latency === 'number' && !(Number.isFinite(latency) && latency >= 0)) {
      throw storageError('E_INVALID_INPUT', 'create', 'latencyMs must be a non-negative number of milliseconds', { field: 'latencyMs' })
    }
    this.#latency = typeof latency === 'number' ? () => latency : latency
  }

  createVolume(request: CreateVolumeRequest, token: FenceToken): Promise<VolumeInfo> {
    return this.#op('createVolume', token, (op) => {
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
    return this.#op('deleteVolume', token, (op) => {
      const volume = this.#volume(op, name)
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
    return this.#op('resizeVolume', token, (op) => {
      const volume = this.#volume(op, name)
      const size = requireVolumeSize(op, sizeBytes, volume.blockSize)
      if (size < volume.sizeBytes) punchHoles(volume.map, size / volume.blockSize, Infinity, this.#generation)
      volume.sizeBytes = size
      return describeVolume(volume)
    })
  }

  volumeInfo(name: string): Promise<VolumeInfo> {
    return this.#op('volumeInfo', undefined, (op) => describeVolume(this.#volume(op, name)))
  }

  listVolumes(): Promise<readonly VolumeInfo[]> {
    return this.#op('listVolumes', undefined, () => [...this.#volumes.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(describeVolume))
  }

  setOnline(name: string, online: boolean, token: FenceToken): Promise<void> {
    return this.#op('setOnline', token, (op) => {
      const volume = this.#volume(op, name)
      volume.online = requireFlag(op, 'online', online)
    })
  }

  setWritable(name: string, writable: boolean, token: FenceToken): Promise<void> {
    return this.#op('setWritable', token, (op) => {
      const volume = this.#volume(op, name)
      volume.writable = requireFlag(op, 'writable', writable)
    })
  }

  read(name: string, offset: number, length: number, source?: ReadSource): Promise<Uint8Array> {
    return this.#io('read', name, undefined, (op, volume) => {
      requireOnline(op, volume)
      const snapshot = source?.snapshot === undefined ? undefined : this.#snapshot(op, volume, source.snapshot)
      const range = requireRange(op, offset, length, snapshot?.sizeBytes ?? volume.sizeBytes)
      return readBlocks(snapshot?.map ?? volume.map, volume.blockSize, range.offset, range.length)
    })
  }

  write(name: string, offset: number, data: Uint8Array, token: FenceToken): Promise<void> {
    const copy: unknown = data instanceof Uint8Array ? data.slice() : data
    return this.#io('write', name, token, (op, volume) => {
      const bytes = requireBytes(op, copy)
      requireWritable(op, volume)
      const range = requireRange(op, offset, bytes.length, volume.sizeBytes)
      writeBlocks(volume, range.offset, bytes, this.#generation)
    })
  }

  trim(name: string, offset: number, length: number, token: FenceToken): Promise<void> {
    return this.#io('trim', name, token, (op, volume) => {
      requireWritable(op, volume)
      const range = requireRange(op, offset, length, volume.sizeBytes)
      const first = Math.ceil(range.offset / volume.blockSize)
      const end = Math.floor((range.offset + range.length) / volume.blockSize)
      if (first < end) punchHoles(volume.map, first, end, this.#generation)
    })
  }

  createSnapshot(name: string, snapshotName: string, token: FenceToken, labels?: Readonly<Record<string, string>>): Promise<SnapshotInfo> {
    return this.#op('createSnapshot', token, (op) => {
      const volume = this.#volume(op, name)
      const snapshot = requireName(op, 'name', snapshotName)
      const copiedLabels = requireLabels(op, labels)
      if (volume.snapshots.has(snapshot)) {
        throw storageError('E_CONFLICT', op, `snapshot "${name}@${snapshot}" already exists`, { volume: name, snapshot })
      }
      return describeSnapshot(volume, takeSnapshot(volume, snapshot, copiedLabels, this.#clock.now(), this.#generation++))
    })
  }

  deleteSnapshot(name: string, snapshotName: string, token: FenceToken): Promise<void> {
    return this.#op('deleteSnapshot', token, (op) => {
      const volume = this.#volume(op, name)
      dropSnapshot(op, volume, this.#snapshot(op, volume, snapshotName))
    })
  }

  snapshotInfo(name: string, snapshotName: string): Promise<SnapshotInfo> {
    return this.#op('snapshotInfo', undefined, (op) => {
      const volume = this.#volume(op, name)
      return describeSnapshot(volume, this.#snapshot(op, volume, snapshotName))
    })
  }

  listSnapshots(name: string): Promise<readonly SnapshotInfo[]> {
    return this.#op('listSnapshots', undefined, (op) => {
      const volume = this.#volume(op, name)
      return [...volume.snapshots.values()].map((snapshot) => describeSnapshot(volume, snapshot))
    })
  }

  restoreSnapshot(name: string, snapshotName: string, token: FenceToken): Promise<void> {
    return this.#op('restoreSnapshot', token, (op) => {
      const volume = this.#volume(op, name)
      restoreBlocks(volume, this.#snapshot(op, volume, snapshotName), this.#generation)
    })
  }

  cloneSnapshot(name: string, snapshotName: string, cloneName: string, token: FenceToken): Promise<VolumeInfo> {
    return this.#op('cloneSnapshot', token, (op) => {
      const volume = this.#volume(op, name)
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
    return this.#op('holdSnapshot', token, (op) => {
      const snapshot = this.#snapshot(op, this.#volume(op, name), snapshotName)
      snapshot.holds.add(requireKey(op, 'tag', tag))
    })
  }

  releaseSnapshot(name: string, snapshotName: string, tag: string, token: FenceToken): Promise<void> {
    return this.#op('releaseSnapshot', token, (op) => {
      const snapshot = this.#snapshot(op, this.#volume(op, name), snapshotName)
      snapshot.holds.delete(requireKey(op, 'tag', tag))
    })
  }

  changedBlocks(name: string, from: string | null, to: string): Promise<ChangedBlocks> {
    return this.#op('changedBlocks', undefined, (op) => {
      const volume = this.#volume(op, name)
      const start: ChangePoint = from === null ? { map: BlockMap.empty(), generation: 0 } : this.#snapshot(op, volume, from)
      const target = to === 'live' ? undefined : this.#snapshot(op, volume, to)
      const end: ChangePoint = target ?? { map: volume.map, generation: Infinity }
      const { blocks, holes } = changedBetween(start, end)
      return { volume: name, from, to, blockSize: volume.blockSize, sizeBytes: target?.sizeBytes ?? volume.sizeBytes, blocks, holes }
    })
  }

  fence(name: string, token: FenceToken): Promise<void> {
    return this.#op('fence', token, (op) => {
      const volume = this.#volume(op, name)
      if (volume.gate.fenced) throw storageError('E_CONFLICT', op, `volume "${name}" is already fenced`, { volume: name })
      return volume.gate.fence()
    })
  }

  unfence(name: string, token: FenceToken): Promise<void> {
    return this.#op('unfence', token, (op) => this.#volume(op, name).gate.unfence())
  }

  isFenced(name: string): Promise<boolean> {
    return this.#op('isFenced', undefined, (op) => this.#volume(op, name).gate.fenced)
  }

  createShare(share: Omit<ShareInfo, 'createdAt'>, token: FenceToken): Promise<ShareInfo> {
    return this.#op('createShare', token, (op) => this.#shares.create(op, share, (name) => this.#volume(op, name).name, this.#clock.now()))
  }

  deleteShare(name: string, token: FenceToken): Promise<void> {
    return this.#op('deleteShare', token, (op) => this.#shares.delete(op, name))
  }

  setShareAccess(name: string, access: readonly ('read' | 'write')[], token: FenceToken): Promise<void> {
    return this.#op('setShareAccess', token, (op) => this.#shares.setAccess(op, name, access))
  }

  getShare(name: string): Promise<ShareInfo | undefined> {
    return this.#op('getShare', undefined, () => this.#shares.get(name))
  }

  listShares(): Promise<readonly ShareInfo[]> {
    return this.#op('listShares', undefined, () => this.#shares.list())
  }

  probeShare(name: string, access: readonly ('read' | 'write')[]): Promise<ShareProbe> {
    return this.#op('probeShare', undefined, (op) => this.#shares.probe(op, name, access, (volume) => this.#volumes.get(volume)?.online === true))
  }

  putConfig(name: string, key: string, value: Json, token: FenceToken): Promise<void> {
    return this.#op('putConfig', token, (op) => {
      const volume = this.#volume(op, name)
      volume.config.set(requireKey(op, 'key', key), requireJson(op, value))
    })
  }

  getConfig(name: string, key: string): Promise<Json | undefined> {
    return this.#op('getConfig', undefined, (op) => {
      const value = this.#volume(op, name).config.get(key)
      return value === undefined ? undefined : structuredClone(value)
    })
  }

  listConfig(name: string): Promise<ReadonlyArray<readonly [string, Json]>> {
    return this.#op('listConfig', undefined, (op) => {
      const entries = [...this.#volume(op, name).config.entries()].sort(([a], [b]) => (a < b ? -1 : 1))
      return entries.map(([key, value]): readonly [string, Json] => [key, structuredClone(value)])
    })
  }

  deleteConfig(name: string, key: string, token: FenceToken): Promise<void> {
    return this.#op('deleteConfig', token, (op) => {
      this.#volume(op, name).config.delete(requireKey(op, 'key', key))
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const volume of this.#volumes.values()) volume.gate.unfence()
  }

  async presentToken(token: FenceToken): Promise<void> {
    await this.#op('presentToken', token, () => undefined)
  }

  /** Runs a call that does not wait for fences: closed check, token check, body, then the latency. */
  async #op<R>(operation: string, token: FenceToken | undefined, body: (operation: string) => R | Promise<R>): Promise<R> {
    try {
      this.#admit(operation, token)
      return await body(operation)
    } finally {
      await this.#pause()
    }
  }

  /**
   * Runs one I/O. Arrival checks run at once; the I/O then enters the volume's fence (waiting while it is up) and
   * takes effect as soon as it is admitted, after checking again what may have changed while it waited.
   */
  async #io<R>(operation: string, name: string, token: FenceToken | undefined, act: (operation: string, volume: VolumeState) => R): Promise<R> {
    let volume: VolumeState
    try {
      this.#admit(operation, token)
      volume = this.#volume(operation, name)
    } catch (error) {
      await this.#pause()
      throw error
    }
    await volume.gate.enter()
    try {
      this.#admit(operation, token)
      if (this.#volumes.get(name) !== volume) throw storageError('E_NOT_FOUND', operation, `volume "${name}" was deleted`, { volume: name })
      return act(operation, volume)
    } finally {
      await this.#pause()
      volume.gate.leave()
    }
  }

  #admit(operation: string, token: FenceToken | undefined): void {
    if (this.#closed) throw storageError('E_CLOSED', operation, 'the storage is closed')
    if (token !== undefined) this.#guard.check(token, operation)
  }

  async #pause(): Promise<void> {
    const ms = this.#latency()
    if (ms > 0) await this.#clock.sleep(ms)
  }

  #volume(operation: string, name: string): VolumeState {
    const volume = this.#volumes.get(name)
    if (volume === undefined) throw storageError('E_NOT_FOUND', operation, `volume "${name}" does not exist`, { volume: name })
    return volume
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
