import { DrError } from './errors.js'

/**
 * Time as drkit sees it. Workflows, schedules, probes, leases and timeouts all read this port, so tests can
 * drive time deterministically with {@link ManualClock}.
 *
 * @public
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Calls `callback` once after `ms`. Returns a function that cancels it. */
  setTimer(ms: number, callback: () => void): () => void
  /** Resolves after `ms`; rejects with `E_ABORTED` when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

function abortedError(signal: AbortSignal): DrError {
  return new DrError('E_ABORTED', 'operation aborted', { reason: String(signal.reason) })
}

function sleepWith(clock: Pick<Clock, 'setTimer'>, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) return reject(abortedError(signal))
    const onAbort = (): void => {
      cancel()
      reject(abortedError(signal as AbortSignal))
    }
    const cancel = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    })
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** The longest delay one Node timer can hold (2^31 - 1 ms, about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Runs `callback` after `ms` with Node timers, chaining timers for delays longer than one can hold (a schedule
 * every 30 days must not fire every millisecond). `keepAlive: false` unrefs the timers.
 */
function nodeTimer(ms: number, callback: () => void, keepAlive: boolean): () => void {
  let handle: NodeJS.Timeout
  const arm = (remaining: number): void => {
    const step = Math.min(Math.max(0, remaining), MAX_TIMER_MS)
    handle = setTimeout(() => (remaining > step ? arm(remaining - step) : callback()), step)
    if (!keepAlive) handle.unref()
  }
  arm(ms)
  return () => clearTimeout(handle)
}

/**
 * The real clock: `Date.now()` and Node timers. Background timers (`setTimer`: lease renewal, schedules, probes)
 * do not keep the process alive on their own; a `sleep` someone awaits does, so a script whose only pending work
 * is a retry backoff or an adapter's latency does not exit half way.
 *
 * @public
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (ms, callback) => nodeTimer(ms, callback, false),
  sleep(ms, signal) {
    return sleepWith(keepAliveTimers, ms, signal)
  },
}

/** Timers for awaited sleeps: referenced, so the event loop stays alive while someone waits on them. */
const keepAliveTimers: Pick<Clock, 'setTimer'> = {
  setTimer: (ms, callback) => nodeTimer(ms, callback, true),
}

interface PendingTimer {
  readonly id: number
  readonly due: number
  readonly callback: () => void
}

/**
 * A clock that only moves when told to. `advance(ms)` fires due timers in order of due time (then creation),
 * letting promise continuations run between them, so code that sleeps in a loop behaves as it would in real time.
 *
 * @public
 */
export class ManualClock implements Clock {
  #now: number
  #nextId = 0
  #timers: PendingTimer[] = []

  /** @param start - the initial time in ms since the epoch */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start
  }

  now(): number {
    return this.#now
  }

  setTimer(ms: number, callback: () => void): () => void {
    const timer: PendingTimer = { id: this.#nextId++, due: this.#now + Math.max(0, ms), callback }
    this.#timers.push(timer)
    return () => {
      this.#timers = this.#timers.filter((t) => t.id !== timer.id)
    }
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal)
  }

  /** Number of timers waiting to fire. */
  get pendingTimers(): number {
    return this.#timers.length
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms
    for (;;) {
      await flushMicrotasks()
      const next = this.#earliestDue(target)
      if (next === undefined) break
      this.#timers = this.#timers.filter((t) => t.id !== next.id)
      this.#now = next.due
      next.callback()
    }
    this.#now = target
    await flushMicrotasks()
  }

  #earliestDue(limit: number): PendingTimer | undefined {
    let best: PendingTimer | undefined
    for (const timer of this.#timers) {
      if (timer.due > limit) continue
      if (best === undefined || timer.due < best.due || (timer.due === best.due && timer.id < best.id)) best = timer
    }
    return best
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve()
  await new Promise<void>((resolve) => setImmediate(resolve))
}
