import { DrError, isDrError, toDrError } from '../../kernel/errors.js'
import type { Channel } from '../../ports/network.js'
import { deltaSetSnapshots, retainDeltaSets, store, type AgentContext } from './agent-context.js'
import { chainCrc, payloadCrc } from './delta-chunks.js'
import { FullCopyReceiver, type Receiving } from './full-copy.js'
import { MIRROR_LABEL } from './naming.js'
import { Playback } from './playback.js'
import { decodeFrame, decodeRuns, encodeControl, type BlockRun, type ChunkHeader, type ControlFrame, type HeaderFrame, type HelloFrame } from './protocol.js'
import { refuse } from './refusal.js'
import { ReplicaWriter } from './replica.js'
import { writeVolumeSession, type VolumeSession } from './session-record.js'
import { StagingArea, type StagedHeader } from './staging.js'

type Outcome = 'continue' | 'close'

/**
 * What the destination side of a session reports: last played back, complete delta sets waiting, the one being
 * received, staged bytes and the last playback error.
 *
 * @public
 */
export interface DestinationProgress {
  readonly epoch: number
  readonly played: number | null
  readonly playedCutAt: number | null
  readonly complete: readonly number[]
  readonly partial: { readonly n: number; readonly received: number; readonly crc: number; readonly full: boolean } | null
  readonly stagedBytes: number
  readonly connected: boolean
  readonly lastError: string | null
}

