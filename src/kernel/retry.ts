import { isDrError, type DrError } from './errors.js'

/**
 * How a retryable step is retried: up to `attempts` tries in all, waiting `initialDelayMs`, then multiplying by
 * `factor` up to `maxDelayMs`, only for errors `retryOn` accepts (default: `E_ADAPTER`, `E_UNAVAILABLE`,
 * `E_TIMEOUT` — the transient ones).
 *
 * @public
 */
export interface RetryPolicy {
  readonly attempts: number
  readonly initialDelayMs?: number
  readonly maxDelayMs?: number
  readonly factor?: number
  readonly retryOn?: (error: DrError) => boolean
}

const TRANSIENT = new Set(['E_ADAPTER', 'E_UNAVAILABLE', 'E_TIMEOUT'])

/**
 * True when `error` may succeed on a retry under `policy`.
 *
 * @public
 */
export function isRetryable(policy: RetryPolicy, error: unknown): boolean {
  if (!isDrError(error)) return false
  return policy.retryOn === undefined ? TRANSIENT.has(error.code) : policy.retryOn(error)
}

/**
 * The delay before retry number `attempt` (1 = the first retry) under `policy`.
 *
 * @public
 */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const initial = policy.initialDelayMs ?? 50
  const factor = policy.factor ?? 2
  const max = policy.maxDelayMs ?? 5_000
  return Math.min(max, initial * factor ** Math.max(0, attempt - 1))
}
