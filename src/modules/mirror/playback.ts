import { DrError, toDrError } from '../../kernel/errors.js'
import { ProgressWaiters, type AgentContext } from './agent-context.js'
import { payloadCrc } from './delta-chunks.js'
import { decodeFrame, decodeRuns, type BlockRun } from './protocol.js'
import type { ReplicaWriter } from './replica.js'
import type { PlaybackPolicy } from './session-record.js'
import type { StagedHeader, StagedSet, StagingArea } from './staging.js'

/** A staged delta set whose header arrived and checked out. */
type CompleteSet = StagedSet & { readonly header: StagedHeader }

/**
 * What playback reports after each delta set it applies.
 *
 * @public
 */
export interface AppliedDeltaSet {
  readonly n: number
  readonly blocks: number
  readonly holes: number
  readonly cutAt: number
}

const RETRY_MS = 1_000
/** How many staged bytes one storage write of a playback applies at most. */
const APPLY_BATCH_BYTES = 8 * 1024 * 1024

/**
 * Plays complete staged delta sets into the replica: whole, in ascending order, each exactly once. The next
 * delta set played is always the one whose base is the last one played, so a gap stops playback. A staged set is
 * read back in large slices, its chunk checksums checked again, and applied in a few storage writes (the replica
 * stays read-only to clients; see {@link ReplicaWriter}); it is recorded by the replica snapshot `ds-n`, and a
 * failure rolls the replica back to `ds-(n-1)`. With a batching policy, complete delta sets wait until the oldest
 * is `everyMs` old or `highWaterMarkBytes` are waiting, then all of them are played. The caller is told of each
 * apply (`onApplied`) right after its snapshot; discarding the staged copy and snapshot retention are its
 * business, off the critical path.
 *
 * @public
 */
export class Playback {
  readonly #ctx: AgentContext
  readonly #session: string
  readonly #epoch: () => number
  readonly #blockSize: number
  readonly #staging: StagingArea
  readonly #replica: ReplicaWriter
  readonly #policy: PlaybackPolicy
  readonly #onApplied: (applied: AppliedDeltaSet) => void
  readonly #blocked: () => boolean
  readonly #waiters = new ProgressWaiters()
  #played: number | null
  #playedCutAt: number | null
  #running: Promise<void> = Promise.resolve()
  #cancelTimer: (() => void) | undefined
  #stopped = false
  #lastError: DrError | undefined
  #drainTo = -1

  constructor(options: {
    ctx: AgentContext
    session: string
    epoch: () => number
    blockSize: number
    staging: StagingArea
    replica: ReplicaWriter
    policy: PlaybackPolicy
    played: number | null
    playedCutAt: number | null
    blocked: () => boolean
    onApplied: (applied: AppliedDeltaSet) => void
  }) {
    this.#ctx = options.ctx
    this.#session = options.session
    this.#epoch = options.epoch
    this.#blockSize = options.blockSize
    this.#staging = options.staging
    this.#replica = options.replica
    this.#policy = options.policy
    this.#played = options.played
    this.#playedCutAt = options.playedCutAt
    this.#onApplied = options.onApplied
    this.#blocked = options.blocked
  }

  /** The last delta set played back (null: none yet). */
  get played(): number | null {
    return this.#played
  }

  /** When the last delta set played back was cut at the source. */
  get playedCutAt(): number | null {
    return this.#playedCutAt
  }

  /** The last playback failure, cleared by the next successful apply. */
  get lastError(): DrError | undefined {
    return this.#lastError
  }

  /** Records that delta set `n` was applied by another path (a full copy received in place). */
  setPlayed(n: number, cutAt: number): void {
    this.#played = n
    this.#playedCutAt = cutAt
    this.#waiters.notify(n)
  }

