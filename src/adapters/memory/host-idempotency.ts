/**
 * What a host adapter remembers of the calls of one operation (`HostPort.registerVm`, `HostPort.powerOn`) that
 * acted with an idempotency key: the key and what the call resolved with, the most recent `limit` of them.
 * Shared by the shipped host adapters.
 *
 * @public
 */
export class IdempotencyKeys<R> {
  readonly #limit: number
  readonly #seen = new Map<string, R>()

  /** @param limit - how many keys are kept (the oldest are forgotten first); `entries` seeds it (oldest first) */
  constructor(limit: number, entries: Iterable<readonly [string, R]> = []) {
    this.#limit = limit
    for (const [key, result] of entries) this.#remember(key, result)
  }

  /** What the call with `key` resolved with, or undefined when none succeeded (or there is no key). */
  recall(key: string | undefined): R | undefined {
    return key === undefined ? undefined : this.#seen.get(key)
  }

  /** Remembers that the call with `key` resolved with `result` (nothing without a key). */
  record(key: string | undefined, result: R): void {
    if (key !== undefined) this.#remember(key, result)
  }

  /** Forgets `key` (the call it named did not take effect after all). */
  forget(key: string | undefined): void {
    if (key !== undefined) this.#seen.delete(key)
  }

  /** Every remembered entry, oldest first (for adapters that persist them). */
  entries(): Array<readonly [string, R]> {
    return [...this.#seen.entries()]
  }

  #remember(key: string, result: R): void {
    this.#seen.delete(key)
    this.#seen.set(key, result)
    for (const oldest of this.#seen.keys()) {
      if (this.#seen.size <= this.#limit) break
      this.#seen.delete(oldest)
    }
  }
}
