import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { Channel } from '../../ports/network.js'
import { ProgressWaiters, store, type AgentContext } from './agent-context.js'
import { CutLog, type CutTrigger } from './cut-log.js'
import { sendDeltaSet } from './delta-sender.js'
import { DestinationView, type SendPlan } from './destination-view.js'
import { SourceFlowControl } from './flow-control.js'
import { SendBackoff } from './send-backoff.js'
import { MIRROR_SERVICE } from './naming.js'
import { PROTOCOL_VERSION, decodeFrame, encodeControl } from './protocol.js'
import type { TransferPolicy, VolumeSession } from './session-record.js'

/**
 * What the source side of a session reports: the newest cut, the newest delta set sent, what the destination
 * acknowledged, whether it is connected or fenced, and transfer counters.
 *
 * @public
 */
export interface SourceProgress {
  readonly epoch: number
  readonly lastCut: { readonly n: number; readonly cutAt: number | null } | null
  readonly lastSent: number | null
  readonly remotePlayed: number | null
  readonly remoteComplete: readonly number[]
  readonly pendingCuts: readonly number[]
  readonly connected: boolean
  readonly fenced: boolean
  readonly lastError: string | null
  readonly chunkFramesSent: number
  readonly bytesSent: number
}

/**
 * What the agent does for a source side: `onFenced` records, once the destination refused this side's epoch,
 * that the side is inactive for good.
 *
 * @public
 */
export interface SourceHooks {
  readonly onFenced: () => Promise<void>
}


/**
 * The source side of one session on one site: cuts delta sets ({@link CutLog}), connects to the destination's
 * agent, learns what it already has, and sends what it lacks — each delta set as checksummed chunks then its
 * header, continuing an interrupted delta set at the chunk where it stopped, or a full copy of the newest cut
 * when the destination holds no base the source still has. Back-pressure comes from `Channel.send`. A refusal
 * for a stale epoch stops it for good (it has been failed over); any other failure is retried with backoff,
 * and after `retries` consecutive failures `mirror.sendFailed` is emitted.
 *
 * @public
 */
export class SourceSession {
  readonly session: string
  readonly volume: string
  readonly #ctx: AgentContext
  #record: VolumeSession
  readonly #blockSize: number
  readonly #cuts: CutLog
  readonly #hooks: SourceHooks
  readonly #waiters = new ProgressWaiters()
  #active = false
  #fenced = false
  #abort = new AbortController()
  #loop: Promise<void> = Promise.resolve()
  #channel: Channel | undefined
  readonly #remote: DestinationView
  readonly #flow: SourceFlowControl
  #lastSent: number | null = null
  #wakers: Array<() => void> = []
  readonly #backoff = new SendBackoff()
  #lastError: DrError | undefined
  #chunkFrames = 0
  #bytes = 0

  private constructor(ctx: AgentContext, volume: string, record: VolumeSession, blockSize: number, cuts: CutLog, hooks: SourceHooks) {
    this.#ctx = ctx
    this.#hooks = hooks
    this.session = record.session
    this.volume = volume
    this.#record = record
    this.#blockSize = blockSize
    this.#cuts = cuts
    this.#remote = new DestinationView(record.base?.n ?? null)
    this.#flow = new SourceFlowControl(ctx, record.session, volume, record.transfer.backlogMaxBytes)
  }

  /** Opens the source side of `record` on `volume`, reading its cuts back from storage. */
  static async open(ctx: AgentContext, volume: string, record: VolumeSession, hooks: SourceHooks): Promise<SourceSession> {
    const info = await store(ctx, 'volumeInfo', (s) => s.volumeInfo(volume))
    let wake: () => void = () => undefined
    const cuts = await CutLog.open({
      ctx,
      session: record.session,
      volume,
      policy: record.cut,
      epoch: record.epoch,
      base: record.base,
      onCut: (cut, trigger, changedBytes) => {
        ctx.events.emit('mirror.deltaSetCut', 'info', { id: record.session, site: ctx.site, volume, deltaSet: cut.n, trigger, changedBytes, epoch: record.epoch })
        wake()
      },
    })
    const self = new SourceSession(ctx, volume, record, info.blockSize, cuts, hooks)
    wake = () => {
      self.#wakeUp()
      void self.#checkFlow()
    }
    return self
  }

