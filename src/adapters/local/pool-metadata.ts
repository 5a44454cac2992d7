import { constants } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { adapterError, DrError, isDrError } from '../../kernel/errors.js'
import { BlockStore } from './block-store.js'
import { encodeCheckpoint, loadCheckpoint } from './checkpoint.js'
import { concatBytes, corruptFile, encodeFrame, LOG_MAGIC, scanFrames } from './frames.js'
import { PoolState } from './pool-state.js'
import { decodeRecords, encodeRecord, type LogRecord } from './records.js'

const CHECKPOINT_FILE = 'pool.ckpt'
/**
 * The log file is extended with zeros this much at a time, so appends overwrite allocated blocks and their
 * fsync need not commit file-size metadata.
 */
const LOG_PREALLOCATE = 4 << 20
const WAL_PATTERN = /^wal-(\d{12})\.log$/
const BLOCKS_PATTERN = /^blocks-(\d+)\.dat$/

/** File name of the write-ahead log of generation `gen`. */
function walName(gen: number): string {
  return `wal-${String(gen).padStart(12, '0')}.log`
}

/** Where block payloads of `blockSize` live inside the pool directory. */
function blockFileName(blockSize: number): string {
  return `blocks-${blockSize}.dat`
}

/** How pool metadata is kept: the pool directory, whether to fsync, and when to fold the log into a checkpoint. */
export interface PoolMetadataOptions {
  readonly dir: string
  readonly fsync: boolean
  /** Log size after which it is folded into a new checkpoint (default 32 MiB). */
  readonly checkpointAfterBytes?: number
}

interface Waiter {
  resolve(): void
  reject(error: DrError): void
}

/**
 * The crash-safe metadata of a pool: the in-memory {@link PoolState}, a checkpoint file replaced by
 * rename-into-place, and a write-ahead log of every change since, appended in checksummed batches with group
 * commit. Each change is applied in memory and appended in the same tick; it is acknowledged once its batch is
 * durable, and the block files are synced before each batch is written, so a durable record never points at
 * data that is not. Opening loads the checkpoint, replays the logs (a torn tail is dropped, damage before
 * intact records is `E_CORRUPT`), then writes a fresh checkpoint and starts a new log generation.
 */
export class PoolMetadata {
  /** The pool as of every change committed so far. */
  readonly state = new PoolState()
  readonly #dir: string
  readonly #fsync: boolean
  readonly #checkpointAfter: number
  #gen = 0
  #wal: FileHandle | undefined
  #walBytes = 0
  #walAllocated = 0
  #pending: Uint8Array[] = []
  #waiters: Waiter[] = []
  #flushQueued = false
  #checkpointQueued = false
  #queue: Promise<void> = Promise.resolve()
  #failure: DrError | undefined
  #metadataBytes = 0
  #batches = 0
  #loaded = false

  private constructor(options: PoolMetadataOptions) {
    this.#dir = options.dir
    this.#fsync = options.fsync
    this.#checkpointAfter = options.checkpointAfterBytes ?? 32 << 20
  }

  /** Loads (or creates) the pool metadata in `options.dir`. The caller holds the pool lock. */
  static async open(options: PoolMetadataOptions): Promise<PoolMetadata> {
    const metadata = new PoolMetadata(options)
    try {
      await metadata.#load()
    } catch (error) {
      // A pool that fails to load (damage, I/O error) must not leave its block files open behind it.
      await Promise.allSettled([...metadata.state.stores.values()].map((store) => store.close()))
      throw error
    }
    return metadata
  }

  /** Bytes written to the log and checkpoints since opening (for tests that measure metadata work). */
  get metadataBytesWritten(): number {
    return this.#metadataBytes
  }

  /** Log batches written since opening: each is one write and one fsync, shared by every change in it. */
  get batchesWritten(): number {
    return this.#batches
  }

  /** Set once a metadata write failed: the pool then refuses every change, like a suspended ZFS pool. */
  get failure(): DrError | undefined {
    return this.#failure
  }

