import { mkdir } from 'node:fs/promises'
import { BufferPool } from '../../kernel/buffer-pool.js'
import type { Json } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { adapterError, DrError } from '../../kernel/errors.js'
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
import { WriteRangesOptionsCodec } from '../../ports/storage.js'
import { copyChangesPooled } from '../storage-common/range-changes.js'
import { describeSnapshot } from '../storage-common/snapshot-info.js'
import * as blockIo from './block-io.js'
import { checkBlockSize, checkBytes, checkVolumeSize, CreateVolumeInput } from './inputs.js'
import { LocalPool } from './local-pool.js'
import { PoolLock } from './pool-lock.js'
import { PoolMetadata } from './pool-metadata.js'
import { poolStats, type LocalStorageStats } from './pool-stats.js'
import type { SnapshotState } from './pool-state.js'
import { verifyPool, type PoolCheck } from './pool-verify.js'
import * as shares from './shares.js'
import * as snapshots from './snapshots.js'

/**
 * Options of the local storage adapter: the pool directory, the block size of volumes created without one
 * (default 64 KiB), whether acknowledgements wait for fsync (default true; turn it off only for tests and
 * scratch pools, where a machine crash may lose acknowledged writes), and how large the metadata log may grow
 * before it is folded into a new checkpoint (default 32 MiB; smaller means faster opening, more rewriting).
 *
 * @public
 */
export interface LocalStorageOptions {
  readonly dir: string
  readonly defaultBlockSize?: number
  readonly fsync?: boolean
  readonly checkpointAfterBytes?: number
}

export type { LocalStorageStats } from './pool-stats.js'

const DEFAULT_BLOCK_SIZE = 64 * 1024
/** Bytes of `writeRanges` copy buffers a pool keeps for reuse between calls. */
const WRITE_COPIES_IDLE_BYTES = 16 * 1024 * 1024

function closedError(): DrError {
  return new DrError('E_CLOSED', 'local: the storage adapter is closed', { adapter: 'local' })
}

function precondition(message: string, volume: string): DrError {
  return new DrError('E_PRECONDITION', `local: ${message}`, { adapter: 'local', volume })
}

/**
 * drkit's embedded storage: a {@link StoragePort} whose pool is a directory of real files. Volumes are block
 * devices of fixed block size mapped by copy-on-write block maps, so snapshots and clones are O(1), changed
 * blocks cost O(changed), every block is checksummed, and every acknowledged change survives a crash. The pool
 * opens on the first call (or explicitly with {@link LocalStorage.open}); one process and one instance may
 * hold it at a time.
 *
 * @public
 */
export class LocalStorage implements StoragePort {
  /** Adapter name for errors. */
  readonly kind = 'local'
  readonly #dir: string
  readonly #defaultBlockSize: number
  readonly #fsync: boolean
  readonly #checkpointAfterBytes: number | undefined
  /** Where `writeRanges` copies the data it is given: written out when the call settles, so reused after it. */
  readonly #writeCopies = new BufferPool(WRITE_COPIES_IDLE_BYTES)
  #opening: Promise<LocalPool> | undefined
  #closed = false
  #active = 0
  #idle: Array<() => void> = []

