import type { Clock } from '../../kernel/clock.js'
import type { DrError } from '../../kernel/errors.js'

/**
 * Settles as `work` does, unless `ms` pass on `clock` first: then it rejects with `late()` (and `work`, which
 * cannot be cancelled, is left to settle unobserved). Guards calls into adapters that might never answer.
 *
 * @public
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, clock: Clock, late: () => DrError): Promise<T> {
  let cancel = (): void => undefined
  const expiry = new Promise<never>((_, reject) => {
    cancel = clock.setTimer(ms, () => reject(late()))
  })
  try {
    return await Promise.race([work, expiry])
  } finally {
    cancel()
  }
}
