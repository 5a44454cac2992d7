import type { Json } from '../../kernel/codecs.js'
import { DrError } from '../../kernel/errors.js'
import { FenceGuard } from '../../kernel/fencing.js'
import type { ShareInfo, VolumeInfo } from '../../ports/storage.js'
import { clearRange, MAX_BLOCKS, releaseTree, retainTree, setBlocks, type MapStats, type NodePage, type SlotOwner } from './block-map.js'
import type { BlockStore } from './block-store.js'
import type { LogRecord } from './records.js'

/** A snapshot as the pool holds it: its description and the root of its (shared, frozen) block map. */
export interface SnapshotState {
  readonly name: string
  readonly createdAt: number
  readonly sizeBytes: number
  readonly labels: Readonly<Record<string, string>>
  readonly holds: Set<string>
  readonly root: NodePage | null
}

/** A volume as the pool holds it: settings, live block map, snapshots (oldest first) and configuration. */
export interface VolumeState {
  /** The pool's number for this volume incarnation, to which the slots it writes are charged. */
  readonly id: number
  readonly name: string
  readonly blockSize: number
  readonly createdAt: number
  readonly origin: string | undefined
  sizeBytes: number
  online: boolean
  writable: boolean
  root: NodePage | null
  readonly snapshots: Map<string, SnapshotState>
  readonly config: Map<string, Json>
}

/**
 * The whole pool in memory — volumes, snapshots, shares, configuration and the highest fence tokens — and the
 * one function that changes it: {@link PoolState.apply}. The live path and log replay both go through
 * `apply`, so the state rebuilt after a restart is the state that was acknowledged.
 */
export class PoolState {
  /** Volumes by name. */
  readonly volumes = new Map<string, VolumeState>()
  /** Shares by name. */
  readonly shares = new Map<string, ShareInfo>()
  /** Highest fence token per scope. */
  readonly guard = new FenceGuard('local')
  /** Block files by block size. */
  readonly stores = new Map<number, BlockStore>()
  /** Map pages and entries looked at by diffs since the pool opened. */
  readonly stats: MapStats = { pagesVisited: 0, entriesVisited: 0 }
  #nextId = 1

  /** A number for a new volume incarnation. */
  newVolumeId(): number {
    return this.#nextId++
  }

  /**
   * A volume's description as the port returns it. `allocatedBytes` counts the blocks the volume wrote that its
   * live data or its snapshots still reference; a clone is charged only for the blocks it wrote itself.
   */
  describe(volume: VolumeState): VolumeInfo {
    return {
      name: volume.name,
      sizeBytes: volume.sizeBytes,
      blockSize: volume.blockSize,
      online: volume.online,
      writable: volume.writable,
      allocatedBytes: this.store(volume.blockSize).owned(volume.id) * volume.blockSize,
      ...(volume.origin === undefined ? {} : { origin: volume.origin }),
      createdAt: volume.createdAt,
    }
  }

  /** The reference counting of `volume`'s block maps. */
  owner(volume: VolumeState): SlotOwner {
    return this.store(volume.blockSize).owner(volume.id)
  }

  /** The block file of `blockSize` (opened before any record that needs it is applied). */
  store(blockSize: number): BlockStore {
    const store = this.stores.get(blockSize)
    if (store === undefined) throw new DrError('E_INTERNAL', `local: no block file for block size ${blockSize}`, { adapter: 'local' })
    return store
  }

  /** The volume named `name`, or `E_NOT_FOUND`. */
  volume(name: string): VolumeState {
    const volume = this.volumes.get(name)
    if (volume === undefined) throw new DrError('E_NOT_FOUND', `local: volume "${name}" does not exist`, { adapter: 'local', volume: name })
    return volume
  }

  /** Snapshot `name` of `volume`, or `E_NOT_FOUND`. */
  snapshot(volume: string, name: string): SnapshotState {
    const snapshot = this.volume(volume).snapshots.get(name)
    if (snapshot === undefined) {
      throw new DrError('E_NOT_FOUND', `local: snapshot "${volume}@${name}" does not exist`, { adapter: 'local', volume, snapshot: name })
    }
    return snapshot
  }