  /** The epoch this side sends with. */
  get epoch(): number {
    return this.#record.epoch
  }

  /** The session record as persisted. */
  get record(): VolumeSession {
    return this.#record
  }

  /** The cut log (for status and the coordinator's convergence checks). */
  get cuts(): CutLog {
    return this.#cuts
  }

  /**
   * Changes how this side transfers; a new bandwidth limit applies at once to the open channel (and to every
   * later one).
   */
  setTransfer(transfer: TransferPolicy): void {
    this.#record = { ...this.#record, transfer }
    this.#channel?.setBandwidthLimit(transfer.bandwidthBytesPerSecond)
    this.#flow.setLimit(transfer.backlogMaxBytes)
    void this.#checkFlow()
  }

  /** Starts cutting and sending. */
  start(): void {
    if (this.#active || this.#fenced) return
    this.#active = true
    this.#abort = new AbortController()
    this.#cuts.start()
    this.#loop = this.#run(this.#abort.signal)
  }

  /** Stops cutting and sending; resolves once the transfer loop has ended. Cuts and progress stay. */
  async stop(): Promise<void> {
    this.#active = false
    this.#abort.abort(new DrError('E_ABORTED', `session ${this.session} stopped at ${this.#ctx.site}`))
    this.#wakeUp()
    await this.#channel?.close().catch(() => undefined)
    await this.#cuts.stop()
    await this.#loop
    await this.#flow.release()
  }

  /** Cuts a delta set now; resolves with its number. */
  async cutNow(trigger: CutTrigger = 'manual'): Promise<number> {
    return (await this.#cuts.cut(trigger)).n
  }

  /** Resolves once the destination acknowledged delta set `n` (or later) as played back. */
  waitPlayed(n: number, signal?: AbortSignal): Promise<void> {
    return this.#waiters.wait(() => this.#remote.played, n, signal)
  }

  /** Progress for status. */
  progress(): SourceProgress {
    const newest = this.#cuts.newest
    return {
      epoch: this.epoch,
      lastCut: newest,
      lastSent: this.#lastSent,
      remotePlayed: this.#remote.played,
      remoteComplete: this.#remote.complete,
      pendingCuts: this.#cuts.cuts.filter((c) => c.n > (this.#remote.played ?? -1)).map((c) => c.n),
      connected: this.#channel !== undefined,
      fenced: this.#fenced,
      lastError: this.#lastError?.message ?? null,
      chunkFramesSent: this.#chunkFrames,
      bytesSent: this.#bytes,
    }
  }

  /**
   * The destination refused this side's epoch: a failover promoted it. This side stops for good — no more
   * sending, no more cutting (its cuts would never be acknowledged, so they would pile up) — and the volume's
   * session record is marked inactive so a restarted agent does not start it again.
   */
  #onFenced(): void {
    if (this.#fenced) return
    this.#fenced = true
    void this.#cuts.stop()
    void this.#flow.release().catch(() => undefined)
    void this.#hooks.onFenced().catch((error: unknown) => {
      this.#lastError = toDrError(error)
    })
  }

  #wakeUp(): void {
    for (const wake of this.#wakers.splice(0)) wake()
  }

