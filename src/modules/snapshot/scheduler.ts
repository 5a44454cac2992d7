import { callAdapter, toDrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { JournaledStore } from '../../kernel/store.js'
import type { StoragePort } from '../../ports/storage.js'
import { decideScheduleRan } from './decide.js'
import type { SnapshotEvents } from './events.js'
import type { SnapshotFacade } from './facade.js'
import { selectExpired, type RetentionCandidate } from './retention.js'
import { nextRun } from './schedule.js'
import type { ScheduleRecord, SnapshotJournalEvent, SnapshotState } from './state.js'

/**
 * Decides whether a snapshot must survive retention although the grid would expire it, beyond storage holds
 * (e.g. the newest snapshot a mirror still needs). Registered by other modules.
 *
 * @public
 */
export type RetentionGuard = (site: string, volume: string, snapshot: string) => boolean

/**
 * Drives snapshot schedules on the kernel clock: when a schedule falls due it takes one snapshot (a schedule that
 * missed runs while the system was down takes one, not one per missed run), records the run, and expires what
 * the schedule's retention grid no longer keeps — never a held or guarded snapshot.
 *
 * @public
 */
export class SnapshotScheduler {
  readonly #facade: SnapshotFacade
  readonly #catalog: JournaledStore<SnapshotState, SnapshotJournalEvent>
  readonly #storage: (site: string) => StoragePort
  readonly #events: EventSink<SnapshotEvents>
  readonly #clock: Clock
  readonly #guards: RetentionGuard[] = []
  #cancel: (() => void) | undefined
  #unsubscribe: (() => void) | undefined
  #running: Promise<void> = Promise.resolve()
  #stopped = true
  #createdAt: number
  /** Last failed attempt per schedule, so a failing schedule waits for its next slot instead of retrying at once. */
  readonly #failedAt = new Map<string, number>()

  constructor(deps: {
    facade: SnapshotFacade
    catalog: JournaledStore<SnapshotState, SnapshotJournalEvent>
    storage: (site: string) => StoragePort
    events: EventSink<SnapshotEvents>
    clock: Clock
  }) {
    this.#facade = deps.facade
    this.#catalog = deps.catalog
    this.#storage = deps.storage
    this.#events = deps.events
    this.#clock = deps.clock
    this.#createdAt = deps.clock.now()
  }

  /** Adds a guard that protects snapshots from expiry. */
  addGuard(guard: RetentionGuard): void {
    this.#guards.push(guard)
  }

  /** Starts waking up at each schedule's next due time. */
  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#unsubscribe = this.#catalog.subscribe((_state, event) => {
      if (event.type === 'schedule.added' || event.type === 'schedule.removed') this.#arm()
    })
    this.#arm()
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#unsubscribe?.()
    this.#cancel?.()
    await this.#running
  }

  /** When `schedule` is next due. A schedule that never ran is due at its first firing after it was added. */
  dueAt(schedule: ScheduleRecord): number {
    const since = Math.max(schedule.lastRunAt ?? this.#createdAt, this.#failedAt.get(schedule.id) ?? -Infinity)
    return nextRun(schedule.spec, since)
  }

  /** Runs every schedule that is due now; returns the ids that ran. Errors are reported as events, not thrown. */
  async runDue(): Promise<readonly string[]> {
    const now = this.#clock.now()
    const due = Object.values(this.#catalog.state.schedules).filter((s) => this.dueAt(s) <= now)
    for (const schedule of due) await this.#runOne(schedule, now)
    return due.map((s) => s.id)
  }

  async #runOne(schedule: ScheduleRecord, now: number): Promise<void> {
    try {
      const name = `${schedule.prefix}-${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`
      await this.#facade.take({ site: schedule.site, volume: schedule.volume, name, labels: {}, schedule: schedule.id })
      await this.#catalog.execute((state) => decideScheduleRan(state, schedule.id, now))
      const expired = await this.#expire(schedule, now)
      this.#events.emit('snapshot.scheduleRan', 'info', { schedule: schedule.id, site: schedule.site, volume: schedule.volume, snapshot: name, at: now, expired })
    } catch (error) {
      this.#failedAt.set(schedule.id, now)
      const failure = toDrError(error)
      this.#events.emit('snapshot.scheduleFailed', 'error', { schedule: schedule.id, code: failure.code, message: failure.message })
    }
  }

  /** Expires what the schedule's retention grid no longer keeps; returns the names it deleted. */
  async #expire(schedule: ScheduleRecord, now: number): Promise<string[]> {
    const storage = this.#storage(schedule.site)
    const infos = await callAdapter(storage.kind, 'listSnapshots', () => storage.listSnapshots(schedule.volume))
    const held = new Map(infos.map((info) => [info.name, info.holds.length > 0]))
    const candidates: RetentionCandidate[] = Object.values(this.#catalog.state.snapshots)
      .filter((e) => e.schedule === schedule.id && e.site === schedule.site && e.volume === schedule.volume)
      .map((e) => ({
        name: e.name,
        createdAt: e.createdAt,
        protected: held.get(e.name) === true || this.#guards.some((guard) => guard(e.site, e.volume, e.name)),
      }))
    const expired = selectExpired(candidates, schedule.retention, now)
    for (const name of expired) await this.#facade.remove(schedule.site, schedule.volume, name, schedule.id)
    return [...expired]
  }

  #arm(): void {
    this.#cancel?.()
    if (this.#stopped) return
    const schedules = Object.values(this.#catalog.state.schedules)
    const next = schedules.length === 0 ? this.#clock.now() + 60_000 : Math.min(...schedules.map((s) => this.dueAt(s)))
    this.#cancel = this.#clock.setTimer(Math.max(0, next - this.#clock.now()), () => {
      this.#running = this.runDue().then(
        () => this.#arm(),
        () => this.#arm(),
      )
    })
  }
}