  /** Share `name`, or `E_NOT_FOUND`. */
  share(name: string): ShareInfo {
    const share = this.shares.get(name)
    if (share === undefined) throw new DrError('E_NOT_FOUND', `local: share "${name}" does not exist`, { adapter: 'local', share: name })
    return share
  }

  /** Volumes cloned from `volume@snapshot`. */
  clonesOf(volume: string, snapshot: string): string[] {
    const origin = `${volume}@${snapshot}`
    return [...this.volumes.values()].filter((v) => v.origin === origin).map((v) => v.name)
  }

  /** Applies one change. The caller has checked its preconditions (or is replaying a log that was checked). */
  apply(record: LogRecord): void {
    switch (record.op) {
      case 'token':
        this.guard.restore([[record.scope, record.value]])
        return
      case 'createVolume':
        this.volumes.set(record.name, {
          id: this.newVolumeId(),
          name: record.name,
          blockSize: record.blockSize,
          createdAt: record.createdAt,
          origin: undefined,
          sizeBytes: record.sizeBytes,
          online: true,
          writable: true,
          root: null,
          snapshots: new Map(),
          config: new Map(),
        })
        return
      case 'deleteVolume': {
        const volume = this.volume(record.name)
        const owner = this.owner(volume)
        for (const snapshot of volume.snapshots.values()) releaseTree(snapshot.root, owner)
        releaseTree(volume.root, owner)
        this.volumes.delete(record.name)
        return
      }
      case 'resizeVolume': {
        const volume = this.volume(record.name)
        this.#clear(volume, record.sizeBytes / volume.blockSize, MAX_BLOCKS)
        volume.sizeBytes = record.sizeBytes
        return
      }
      case 'setOnline':
        this.volume(record.name).online = record.online
        return
      case 'setWritable':
        this.volume(record.name).writable = record.writable
        return
      case 'write': {
        const volume = this.volume(record.volume)
        volume.root = setBlocks(volume.root, record.entries, this.owner(volume))
        return
      }
      case 'trim':
        this.#clear(this.volume(record.volume), record.first, record.end)
        return
      case 'createSnapshot': {
        const volume = this.volume(record.volume)
        volume.snapshots.set(record.name, {
          name: record.name,
          createdAt: record.createdAt,
          sizeBytes: volume.sizeBytes,
          labels: record.labels,
          holds: new Set(),
          root: retainTree(volume.root),
        })
        return
      }
      case 'deleteSnapshot': {
        const volume = this.volume(record.volume)
        releaseTree(this.snapshot(record.volume, record.name).root, this.owner(volume))
        volume.snapshots.delete(record.name)
        return
      }
      case 'restoreSnapshot': {
        const volume = this.volume(record.volume)
        const snapshot = this.snapshot(record.volume, record.name)
        const old = volume.root
        volume.root = retainTree(snapshot.root)
        releaseTree(old, this.owner(volume))
        volume.sizeBytes = snapshot.sizeBytes
        return
      }
      case 'cloneSnapshot': {
        const source = this.volume(record.volume)
        const snapshot = this.snapshot(record.volume, record.name)
        this.volumes.set(record.clone, {
          id: this.newVolumeId(),
          name: record.clone,
          blockSize: source.blockSize,
          createdAt: record.createdAt,
          origin: `${record.volume}@${record.name}`,
          sizeBytes: snapshot.sizeBytes,
          online: true,
          writable: true,
          root: retainTree(snapshot.root),
          snapshots: new Map(),
          config: new Map(),
        })
        return
      }
      case 'holdSnapshot':
        this.snapshot(record.volume, record.name).holds.add(record.tag)
        return
      case 'releaseSnapshot':
        this.snapshot(record.volume, record.name).holds.delete(record.tag)
        return
      case 'createShare':
        this.shares.set(record.share.name, record.share)
        return
      case 'deleteShare':
        this.shares.delete(record.name)
        return
      case 'setShareAccess':
        this.shares.set(record.name, { ...this.share(record.name), access: record.access })
        return
      case 'putConfig':
        this.volume(record.volume).config.set(record.key, record.value)
        return
      case 'deleteConfig':
        this.volume(record.volume).config.delete(record.key)
        return
    }
  }

  #clear(volume: VolumeState, first: number, end: number): void {
    volume.root = clearRange(volume.root, first, end, this.owner(volume))
  }
}
