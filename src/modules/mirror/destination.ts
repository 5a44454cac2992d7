import { DrError, isDrError, toDrError } from '../../kernel/errors.js'
import type { Channel } from '../../ports/network.js'
import { deltaSetSnapshots, store, type AgentContext } from './agent-context.js'
import { InPlaceReceiver } from './in-place.js'
import { MIRROR_LABEL } from './naming.js'
import { Playback, type AppliedDeltaSet } from './playback.js'
import { encodeControl, type ControlFrame, type HelloFrame } from './protocol.js'
import { Reception } from './reception.js'
import { refuse } from './refusal.js'
import { ReplicaWriter } from './replica.js'
import { writeVolumeSession, type VolumeSession } from './session-record.js'
import { StagingArea } from './staging.js'

/**
 * A delta set partly received, as the destination tells a reconnecting source: its number, how many chunks are
 * durably stored, their running checksum, and whether it is a full copy.
 *
 * @public
 */
export interface PartialDeltaSet {
  readonly n: number
  readonly received: number
  readonly crc: number
  readonly full: boolean
}

/**
 * What the destination side of a session reports: last played back, complete delta sets waiting, the ones being
 * received, staged bytes and the last playback error.
 *
 * @public
 */
export interface DestinationProgress {
  readonly epoch: number
  readonly played: number | null
  readonly playedCutAt: number | null
  readonly complete: readonly number[]
  readonly partials: readonly PartialDeltaSet[]
  readonly stagedBytes: number
  readonly connected: boolean
  readonly lastError: string | null
}

/**
 * The destination side of one session on one site: accepts the source's channel, tells it what it already has,
 * hands every frame to its {@link Reception} (checks, and routing of each delta set into the replica as it arrives
 * or into staging), acknowledges, and drives {@link Playback} of what was staged.
 *
 * @public
 */
export class DestinationSession {
  readonly session: string
  readonly volume: string
  readonly #ctx: AgentContext
  #record: VolumeSession
  readonly #blockSize: number
  readonly #staging: StagingArea
  readonly #replica: ReplicaWriter
  readonly #playback: Playback
  readonly #receiver: InPlaceReceiver
  #reception: Reception | undefined
  #channel: Channel | undefined
  #serving: Promise<void> = Promise.resolve()
  #housekeeping: Promise<void> = Promise.resolve()
  #active = true
  readonly #stopping = new AbortController()

