import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { store, type AgentContext } from './agent-context.js'
import { MIRROR_CONFIG } from './naming.js'
import type { BlockRun } from './protocol.js'
import type { ReplicaWriter } from './replica.js'
import type { StagedHeader } from './staging.js'

const ProgressCodec = t.intersection([
  t.type({
    kind: t.literal('direct'),
    session: t.string,
    epoch: t.number,
    n: t.number,
    received: t.number,
    crc: t.number,
    blocks: t.number,
    holes: t.number,
    dataBytes: t.number,
  }),
  t.partial({ baseN: t.union([t.number, t.null]) }),
])

/**
 * A delta set being received: its number and base (null for a full copy), how many chunks arrived, their running
 * checksum, and the data blocks, holes and bytes they carried.
 *
 * @public
 */
export interface Receiving {
  readonly n: number
  readonly baseN: number | null
  readonly received: number
  readonly crc: number
  readonly blocks: number
  readonly holes: number
  readonly dataBytes: number
}

/** How many chunk writes may be in flight at once. */
const WRITE_DEPTH = 4

/**
 * Receives a delta set straight into the replica: a full copy (no base: the initial copy, or a destination too
 * old for any cut the source kept; the replica is cleared first), or the next delta set in order when playback is
 * immediate (applied as its chunks arrive instead of being staged and read back). Chunks are written as they
 * arrive, a few in flight so the network and the disk overlap, and the count of chunks whose writes completed, in
 * order, is persisted on the replica after each one, so an interrupted transfer (a broken connection, a crash)
 * resumes at the first chunk not safely written. Readers keep the replica's last `ds-n` snapshot as their view
 * until the set is whole and committed; a set that is refused or dropped is rolled back to it.
 *
 * @public
 */
export class InPlaceReceiver {
  readonly #ctx: AgentContext
  readonly #volume: string
  readonly #session: string
  readonly #replica: ReplicaWriter
  readonly #epoch: () => number
  #inflight: Array<{ readonly done: Promise<void>; readonly next: Receiving }> = []
  #durable: Receiving | undefined

  constructor(ctx: AgentContext, volume: string, session: string, replica: ReplicaWriter, epoch: () => number) {
    this.#ctx = ctx
    this.#volume = volume
    this.#session = session
    this.#replica = replica
    this.#epoch = epoch
  }

  /** The persisted progress of a set of this session and epoch received in place, if one was interrupted. */
  async load(): Promise<Receiving | undefined> {
    const raw = await store(this.#ctx, 'getConfig', (s) => s.getConfig(this.#volume, MIRROR_CONFIG.progress))
    if (raw === undefined) return undefined
    const decoded = ProgressCodec.decode(raw)
    if (isLeft(decoded) || decoded.right.session !== this.#session || decoded.right.epoch !== this.#epoch()) return undefined
    const { kind: _kind, session: _session, epoch: _epoch, baseN, ...progress } = decoded.right
    this.#durable = { ...progress, baseN: baseN ?? null }
    return this.#durable
  }

  /** What is safely written (for the state frame a reconnecting source receives). */
  get durable(): Receiving | undefined {
    return this.#durable
  }

  /** Starts receiving delta set `n` in place: a full copy (`baseN` null) clears the replica first; records progress 0. */
  async begin(n: number, baseN: number | null): Promise<Receiving> {
    await this.drain()
    const r: Receiving = { n, baseN, received: 0, crc: 0, blocks: 0, holes: 0, dataBytes: 0 }
    // Cleared before the progress says chunk 0: a copy resumed after a crash never lands on stale blocks.
    if (baseN === null) await this.#replica.clear()
    await this.#save(r)
    return r
  }

  /**
   * Writes one chunk's runs; resolves once it is under way (waiting only when too many writes are in flight).
   * `written` is called once the write settled, when nothing reads the runs' data any more.
   */
  async write(runs: readonly BlockRun[], blockSize: number, next: Receiving, written: () => void = () => undefined): Promise<void> {
    const done = this.#replica.write(runs, blockSize)
    done.then(written, written)
    this.#inflight.push({ done, next })
    while (this.#inflight.length >= WRITE_DEPTH) await this.#settleOldest()
  }

  /** Waits for every write in flight, recording progress in order; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.#inflight.length > 0) await this.#settleOldest()
  }

  /**
   * Completes set `r` against its verified header: lets the last writes land, sets the size and takes the
   * replica's `ds-n` snapshot, which readers switch to. Its progress record is left behind (no storage call on the
   * critical path): one older than the newest `ds-n` means nothing, and the next set overwrites it.
   */
  async finish(r: Receiving, header: StagedHeader): Promise<void> {
    await this.drain()
    await this.#replica.resize(header.sizeBytes)
    await this.#replica.commit(r.n, this.#epoch(), header.cutAt)
    this.#durable = undefined
  }

  /** The channel went away: lets the writes in flight land, recording progress (the set resumes later). */
  async suspend(): Promise<void> {
    await this.drain().catch(() => undefined)
  }

  /**
   * Gives the set up (refused, superseded, or dropped by a failover): the replica goes back to delta set `played`
   * (when there is one; a full copy with nothing before it is simply started over) and the progress is forgotten.
   */
  async abandon(played: number | null): Promise<void> {
    await this.drain().catch(() => undefined)
    if (played !== null) await this.#replica.rollback(played)
    await this.forget()
  }

  /** Forgets the persisted progress. */
  async forget(): Promise<void> {
    this.#durable = undefined
    await store(this.#ctx, 'deleteConfig', (s) => s.deleteConfig(this.#volume, MIRROR_CONFIG.progress, this.#ctx.token()))
  }

  async #settleOldest(): Promise<void> {
    const oldest = this.#inflight[0]
    if (oldest === undefined) return
    try {
      await oldest.done
    } catch (error) {
      this.#inflight = []
      throw error
    }
    this.#inflight.shift()
    await this.#save(oldest.next)
  }

  async #save(r: Receiving): Promise<void> {
    const record = { kind: 'direct' as const, session: this.#session, epoch: this.#epoch(), n: r.n, baseN: r.baseN, received: r.received, crc: r.crc, blocks: r.blocks, holes: r.holes, dataBytes: r.dataBytes }
    await store(this.#ctx, 'putConfig', (s) => s.putConfig(this.#volume, MIRROR_CONFIG.progress, record, this.#ctx.token()))
    this.#durable = r
  }
}
