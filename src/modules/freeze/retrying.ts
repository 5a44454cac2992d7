import type { Clock } from '../../kernel/clock.js'
import { toDrError } from '../../kernel/errors.js'
import { backoffDelay, isRetryable, type RetryPolicy } from '../../kernel/retry.js'

/**
 * How the freeze module retries a transient adapter failure (`E_ADAPTER`, `E_UNAVAILABLE`, `E_TIMEOUT`) inside one
 * step of a restore: four tries, 25 ms then doubling, on the kernel clock.
 *
 * @public
 */
export const FREEZE_RETRY: RetryPolicy = { attempts: 4, initialDelayMs: 25, factor: 2, maxDelayMs: 1000 }

/**
 * Runs `work`, retrying it under `policy` while it fails with a retryable error; rejects with the last error as a
 * `DrError` (or `E_ABORTED` when `signal` aborts during a wait).
 *
 * @public
 */
export async function retrying<R>(clock: Clock, work: () => Promise<R>, options: { readonly policy?: RetryPolicy; readonly signal?: AbortSignal } = {}): Promise<R> {
  const policy = options.policy ?? FREEZE_RETRY
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (thrown) {
      const error = toDrError(thrown)
      if (attempt >= policy.attempts || !isRetryable(policy, error) || options.signal?.aborted === true) throw error
      await clock.sleep(backoffDelay(policy, attempt), options.signal)
    }
  }
}