  private constructor(ctx: AgentContext, volume: string, record: VolumeSession, blockSize: number, staging: StagingArea, replica: ReplicaWriter, played: { n: number | null; cutAt: number | null }) {
    this.#ctx = ctx
    this.session = record.session
    this.volume = volume
    this.#record = record
    this.#blockSize = blockSize
    this.#staging = staging
    this.#replica = replica
    this.#receiver = new InPlaceReceiver(ctx, volume, record.session, replica, () => this.#record.epoch)
    this.#playback = new Playback({
      ctx,
      session: record.session,
      epoch: () => this.#record.epoch,
      blockSize,
      staging,
      replica,
      policy: record.playback,
      played: played.n,
      playedCutAt: played.cutAt,
      blocked: () => this.#reception?.receivingInPlace ?? true,
      onApplied: (applied) => this.#applied(applied),
    })
  }

  /**
   * Opens the destination side of `record` on `volume`: finds the last delta set played back (the newest `ds-n`
   * snapshot of the replica), resumes a set that was being received in place, rolls back any other change a crash
   * left in the replica, and reopens the staging area.
   */
  static async open(ctx: AgentContext, volume: string, record: VolumeSession): Promise<DestinationSession> {
    const info = await store(ctx, 'volumeInfo', (s) => s.volumeInfo(volume))
    const snaps = await deltaSetSnapshots(ctx, volume, record.session)
    const last = snaps[snaps.length - 1]
    const played = last === undefined ? null : last.n
    const cutAt = last === undefined ? null : Number(last.info.labels[MIRROR_LABEL.cutAt] ?? last.info.createdAt)
    const staging = await StagingArea.open({ storage: ctx.storage, replica: volume, session: record.session, epoch: record.epoch, blockSize: info.blockSize, token: ctx.token })
    const session = new DestinationSession(ctx, volume, record, info.blockSize, staging, new ReplicaWriter(ctx, volume, record.session), { n: played, cutAt })
    await session.#resume(played)
    session.#playback.kick()
    return session
  }

  /**
   * After a restart: keeps a set being received in place (its progress record; one older than `played` is what a
   * finished set left), rolls back anything else a crash left in the replica since `ds-played`, and keeps only the
   * newest partly staged set.
   */
  async #resume(played: number | null): Promise<void> {
    let inPlace = await this.#receiver.load()
    if (inPlace !== undefined && played !== null && inPlace.n <= played) {
      await this.#receiver.forget()
      inPlace = undefined
    }
    if (inPlace === undefined && played !== null && (await this.#replica.changedSince(played)).blocks.length > 0) await this.#replica.rollback(played)
    if (played !== null) await this.#replica.retain(played)
    for (const set of [...this.#staging.sets]) if (set.n <= (played ?? -1)) await this.#staging.discard(set.n)
    const staged = [...this.#staging.sets].reverse().find((s) => s.header === null)
    for (const set of [...this.#staging.sets]) if (set.header === null && set !== staged) await this.#staging.discard(set.n)
    this.#reception = new Reception(
      {
        ctx: this.#ctx,
        session: this.session,
        volume: this.volume,
        blockSize: this.#blockSize,
        staging: this.#staging,
        receiver: this.#receiver,
        playback: this.#playback,
        epoch: () => this.#record.epoch,
        policy: this.#record.playback,
        send: (frame) => this.#send(frame),
        tidy: (n, first) => this.#tidy(n, first),
      },
      { inPlace, staged },
    )
  }

  /** The epoch this side accepts. */
  get epoch(): number {
    return this.#record.epoch
  }

  /** The session record as persisted. */
  get record(): VolumeSession {
    return this.#record
  }

  /** The last delta set played back. */
  get played(): number | null {
    return this.#playback.played
  }

  /** Progress for status and for the state frame. */
  progress(): DestinationProgress {
    const played = this.#playback.played
    return {
      epoch: this.#record.epoch,
      played,
      playedCutAt: this.#playback.playedCutAt,
      complete: this.#staging.sets.filter((s) => s.header !== null && s.n > (played ?? -1)).map((s) => s.n),
      partials: this.#reception?.partials() ?? [],
      stagedBytes: this.#staging.stagedBytes,
      connected: this.#channel !== undefined,
      lastError: this.#playback.lastError?.message ?? null,
    }
  }

  /** Resolves once delta set `n` is played back. */
  waitPlayed(n: number, signal?: AbortSignal): Promise<void> {
    return this.#playback.waitPlayed(n, signal)
  }

  /** Resolves once delta set `n` is played back, playing it as soon as it is complete whatever the batching policy. */
  drainTo(n: number, signal?: AbortSignal): Promise<void> {
    return this.#playback.drainTo(n, signal)
  }

  /** Plays back every complete delta set now (failover), stopping at a gap; resolves with the last played. */
  playAll(): Promise<number | null> {
    return this.#playback.playAll()
  }

  /** Resolves once no apply is running and the housekeeping of the last one is done. */
  async idle(): Promise<void> {
    await this.#playback.idle()
    await this.#housekeeping
  }

  /**
   * Serves a source channel whose hello named this session at this epoch, until the channel ends. A newer
   * channel from the same source supersedes an older one.
   */
  async accept(channel: Channel, frames: AsyncIterator<Uint8Array>, hello: HelloFrame): Promise<void> {
    if (!this.#active) return refuse(channel, 'E_PRECONDITION', `session ${this.session} is stopped at ${this.#ctx.site}`, this.epoch)
    if (hello.blockSize !== this.#blockSize) {
      return refuse(channel, 'E_PRECONDITION', `block size ${hello.blockSize} does not match the replica's ${this.#blockSize}`, this.epoch)
    }
    const previous = this.#channel
    this.#channel = channel
    if (previous !== undefined) await previous.close().catch(() => undefined)
    await this.#serving
    const serving = this.#serve(channel, frames)
    this.#serving = serving.catch(() => undefined)
    return serving
  }

  /**
   * Stops receiving and playing back: a playback in progress completes first, and a delta set partly applied in
   * place is rolled back, so the replica is left at a whole delta set (a first full copy, with nothing before it,
   * keeps its progress). With `keepPartial` (the agent's process is going away), a set partly received in place
   * keeps its progress instead and resumes when the agent restarts, as after a crash. Callers waiting for a delta
   * set keep waiting (their own timeout or signal ends the wait), as they would for a process that went away: a
   * restarted agent may still deliver it.
   */
  async stop(options: { readonly keepPartial?: boolean } = {}): Promise<void> {
    this.#active = false
    this.#stopping.abort(new DrError('E_ABORTED', `session ${this.session} stopped at ${this.#ctx.site}`))
    this.#playback.stop()
    await this.#channel?.close().catch(() => undefined)
    await this.#serving
    await this.idle()
    if (options.keepPartial === true || this.played === null) await this.#reception?.settle()
    else await this.#reception?.dropInPlace(false)
  }

  /**
   * Raises the epoch this side accepts (a failover is under way): older senders are refused from now on. Complete
   * delta sets not yet played back stay staged at the new epoch (the failover may still play them); a partially
   * received one is dropped (one being applied in place is rolled back). The staging index is stamped before the
   * session record, so a crash in between loses nothing (see {@link StagingArea.open}). Repeating it with the same
   * epoch finishes an interrupted fence.
   */
  async fence(epoch: number): Promise<void> {
    if (epoch < this.#record.epoch) return
    this.#record = { ...this.#record, epoch }
    await this.#channel?.close().catch(() => undefined)
    await this.#serving
    this.#reception?.dropStaged()
    await this.#reception?.dropInPlace(true)
    await this.#staging.restamp(epoch)
    await writeVolumeSession(this.#ctx.storage, this.volume, this.#record, this.#ctx.token())
  }

  /**
   * Drops whatever was received but not played back (a failover with `now`, or a promotion): a set partly
   * received in place is rolled back to the last delta set played, staging is emptied.
   */
  async abandon(): Promise<void> {
    await this.stop({ keepPartial: true })
    this.#reception?.dropStaged()
    await this.#reception?.dropInPlace(false)
    await this.#staging.clear()
  }

  async #serve(channel: Channel, frames: AsyncIterator<Uint8Array>): Promise<void> {
    const reception = this.#reception as Reception
    await reception.settle()
    const { played, complete, partials } = this.progress()
    try {
      await channel.send(encodeControl({ t: 'state', epoch: this.epoch, played, complete: [...complete], partials: partials.map((p) => ({ ...p })) }))
      for (;;) {
        const next = await frames.next()
        if (next.done === true || this.#channel !== channel) return
        if ((await reception.onFrame(channel, next.value)) === 'close') {
          await channel.close().catch(() => undefined)
          return
        }
        await this.#backPressure()
      }
    } catch (error) {
      if (!isDrError(error, 'E_UNAVAILABLE') && !isDrError(error, 'E_CLOSED')) {
        const failure = toDrError(error)
        await refuse(channel, failure.code === 'E_CORRUPT' ? 'E_CORRUPT' : 'E_PRECONDITION', failure.message, this.epoch)
      }
    } finally {
      if (this.#channel === channel) this.#channel = undefined
      await reception.settle()
    }
  }

  /** Delta set `n` was applied from staging: acknowledge at once, then discard its staged copy and retain snapshots. */
  #applied(applied: AppliedDeltaSet): void {
    this.#ctx.events.emit('mirror.deltaSetApplied', 'info', { id: this.session, site: this.#ctx.site, volume: this.volume, deltaSet: applied.n, blocks: applied.blocks, holes: applied.holes, cutAt: applied.cutAt })
    this.#send({ t: 'ack', epoch: this.#record.epoch, n: applied.n, status: 'played' })
    this.#tidy(applied.n, () => this.#staging.discard(applied.n))
  }

  /** Runs the bookkeeping after delta set `n` was applied, in order, after the acknowledgement. */
  #tidy(n: number, first: () => Promise<void>): void {
    this.#housekeeping = this.#housekeeping
      .then(first)
      .then(() => this.#replica.retain(n))
      .catch(() => undefined)
  }

  #send(frame: ControlFrame): void {
    void this.#channel?.send(encodeControl(frame)).catch(() => undefined)
  }

  async #backPressure(): Promise<void> {
    const max = this.#record.transfer.stagingMaxBytes
    while (max !== null && this.#active && this.#staging.stagedBytes >= max && this.#playback.nextPlayable() !== undefined) {
      await this.#playback.waitPlayed((this.#playback.played ?? -1) + 1, this.#stopping.signal)
    }
  }
}
