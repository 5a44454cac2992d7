import { DrError, toDrError } from '../../kernel/errors.js'
import type { Channel } from '../../ports/network.js'
import type { AgentContext } from './agent-context.js'
import { chainCrc, payloadCrc } from './delta-chunks.js'
import type { PartialDeltaSet } from './destination.js'
import type { InPlaceReceiver, Receiving } from './in-place.js'
import type { Playback } from './playback.js'
import { decodeFrame, decodeRuns, encodeControl, type BlockRun, type ChunkHeader, type ControlFrame, type HeaderFrame } from './protocol.js'
import { refuse } from './refusal.js'
import type { PlaybackPolicy } from './session-record.js'
import type { StagedHeader, StagingArea } from './staging.js'

/** What the destination does after a frame: keep reading, or close the channel. */
export type Outcome = 'continue' | 'close'

/** Where a delta set being received goes: into the replica as it arrives, or into staging. */
type Slot = 'inPlace' | 'staged'

/**
 * What a {@link Reception} works with: the destination's context, session, replica volume and block size, its
 * staging, in-place receiver and playback, its epoch and playback policy, how to send a control frame to the
 * source, and how to queue the bookkeeping that follows an apply.
 *
 * @public
 */
export interface ReceptionDeps {
  readonly ctx: AgentContext
  readonly session: string
  readonly volume: string
  readonly blockSize: number
  readonly staging: StagingArea
  readonly receiver: InPlaceReceiver
  readonly playback: Playback
  readonly epoch: () => number
  readonly policy: PlaybackPolicy
  readonly send: (frame: ControlFrame) => void
  readonly tidy: (n: number, first: () => Promise<void>) => void
}

/**
 * The receiving half of a destination: takes each frame from the source, checks its epoch, checksum and order, and
 * routes each delta set to where it goes — straight into the replica for a full copy or for the next delta set in
 * order when playback is immediate, into staging otherwise (a batching policy, sets already waiting, or a delta
 * set cut while a full copy is still arriving, which is buffered there and not applied until the copy is whole).
 * A header that does not match what arrived, or a chunk whose checksum does not, is never applied: what arrived of
 * that set is dropped (rolled back when it went into the replica) and a resend is asked for.
 *
 * @public
 */
export class Reception {
  readonly #deps: ReceptionDeps
  #inPlace: Receiving | undefined
  #staged: Receiving | undefined

  constructor(deps: ReceptionDeps, resumed: { inPlace: Receiving | undefined; staged: Receiving | undefined }) {
    this.#deps = deps
    this.#inPlace = resumed.inPlace
    this.#staged = resumed.staged
  }

  /** True while a delta set is being received into the replica (staged playback waits meanwhile). */
  get receivingInPlace(): boolean {
    return this.#inPlace !== undefined
  }

