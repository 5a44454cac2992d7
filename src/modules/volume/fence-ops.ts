import { DrError, callAdapter, isDrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import { backoffDelay, isRetryable, type RetryPolicy } from '../../kernel/retry.js'
import type { SnapshotInfo } from '../../ports/storage.js'
import type { ConstituentIo } from './constituent-io.js'

/** The label that ties a member snapshot to the consistency group (workflow) that took it. */
export const GROUP_LABEL = 'drkit.group'

/**
 * How unfencing is retried when it fails, by default: 8 tries, 50 ms doubling to 2 s, for every error but those
 * that cannot get better by waiting (a stale fence token, bad input, a closed adapter).
 *
 * @public
 */
export const DEFAULT_UNFENCE_RETRY: RetryPolicy = {
  attempts: 8,
  initialDelayMs: 50,
  maxDelayMs: 2_000,
  factor: 2,
  retryOn: (error) => !['E_FENCED', 'E_INVALID_INPUT', 'E_CLOSED'].includes(error.code),
}

/**
 * The kind of a bounded storage call of a group.
 *
 * @public
 */
export type GroupCallKind = 'fence' | 'snapshot'

/**
 * The storage calls a consistency group left running when one of them failed or its deadline passed. Before the
 * group unfences anything it waits for its fences still under way, so that a fence that lands late cannot
 * re-fence a volume already unfenced; before it deletes its member snapshots it waits for its snapshots still
 * under way, so that none lands after the clean-up. A snapshot call that hangs therefore does not keep the
 * constituents fenced; a fence call that hangs does (nothing can be unfenced safely before it answers).
 *
 * @public
 */
export class InflightCalls {
  readonly #calls = new Map<string, Set<Promise<unknown>>>()

  /** Remembers `call` of `kind` for group `group` until it settles. */
  track(group: string, kind: GroupCallKind, call: Promise<unknown>): void {
    const key = `${kind}:${group}`
    let set = this.#calls.get(key)
    if (set === undefined) this.#calls.set(key, (set = new Set()))
    const entry = call.then(
      () => undefined,
      () => undefined,
    )
    set.add(entry)
    void entry.then(() => {
      set.delete(entry)
      if (set.size === 0 && this.#calls.get(key) === set) this.#calls.delete(key)
    })
  }

  /** Resolves once every call of `kind` of `group` tracked so far has settled. */
  async settle(group: string, kind: GroupCallKind): Promise<void> {
    for (;;) {
      const set = this.#calls.get(`${kind}:${group}`)
      if (set === undefined || set.size === 0) return
      await Promise.all([...set])
    }
  }
}

/**
 * Limits of one bounded call: the group's deadline (ms since the epoch, on `clock`) and the caller's signal.
 *
 * @public
 */
export interface CallLimits {
  readonly clock: Clock
  readonly deadline: number
  readonly signal: AbortSignal
  readonly group: string
  readonly inflight: InflightCalls
}

/**
 * Bounds the storage calls of one step of a group by the group's deadline and the caller's signal, with one timer
 * and one abort listener however many calls run in parallel. A call run through it rejects with `E_TIMEOUT` when
 * the deadline passes first and `E_ABORTED` when the signal fires first; once either happened no new call starts.
 * A call cannot be cancelled: it is tracked in {@link InflightCalls} so that the abort path waits for it.
 *
 * @public
 */
export class CallGuard {
  readonly #limits: CallLimits
  readonly #stop: Promise<never>
  #stopped: DrError | undefined
  #dispose: () => void = () => undefined

  /** @param phase - what the step does, for error messages */
  constructor(limits: CallLimits, phase: string) {
    this.#limits = limits
    let reject: (error: DrError) => void = () => undefined
    this.#stop = new Promise<never>((_, fail) => (reject = fail))
    this.#stop.catch(() => undefined)
    const halt = (error: DrError): void => {
      this.#stopped ??= error
      reject(error)
    }
    if (limits.signal.aborted) halt(aborted(limits, phase))
    else if (limits.clock.now() >= limits.deadline) halt(timedOut(limits, phase))
    else {
      const onAbort = (): void => halt(aborted(limits, phase))
      const cancel = limits.clock.setTimer(limits.deadline - limits.clock.now(), () => halt(timedOut(limits, phase)))
      limits.signal.addEventListener('abort', onAbort, { once: true })
      this.#dispose = () => {
        cancel()
        limits.signal.removeEventListener('abort', onAbort)
      }
    }
  }

  /** Starts `start()` (unless the guard already stopped) and settles with it or with the guard's stop. */
  run<T>(kind: GroupCallKind, start: () => Promise<T>): Promise<T> {
    if (this.#stopped !== undefined) return Promise.reject(this.#stopped)
    const work = start()
    this.#limits.inflight.track(this.#limits.group, kind, work)
    return Promise.race([work, this.#stop])
  }

  /** Cancels the timer and the abort listener. */
  dispose(): void {
    this.#dispose()
  }
}

function timedOut(limits: CallLimits, what: string): DrError {
  return new DrError('E_TIMEOUT', `consistency group ${limits.group} exceeded its maximum fence-hold time while ${what}`, {
    group: limits.group,
    deadline: limits.deadline,
    during: what,
  })
}

function aborted(limits: CallLimits, what: string): DrError {
  return new DrError('E_ABORTED', `consistency group ${limits.group} was aborted while ${what}`, { group: limits.group, during: what })
}

/**
 * Fences one constituent. Fencing an already fenced constituent is refused by the storage with `E_CONFLICT`;
 * since only this group can have fenced a member of its volume (one group per volume), such a fence is a replay
 * of ours and is adopted. Costs one storage call on the normal path.
 *
 * @public
 */
export async function fenceConstituent(io: ConstituentIo, volume: string): Promise<void> {
  try {
    await callAdapter(io.storage.kind, 'fence', () => io.storage.fence(volume, io.token()))
  } catch (error) {
    if (!isDrError(error, 'E_CONFLICT')) throw error
    const fenced = await callAdapter(io.storage.kind, 'isFenced', () => io.storage.isFenced(volume))
    if (!fenced) throw error
  }
}

/**
 * Takes one member snapshot labelled with the group id. A snapshot of that name carrying the same group label is
 * a replay and is adopted; one carrying another label is someone else's (`E_CONFLICT`).
 *
 * @public
 */
export async function snapshotConstituent(io: ConstituentIo, volume: string, name: string, labels: Readonly<Record<string, string>>): Promise<SnapshotInfo> {
  try {
    return await callAdapter(io.storage.kind, 'createSnapshot', () => io.storage.createSnapshot(volume, name, io.token(), labels))
  } catch (error) {
    if (!isDrError(error, 'E_CONFLICT')) throw error
    const existing = await callAdapter(io.storage.kind, 'snapshotInfo', () => io.storage.snapshotInfo(volume, name))
    if (existing.labels[GROUP_LABEL] !== labels[GROUP_LABEL]) throw error
    return existing
  }
}

/**
 * Unfences one constituent, retrying with backoff under `policy` until it succeeds (an unfence is idempotent; a
 * volume that no longer exists has nothing to unfence). Resolves with the number of tries; rejects with the last
 * error when the policy gives up — the caller must then not unfence anything that comes before this
 * constituent in the fence order.
 *
 * @public
 */
export async function unfenceConstituent(
  io: ConstituentIo,
  volume: string,
  policy: RetryPolicy,
  clock: Clock,
  onRetry: (attempt: number, delayMs: number, error: DrError) => void,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await callAdapter(io.storage.kind, 'unfence', () => io.storage.unfence(volume, io.token()))
      return attempt
    } catch (error) {
      if (isDrError(error, 'E_NOT_FOUND')) return attempt
      if (attempt >= policy.attempts || !isRetryable(policy, error) || !(error instanceof DrError)) throw error
      const delayMs = backoffDelay(policy, attempt)
      onRetry(attempt, delayMs, error)
      await clock.sleep(delayMs)
    }
  }
}

/**
 * Deletes every snapshot of `volume` labelled with group `group` (a missing volume has none). Used when a group
 * fails, so that no member snapshot outlives it.
 *
 * @public
 */
export async function deleteGroupSnapshots(io: ConstituentIo, volume: string, group: string): Promise<number> {
  const snapshots = await callAdapter(io.storage.kind, 'listSnapshots', () => io.storage.listSnapshots(volume)).catch((error: unknown) => {
    if (isDrError(error, 'E_NOT_FOUND')) return []
    throw error
  })
  let deleted = 0
  for (const snapshot of snapshots.filter((s) => s.labels[GROUP_LABEL] === group)) {
    await callAdapter(io.storage.kind, 'deleteSnapshot', () => io.storage.deleteSnapshot(volume, snapshot.name, io.token())).catch((error: unknown) => {
      if (!isDrError(error, 'E_NOT_FOUND')) throw error
    })
    deleted++
  }
  return deleted
}
