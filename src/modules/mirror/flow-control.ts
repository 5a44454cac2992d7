import { isDrError, toDrError } from '../../kernel/errors.js'
import { store, type AgentContext } from './agent-context.js'

/**
 * The source's answer when the destination cannot take more (note 002 ¶177, behaviour 30). The destination's
 * staging is bounded (`transfer.stagingMax`): once full, it stops reading and the source's sends wait (TCP-style
 * flow control) while its cuts pile up as snapshots. When, in that state, the changed data cut but not yet played
 * back at the destination reaches `limitBytes` (`transfer.backlogMax`), the source volume's I/O is suspended —
 * the volume is fenced, so reads and writes wait, they neither fail nor run — until the destination takes data
 * again (its playback has started and freed staging: the waiting send completes) or the backlog falls below the
 * limit; a broken channel or a stopping side lifts it too. `mirror.flowControlled` reports both transitions.
 * Nothing is ever suspended while the destination is not flow-controlling the source, so a partition never
 * freezes a volume, and the source never waits on its own fence to send what the destination asks for.
 *
 * @public
 */
export class SourceFlowControl {
  readonly #ctx: AgentContext
  readonly #session: string
  readonly #volume: string
  #limit: number | undefined
  #suspended = false
  /** Sends waiting on the channel, by sequence number. */
  readonly #waiting = new Set<number>()
  #sequence = 0
  /** The oldest send that was waiting at the previous check. */
  #oldestAtCheck: number | undefined
  #serial: Promise<void> = Promise.resolve()

  constructor(ctx: AgentContext, session: string, volume: string, limitBytes: number | undefined) {
    this.#ctx = ctx
    this.#session = session
    this.#volume = volume
    this.#limit = limitBytes
  }

  /** True while this side holds the source's I/O suspended. */
  get suspended(): boolean {
    return this.#suspended
  }

  /** Changes the limit (undefined: none); the next check applies it. */
  setLimit(limitBytes: number | undefined): void {
    this.#limit = limitBytes
  }

  /** Sends through `send`; once a send the destination held back completes, the source's I/O resumes. */
  async sending(send: () => Promise<void>): Promise<void> {
    const id = ++this.#sequence
    this.#waiting.add(id)
    try {
      await send()
    } finally {
      this.#waiting.delete(id)
      if (this.#suspended) await this.#exclusive(() => (this.#suspended ? this.#resume(null) : Promise.resolve())).catch(() => undefined)
    }
  }

  /**
   * Called at each cut and acknowledgement. The destination is flow-controlling the source when the same send has
   * been waiting since the previous check; in that state, a `backlogBytes` at the limit suspends the source's I/O.
   * It resumes when the backlog fell below the limit or nothing waits any more.
   */
  check(backlogBytes: number): Promise<void> {
    return this.#exclusive(async () => {
      const oldest = this.#waiting.size === 0 ? undefined : Math.min(...this.#waiting)
      const held = oldest !== undefined && oldest === this.#oldestAtCheck
      this.#oldestAtCheck = oldest
      const over = this.#limit !== undefined && backlogBytes >= this.#limit
      if (over && held && !this.#suspended) await this.#suspend(backlogBytes)
      else if (this.#suspended && (!over || oldest === undefined)) await this.#resume(backlogBytes)
    })
  }

  /** Resumes the source's I/O if this side suspended it (the side is stopping). */
  release(): Promise<void> {
    return this.#exclusive(async () => {
      if (this.#suspended) await this.#resume(null)
    })
  }

  #exclusive(run: () => Promise<void>): Promise<void> {
    const next = this.#serial.then(run)
    this.#serial = next.catch(() => undefined)
    return next
  }

  async #suspend(backlogBytes: number): Promise<void> {
    try {
      await store(this.#ctx, 'fence', (s) => s.fence(this.#volume, this.#ctx.token()))
    } catch (error) {
      // A cut holds its short fence right now: the next check suspends.
      if (isDrError(error, 'E_CONFLICT')) return
      throw error
    }
    this.#suspended = true
    this.#report(backlogBytes, true)
  }

  async #resume(backlogBytes: number | null): Promise<void> {
    try {
      await store(this.#ctx, 'unfence', (s) => s.unfence(this.#volume, this.#ctx.token()))
    } catch (error) {
      const failure = toDrError(error)
      this.#ctx.events.emit('mirror.unfenceFailed', 'error', { id: this.#session, site: this.#ctx.site, volume: this.#volume, attempts: 1, code: failure.code, message: failure.message })
      throw failure
    }
    this.#suspended = false
    this.#report(backlogBytes, false)
  }

  #report(backlogBytes: number | null, suspended: boolean): void {
    this.#ctx.events.emit('mirror.flowControlled', suspended ? 'warning' : 'info', {
      id: this.#session,
      site: this.#ctx.site,
      volume: this.#volume,
      backlogBytes,
      limitBytes: this.#limit ?? null,
      suspended,
    })
  }
}