  /** Resolves at the next cut, acknowledgement or end of the channel. */
  #woken(): Promise<void> {
    return new Promise<void>((resolve) => this.#wakers.push(resolve))
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (this.#active && !this.#fenced) {
      let progressed = false
      try {
        const { network } = this.#ctx
        const peer = this.#record.peer
        const channel = await callAdapter(network.kind, 'connect', () => network.connect(peer.site, MIRROR_SERVICE))
        progressed = await this.#serve(channel)
      } catch (error) {
        this.#lastError = toDrError(error)
      }
      if (!this.#active || this.#fenced) break
      if (progressed) this.#backoff.succeeded()
      else if (this.#backoff.failed(this.#record.transfer.retries)) {
        const error = this.#lastError ?? new DrError('E_UNAVAILABLE', 'transfer failed')
        const plan = this.#remote.next(this.#cuts.cuts)
        const chunk = plan === undefined ? null : this.#remote.chunksOf(plan.cut.n)
        const { retries } = this.#record.transfer
        this.#ctx.events.emit('mirror.sendFailed', 'error', { id: this.session, site: this.#ctx.site, deltaSet: plan?.cut.n ?? null, chunk, retries, code: error.code, message: error.message })
      }
      try {
        await this.#ctx.clock.sleep(this.#backoff.delay, signal)
      } catch {
        break
      }
    }
  }

  /** Serves one connection; resolves with whether anything was delivered or acknowledged on it. */
  async #serve(channel: Channel): Promise<boolean> {
    this.#channel = channel
    channel.setBandwidthLimit(this.#record.transfer.bandwidthBytesPerSecond)
    let progressed = false
    let ended = false
    let failure: unknown
    try {
      await this.#sendControl(channel, encodeControl({ t: 'hello', v: PROTOCOL_VERSION, session: this.session, epoch: this.epoch, site: this.#ctx.site, volume: this.volume, blockSize: this.#blockSize }))
      const iterator = channel.frames()[Symbol.asyncIterator]()
      const first = await iterator.next()
      if (first.done === true) throw new DrError('E_UNAVAILABLE', `the destination of ${this.session} closed the channel`)
      this.#onFrame(first.value, true)
      const reading = (async () => {
        try {
          for (;;) {
            const next = await iterator.next()
            if (next.done === true) return
            if (this.#onFrame(next.value, false)) progressed = true
          }
        } finally {
          ended = true
          this.#wakeUp()
        }
      })()
      const sending = (async () => {
        while (!ended && this.#active && !this.#fenced) {
          const plan = this.#remote.next(this.#cuts.cuts)
          if (plan === undefined) {
            await this.#woken()
            continue
          }
          if (plan.full) await this.#sendFullCopy(channel, plan, () => ended)
          else await this.#sendDeltaSet(channel, plan)
          progressed = true
        }
      })()
      const settled = await Promise.race([reading.then(() => undefined), sending.then(() => undefined)]).catch((error: unknown) => error)
      failure = settled
      await channel.close().catch(() => undefined)
      this.#wakeUp()
      const results = await Promise.allSettled([reading, sending])
      for (const result of results) if (result.status === 'rejected' && failure === undefined) failure = result.reason
    } finally {
      this.#channel = undefined
      await channel.close().catch(() => undefined)
    }
    if (failure !== undefined) this.#lastError = toDrError(failure)
    return progressed
  }

  /** Handles a frame from the destination; returns true when it acknowledged progress. */
  #onFrame(bytes: Uint8Array, first: boolean): boolean {
    const decoded = decodeFrame(bytes)
    if (decoded.kind !== 'control') throw new DrError('E_CORRUPT', `unexpected ${decoded.kind} frame from the destination of ${this.session}`)
    const frame = decoded.frame
    if (frame.t === 'refused') {
      if (frame.code === 'E_FENCED') this.#onFenced()
      this.#ctx.events.emit('mirror.peerRejected', frame.code === 'E_FENCED' ? 'error' : 'warning', {
        id: this.session,
        site: this.#ctx.site,
        peer: this.#record.peer.site,
        code: frame.code,
        message: frame.message,
      })
      throw new DrError(frame.code, `${this.#record.peer.site} refused ${this.session}: ${frame.message}`, { session: this.session, epoch: frame.epoch })
    }
    if (first) {
      if (frame.t !== 'state') throw new DrError('E_CORRUPT', `expected a state frame from the destination of ${this.session}, got ${frame.t}`)
      this.#remote.reset(frame)
      void this.#acknowledgePlayed(frame.played)
      return false
    }
    if (frame.t === 'ack') {
      if (frame.status === 'complete') this.#remote.completed(frame.n)
      else void this.#acknowledgePlayed(frame.n)
      this.#wakeUp()
      return true
    }
    if (frame.t === 'resend') return false
    throw new DrError('E_CORRUPT', `unexpected ${frame.t} frame from the destination of ${this.session}`)
  }

  /** The destination played delta set `n`: waiters hear of it at once; retention of older cuts follows. */
  async #acknowledgePlayed(n: number | null): Promise<void> {
    if (n === null) return
    this.#remote.playedUpTo(n)
    this.#waiters.notify(this.#remote.played)
    try {
      await this.#cuts.played(n)
    } catch (error) {
      this.#lastError = toDrError(error)
    }
    await this.#checkFlow()
  }

  /** Checks the backlog (cut, not yet played back at the destination) against the flow-control limit. */
  async #checkFlow(): Promise<void> {
    await this.#flow.check(await this.#cuts.backlogBytes(this.#remote.played)).catch((error: unknown) => {
      this.#lastError = toDrError(error)
    })
  }

  /**
   * Sends a full copy, and alongside it, on the same channel, every delta set cut after it (each in order, once
   * complete): the destination buffers those in staging and plays them only once the copy is whole, so writes made
   * during a long copy are already at the destination when it ends. What goes alongside stops at the staging bound
   * (`transfer.stagingMax`); the rest follows the copy. Resolves once the copy and the delta set in progress next
   * to it are sent.
   */
  async #sendFullCopy(channel: Channel, plan: SendPlan, ended: () => boolean): Promise<void> {
    let copied = false
    const bound = this.#record.transfer.stagingMaxBytes ?? Infinity
    const alongside = (async () => {
      let pos = plan.cut.n
      let buffered = 0
      while (!copied && !ended() && this.#active && !this.#fenced && buffered < bound) {
        const next = this.#cuts.cuts.find((c) => c.baseN === pos)
        if (next === undefined) {
          await this.#woken()
          continue
        }
        if (!this.#remote.delivered(next.n)) buffered += await this.#sendDeltaSet(channel, { cut: next, full: false }, true)
        pos = next.n
      }
    })()
    try {
      await this.#sendDeltaSet(channel, plan)
    } finally {
      copied = true
      this.#wakeUp()
      await alongside
    }
  }

  /**
   * Sends one delta set and resolves with its data bytes; unless it goes `alongside` a full copy, the destination's
   * position moves to it.
   */
  async #sendDeltaSet(channel: Channel, plan: SendPlan, alongside = false): Promise<number> {
    const { cut, full } = plan
    const changed = full ? await store(this.#ctx, 'changedBlocks', (s) => s.changedBlocks(this.volume, null, cut.name)) : await this.#cuts.changesOf(cut)
    const partial = this.#remote.takePartial(cut.n, full)
    const target = {
      send: (frame: Uint8Array) => this.#flow.sending(() => channel.send(frame)),
      storage: this.#ctx.storage,
      buffers: this.#ctx.sendBuffers,
      volume: this.volume,
      epoch: this.epoch,
      blockSize: this.#blockSize,
      chunkBytes: this.#record.transfer.chunkBytes,
      sent: (bytes: number, chunk: boolean) => {
        if (chunk) this.#chunkFrames++
        this.#bytes += bytes
      },
    }
    const { summary, from } = await sendDeltaSet(target, cut, full, changed, partial)
    this.#remote.sent(cut.n, alongside)
    this.#lastSent = Math.max(this.#lastSent ?? cut.n, cut.n)
    this.#ctx.events.emit('mirror.deltaSetSent', 'info', {
      id: this.session,
      deltaSet: cut.n,
      chunks: summary.chunks,
      chunksSent: summary.chunks - from,
      bytes: summary.dataBytes,
      resumedFromChunk: from,
      full,
    })
    return summary.dataBytes
  }

  async #sendControl(channel: Channel, frame: Uint8Array): Promise<void> {
    await channel.send(frame)
    this.#bytes += frame.length
  }
}
