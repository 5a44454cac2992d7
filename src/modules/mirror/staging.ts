import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StoragePort } from '../../ports/storage.js'
import { MIRROR_CONFIG, stagingVolume } from './naming.js'

const Header = t.type({
  n: t.number,
  baseN: t.union([t.number, t.null]),
  chunks: t.number,
  blocks: t.number,
  holes: t.number,
  dataBytes: t.number,
  sizeBytes: t.number,
  blockSize: t.number,
  crc: t.number,
  cutAt: t.number,
})

const StagedSetCodec = t.type({
  n: t.number,
  baseN: t.union([t.number, t.null]),
  offset: t.number,
  bytes: t.number,
  received: t.number,
  crc: t.number,
  blocks: t.number,
  holes: t.number,
  dataBytes: t.number,
  receivedAt: t.number,
  header: t.union([Header, t.null]),
})

const StagingIndexCodec = t.type({ session: t.string, epoch: t.number, writeOffset: t.number, sets: t.array(StagedSetCodec) }, 'StagingIndex')

/**
 * The header of a completely received delta set, as the staging index keeps it.
 *
 * @public
 */
export type StagedHeader = t.TypeOf<typeof Header>

/**
 * One delta set in the staging volume: where its chunk records start, how many bytes and chunks arrived, the
 * running checksum of what arrived, and its header once it is complete.
 *
 * @public
 */
export type StagedSet = t.TypeOf<typeof StagedSetCodec>

type StagingIndex = t.TypeOf<typeof StagingIndexCodec>

/**
 * Running totals of a delta set being received: checksum so far and the data blocks, holes and bytes counted.
 *
 * @public
 */
export interface StagedTotals {
  readonly crc: number
  readonly blocks: number
  readonly holes: number
  readonly dataBytes: number
}

const LENGTH_PREFIX = 4
const MIN_SIZE = 16 * 1024 * 1024
/** How much of the staging log one read takes when a delta set is played back. */
const READ_SLICE_BYTES = 8 * 1024 * 1024

/**
 * The destination's durable staging area: a log-structured volume next to the replica that holds the chunk
 * frames of delta sets received but not yet played back, plus a small index (a configuration record on the
 * staging volume) naming each delta set's records. A chunk is appended and made durable before the index
 * counts it, so after a crash the index names exactly the chunks that are safely stored. When nothing is
 * staged any more, the log is trimmed and starts again at offset 0.
 *
 * @public
 */
export class StagingArea {
  readonly #storage: StoragePort
  readonly #volume: string
  readonly #token: () => FenceToken
  #index: StagingIndex
  #blockSize = 4096
  #sizeBytes = 0
  #serial: Promise<unknown> = Promise.resolve()

  private constructor(storage: StoragePort, volume: string, token: () => FenceToken, index: StagingIndex) {
    this.#storage = storage
    this.#volume = volume
    this.#token = token
    this.#index = index
  }

  /**
   * Opens (creating when missing) the staging volume of replica `replica` for `session` at `epoch`. Staged
   * data of another session or of an older epoch is discarded. An index of a newer epoch is what a fence
   * leaves when it stopped before the session record was raised: its complete delta sets were received at
   * `epoch`, so they are kept and the index is stamped back to `epoch`.
   */
  static async open(options: { storage: StoragePort; replica: string; session: string; epoch: number; blockSize: number; token: () => FenceToken }): Promise<StagingArea> {
    const { storage, session, epoch } = options
    const volume = stagingVolume(options.replica)
    const call = <R>(operation: string, run: () => Promise<R>): Promise<R> => callAdapter(storage.kind, operation, run)
    let info = await call('volumeInfo', () => storage.volumeInfo(volume)).catch((error: unknown) => {
      if (isDrError(error, 'E_NOT_FOUND')) return undefined
      throw error
    })
    if (info === undefined) {
      const size = Math.ceil(MIN_SIZE / options.blockSize) * options.blockSize
      info = await call('createVolume', () => storage.createVolume({ name: volume, sizeBytes: size, blockSize: options.blockSize }, options.token()))
    }
    const raw = await call('getConfig', () => storage.getConfig(volume, MIRROR_CONFIG.staging))
    const decoded = raw === undefined ? undefined : StagingIndexCodec.decode(raw)
    if (decoded !== undefined && isLeft(decoded)) {
      throw new DrError('E_CORRUPT', `mirror: the staging index of ${volume} is damaged`, { volume })
    }
    const stored = decoded?.right
    const area = new StagingArea(storage, volume, options.token, stored ?? { session, epoch, writeOffset: 0, sets: [] })
    area.#blockSize = info.blockSize
    area.#sizeBytes = info.sizeBytes
    if (stored === undefined || stored.session !== session || stored.epoch < epoch) {
      area.#index = { session, epoch, writeOffset: stored?.writeOffset ?? 0, sets: [] }
      await area.#reset()
    } else if (stored.epoch > epoch) {
      await area.#restamp(epoch)
    }
    return area
  }