  /** The block file of `blockSize`, opened (and its directory entry made durable) on first use. */
  async ensureStore(blockSize: number): Promise<BlockStore> {
    const existing = this.state.stores.get(blockSize)
    if (existing !== undefined) return existing
    const store = await BlockStore.open(join(this.#dir, blockFileName(blockSize)), blockSize)
    const raced = this.state.stores.get(blockSize)
    if (raced !== undefined) {
      await store.close()
      return raced
    }
    this.state.stores.set(blockSize, store)
    if (this.#loaded) await store.finishLoad()
    await this.#syncDir()
    return store
  }

  /**
   * Applies `record` to the state now and resolves once it is durable. Callers check preconditions first and
   * call this without awaiting in between, so the checks and the change are atomic.
   */
  commit(record: LogRecord): Promise<void> {
    return this.commitAll([record])
  }

  /**
   * Applies `records` in order now, as one change: they go into the same log batch, one checksummed frame, so
   * a crash leaves all of them or none (a torn frame is dropped whole on replay). Resolves once they are durable.
   */
  commitAll(records: readonly LogRecord[]): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (records.length === 0) return Promise.resolve()
    const encoded = records.map(encodeRecord)
    for (const record of records) this.state.apply(record)
    this.#pending.push(...encoded)
    const durable = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
    if (!this.#flushQueued) {
      this.#flushQueued = true
      this.#enqueue(() => this.#flush())
    }
    return durable
  }

  /** Folds the log into a new checkpoint once every pending change is durable. */
  checkpoint(): Promise<void> {
    return this.#enqueue(() => this.#checkpoint())
  }

  /** Makes everything durable, writes a final checkpoint and closes the files. */
  async close(): Promise<void> {
    try {
      if (this.#failure === undefined) await this.checkpoint()
    } finally {
      await this.#queue
      await this.#wal?.close()
      for (const store of this.state.stores.values()) await store.close()
    }
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(async () => {
      if (this.#failure !== undefined) throw this.#failure
      try {
        await task()
      } catch (error) {
        this.#fail(error)
        throw this.#failure
      }
    })
    this.#queue = run.catch(() => undefined)
    return run
  }

  #fail(error: unknown): void {
    this.#failure ??= adapterError('local', 'metadata', error)
    const waiters = this.#waiters
    this.#waiters = []
    this.#pending = []
    for (const waiter of waiters) waiter.reject(this.#failure)
  }

  async #flush(): Promise<void> {
    this.#flushQueued = false
    if (this.#pending.length === 0) return
    const records = this.#pending
    const waiters = this.#waiters
    this.#pending = []
    this.#waiters = []
    const freed = [...this.state.stores.values()].map((store) => [store, store.cut()] as const)
    try {
      if (this.#fsync) for (const store of this.state.stores.values()) await store.sync()
      await this.#appendFrame(encodeFrame(LOG_MAGIC, concatBytes(records)))
    } catch (error) {
      this.#waiters = [...waiters, ...this.#waiters]
      throw error
    }
    for (const [store, slots] of freed) store.reuse(slots)
    for (const waiter of waiters) waiter.resolve()
    if (this.#walBytes >= this.#checkpointAfter && !this.#checkpointQueued) {
      this.#checkpointQueued = true
      void this.#enqueue(() => this.#checkpoint()).catch(() => undefined)
    }
  }

  async #appendFrame(frame: Uint8Array): Promise<void> {
    const wal = this.#wal
    if (wal === undefined) throw new DrError('E_INTERNAL', 'local: no open log', { adapter: 'local' })
    if (this.#walBytes + frame.length > this.#walAllocated) {
      const grow = Math.max(LOG_PREALLOCATE, frame.length)
      await writeAll(wal, new Uint8Array(grow), this.#walAllocated)
      this.#walAllocated += grow
    }
    await writeAll(wal, frame, this.#walBytes)
    if (this.#fsync) await wal.datasync()
    this.#walBytes += frame.length
    this.#metadataBytes += frame.length
    this.#batches++
  }

  async #checkpoint(): Promise<void> {
    this.#checkpointQueued = false
    while (this.#pending.length > 0) await this.#flush()
    const next = this.#gen + 1
    const frames = encodeCheckpoint(this.state, next)
    const previous = this.#wal
    this.#wal = await open(join(this.#dir, walName(next)), constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC)
    this.#gen = next
    this.#walBytes = 0
    this.#walAllocated = 0
    await previous?.close()
    const temporary = join(this.#dir, `${CHECKPOINT_FILE}.tmp`)
    const file = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC)
    try {
      let position = 0
      for (const frame of frames) {
        await writeAll(file, frame, position)
        position += frame.length
      }
      if (this.#fsync) await file.sync()
    } finally {
      await file.close()
    }
    await rename(temporary, join(this.#dir, CHECKPOINT_FILE))
    await this.#syncDir()
    this.#metadataBytes += frames.reduce((sum, frame) => sum + frame.length, 0)
    await this.#removeLogsBefore(next)
  }

  async #syncDir(): Promise<void> {
    if (!this.#fsync) return
    const dir = await open(this.#dir, constants.O_RDONLY)
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
  }

  async #logGenerations(): Promise<number[]> {
    const names = await readdir(this.#dir)
    return names
      .map((name) => WAL_PATTERN.exec(name)?.[1])
      .filter((gen): gen is string => gen !== undefined)
      .map(Number)
      .sort((a, b) => a - b)
  }

  async #removeLogsBefore(gen: number): Promise<void> {
    for (const old of await this.#logGenerations()) {
      if (old < gen) await rm(join(this.#dir, walName(old)), { force: true })
    }
  }

  async #load(): Promise<void> {
    await mkdir(this.#dir, { recursive: true })
    await rm(join(this.#dir, `${CHECKPOINT_FILE}.tmp`), { force: true })
    for (const name of await readdir(this.#dir)) {
      const size = BLOCKS_PATTERN.exec(name)?.[1]
      if (size !== undefined) await this.ensureStore(Number(size))
    }
    const generations = await this.#logGenerations()
    let firstGen = generations[0] ?? 1
    const checkpoint = await readFile(join(this.#dir, CHECKPOINT_FILE)).catch((error: unknown) => {
      if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined
      throw error
    })
    if (checkpoint !== undefined) {
      firstGen = await loadCheckpoint(checkpoint, CHECKPOINT_FILE, this.state, async (blockSize) => {
        await this.ensureStore(blockSize)
      })
    }
    const replay = generations.filter((gen) => gen >= firstGen)
    for (const [i, gen] of replay.entries()) {
      const name = walName(gen)
      const scan = scanFrames(await readFile(join(this.#dir, name)), LOG_MAGIC, name)
      if (scan.tornTail && i < replay.length - 1) {
        throw corruptFile(name, 'torn, yet a newer log follows it')
      }
      for (const body of scan.bodies) for (const record of decodeRecords(body, name)) await this.#replay(record, name)
    }
    this.#gen = Math.max(firstGen - 1, ...generations)
    for (const store of this.state.stores.values()) await store.finishLoad()
    this.#loaded = true
    await this.#checkpoint()
  }

  async #replay(record: LogRecord, file: string): Promise<void> {
    if (record.op === 'createVolume') await this.ensureStore(record.blockSize)
    try {
      this.state.apply(record)
    } catch (error) {
      throw corruptFile(file, `a ${record.op} change does not fit the pool`, { cause: isDrError(error) ? error.code : String(error) })
    }
  }
}

async function writeAll(file: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done)
    if (bytesWritten === 0) throw new DrError('E_ADAPTER', `local: no progress writing at byte ${position + done}`, { adapter: 'local' })
    done += bytesWritten
  }
}
