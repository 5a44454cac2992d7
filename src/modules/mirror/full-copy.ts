import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { store, type AgentContext } from './agent-context.js'
import { MIRROR_CONFIG } from './naming.js'
import type { BlockRun } from './protocol.js'
import type { ReplicaWriter } from './replica.js'
import type { StagedHeader } from './staging.js'

const ProgressCodec = t.type({
  kind: t.literal('direct'),
  session: t.string,
  epoch: t.number,
  n: t.number,
  received: t.number,
  crc: t.number,
  blocks: t.number,
  holes: t.number,
  dataBytes: t.number,
})

/**
 * A delta set being received: how many chunks arrived, their running checksum, and the data blocks, holes and
 * bytes they carried; `direct` for a full copy received in place, otherwise it goes to staging.
 *
 * @public
 */
export interface Receiving {
  readonly n: number
  readonly baseN: number | null
  readonly direct: boolean
  readonly received: number
  readonly crc: number
  readonly blocks: number
  readonly holes: number
  readonly dataBytes: number
}

/** How many chunk writes of a full copy may be in flight at once. */
const WRITE_DEPTH = 4

/**
 * Receives a full copy (a delta set with no base: the initial copy, or a destination too old for any cut the
 * source kept) straight into the replica, inside one apply window: the replica is cleared first, chunks are
 * written as they arrive (a few in flight, so the network and the disk overlap), and the count of chunks whose
 * writes completed, in order, is persisted on the replica after each one, so an interrupted copy resumes at the
 * first chunk not safely written. Readers keep the previous delta-set snapshot as their consistent view.
 *
 * @public
 */
export class FullCopyReceiver {
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

  /** The persisted progress of a full copy of this session and epoch, if one was interrupted. */
  async load(): Promise<Receiving | undefined> {
    const raw = await store(this.#ctx, 'getConfig', (s) => s.getConfig(this.#volume, MIRROR_CONFIG.progress))
    if (raw === undefined) return undefined
    const decoded = ProgressCodec.decode(raw)
    if (isLeft(decoded) || decoded.right.session !== this.#session || decoded.right.epoch !== this.#epoch()) return undefined
    const { kind: _kind, session: _session, epoch: _epoch, ...progress } = decoded.right
    this.#durable = { ...progress, baseN: null, direct: true }
    return this.#durable
  }

  /** What is safely written (for the state frame a reconnecting source receives). */
  get durable(): Receiving | undefined {
    return this.#durable
  }

  /** Starts full copy `n`: opens the window, clears the replica, records progress 0. */
  async begin(n: number): Promise<Receiving> {
    await this.drain()
    const r: Receiving = { n, baseN: null, direct: true, received: 0, crc: 0, blocks: 0, holes: 0, dataBytes: 0 }
    await this.#replica.open(n, this.#epoch())
    await this.#replica.clear()
    await this.#save(r)
    return r
  }

  /** Writes one chunk's runs; resolves once it is under way (waiting only when too many writes are in flight). */
  async write(runs: readonly BlockRun[], blockSize: number, next: Receiving): Promise<void> {
    await this.#replica.open(next.n, this.#epoch())
    const needed = runs.reduce((max, run) => Math.max(max, (run.start + run.count) * blockSize), 0)
    await this.#replica.ensureSize(needed)
    const done = this.#replica.write(runs, blockSize)
    done.catch(() => undefined)
    this.#inflight.push({ done, next })
    while (this.#inflight.length >= WRITE_DEPTH) await this.#settleOldest()
  }

  /** Waits for every write in flight, recording progress in order; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.#inflight.length > 0) await this.#settleOldest()
  }

  /**
   * Completes full copy `r` against its verified header: checks that the replica holds exactly the blocks the
   * copy carried (anything else was written behind the mirror's back), sets the size, closes the window and
   * records it played. Resolves false when the replica changed during the copy (the caller asks for it again).
   */
  async finish(r: Receiving, header: StagedHeader): Promise<boolean> {
    await this.drain()
    await this.#replica.open(r.n, this.#epoch())
    await this.#replica.resize(header.sizeBytes)
    const changed = await this.#replica.changedSince(null)
    if (changed.blocks.length - changed.holes.length !== header.blocks) return false
    await this.#replica.close()
    await this.#replica.commit(r.n, this.#epoch(), header.cutAt)
    await this.forget()
    return true
  }

  /** The channel went away: lets the writes in flight land (recording progress) and closes the window. */
  async suspend(): Promise<void> {
    await this.drain().catch(() => undefined)
    if (this.#replica.isOpen) await this.#replica.close().catch(() => undefined)
  }

  /** Starts over from chunk 0 (a checksum mismatch or a foreign write). */
  async restart(r: Receiving): Promise<void> {
    await this.drain().catch(() => undefined)
    await this.#save({ ...r, received: 0, crc: 0, blocks: 0, holes: 0, dataBytes: 0 })
  }

  /** Abandons the copy: the replica goes back to delta set `played` (when there is one) and progress is forgotten. */
  async abandon(played: number | null): Promise<void> {
    await this.drain().catch(() => undefined)
    if (played !== null) await this.#replica.rollback(played)
    if (this.#replica.isOpen) await this.#replica.close()
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
    const record = { kind: 'direct' as const, session: this.#session, epoch: this.#epoch(), n: r.n, received: r.received, crc: r.crc, blocks: r.blocks, holes: r.holes, dataBytes: r.dataBytes }
    await store(this.#ctx, 'putConfig', (s) => s.putConfig(this.#volume, MIRROR_CONFIG.progress, record, this.#ctx.token()))
    this.#durable = r
  }
}