  /** The complete staged delta set that may be played next, if any (none while a full copy is being received). */
  nextPlayable(): CompleteSet | undefined {
    if (this.#blocked()) return undefined
    const next = this.#complete().find((s) => s.n > (this.#played ?? -1))
    if (next === undefined) return undefined
    return next.baseN === this.#played ? next : undefined
  }

  /** Resolves once delta set `n` (or a later one) is played back; rejects with `E_ABORTED` when `signal` aborts. */
  waitPlayed(n: number, signal?: AbortSignal): Promise<void> {
    return this.#waiters.wait(() => this.#played, n, signal)
  }

  /**
   * Resolves once delta set `n` (or a later one) is played back, playing complete delta sets up to `n` as soon as
   * they arrive whatever the batching policy (an operation such as a failover or a failback is waiting for them).
   */
  drainTo(n: number, signal?: AbortSignal): Promise<void> {
    this.#drainTo = Math.max(this.#drainTo, n)
    this.kick()
    return this.waitPlayed(n, signal)
  }

  /** Asks for playback according to the policy (at once, or when the batch falls due). */
  kick(): void {
    if (this.#stopped) return
    this.#running = this.#running.then(() => this.#play(false))
  }

  /** Plays every complete delta set that can be played, ignoring the batching policy; resolves with the last played. */
  async playAll(): Promise<number | null> {
    const run = this.#running.then(() => this.#play(true, true))
    this.#running = run.catch(() => undefined)
    await run
    return this.#played
  }

  /** Resolves once no apply is running. */
  async idle(): Promise<void> {
    await this.#running
  }

  /** Stops scheduling playback; an apply in progress completes first (await {@link Playback.idle}). */
  stop(): void {
    this.#stopped = true
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
  }

  #complete(): CompleteSet[] {
    return this.#staging.sets.filter((s): s is CompleteSet => s.header !== null)
  }

  #due(): boolean {
    const { everyMs, highWaterMarkBytes } = this.#policy
    if (everyMs === null && highWaterMarkBytes === null) return true
    if ((this.#played ?? -1) < this.#drainTo) return true
    const waiting = this.#complete().filter((s) => s.n > (this.#played ?? -1))
    if (waiting.length === 0) return false
    const oldest = Math.min(...waiting.map((s) => s.receivedAt))
    if (everyMs !== null && this.#ctx.clock.now() - oldest >= everyMs) return true
    const bytes = waiting.reduce((sum, s) => sum + s.header.dataBytes, 0)
    if (highWaterMarkBytes !== null && bytes >= highWaterMarkBytes) return true
    if (everyMs !== null) this.#arm(oldest + everyMs - this.#ctx.clock.now())
    return false
  }

  #arm(ms: number): void {
    this.#cancelTimer?.()
    this.#cancelTimer = this.#ctx.clock.setTimer(Math.max(0, ms), () => {
      this.#cancelTimer = undefined
      this.kick()
    })
  }

  async #play(force: boolean, rethrow = false): Promise<void> {
    if (this.#stopped && !force) return
    if (!force && !this.#due()) return
    for (;;) {
      if ((this.#stopped && !force) || this.#blocked()) return
      const next = this.nextPlayable()
      if (next === undefined) return
      try {
        await this.#apply(next)
        this.#lastError = undefined
      } catch (error) {
        this.#lastError = toDrError(error)
        if (rethrow) throw this.#lastError
        if (!this.#stopped) this.#arm(RETRY_MS)
        return
      }
    }
  }

  async #apply(set: CompleteSet): Promise<void> {
    const from = this.#played
    if (from === null) throw new DrError('E_INTERNAL', `mirror: staged delta set ${set.n} has no base to play onto`, { n: set.n })
    try {
      await this.#replica.ensureSize(set.header.sizeBytes)
      let batch: BlockRun[] = []
      let batchBytes = 0
      for await (const bytes of this.#staging.frames(set.n)) {
        const frame = decodeFrame(bytes)
        if (frame.kind !== 'chunk' || frame.header.n !== set.n || payloadCrc(frame.payload) !== frame.header.crc) {
          throw new DrError('E_CORRUPT', `mirror: staged chunk of delta set ${set.n} is damaged`, { n: set.n, session: this.#session })
        }
        batch.push(...decodeRuns(frame.payload, this.#blockSize, frame.header.runs))
        batchBytes += frame.payload.length
        if (batchBytes >= APPLY_BATCH_BYTES) {
          await this.#replica.write(batch, this.#blockSize)
          batch = []
          batchBytes = 0
        }
      }
      await this.#replica.write(batch, this.#blockSize)
      await this.#replica.resize(set.header.sizeBytes)
      await this.#replica.commit(set.n, this.#epoch(), set.header.cutAt)
    } catch (error) {
      await this.#replica.rollback(from).catch(() => undefined)
      throw error
    }
    this.#played = set.n
    this.#playedCutAt = set.header.cutAt
    this.#onApplied({ n: set.n, blocks: set.header.blocks, holes: set.header.holes, cutAt: set.header.cutAt })
    this.#waiters.notify(set.n)
  }
}
