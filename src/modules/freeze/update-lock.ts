import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import type { Clock } from '../../kernel/clock.js'
import { DrError, isDrError } from '../../kernel/errors.js'
import type { StateStore } from '../../kernel/state-store.js'
import { lockRetryDelay } from './decide.js'

const LockRecord = t.union([
  t.type({ type: t.literal('lock.acquired'), data: t.type({ holder: t.string, at: t.number }) }),
  t.type({ type: t.literal('lock.released'), data: t.type({ holder: t.string, at: t.number }) }),
])

/**
 * Who holds a volume's update lock, and since when.
 *
 * @public
 */
export interface LockHolder {
  readonly holder: string
  readonly acquiredAt: number
}

/**
 * How a lock acquisition is retried while someone else holds it (see `lockRetryDelay`).
 *
 * @public
 */
export interface LockRetryPolicy {
  readonly minDelayMs: number
  readonly maxDelayMs: number
  readonly maxAttempts: number
}

/**
 * A granted lock: who, since when, and after how many attempts.
 *
 * @public
 */
export interface LockGrant extends LockHolder {
  readonly attempts: number
}

interface Folded {
  version: number
  holder: LockHolder | null
}

/**
 * The update locks of volumes (seed 004, F5-3/F5-8): an advisory lock per volume recorded in the state store (so
 * it survives a coordinator crash and is shared by every coordinator on the store), with its holder. A restore
 * takes it before dismounting and releases it after the replay; any other lock-respecting writer is blocked
 * meanwhile. Acquisition retries after a random wait (deadlock avoidance), a bounded number of times, then fails
 * with `E_CONFLICT`. Acquiring a lock one already holds, and releasing one not held, are no-ops.
 *
 * @public
 */
export class UpdateLocks {
  readonly #store: StateStore
  readonly #clock: Clock
  readonly #random: () => number
  readonly #folded = new Map<string, Folded>()

  constructor(deps: { readonly stateStore: StateStore; readonly clock: Clock; readonly random: () => number }) {
    this.#store = deps.stateStore
    this.#clock = deps.clock
    this.#random = deps.random
  }

  /** The holder of a volume's update lock, or null when it is free. */
  async holderOf(site: string, volume: string): Promise<LockHolder | null> {
    return (await this.#read(streamOf(site, volume))).holder
  }

  /**
   * Takes the lock for `holder`, retrying under `policy` while another holder has it (calling `onContended` before
   * each wait). Rejects with `E_CONFLICT` (reason `lock-busy`, naming the holder) after `policy.maxAttempts`
   * attempts, `E_ABORTED` when `signal` aborts.
   */
  async acquire(
    site: string,
    volume: string,
    holder: string,
    policy: LockRetryPolicy,
    options: { readonly onContended?: (holder: string, attempt: number, delayMs: number) => void; readonly signal?: AbortSignal } = {},
  ): Promise<LockGrant> {
    for (let attempt = 1; ; attempt++) {
      const held = await this.#tryAcquire(streamOf(site, volume), holder)
      if (held.holder === holder) return { ...held, attempts: attempt }
      if (attempt >= policy.maxAttempts) {
        throw new DrError('E_CONFLICT', `update lock of ${site}/${volume} is held by "${held.holder}"; gave up after ${attempt} attempts`, {
          site,
          volume,
          holder: held.holder,
          attempts: attempt,
          reason: 'lock-busy',
        })
      }
      const delayMs = lockRetryDelay(policy, this.#random())
      options.onContended?.(held.holder, attempt, delayMs)
      await this.#clock.sleep(delayMs, options.signal)
    }
  }

  /** Releases the lock if `holder` has it. Returns whether it did. */
  async release(site: string, volume: string, holder: string): Promise<boolean> {
    const stream = streamOf(site, volume)
    for (;;) {
      const folded = await this.#read(stream)
      if (folded.holder?.holder !== holder) return false
      if (await this.#append(stream, folded, { type: 'lock.released', data: { holder, at: this.#clock.now() } })) return true
    }
  }

  async #tryAcquire(stream: string, holder: string): Promise<LockHolder> {
    for (;;) {
      const folded = await this.#read(stream)
      if (folded.holder !== null) return folded.holder
      const at = this.#clock.now()
      if (await this.#append(stream, folded, { type: 'lock.acquired', data: { holder, at } })) return { holder, acquiredAt: at }
    }
  }

  /** Appends at the version read; false (nothing written) when another writer got there first. */
  async #append(stream: string, folded: Folded, record: t.TypeOf<typeof LockRecord>): Promise<boolean> {
    try {
      await this.#store.append(stream, folded.version, [record])
      return true
    } catch (error) {
      if (isDrError(error, 'E_CONFLICT')) return false
      throw error
    }
  }

  async #read(stream: string): Promise<Folded> {
    const known = this.#folded.get(stream) ?? { version: 0, holder: null }
    const records = await this.#store.read(stream, known.version)
    const folded: Folded = { ...known }
    for (const record of records) {
      const decoded = LockRecord.decode({ type: record.type, data: record.data })
      if (isLeft(decoded)) throw new DrError('E_CORRUPT', `lock record ${record.version} of "${stream}" is invalid`, { stream, version: record.version })
      const event = decoded.right
      folded.holder = event.type === 'lock.acquired' ? { holder: event.data.holder, acquiredAt: event.data.at } : null
      folded.version = record.version
    }
    this.#folded.set(stream, folded)
    return folded
  }
}

function streamOf(site: string, volume: string): string {
  return `freeze/lock/${site}/${volume}`
}
