import * as t from 'io-ts'
import { DrError, isDrError } from './errors.js'
import type { Clock } from './clock.js'

/**
 * Proof that the caller is the current coordinator for `scope`. `value` increases strictly each time the scope
 * changes hands; adapters remember the highest value seen per scope and reject lower ones with `E_FENCED`,
 * which is what stops a stale coordinator after a partition.
 *
 * @public
 */
export interface FenceToken {
  readonly scope: string
  readonly value: number
}

/**
 * Codec for {@link FenceToken}.
 *
 * @public
 */
export const FenceTokenCodec: t.Type<FenceToken, FenceToken, unknown> = t.readonly(
  t.type({ scope: t.string, value: t.number }),
  'FenceToken',
)

/**
 * True when `error` is an `E_FENCED` refusal of a stale fence token — raised by a {@link FenceGuard}, a journal bound
 * to a lease, or a lost lease, all of which name the token's `scope` in their details — meaning that a newer
 * coordinator holds the scope. Domain refusals that reuse the code without naming a scope (a replication epoch
 * that moved on) are not: they are ordinary failures of the operation.
 *
 * @public
 */
export function isStaleTokenError(error: unknown): boolean {
  return isDrError(error, 'E_FENCED') && typeof error.details['scope'] === 'string'
}

/**
 * Remembers the highest fence token seen per scope and rejects stale ones. Every adapter's mutating call runs
 * its token through one of these before it changes anything.
 *
 * @public
 */
export class FenceGuard {
  readonly #highest = new Map<string, number>()
  readonly #owner: string

  /** @param owner - the adapter name used in error messages */
  constructor(owner: string) {
    this.#owner = owner
  }