  /** The staged delta sets, ascending. */
  get sets(): readonly StagedSet[] {
    return this.#index.sets
  }

  /** The staged delta set `n`, if any. */
  set(n: number): StagedSet | undefined {
    return this.#index.sets.find((s) => s.n === n)
  }

  /** Bytes held by staged delta sets (complete or not). */
  get stagedBytes(): number {
    return this.#index.sets.reduce((sum, s) => sum + s.bytes, 0)
  }

  /** Runs mutations of the index one at a time (receive and playback run concurrently). */
  #exclusive<R>(run: () => Promise<R>): Promise<R> {
    const result = this.#serial.then(run)
    this.#serial = result.catch(() => undefined)
    return result
  }

  /** Starts staging delta set `n` (dropping an earlier partial copy of it). */
  begin(n: number, baseN: number | null, at: number): Promise<StagedSet> {
    return this.#exclusive(() => this.#begin(n, baseN, at))
  }

  /** Appends chunk frame `frame` of delta set `n` durably, then counts it with the new running totals. */
  append(n: number, frame: Uint8Array, totals: StagedTotals): Promise<void> {
    return this.#exclusive(() => this.#append(n, frame, totals))
  }

  /** Marks delta set `n` complete with its verified header. */
  complete(n: number, header: StagedHeader): Promise<void> {
    return this.#exclusive(() => this.#complete(n, header))
  }

  /** Forgets delta set `n` (played back, refused or superseded); trims the log once nothing is staged. */
  discard(n: number): Promise<void> {
    return this.#exclusive(() => this.#discard(n))
  }

  /** Forgets every staged delta set. */
  clear(): Promise<void> {
    return this.#exclusive(async () => {
      this.#index = { ...this.#index, sets: [] }
      await this.#reset()
    })
  }

  /**
   * Stamps the index with `epoch` (a failover fences the destination): complete delta sets stay staged, so the
   * failover can still play them back; an incomplete one is dropped, its sender being refused from now on.
   */
  restamp(epoch: number): Promise<void> {
    return this.#exclusive(() => this.#restamp(epoch))
  }

  async #restamp(epoch: number): Promise<void> {
    const sets = this.#index.sets.filter((s) => s.header !== null)
    if (epoch === this.#index.epoch && sets.length === this.#index.sets.length) return
    this.#index = { ...this.#index, epoch, sets }
    if (sets.length === 0) await this.#reset()
    else await this.#save(this.#index)
  }

  async #begin(n: number, baseN: number | null, at: number): Promise<StagedSet> {
    const sets = this.#index.sets.filter((s) => s.n !== n)
    const set: StagedSet = { n, baseN, offset: this.#index.writeOffset, bytes: 0, received: 0, crc: 0, blocks: 0, holes: 0, dataBytes: 0, receivedAt: at, header: null }
    sets.push(set)
    sets.sort((a, b) => a.n - b.n)
    await this.#save({ ...this.#index, sets })
    return set
  }

  async #append(n: number, frame: Uint8Array, totals: StagedTotals): Promise<void> {
    const set = this.#required(n)
    if (set.offset + set.bytes !== this.#index.writeOffset) {
      throw new DrError('E_INTERNAL', `mirror: delta set ${n} is not the last one in the staging log of ${this.#volume}`, { n })
    }
    const record = new Uint8Array(this.#aligned(LENGTH_PREFIX + frame.length))
    new DataView(record.buffer).setUint32(0, frame.length, true)
    record.set(frame, LENGTH_PREFIX)
    const offset = this.#index.writeOffset
    await this.#ensureCapacity(offset + record.length)
    await callAdapter(this.#storage.kind, 'write', () => this.#storage.write(this.#volume, offset, record, this.#token()))
    const updated: StagedSet = { ...set, ...totals, bytes: set.bytes + record.length, received: set.received + 1 }
    await this.#save({ ...this.#index, writeOffset: offset + record.length, sets: this.#index.sets.map((s) => (s.n === n ? updated : s)) })
  }

  async #complete(n: number, header: StagedHeader): Promise<void> {
    const set = this.#required(n)
    await this.#save({ ...this.#index, sets: this.#index.sets.map((s) => (s.n === n ? { ...set, header } : s)) })
  }

  async #discard(n: number): Promise<void> {
    if (this.set(n) === undefined) return
    const sets = this.#index.sets.filter((s) => s.n !== n)
    if (sets.length === 0) {
      this.#index = { ...this.#index, sets }
      await this.#reset()
      return
    }
    await this.#save({ ...this.#index, sets })
  }

  /**
   * The chunk frames of delta set `n`, in the order they arrived, read back in slices of up to
   * {@link READ_SLICE_BYTES} (a few storage calls per delta set, not two per chunk).
   */
  async *frames(n: number): AsyncGenerator<Uint8Array> {
    const set = this.#required(n)
    const end = set.offset + set.bytes
    let at = set.offset
    let yielded = 0
    while (yielded < set.received && at < end) {
      const length = Math.min(Math.max(READ_SLICE_BYTES, this.#blockSize), end - at)
      const slice = await callAdapter(this.#storage.kind, 'read', () => this.#storage.read(this.#volume, at, length))
      const view = new DataView(slice.buffer, slice.byteOffset, slice.byteLength)
      let used = 0
      while (yielded < set.received && used + LENGTH_PREFIX <= slice.length) {
        const frameLength = view.getUint32(used, true)
        const record = this.#aligned(LENGTH_PREFIX + frameLength)
        if (frameLength === 0 || at + used + record > end) throw new DrError('E_CORRUPT', `mirror: staging record of delta set ${n} is damaged`, { n, offset: at + used })
        if (used + record > slice.length) {
          if (used === 0) {
            // One record larger than the slice: read it alone.
            yield await callAdapter(this.#storage.kind, 'read', () => this.#storage.read(this.#volume, at + LENGTH_PREFIX, frameLength))
            used = record
            yielded++
          }
          break
        }
        yield slice.subarray(used + LENGTH_PREFIX, used + LENGTH_PREFIX + frameLength)
        used += record
        yielded++
      }
      at += used
    }
  }

  #required(n: number): StagedSet {
    const set = this.set(n)
    if (set === undefined) throw new DrError('E_NOT_FOUND', `mirror: delta set ${n} is not staged`, { n })
    return set
  }

  #aligned(bytes: number): number {
    return Math.ceil(bytes / this.#blockSize) * this.#blockSize
  }

  async #ensureCapacity(needed: number): Promise<void> {
    if (needed <= this.#sizeBytes) return
    const size = this.#aligned(Math.max(needed, this.#sizeBytes * 2))
    const info = await callAdapter(this.#storage.kind, 'resizeVolume', () => this.#storage.resizeVolume(this.#volume, size, this.#token()))
    this.#sizeBytes = info.sizeBytes
  }

  async #reset(): Promise<void> {
    const used = Math.min(this.#aligned(this.#index.writeOffset), this.#sizeBytes)
    if (used > 0) await callAdapter(this.#storage.kind, 'trim', () => this.#storage.trim(this.#volume, 0, used, this.#token()))
    await this.#save({ ...this.#index, writeOffset: 0 })
  }

  async #save(index: StagingIndex): Promise<void> {
    await callAdapter(this.#storage.kind, 'putConfig', () => this.#storage.putConfig(this.#volume, MIRROR_CONFIG.staging, StagingIndexCodec.encode(index), this.#token()))
    this.#index = index
  }
}
