const MIN_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 5_000

/**
 * How a source retries its connection: the delay before the next attempt (doubling from 100 ms up to 5 s after
 * each attempt that delivered nothing, back to 100 ms after one that did), and when a run of failures deserves
 * one `mirror.sendFailed` (the first failure beyond `retries` in a row; a later success re-arms the report).
 *
 * @public
 */
export class SendBackoff {
  #delay = MIN_BACKOFF_MS
  #failures = 0
  #reported = false

  /** The wait before the next attempt. */
  get delay(): number {
    return this.#delay
  }

  /** An attempt delivered or acknowledged something. */
  succeeded(): void {
    this.#failures = 0
    this.#reported = false
    this.#delay = MIN_BACKOFF_MS
  }

  /** An attempt delivered nothing; returns true when the failure must be reported (once per run beyond `retries`). */
  failed(retries: number): boolean {
    this.#failures++
    this.#delay = Math.min(MAX_BACKOFF_MS, this.#delay * 2)
    if (this.#failures <= retries || this.#reported) return false
    this.#reported = true
    return true
  }
}
