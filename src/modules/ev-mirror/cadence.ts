import type { Clock } from '../../kernel/clock.js'

/**
 * Keyed periodic loops on a clock: `set(key, everyMs, tick)` (re)starts the loop of `key` — `tick` runs every
 * `everyMs` after the previous one finished, and the loop ends when `tick` returns false —, `set(key, null)` and
 * `clear(key)` stop it, `stop()` stops them all. Transfers on a relationship's schedule and server groups' DR
 * series run on it. A tick's failure is the tick's to report; it never ends the loop.
 *
 * @public
 */
export class Cadence {
  readonly #clock: Clock
  readonly #loops = new Map<string, AbortController>()

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** (Re)starts the loop of `key`, or stops it with `everyMs` null. */
  set(key: string, everyMs: number | null, tick: () => Promise<boolean>): void {
    this.clear(key)
    if (everyMs === null) return
    const controller = new AbortController()
    this.#loops.set(key, controller)
    void this.#run(everyMs, tick, controller.signal)
  }

  /** Stops the loop of `key`, if any. */
  clear(key: string): void {
    this.#loops.get(key)?.abort()
    this.#loops.delete(key)
  }

  /** Stops every loop. */
  stop(): void {
    for (const controller of this.#loops.values()) controller.abort()
    this.#loops.clear()
  }

  async #run(everyMs: number, tick: () => Promise<boolean>, signal: AbortSignal): Promise<void> {
    for (;;) {
      const slept = await this.#clock.sleep(everyMs, signal).then(
        () => true,
        () => false,
      )
      if (!slept || signal.aborted) return
      if (!(await tick().catch(() => true))) return
    }
  }
}