  constructor(options: LocalStorageOptions) {
    if (typeof options?.dir !== 'string' || options.dir.length === 0) {
      throw new DrError('E_INVALID_INPUT', 'local: options.dir must be a non-empty path', { adapter: 'local', field: 'dir' })
    }
    this.#defaultBlockSize = options.defaultBlockSize ?? DEFAULT_BLOCK_SIZE
    checkBlockSize(this.#defaultBlockSize)
    this.#dir = options.dir
    this.#fsync = options.fsync ?? true
    this.#checkpointAfterBytes = options.checkpointAfterBytes === undefined ? undefined : checkBytes(options.checkpointAfterBytes, 'checkpointAfterBytes')
  }

  /**
   * Opens the pool now: takes the directory lock (`E_CONFLICT` while another process or instance holds it),
   * loads the checkpoint and replays the log (`E_CORRUPT` if damaged before intact records). Idempotent; a
   * failed open is retried by the next call.
   */
  async open(): Promise<void> {
    await this.#run('open', () => undefined)
  }

  #ready(): Promise<LocalPool> {
    this.#opening ??= (async () => {
      await mkdir(this.#dir, { recursive: true })
      const lock = await PoolLock.acquire(this.#dir)
      try {
        const metadata = await PoolMetadata.open({
          dir: this.#dir,
          fsync: this.#fsync,
          ...(this.#checkpointAfterBytes === undefined ? {} : { checkpointAfterBytes: this.#checkpointAfterBytes }),
        })
        return new LocalPool(metadata, lock)
      } catch (error) {
        await lock.release()
        throw error
      }
    })()
    const opening = this.#opening
    opening.catch(() => {
      if (this.#opening === opening) this.#opening = undefined
    })
    return opening
  }

  async #run<R>(operation: string, body: (pool: LocalPool) => R | Promise<R>): Promise<R> {
    if (this.#closed) throw closedError()
    this.#active++
    try {
      const pool = await this.#ready()
      const failure = pool.metadata.failure
      if (failure !== undefined) throw failure
      return await body(pool)
    } catch (error) {
      throw adapterError('local', operation, error)
    } finally {
      if (--this.#active === 0) for (const idle of this.#idle.splice(0)) idle()
    }
  }

  /** Counters of work done and space used (see {@link LocalStorageStats}). */
  stats(): Promise<LocalStorageStats> {
    return this.#run('stats', (pool) => poolStats(pool))
  }

  /** Checks the whole pool (map references, slot references, every block's checksum); see {@link PoolCheck}. */
  verify(): Promise<PoolCheck> {
    return this.#run('verify', (pool) => verifyPool(pool))
  }

  createVolume(request: CreateVolumeRequest, token: FenceToken): Promise<VolumeInfo> {
    return this.#run('createVolume', async (pool) => {
      pool.authorize(token, 'createVolume')
      const input = decode(CreateVolumeInput, request, 'volume request')
      const blockSize = input.blockSize ?? this.#defaultBlockSize
      checkBlockSize(blockSize)
      const sizeBytes = checkVolumeSize(input.sizeBytes, blockSize)
      const free = (): void => {
        if (pool.state.volumes.has(input.name)) {
          throw new DrError('E_CONFLICT', `local: volume "${input.name}" already exists`, { adapter: 'local', volume: input.name })
        }
      }
      free()
      await pool.metadata.ensureStore(blockSize)
      free()
      await pool.commit({ op: 'createVolume', name: input.name, sizeBytes, blockSize, createdAt: Date.now() })
      return pool.state.describe(pool.state.volume(input.name))
    })
  }

  deleteVolume(volume: string, token: FenceToken): Promise<void> {
    return this.#run('deleteVolume', async (pool) => {
      pool.authorize(token, 'deleteVolume')
      const state = pool.state.volume(volume)
      const deletable = (): void => {
        if (state.snapshots.size > 0) {
          throw precondition(`volume "${volume}" has snapshots (${[...state.snapshots.keys()].join(', ')})`, volume)
        }
        const exported = [...pool.state.shares.values()].filter((share) => share.volume === volume).map((share) => share.name)
        if (exported.length > 0) throw precondition(`volume "${volume}" has shares (${exported.join(', ')})`, volume)
      }
      deletable()
      await pool.exclusive(state, () => {
        deletable()
        const durable = pool.commit({ op: 'deleteVolume', name: volume })
        pool.dropIo(state)
        return durable
      })
    })
  }

  resizeVolume(volume: string, sizeBytes: number, token: FenceToken): Promise<VolumeInfo> {
    return this.#run('resizeVolume', async (pool) => {
      pool.authorize(token, 'resizeVolume')
      const state = pool.state.volume(volume)
      const size = checkVolumeSize(sizeBytes, state.blockSize)
      await pool.exclusive(state, () => pool.commit({ op: 'resizeVolume', name: volume, sizeBytes: size }))
      return pool.state.describe(state)
    })
  }

  volumeInfo(volume: string): Promise<VolumeInfo> {
    return this.#run('volumeInfo', (pool) => pool.state.describe(pool.state.volume(volume)))
  }

  listVolumes(): Promise<readonly VolumeInfo[]> {
    return this.#run('listVolumes', (pool) =>
      [...pool.state.volumes.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((v) => pool.state.describe(v)),
    )
  }

  setOnline(volume: string, online: boolean, token: FenceToken): Promise<void> {
    return this.#run('setOnline', async (pool) => {
      pool.authorize(token, 'setOnline')
      if (typeof online !== 'boolean') throw new DrError('E_INVALID_INPUT', 'local: online must be a boolean', { adapter: 'local' })
      if (pool.state.volume(volume).online !== online) await pool.commit({ op: 'setOnline', name: volume, online })
    })
  }

  setWritable(volume: string, writable: boolean, token: FenceToken): Promise<void> {
    return this.#run('setWritable', async (pool) => {
      pool.authorize(token, 'setWritable')
      if (typeof writable !== 'boolean') throw new DrError('E_INVALID_INPUT', 'local: writable must be a boolean', { adapter: 'local' })
      if (pool.state.volume(volume).writable !== writable) await pool.commit({ op: 'setWritable', name: volume, writable })
    })
  }

  presentToken(token: FenceToken): Promise<void> {
    return this.#run('presentToken', (pool) => pool.authorizeDurably(token, 'presentToken'))
  }

  read(volume: string, offset: number, length: number, source?: ReadSource): Promise<Uint8Array> {
    return this.#run('read', (pool) => blockIo.readVolume(pool, volume, offset, length, source?.snapshot))
  }

  write(volume: string, offset: number, data: Uint8Array, token: FenceToken): Promise<void> {
    const copy: unknown = data instanceof Uint8Array ? data.slice() : data
    return this.#run('write', (pool) => blockIo.writeVolume(pool, volume, offset, copy, token))
  }

  trim(volume: string, offset: number, length: number, token: FenceToken): Promise<void> {
    return this.#run('trim', (pool) => blockIo.trimVolume(pool, volume, offset, length, token))
  }

  readRanges(volume: string, ranges: readonly ByteRange[], options?: ReadRangesOptions): Promise<Uint8Array[]> {
    return this.#run('readRanges', (pool) => blockIo.readVolumeRanges(pool, volume, ranges, options))
  }

  writeRanges(volume: string, changes: readonly RangeChange[], token: FenceToken, options?: WriteRangesOptions): Promise<void> {
    // Lent data (see WriteRangesOptions) is written from the caller's buffers: the pool is done with it on settling.
    const lent = WriteRangesOptionsCodec.is(options) && options?.lent === true
    const copy = lent ? { changes, release: () => undefined } : copyChangesPooled(changes, this.#writeCopies)
    const writing = this.#run('writeRanges', (pool) => blockIo.writeVolumeRanges(pool, volume, copy.changes, token, options))
    // On a side branch, so the caller's promise settles no later than it would without the pool.
    writing.then(copy.release, copy.release)
    return writing
  }

  createSnapshot(volume: string, name: string, token: FenceToken, labels?: Readonly<Record<string, string>>): Promise<SnapshotInfo> {
    return this.#run('createSnapshot', (pool) => snapshots.createSnapshot(pool, volume, name, token, labels))
  }

  deleteSnapshot(volume: string, snapshot: string, token: FenceToken): Promise<void> {
    return this.#run('deleteSnapshot', (pool) => snapshots.deleteSnapshot(pool, volume, snapshot, token))
  }

  snapshotInfo(volume: string, snapshot: string): Promise<SnapshotInfo> {
    return this.#run('snapshotInfo', (pool) => describeSnapshot(pool.state.volume(volume), pool.state.snapshot(volume, snapshot)))
  }

  listSnapshots(volume: string): Promise<readonly SnapshotInfo[]> {
    return this.#run('listSnapshots', (pool) => {
      const state = pool.state.volume(volume)
      return [...state.snapshots.values()].map((snapshot: SnapshotState) => describeSnapshot(state, snapshot))
    })
  }

  restoreSnapshot(volume: string, snapshot: string, token: FenceToken): Promise<void> {
    return this.#run('restoreSnapshot', (pool) => snapshots.restoreSnapshot(pool, volume, snapshot, token))
  }

  cloneSnapshot(volume: string, snapshot: string, cloneName: string, token: FenceToken): Promise<VolumeInfo> {
    return this.#run('cloneSnapshot', (pool) => snapshots.cloneSnapshot(pool, volume, snapshot, cloneName, token))
  }

  holdSnapshot(volume: string, snapshot: string, tag: string, token: FenceToken): Promise<void> {
    return this.#run('holdSnapshot', (pool) => snapshots.setHold(pool, volume, snapshot, tag, true, token))
  }

  releaseSnapshot(volume: string, snapshot: string, tag: string, token: FenceToken): Promise<void> {
    return this.#run('releaseSnapshot', (pool) => snapshots.setHold(pool, volume, snapshot, tag, false, token))
  }

  changedBlocks(volume: string, from: string | null, to: string | 'live'): Promise<ChangedBlocks> {
    return this.#run('changedBlocks', (pool) => snapshots.changedBlocks(pool, volume, from, to))
  }

  fence(volume: string, token: FenceToken): Promise<void> {
    return this.#run('fence', async (pool) => {
      pool.authorize(token, 'fence')
      const io = pool.io(pool.state.volume(volume))
      if (io.fenced) throw new DrError('E_CONFLICT', `local: volume "${volume}" is already fenced`, { adapter: 'local', volume })
      await io.fence()
    })
  }

  unfence(volume: string, token: FenceToken): Promise<void> {
    return this.#run('unfence', (pool) => {
      pool.authorize(token, 'unfence')
      pool.io(pool.state.volume(volume)).unfence()
    })
  }

  isFenced(volume: string): Promise<boolean> {
    return this.#run('isFenced', (pool) => pool.io(pool.state.volume(volume)).fenced)
  }

  createShare(share: Omit<ShareInfo, 'createdAt'>, token: FenceToken): Promise<ShareInfo> {
    return this.#run('createShare', (pool) => shares.createShare(pool, share, token))
  }

  deleteShare(name: string, token: FenceToken): Promise<void> {
    return this.#run('deleteShare', (pool) => shares.deleteShare(pool, name, token))
  }

  setShareAccess(name: string, access: readonly ('read' | 'write')[], token: FenceToken): Promise<void> {
    return this.#run('setShareAccess', (pool) => shares.setShareAccess(pool, name, access, token))
  }

  getShare(name: string): Promise<ShareInfo | undefined> {
    return this.#run('getShare', (pool) => pool.state.shares.get(name))
  }

  listShares(): Promise<readonly ShareInfo[]> {
    return this.#run('listShares', (pool) => shares.listShares(pool))
  }

  probeShare(name: string, access: readonly ('read' | 'write')[]): Promise<ShareProbe> {
    return this.#run('probeShare', (pool) => shares.probeShare(pool, name, access))
  }

  putConfig(volume: string, key: string, value: Json, token: FenceToken): Promise<void> {
    return this.#run('putConfig', (pool) => shares.putConfig(pool, volume, key, value, token))
  }

  getConfig(volume: string, key: string): Promise<Json | undefined> {
    return this.#run('getConfig', (pool) => structuredClone(pool.state.volume(volume).config.get(key)))
  }

  listConfig(volume: string): Promise<ReadonlyArray<readonly [string, Json]>> {
    return this.#run('listConfig', (pool) => shares.listConfig(pool, volume))
  }

  deleteConfig(volume: string, key: string, token: FenceToken): Promise<void> {
    return this.#run('deleteConfig', (pool) => shares.deleteConfig(pool, volume, key, token))
  }

  /**
   * Closes the pool: later calls reject with `E_CLOSED`, I/O deferred by a fence fails with `E_CLOSED`, calls
   * in progress finish, then a final checkpoint is written and the lock released. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const opening = this.#opening
    if (opening === undefined) return
    const pool = await opening.catch(() => undefined)
    if (pool === undefined) return
    pool.abortAll(closedError())
    if (this.#active > 0) await new Promise<void>((resolve) => this.#idle.push(resolve))
    try {
      await pool.metadata.close()
    } catch (error) {
      throw adapterError('local', 'close', error)
    } finally {
      await pool.lock.release()
    }
  }
}

/**
 * Creates drkit's embedded storage adapter on the pool directory `options.dir` (created if missing). Nothing
 * is touched until the first call, which opens the pool; use {@link openLocalStorage} to open it eagerly and
 * learn at once about a lock conflict or damage.
 *
 * @public
 */
export function localStorage(options: LocalStorageOptions): LocalStorage {
  return new LocalStorage(options)
}

/**
 * Creates the local storage adapter and opens its pool before resolving (rejects with `E_CONFLICT` when
 * another process holds it, `E_CORRUPT` when its metadata is damaged).
 *
 * @public
 */
export async function openLocalStorage(options: LocalStorageOptions): Promise<LocalStorage> {
  const storage = new LocalStorage(options)
  await storage.open()
  return storage
}
