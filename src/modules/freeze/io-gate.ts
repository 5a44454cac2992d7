import type { Clock } from '../../kernel/clock.js'
import { DrError, toDrError } from '../../kernel/errors.js'

interface Waiter {
  readonly seq: number
  readonly arrivedAt: number
  readonly deadline: number | null
  readonly resolve: () => void
  readonly reject: (error: DrError) => void
}

/**
 * Options of an {@link IoGate}: the clock, how long an operation may wait while the gate is frozen (null: until
 * it opens), and what to call when waiting operations time out.
 *
 * @public
 */
export interface IoGateOptions {
  readonly clock: Clock
  readonly timeoutMs: number | null
  /** Called with the number of operations released with `E_TIMEOUT` each time the timeout fires. */
  readonly onTimeout?: (released: number) => void
  /** What a timed-out operation rejects with (default: `E_TIMEOUT` naming the wait). */
  readonly timeoutError?: (waitedMs: number) => DrError
}

/**
 * Decides what happens to an operation that failed: `'hold'` (a disruption: the operation waits in the gate and
 * runs again after the restore), or the error the caller gets. `requeued` is true when the operation was held
 * once already and failed again after that restore.
 *
 * @public
 */
export type InterceptDecision = (error: DrError, requeued: boolean) => 'hold' | DrError | Promise<'hold' | DrError>

/**
 * The in-process I/O gate of a protected volume — freeze mechanism M1 of the seed ("the driver holds the open call
 * and returns the response later"). Every operation on the volume runs through {@link IoGate.run}. While the gate
 * is frozen, operations wait (their promises stay pending, in arrival order); {@link IoGate.open} lets them run in
 * FIFO order; {@link IoGate.fail} releases them with an error. An operation whose failure the `intercept` decision
 * holds is not failed: it is put back in the queue at its arrival position and the gate freezes, so it re-runs
 * after the thaw (and the decision is told, should it fail again, that it was requeued once). Each waiting
 * operation times out on its own `timeoutMs` after its arrival. Operations never settle twice.
 *
 * @public
 */
export class IoGate {
  readonly #clock: Clock
  #timeoutMs: number | null
  readonly #onTimeout: (released: number) => void
  readonly #timeoutError: (waitedMs: number) => DrError
  #frozen = false
  #queue: Waiter[] = []
  #inFlight = 0
  #drainers: Array<() => void> = []
  #firstHeldAt: number | null = null
  #frozenSince: number | null = null
  #nextSeq = 0
  #cancelTimer: (() => void) | undefined

  constructor(options: IoGateOptions) {
    this.#clock = options.clock
    this.#timeoutMs = options.timeoutMs
    this.#onTimeout = options.onTimeout ?? (() => undefined)
    this.#timeoutError =
      options.timeoutError ?? ((waitedMs) => new DrError('E_TIMEOUT', `I/O waited ${waitedMs} ms on a frozen volume, longer than its freeze timeout`, { waitedMs }))
  }

  /** True while operations wait. */
  get frozen(): boolean {
    return this.#frozen
  }

  /** Operations waiting now. */
  get pending(): number {
    return this.#queue.length
  }

  /** Operations running now. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** When the first operation still waiting in the current freeze started to wait, or null if none waits. */
  get heldSince(): number | null {
    return this.#firstHeldAt
  }

  /** Changes the freeze timeout of operations that start waiting from now on. */
  setTimeoutMs(timeoutMs: number | null): void {
    this.#timeoutMs = timeoutMs
  }

  /**
   * Runs `op` through the gate: waits while frozen, then runs it. A failure that `intercept` holds freezes the
   * gate and holds the operation for a re-run after the thaw; otherwise the operation rejects with the error the
   * decision gives (without a decision, its own, as a `DrError`).
   */
  async run<T>(op: () => Promise<T>, intercept?: InterceptDecision): Promise<T> {
    const seq = this.#nextSeq++
    const arrivedAt = this.#clock.now()
    for (let requeued = false; ; requeued = true) {
      if (this.#frozen) await this.#wait(seq, arrivedAt)
      this.#inFlight++
      try {
        return await op()
      } catch (thrown) {
        const error = toDrError(thrown)
        const decision = intercept === undefined ? error : await intercept(error, requeued)
        if (decision !== 'hold') throw decision
        this.close()
      } finally {
        this.#inFlight--
        if (this.#inFlight === 0) for (const drained of this.#drainers.splice(0)) drained()
      }
    }
  }

  /** Freezes the gate: operations that arrive from now on wait. Idempotent. */
  close(): void {
    if (!this.#frozen) this.#frozenSince = this.#clock.now()
    this.#frozen = true
  }

  /** Resolves once no operation is running (each has completed, failed or is held). */
  drain(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.#drainers.push(resolve))
  }

  /**
   * Thaws the gate: waiting operations run in arrival order. Returns how many were released and the freeze
   * window: from the first held operation (or, when none waited, from the freeze) to now; null when the gate was
   * not frozen. Idempotent.
   */
  open(): { readonly released: number; readonly windowMs: number | null } {
    const since = this.#firstHeldAt ?? (this.#frozen ? this.#frozenSince : null)
    const windowMs = since === null ? null : this.#clock.now() - since
    this.#frozen = false
    this.#firstHeldAt = null
    this.#frozenSince = null
    const released = this.#takeAll()
    for (const waiter of released) waiter.resolve()
    return { released: released.length, windowMs }
  }

  /** Thaws the gate releasing every waiting operation with `error`. Returns how many there were. */
  fail(error: DrError): number {
    this.#frozen = false
    this.#firstHeldAt = null
    this.#frozenSince = null
    const released = this.#takeAll()
    for (const waiter of released) waiter.reject(error)
    return released.length
  }

  #takeAll(): Waiter[] {
    const all = this.#queue
    this.#queue = []
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    return all
  }

  #wait(seq: number, arrivedAt: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const now = this.#clock.now()
      const deadline = this.#timeoutMs === null ? null : arrivedAt + this.#timeoutMs
      if (deadline !== null && deadline <= now) {
        this.#onTimeout(1)
        reject(this.#timeoutError(now - arrivedAt))
        return
      }
      const waiter: Waiter = { seq, arrivedAt, deadline, resolve, reject }
      const at = this.#queue.findIndex((other) => other.seq > seq)
      if (at < 0) this.#queue.push(waiter)
      else this.#queue.splice(at, 0, waiter)
      this.#firstHeldAt = this.#firstHeldAt === null ? arrivedAt : Math.min(this.#firstHeldAt, arrivedAt)
      this.#arm()
    })
  }

  #arm(): void {
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    let next: number | null = null
    for (const waiter of this.#queue) if (waiter.deadline !== null && (next === null || waiter.deadline < next)) next = waiter.deadline
    if (next === null) return
    this.#cancelTimer = this.#clock.setTimer(next - this.#clock.now(), () => this.#expire())
  }

  #expire(): void {
    this.#cancelTimer = undefined
    const now = this.#clock.now()
    const expired = this.#queue.filter((waiter) => waiter.deadline !== null && waiter.deadline <= now)
    this.#queue = this.#queue.filter((waiter) => !expired.includes(waiter))
    for (const waiter of expired) waiter.reject(this.#timeoutError(now - waiter.arrivedAt))
    if (expired.length > 0) this.#onTimeout(expired.length)
    // The window counts from the first operation still held, not from one that has left.
    this.#firstHeldAt = this.#queue.reduce<number | null>((first, waiter) => (first === null ? waiter.arrivedAt : Math.min(first, waiter.arrivedAt)), null)
    this.#arm()
  }
}
