import * as E from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { DrEither } from '../../kernel/either.js'
import { snapshotKey, type CatalogEntry, type ScheduleRecord, type SnapshotJournalEvent, type SnapshotState } from './state.js'

/**
 * Decides to catalogue a snapshot the storage has just taken. Idempotent: cataloguing the same snapshot again
 * decides nothing; a different snapshot under the same name is a conflict.
 *
 * @public
 */
export function decideCatalogue(state: SnapshotState, entry: CatalogEntry): DrEither<readonly SnapshotJournalEvent[]> {
  const existing = state.snapshots[snapshotKey(entry.site, entry.volume, entry.name)]
  if (existing === undefined) return E.right([{ type: 'snapshot.catalogued', data: entry }])
  if (existing.createdAt === entry.createdAt) return E.right([])
  return E.left(new DrError('E_CONFLICT', `snapshot "${entry.name}" of ${entry.site}/${entry.volume} already exists`, { ...entry }))
}

/**
 * Decides to remove a snapshot from the catalog (idempotent).
 *
 * @public
 */
export function decideUncatalogue(state: SnapshotState, site: string, volume: string, name: string): DrEither<readonly SnapshotJournalEvent[]> {
  return E.right(state.snapshots[snapshotKey(site, volume, name)] === undefined ? [] : [{ type: 'snapshot.uncatalogued', data: { site, volume, name } }])
}

/**
 * Decides to add a schedule; a second schedule with the same id is a conflict.
 *
 * @public
 */
export function decideAddSchedule(state: SnapshotState, schedule: ScheduleRecord): DrEither<readonly SnapshotJournalEvent[]> {
  if (state.schedules[schedule.id] !== undefined) {
    return E.left(new DrError('E_CONFLICT', `schedule "${schedule.id}" already exists`, { id: schedule.id }))
  }
  return E.right([{ type: 'schedule.added', data: schedule }])
}

/**
 * Decides to remove a schedule; an unknown id is `E_NOT_FOUND`.
 *
 * @public
 */
export function decideRemoveSchedule(state: SnapshotState, id: string): DrEither<readonly SnapshotJournalEvent[]> {
  if (state.schedules[id] === undefined) return E.left(new DrError('E_NOT_FOUND', `schedule "${id}" does not exist`, { id }))
  return E.right([{ type: 'schedule.removed', data: { id } }])
}

/**
 * Records that a schedule ran at `at`; a run older than the last recorded one decides nothing.
 *
 * @public
 */
export function decideScheduleRan(state: SnapshotState, id: string, at: number): DrEither<readonly SnapshotJournalEvent[]> {
  const schedule = state.schedules[id]
  if (schedule === undefined || (schedule.lastRunAt !== null && schedule.lastRunAt >= at)) return E.right([])
  return E.right([{ type: 'schedule.ran', data: { id, at } }])
}
