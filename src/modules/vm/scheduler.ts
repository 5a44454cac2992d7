import type { DrPlan } from './inputs.js'
import type { Clock } from '../../kernel/clock.js'

/** The longest delay a Node timer holds; longer intervals are waited for in several timers. */
const LONGEST_TIMER_MS = 2 ** 31 - 1

/**
 * The two periodic jobs of every plan on the kernel clock: backup every `backupEveryMs` and replication every
 * `replicateEveryMs`, independent of each other. A tick re-arms before it runs; a plan saved again is
 * re-armed with its new intervals; `close()` cancels everything.
 *
 * @public
 */
export class PlanScheduler {
  readonly #clock: Clock
  readonly #onBackup: (plan: string) => Promise<void>
  readonly #onReplicate: (plan: string) => Promise<void>
  readonly #timers = new Map<string, Array<() => void>>()

  constructor(clock: Clock, jobs: { backup: (plan: string) => Promise<void>; replicate: (plan: string) => Promise<void> }) {
    this.#clock = clock
    this.#onBackup = jobs.backup
    this.#onReplicate = jobs.replicate
  }

  /** Arms (or re-arms) the jobs of `plan`. */
  arm(plan: DrPlan): void {
    this.disarm(plan.id)
    const cancels: Array<() => void> = []
    const every = (ms: number, job: (plan: string) => Promise<void>, slot: number): void => {
      const wait = (left: number): void => {
        const step = Math.min(left, LONGEST_TIMER_MS)
        cancels[slot] = this.#clock.setTimer(step, () => {
          if (left > step) return wait(left - step)
          every(ms, job, slot)
          void job(plan.id).catch(() => undefined)
        })
      }
      wait(ms)
    }
    every(plan.backupEveryMs, this.#onBackup, 0)
    every(plan.replicateEveryMs, this.#onReplicate, 1)
    this.#timers.set(plan.id, cancels)
  }

  /** Cancels the jobs of `plan`. */
  disarm(planId: string): void {
    for (const cancel of this.#timers.get(planId) ?? []) cancel()
    this.#timers.delete(planId)
  }

  /** Cancels every job. */
  close(): void {
    for (const id of [...this.#timers.keys()]) this.disarm(id)
  }
}