  /** The delta sets partly received, with what of each is durably stored. */
  partials(): PartialDeltaSet[] {
    const inPlace = this.#inPlace === undefined ? undefined : this.#deps.receiver.durable
    return [inPlace, this.#staged].filter((r): r is Receiving => r !== undefined).map((r) => ({ n: r.n, received: r.received, crc: r.crc, full: r.baseN === null }))
  }

  /**
   * Lets the writes of a set received in place land and goes back to what is durably written: a chunk whose write
   * failed (or never finished) is received again from the source, never counted as received.
   */
  async settle(): Promise<void> {
    if (this.#inPlace === undefined) return
    await this.#deps.receiver.suspend()
    this.#inPlace = this.#deps.receiver.durable
  }

  /**
   * Gives up the set being received in place (unless `keepFullCopy` and it is a full copy): the replica is rolled
   * back to the last delta set played and the progress forgotten.
   */
  async dropInPlace(keepFullCopy: boolean): Promise<void> {
    const r = this.#inPlace
    if (r === undefined || (keepFullCopy && r.baseN === null)) return
    this.#inPlace = undefined
    await this.#deps.receiver.abandon(this.#deps.playback.played)
  }

  /** Forgets the set partly staged (its staged records go with the next restamp or clear of the staging area). */
  dropStaged(): void {
    this.#staged = undefined
  }

  /** Handles one frame of a replication channel. */
  async onFrame(channel: Channel, bytes: Uint8Array): Promise<Outcome> {
    let frame
    try {
      frame = decodeFrame(bytes)
    } catch (error) {
      await refuse(channel, 'E_CORRUPT', toDrError(error).message, this.#deps.epoch())
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
    await refuse(channel, 'E_INVALID_INPUT', `unexpected ${frame.kind === 'control' ? frame.frame.t : frame.kind} frame on a replication channel`, this.#deps.epoch())
    return 'close'
  }

  async #checkEpoch(channel: Channel, epoch: number): Promise<Outcome> {
    const { ctx, session } = this.#deps
    const current = this.#deps.epoch()
    if (epoch === current) return 'continue'
    if (epoch < current) {
      ctx.events.emit('mirror.staleEpochRefused', 'warning', { id: session, site: ctx.site, from: channel.remoteSite, epoch, current })
      await refuse(channel, 'E_FENCED', `epoch ${epoch} is older than ${current}`, current)
    } else {
      await refuse(channel, 'E_PRECONDITION', `epoch ${epoch} is not yet known at ${ctx.site}`, current)
    }
    return 'close'
  }

  #slotOf(n: number): Slot | undefined {
    if (this.#inPlace?.n === n) return 'inPlace'
    if (this.#staged?.n === n) return 'staged'
    return undefined
  }

  /** True when delta set `n` was played or is complete in staging already. */
  #known(n: number): boolean {
    return n <= (this.#deps.playback.played ?? -1) || this.#deps.staging.set(n)?.header != null
  }

  /**
   * Whether a delta set based on `baseN` can be applied as it arrives: it is the next one in order, playback is
   * immediate, nothing else is being received in place, and no complete set waits in staging.
   */
  #appliesOnArrival(baseN: number): boolean {
    const { everyMs, highWaterMarkBytes } = this.#deps.policy
    return (
      everyMs === null &&
      highWaterMarkBytes === null &&
      baseN === this.#deps.playback.played &&
      this.#inPlace === undefined &&
      !this.#deps.staging.sets.some((s) => s.header !== null && s.n > baseN)
    )
  }

  async #begin(n: number, baseN: number | null): Promise<Slot> {
    const { receiver, playback, staging } = this.#deps
    if (baseN === null || this.#appliesOnArrival(baseN)) {
      if (this.#inPlace !== undefined) {
        this.#inPlace = undefined
        await receiver.abandon(playback.played)
      }
      if (baseN === null) await playback.idle()
      this.#inPlace = await receiver.begin(n, baseN)
      return 'inPlace'
    }
    if (this.#staged !== undefined) await staging.discard(this.#staged.n)
    await staging.begin(n, baseN, this.#deps.ctx.clock.now())
    this.#staged = { n, baseN, received: 0, crc: 0, blocks: 0, holes: 0, dataBytes: 0 }
    return 'staged'
  }

  async #onChunk(channel: Channel, header: ChunkHeader, payload: Uint8Array, bytes: Uint8Array): Promise<Outcome> {
    const { blockSize } = this.#deps
    let slot = this.#slotOf(header.n)
    if (slot === undefined) {
      if (header.index !== 0 || this.#known(header.n)) {
        await refuse(channel, 'E_INVALID_INPUT', `chunk ${header.index} of delta set ${header.n} is out of order`, this.#deps.epoch())
        return 'close'
      }
      slot = await this.#begin(header.n, header.baseN)
    }
    const r = (slot === 'inPlace' ? this.#inPlace : this.#staged) as Receiving
    if (header.index < r.received) return 'continue'
    if (header.index > r.received || header.baseN !== r.baseN) {
      await refuse(channel, 'E_INVALID_INPUT', `chunk ${header.index} of delta set ${header.n} is out of order (expected ${r.received})`, this.#deps.epoch())
      return 'close'
    }
    let runs: BlockRun[]
    try {
      if (payloadCrc(payload) !== header.crc) throw new DrError('E_CORRUPT', 'chunk checksum mismatch')
      runs = decodeRuns(payload, blockSize, header.runs)
    } catch (error) {
      return this.#mismatch(channel, slot, r, header.index, toDrError(error).message)
    }
    let blocks = 0
    let holes = 0
    for (const run of runs) {
      if (run.data === null) holes += run.count
      else blocks += run.count
    }
    const next: Receiving = { ...r, received: r.received + 1, crc: chainCrc(r.crc, header.crc), blocks: r.blocks + blocks, holes: r.holes + holes, dataBytes: r.dataBytes + blocks * blockSize }
    // The frame goes back to the channel (which may reuse its memory) once its runs are written or staged.
    const written = (): void => channel.release?.(bytes)
    if (slot === 'inPlace') {
      await this.#deps.receiver.write(runs, blockSize, next, written)
      this.#inPlace = next
    } else {
      await this.#deps.staging.append(r.n, bytes, next)
      written()
      this.#staged = next
    }
    return 'continue'
  }

  async #onHeader(channel: Channel, frame: HeaderFrame): Promise<Outcome> {
    let slot = this.#slotOf(frame.n)
    if (slot === undefined && frame.chunks === 0 && !this.#known(frame.n)) slot = await this.#begin(frame.n, frame.baseN)
    if (slot === undefined) {
      if (this.#known(frame.n)) return 'continue'
      await refuse(channel, 'E_INVALID_INPUT', `header of delta set ${frame.n} without its chunks`, this.#deps.epoch())
      return 'close'
    }
    const r = (slot === 'inPlace' ? this.#inPlace : this.#staged) as Receiving
    const matches =
      r.received === frame.chunks &&
      r.blocks === frame.blocks &&
      r.holes === frame.holes &&
      r.dataBytes === frame.dataBytes &&
      r.crc === frame.crc &&
      r.baseN === frame.baseN &&
      frame.blockSize === this.#deps.blockSize
    if (!matches) return this.#mismatch(channel, slot, r, null, `header of delta set ${frame.n} does not match what arrived`)
    const { t: _t, epoch: _epoch, ...header } = frame
    const { ctx, session } = this.#deps
    ctx.events.emit('mirror.deltaSetReceived', 'info', { id: session, site: ctx.site, deltaSet: frame.n, chunks: frame.chunks, bytes: frame.dataBytes })
    if (slot === 'inPlace') return this.#finishInPlace(r, header)
    await this.#deps.staging.complete(r.n, header)
    this.#staged = undefined
    this.#deps.send({ t: 'ack', epoch: this.#deps.epoch(), n: r.n, status: 'complete' })
    this.#deps.playback.kick()
    return 'continue'
  }

  /** The set received in place is whole and matches its header: commit it, acknowledge it, then tidy up. */
  async #finishInPlace(r: Receiving, header: StagedHeader): Promise<Outcome> {
    const { ctx, session, volume, playback, staging } = this.#deps
    await this.#deps.receiver.finish(r, header)
    this.#inPlace = undefined
    playback.setPlayed(r.n, header.cutAt)
    ctx.events.emit('mirror.deltaSetApplied', 'info', { id: session, site: ctx.site, volume, deltaSet: r.n, blocks: header.blocks, holes: header.holes, cutAt: header.cutAt })
    this.#deps.send({ t: 'ack', epoch: this.#deps.epoch(), n: r.n, status: 'played' })
    this.#deps.tidy(r.n, async () => {
      for (const set of [...staging.sets]) if (set.n <= r.n) await staging.discard(set.n)
    })
    playback.kick()
    return 'continue'
  }

  async #mismatch(channel: Channel, slot: Slot, r: Receiving, chunk: number | null, reason: string): Promise<Outcome> {
    const { ctx, session } = this.#deps
    ctx.events.emit('mirror.checksumMismatch', 'error', { id: session, site: ctx.site, deltaSet: r.n, chunk, reason })
    if (slot === 'inPlace') {
      this.#inPlace = undefined
      await this.#deps.receiver.abandon(this.#deps.playback.played)
    } else {
      this.#staged = undefined
      await this.#deps.staging.discard(r.n)
    }
    await channel.send(encodeControl({ t: 'resend', epoch: this.#deps.epoch(), n: r.n, chunk: 0, reason })).catch(() => undefined)
    return 'close'
  }
}