  /**
   * Accepts `token` if no higher token was seen for its scope (and remembers it); otherwise throws `E_FENCED`.
   * A token equal to the highest seen is the current holder and is accepted.
   */
  check(token: FenceToken, operation: string): void {
    if (!FenceTokenCodec.is(token) || !Number.isSafeInteger(token.value) || token.value < 0) {
      throw new DrError('E_INVALID_INPUT', `${this.#owner}.${operation}: a fence token { scope, value } is required`, {
        adapter: this.#owner,
        operation,
      })
    }
    const highest = this.#highest.get(token.scope)
    if (highest !== undefined && token.value < highest) {
      throw new DrError(
        'E_FENCED',
        `${this.#owner}.${operation}: fence token ${token.value} for scope "${token.scope}" is stale (current ${highest})`,
        { adapter: this.#owner, operation, scope: token.scope, token: token.value, current: highest },
      )
    }
    this.#highest.set(token.scope, token.value)
  }

  /** The highest token value seen for `scope`, if any. */
  highest(scope: string): number | undefined {
    return this.#highest.get(scope)
  }

  /** Every scope and its highest token, for persisting the guard alongside adapter metadata. */
  entries(): Array<[string, number]> {
    return [...this.#highest.entries()]
  }

  /** Restores persisted highest values (the maximum of the current and the restored value wins). */
  restore(entries: Iterable<readonly [string, number]>): void {
    for (const [scope, value] of entries) {
      this.#highest.set(scope, Math.max(value, this.#highest.get(scope) ?? value))
    }
  }
}

/**
 * The right to act for a scope, held by one coordinator at a time. `signal` aborts when the lease is lost
 * (expired, released or taken over); workflows watch it and stop in a resumable state.
 *
 * @public
 */
export interface Lease {
  readonly scope: string
  readonly holder: string
  readonly token: FenceToken
  readonly signal: AbortSignal
  /** True while the lease has not expired, been released or been taken over. */
  isValid(): boolean
  /** Extends the lease by its time-to-live; rejects with `E_FENCED` if it was already lost. */
  renew(): Promise<void>
  /** Gives the lease up. */
  release(): Promise<void>
}

/**
 * Grants leases per scope. Implementations: {@link MemoryLeaseManager} here, etcd in its own adapter.
 *
 * @public
 */
export interface LeaseManager {
  /**
   * Acquires the lease for `scope` on behalf of `holder`, waiting while another holder has it (up to
   * `waitMs`, default: fail at once with `E_CONFLICT`). A lease held under the same holder name counts as another
   * holder's unless `takeOver` is set: then it ends at once and the scope passes to the caller with a higher token
   * (a restarted coordinator reclaiming its scope without waiting for its old lease to expire).
   */
  acquire(scope: string, holder: string, options?: AcquireOptions): Promise<Lease>
}

/**
 * Options of `LeaseManager.acquire`.
 *
 * @public
 */
export interface AcquireOptions {
  /** Time-to-live of the lease (default: the manager's). */
  readonly ttlMs?: number
  /** How long to wait while another holder has the scope (default 0: fail at once with `E_CONFLICT`). */
  readonly waitMs?: number
  /** Aborts the wait (`E_ABORTED`). */
  readonly signal?: AbortSignal
  /** End a lease held under the same holder name and take the scope over at once (default false). */
  readonly takeOver?: boolean
}

interface HeldLease {
  holder: string
  value: number
  expiresAt: number
  controller: AbortController
  cancelExpiry: () => void
}

/**
 * In-process leases on a {@link Clock}: one holder per scope, expiring after `ttlMs` unless renewed, with a
 * strictly increasing token per scope. Good for a single coordinator process and for tests.
 *
 * @public
 */
export class MemoryLeaseManager implements LeaseManager {
  readonly #clock: Clock
  readonly #held = new Map<string, HeldLease>()
  readonly #counters = new Map<string, number>()
  readonly #defaultTtlMs: number

  constructor(clock: Clock, options: { defaultTtlMs?: number } = {}) {
    this.#clock = clock
    this.#defaultTtlMs = options.defaultTtlMs ?? 10_000
  }

  async acquire(scope: string, holder: string, options: AcquireOptions = {}): Promise<Lease> {
    const ttlMs = options.ttlMs ?? this.#defaultTtlMs
    const deadline = this.#clock.now() + (options.waitMs ?? 0)
    for (;;) {
      const current = this.#held.get(scope)
      if (current === undefined || (current.holder === holder && options.takeOver === true)) break
      if (this.#clock.now() >= deadline) {
        throw new DrError('E_CONFLICT', `lease for scope "${scope}" is held by "${current.holder}"`, { scope, holder: current.holder })
      }
      await this.#clock.sleep(Math.min(50, Math.max(1, deadline - this.#clock.now())), options.signal)
    }
    this.#held.get(scope)?.controller.abort(new DrError('E_FENCED', `lease for "${scope}" taken over by "${holder}"`, { scope, holder }))
    this.#held.get(scope)?.cancelExpiry()
    const value = (this.#counters.get(scope) ?? 0) + 1
    this.#counters.set(scope, value)
    const entry: HeldLease = { holder, value, expiresAt: 0, controller: new AbortController(), cancelExpiry: () => undefined }
    this.#held.set(scope, entry)
    const arm = (): void => {
      entry.cancelExpiry()
      entry.expiresAt = this.#clock.now() + ttlMs
      entry.cancelExpiry = this.#clock.setTimer(ttlMs, () => this.#lose(scope, entry, 'expired'))
    }
    arm()
    const isValid = (): boolean => this.#held.get(scope) === entry && !entry.controller.signal.aborted
    return {
      scope,
      holder,
      token: { scope, value },
      signal: entry.controller.signal,
      isValid,
      renew: async () => {
        if (!isValid()) throw new DrError('E_FENCED', `lease for "${scope}" was lost`, { scope, holder })
        arm()
      },
      release: async () => this.#lose(scope, entry, 'released'),
    }
  }

  #lose(scope: string, entry: HeldLease, why: string): void {
    entry.cancelExpiry()
    if (this.#held.get(scope) === entry) this.#held.delete(scope)
    if (!entry.controller.signal.aborted) {
      entry.controller.abort(new DrError('E_FENCED', `lease for "${scope}" ${why}`, { scope, holder: entry.holder }))
    }
  }
}