/**
 * The destination side of one session on one site: accepts the source's channel, tells it what it already has,
 * receives chunks (a full copy in place, later delta sets into staging), checks every chunk's checksum and each
 * delta set's header (sent last), refuses frames of another epoch, acknowledges, and drives {@link Playback}.
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
  readonly #full: FullCopyReceiver
  #receiving: Receiving | undefined
  #channel: Channel | undefined
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
    this.#full = new FullCopyReceiver(ctx, volume, record.session, replica, () => this.#record.epoch)
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
      blocked: () => this.#receiving?.direct === true,
      onApplied: (applied) => {
        ctx.events.emit('mirror.deltaSetApplied', 'info', { id: this.session, site: ctx.site, volume, deltaSet: applied.n, blocks: applied.blocks, holes: applied.holes, cutAt: applied.cutAt })
        this.#send({ t: 'ack', epoch: this.#record.epoch, n: applied.n, status: 'played' })
      },
    })
  }

  /**
   * Opens the destination side of `record` on `volume`: finds the last delta set played back (the newest `ds-n`
   * snapshot of the replica), rolls back an apply a crash interrupted, and reopens the staging area.
   */
  static async open(ctx: AgentContext, volume: string, record: VolumeSession): Promise<DestinationSession> {
    const info = await store(ctx, 'volumeInfo', (s) => s.volumeInfo(volume))
    const snaps = await deltaSetSnapshots(ctx, volume, record.session)
    const last = snaps[snaps.length - 1]
    const played = last === undefined ? null : last.n
    const cutAt = last === undefined ? null : Number(last.info.labels[MIRROR_LABEL.cutAt] ?? last.info.createdAt)
    const replica = new ReplicaWriter(ctx, volume, record.session)
    const progress = await new FullCopyReceiver(ctx, volume, record.session, replica, () => record.epoch).load()
    if (await replica.windowRecorded()) {
      if (progress === undefined && played !== null) await replica.rollback(played)
      await replica.close()
    }
    if (played !== null) await retainDeltaSets(ctx, volume, record.session, played)
    const staging = await StagingArea.open({ storage: ctx.storage, replica: volume, session: record.session, epoch: record.epoch, blockSize: info.blockSize, token: ctx.token })
    for (const set of [...staging.sets]) if (set.n <= (played ?? -1)) await staging.discard(set.n)
    const session = new DestinationSession(ctx, volume, record, info.blockSize, staging, replica, { n: played, cutAt })
    const partial = [...staging.sets].reverse().find((s) => s.header === null)
    for (const set of staging.sets) if (set.header === null && set !== partial) await staging.discard(set.n)
    if (progress !== undefined) session.#receiving = (await session.#full.load()) ?? progress
    else if (partial !== undefined) session.#receiving = { ...partial, direct: false }
    session.#playback.kick()
    return session
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
    const r = this.#receiving?.direct === true ? this.#full.durable : this.#receiving
    return {
      epoch: this.#record.epoch,
      played,
      playedCutAt: this.#playback.playedCutAt,
      complete: this.#staging.sets.filter((s) => s.header !== null && s.n > (played ?? -1)).map((s) => s.n),
      partial: r === undefined ? null : { n: r.n, received: r.received, crc: r.crc, full: r.direct },
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

  /** Resolves once no apply is running. */
  idle(): Promise<void> {
    return this.#playback.idle()
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
    if (this.#receiving?.direct === true) {
      await this.#full.suspend()
      this.#receiving = this.#full.durable
    }
    const { played, complete, partial } = this.progress()
    await channel.send(encodeControl({ t: 'state', epoch: this.epoch, played, complete: [...complete], partial: partial === null ? null : { ...partial } }))
    try {
      for (;;) {
        const next = await frames.next()
        if (next.done === true) return
        const bytes = next.value
        if (this.#channel !== channel) return
        if ((await this.#onFrame(channel, bytes)) === 'close') {
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
      if (this.#channel === channel) {
        this.#channel = undefined
        if (this.#receiving?.direct === true) {
          await this.#full.suspend()
          this.#receiving = this.#full.durable
        }
      }
    }
  }

  /**
   * Stops receiving and playing back (a playback in progress completes first). The progress stays. Callers
   * waiting for a delta set keep waiting (their own timeout or signal ends the wait), as they would for a
   * process that went away: a restarted agent may still deliver it.
   */
  async stop(): Promise<void> {
    this.#active = false
    this.#stopping.abort(new DrError('E_ABORTED', `session ${this.session} stopped at ${this.#ctx.site}`))
    this.#playback.stop()
    await this.#channel?.close().catch(() => undefined)
    await this.#playback.idle()
    if (this.#receiving?.direct === true) await this.#full.suspend()
    if (this.#replica.isOpen) await this.#replica.close()
  }

  /**
   * Raises the epoch this side accepts (a failover is under way): older senders are refused from now on. Complete
   * delta sets not yet played back stay staged at the new epoch (the failover may still play them); a partially
   * received one is dropped. The staging index is stamped before the session record, so a crash in between
   * loses nothing (see {@link StagingArea.open}). Repeating it with the same epoch finishes an interrupted fence.
   */
  async fence(epoch: number): Promise<void> {
    if (epoch < this.#record.epoch) return
    this.#record = { ...this.#record, epoch }
    if (this.#receiving?.direct === false) this.#receiving = undefined
    await this.#staging.restamp(epoch)
    await writeVolumeSession(this.#ctx.storage, this.volume, this.#record, this.#ctx.token())
    await this.#channel?.close().catch(() => undefined)
  }

  /**
   * Drops whatever was received but not played back (a failover with `now`, or a promotion): a partial full copy
   * is rolled back to the last delta set played, staging is emptied.
   */
  async abandon(): Promise<void> {
    await this.stop()
    const r = this.#receiving
    this.#receiving = undefined
    if (r?.direct === true) await this.#full.abandon(this.#playback.played)
    await this.#staging.clear()
  }

  #send(frame: ControlFrame): void {
    void this.#channel?.send(encodeControl(frame)).catch(() => undefined)
  }

  async #onFrame(channel: Channel, bytes: Uint8Array): Promise<Outcome> {
    let frame
    try {
      frame = decodeFrame(bytes)
    } catch (error) {
      await refuse(channel, 'E_CORRUPT', toDrError(error).message, this.epoch)
      return 'close'
    }
    if (frame.kind === 'chunk') {
      if ((await this.#checkEpoch(channel, frame.header.epoch)) === 'close') return 'close'
      return this.#onChunk(channel, frame.header, frame.payload, frame.bytes)
    }
    if (frame.kind === 'control' && frame.frame.t === 'header') {
      if ((await this.#checkEpoch(channel, frame.frame.epoch)) === 'close') return 'close'
      return this.#onHeader(channel, frame.frame)
    }
    await refuse(channel, 'E_INVALID_INPUT', `unexpected ${frame.kind === 'control' ? frame.frame.t : frame.kind} frame on a replication channel`, this.epoch)
    return 'close'
  }

  async #checkEpoch(channel: Channel, epoch: number): Promise<Outcome> {
    if (epoch === this.epoch) return 'continue'
    if (epoch < this.epoch) {
      this.#ctx.events.emit('mirror.staleEpochRefused', 'warning', { id: this.session, site: this.#ctx.site, from: channel.remoteSite, epoch, current: this.epoch })
      await refuse(channel, 'E_FENCED', `epoch ${epoch} is older than ${this.epoch}`, this.epoch)
    } else {
      await refuse(channel, 'E_PRECONDITION', `epoch ${epoch} is not yet known at ${this.#ctx.site}`, this.epoch)
    }
    return 'close'
  }

  async #begin(n: number, baseN: number | null): Promise<Receiving> {
    const previous = this.#receiving
    if (previous !== undefined && !previous.direct) await this.#staging.discard(previous.n)
    if (previous?.direct === true && baseN !== null) await this.#full.abandon(this.played)
    if (baseN === null) {
      this.#receiving = { n, baseN, direct: true, received: 0, crc: 0, blocks: 0, holes: 0, dataBytes: 0 }
      await this.#playback.idle()
      this.#receiving = await this.#full.begin(n)
      return this.#receiving
    }
    await this.#staging.begin(n, baseN, this.#ctx.clock.now())
    this.#receiving = { n, baseN, direct: false, received: 0, crc: 0, blocks: 0, holes: 0, dataBytes: 0 }
    return this.#receiving
  }

  async #onChunk(channel: Channel, header: ChunkHeader, payload: Uint8Array, bytes: Uint8Array): Promise<Outcome> {
    let r = this.#receiving
    if (r === undefined || r.n !== header.n) {
      const known = header.n <= (this.played ?? -1) || this.#staging.set(header.n)?.header != null
      if (header.index !== 0 || known) {
        await refuse(channel, 'E_INVALID_INPUT', `chunk ${header.index} of delta set ${header.n} is out of order`, this.epoch)
        return 'close'
      }
      r = await this.#begin(header.n, header.baseN)
    }
    if (header.index < r.received) return 'continue'
    if (header.index > r.received || header.baseN !== r.baseN) {
      await refuse(channel, 'E_INVALID_INPUT', `chunk ${header.index} of delta set ${header.n} is out of order (expected ${r.received})`, this.epoch)
      return 'close'
    }
    let runs: BlockRun[]
    try {
      if (payloadCrc(payload) !== header.crc) throw new DrError('E_CORRUPT', 'chunk checksum mismatch')
      runs = decodeRuns(payload, this.#blockSize, header.runs)
    } catch (error) {
      return this.#mismatch(channel, r, header.index, toDrError(error).message)
    }
    let blocks = 0
    let holes = 0
    for (const run of runs) {
      if (run.data === null) holes += run.count
      else blocks += run.count
    }
    const next: Receiving = {
      ...r,
      received: r.received + 1,
      crc: chainCrc(r.crc, header.crc),
      blocks: r.blocks + blocks,
      holes: r.holes + holes,
      dataBytes: r.dataBytes + blocks * this.#blockSize,
    }
    if (r.direct) {
      await this.#full.write(runs, this.#blockSize, next)
    } else {
      await this.#staging.append(r.n, bytes, next)
    }
    this.#receiving = next
    return 'continue'
  }

  async #onHeader(channel: Channel, frame: HeaderFrame): Promise<Outcome> {
    let r = this.#receiving
    if ((r === undefined || r.n !== frame.n) && frame.chunks === 0 && frame.n > (this.played ?? -1)) r = await this.#begin(frame.n, frame.baseN)
    if (r === undefined || r.n !== frame.n) {
      if (frame.n <= (this.played ?? -1) || this.#staging.set(frame.n)?.header != null) return 'continue'
      await refuse(channel, 'E_INVALID_INPUT', `header of delta set ${frame.n} without its chunks`, this.epoch)
      return 'close'
    }
    const matches =
      r.received === frame.chunks &&
      r.blocks === frame.blocks &&
      r.holes === frame.holes &&
      r.dataBytes === frame.dataBytes &&
      r.crc === frame.crc &&
      r.baseN === frame.baseN &&
      frame.blockSize === this.#blockSize
    if (!matches) return this.#mismatch(channel, r, null, `header of delta set ${frame.n} does not match what arrived`)
    const header: StagedHeader = {
      n: frame.n,
      baseN: frame.baseN,
      chunks: frame.chunks,
      blocks: frame.blocks,
      holes: frame.holes,
      dataBytes: frame.dataBytes,
      sizeBytes: frame.sizeBytes,
      blockSize: frame.blockSize,
      crc: frame.crc,
      cutAt: frame.cutAt,
    }
    this.#ctx.events.emit('mirror.deltaSetReceived', 'info', { id: this.session, site: this.#ctx.site, deltaSet: frame.n, chunks: frame.chunks, bytes: frame.dataBytes })
    if (r.direct) return this.#finishDirect(channel, r, header)
    await this.#staging.complete(r.n, header)
    this.#receiving = undefined
    this.#send({ t: 'ack', epoch: this.epoch, n: r.n, status: 'complete' })
    this.#playback.kick()
    return 'continue'
  }

  async #finishDirect(channel: Channel, r: Receiving, header: StagedHeader): Promise<Outcome> {
    if (!(await this.#full.finish(r, header))) {
      this.#ctx.events.emit('mirror.foreignWriteUndone', 'warning', { id: this.session, site: this.#ctx.site, volume: this.volume, deltaSet: r.n, blocks: header.blocks })
      return this.#mismatch(channel, r, null, `replica changed during the full copy of delta set ${r.n}`)
    }
    this.#receiving = undefined
    for (const set of [...this.#staging.sets]) if (set.n <= r.n) await this.#staging.discard(set.n)
    this.#playback.setPlayed(r.n, header.cutAt)
    this.#ctx.events.emit('mirror.deltaSetApplied', 'info', { id: this.session, site: this.#ctx.site, volume: this.volume, deltaSet: r.n, blocks: header.blocks, holes: header.holes, cutAt: header.cutAt })
    this.#send({ t: 'ack', epoch: this.epoch, n: r.n, status: 'played' })
    this.#playback.kick()
    return 'continue'
  }

  async #mismatch(channel: Channel, r: Receiving, chunk: number | null, reason: string): Promise<Outcome> {
    this.#ctx.events.emit('mirror.checksumMismatch', 'error', { id: this.session, site: this.#ctx.site, deltaSet: r.n, chunk, reason })
    if (r.direct) await this.#full.restart(r)
    else await this.#staging.discard(r.n)
    this.#receiving = undefined
    await channel.send(encodeControl({ t: 'resend', epoch: this.epoch, n: r.n, chunk: 0, reason })).catch(() => undefined)
    return 'close'
  }

  async #backPressure(): Promise<void> {
    const max = this.#record.transfer.stagingMaxBytes
    while (max !== null && this.#active && this.#staging.stagedBytes >= max && this.#playback.nextPlayable() !== undefined) {
      await this.#playback.waitPlayed((this.#playback.played ?? -1) + 1, this.#stopping.signal)
    }
  }
}
