import * as t from 'io-ts'
import { RetentionGridCodec } from './retention.js'
import { ScheduleSpecCodec } from './schedule.js'

/**
 * A snapshot as the catalog records it: where it is, when it was taken, its labels and the schedule that took
 * it (null for a manual snapshot).
 *
 * @public
 */
export const CatalogEntryCodec = t.type(
  {
    site: t.string,
    volume: t.string,
    name: t.string,
    createdAt: t.number,
    labels: t.record(t.string, t.string),
    schedule: t.union([t.string, t.null]),
  },
  'CatalogEntry',
)

/**
 * One catalogued snapshot.
 *
 * @public
 */
export type CatalogEntry = t.TypeOf<typeof CatalogEntryCodec>

/**
 * A snapshot schedule as stored: which volume, when it fires, the name prefix of the snapshots it takes, the
 * retention grid applied to them, and when it last ran.
 *
 * @public
 */
export const ScheduleRecordCodec = t.type(
  {
    id: t.string,
    site: t.string,
    volume: t.string,
    spec: ScheduleSpecCodec,
    prefix: t.string,
    retention: RetentionGridCodec,
    lastRunAt: t.union([t.number, t.null]),
  },
  'ScheduleRecord',
)

/**
 * One stored schedule.
 *
 * @public
 */
export type ScheduleRecord = t.TypeOf<typeof ScheduleRecordCodec>

/**
 * The snapshot catalog: snapshots by key (`site/volume@name`) and schedules by id. Plain, serialisable data.
 *
 * @public
 */
export interface SnapshotState {
  readonly snapshots: Readonly<Record<string, CatalogEntry>>
  readonly schedules: Readonly<Record<string, ScheduleRecord>>
}

/**
 * Codec for {@link SnapshotState}, checked when a saved state is loaded.
 *
 * @public
 */
export const SnapshotStateCodec = t.type({ snapshots: t.record(t.string, CatalogEntryCodec), schedules: t.record(t.string, ScheduleRecordCodec) })

/**
 * The journal events of the snapshot catalog.
 *
 * @public
 */
export const SnapshotJournalEventCodec = t.union([
  t.type({ type: t.literal('snapshot.catalogued'), data: CatalogEntryCodec }),
  t.type({ type: t.literal('snapshot.uncatalogued'), data: t.type({ site: t.string, volume: t.string, name: t.string }) }),
  t.type({ type: t.literal('schedule.added'), data: ScheduleRecordCodec }),
  t.type({ type: t.literal('schedule.removed'), data: t.type({ id: t.string }) }),
  t.type({ type: t.literal('schedule.ran'), data: t.type({ id: t.string, at: t.number }) }),
])

/**
 * One decoded snapshot journal event.
 *
 * @public
 */
export type SnapshotJournalEvent = t.TypeOf<typeof SnapshotJournalEventCodec>

/**
 * The catalog key of a snapshot.
 *
 * @public
 */
export function snapshotKey(site: string, volume: string, name: string): string {
  return `${site}/${volume}@${name}`
}

/**
 * The empty catalog.
 *
 * @public
 */
export const emptySnapshotState: SnapshotState = { snapshots: {}, schedules: {} }

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends Readonly<Record<string, infer V>> ? Record<string, V> : T[K] }

/**
 * Folds one journal event into the catalog (used with immer).
 *
 * @public
 */
export function reduceSnapshotState(draft: Mutable<SnapshotState>, event: SnapshotJournalEvent): void {
  switch (event.type) {
    case 'snapshot.catalogued':
      draft.snapshots[snapshotKey(event.data.site, event.data.volume, event.data.name)] = event.data
      return
    case 'snapshot.uncatalogued':
      delete draft.snapshots[snapshotKey(event.data.site, event.data.volume, event.data.name)]
      return
    case 'schedule.added':
      draft.schedules[event.data.id] = event.data
      return
    case 'schedule.removed':
      delete draft.schedules[event.data.id]
      return
    case 'schedule.ran': {
      const schedule = draft.schedules[event.data.id]
      if (schedule !== undefined) schedule.lastRunAt = event.data.at
      return
    }
  }
}
