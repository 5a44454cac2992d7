import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'

interface Waiter {
  readonly bytes: number
  readonly resolve: () => void
  readonly reject: (error: DrError) => void
}

/**
 * A token bucket that paces one channel's sends to a rate in bytes per second. It holds at most one second of
 * tokens (so an idle channel may burst that much), a frame larger than the bucket goes out once the bucket is
 * full and leaves it in debt, and waiters are served in order. Changing or removing the rate wakes the waiters at
 * once, so lifting a limit releases held frames without delay.
 */
export class TokenBucket {
  readonly #clock: Clock
  #rate: number | undefined
  #tokens = 0
  #refilledAt = 0
  readonly #waiters: Waiter[] = []
  #cancelTimer: (() => void) | undefined
  #failure: DrError | undefined

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** The current limit in bytes per second, or `undefined` for none. */
  get rate(): number | undefined {
    return this.#rate
  }

  /** Sets the limit (`undefined` removes it). A new limit starts with a full bucket. */
  setRate(bytesPerSecond: number | undefined): void {
    if (bytesPerSecond !== undefined && !(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) {
      throw new DrError('E_INVALID_INPUT', `tcp bandwidth limit must be a positive number of bytes per second, got ${bytesPerSecond}`, {
        adapter: 'tcp',
        bytesPerSecond,
      })
    }
    this.#rate = bytesPerSecond
    this.#tokens = bytesPerSecond ?? 0
    this.#refilledAt = this.#clock.now()
    this.#pump()
  }

  /** Resolves once `bytes` may be sent; waits behind earlier callers. */
  take(bytes: number): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (this.#rate === undefined && this.#waiters.length === 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ bytes, resolve, reject })
      this.#pump()
    })
  }

  /** Rejects every waiter, and every later `take`, with `error`. */
  fail(error: DrError): void {
    this.#failure = error
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error)
  }

  #pump(): void {
    this.#cancelTimer?.()
    this.#cancelTimer = undefined
    for (;;) {
      const head = this.#waiters[0]
      if (head === undefined) return
      const rate = this.#rate
      if (rate === undefined) {
        this.#waiters.shift()
        head.resolve()
        continue
      }
      const now = this.#clock.now()
      this.#tokens = Math.min(rate, this.#tokens + ((now - this.#refilledAt) * rate) / 1000)
      this.#refilledAt = now
      const needed = Math.min(head.bytes, rate)
      if (this.#tokens >= needed) {
        this.#tokens -= head.bytes
        this.#waiters.shift()
        head.resolve()
        continue
      }
      const waitMs = Math.max(1, Math.ceil(((needed - this.#tokens) * 1000) / rate))
      this.#cancelTimer = this.#clock.setTimer(waitMs, () => {
        this.#cancelTimer = undefined
        this.#pump()
      })
      return
    }
  }
}
