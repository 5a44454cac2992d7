import * as t from 'io-ts'
import { Name } from '../../kernel/codecs.js'
import { RetentionGridCodec } from './retention.js'
import { ScheduleSpecCodec } from './schedule.js'

const Labels = t.record(t.string, t.string)

/**
 * Which snapshot: site, volume and snapshot name.
 *
 * @public
 */
export const SnapshotRefInput = t.type({ site: Name, volume: Name, name: Name }, 'SnapshotRef')

/**
 * Options of `snapshots.create`.
 *
 * @public
 */
export const CreateSnapshotInput = t.intersection([SnapshotRefInput, t.partial({ labels: Labels })], 'CreateSnapshotOptions')

/**
 * Options of `snapshots.list`: a site, optionally narrowed to one volume.
 *
 * @public
 */
export const ListSnapshotsInput = t.intersection([t.type({ site: Name }), t.partial({ volume: Name })], 'ListSnapshotsOptions')

/**
 * Options of `snapshots.clone`: the snapshot and the name of the new volume.
 *
 * @public
 */
export const CloneSnapshotInput = t.intersection([SnapshotRefInput, t.type({ clone: Name })], 'CloneSnapshotOptions')

/**
 * Options of `snapshots.hold` and `snapshots.release`: the snapshot and the hold tag.
 *
 * @public
 */
export const HoldSnapshotInput = t.intersection([SnapshotRefInput, t.type({ tag: Name })], 'HoldSnapshotOptions')

/**
 * Options of `snapshots.addSchedule`.
 *
 * @public
 */
export const AddScheduleInput = t.intersection(
  [t.type({ id: Name, site: Name, volume: Name, spec: ScheduleSpecCodec, retention: RetentionGridCodec }), t.partial({ prefix: Name })],
  'AddScheduleOptions',
)

/**
 * Options of `snapshots.removeSchedule`.
 *
 * @public
 */
export const ScheduleIdInput = t.type({ id: Name }, 'ScheduleIdOptions')

/**
 * What `snapshots.create` takes: site, volume, snapshot name and optional labels.
 *
 * @public
 */
export type CreateSnapshotOptions = t.OutputOf<typeof CreateSnapshotInput>
/**
 * Names one snapshot: site, volume and snapshot name.
 *
 * @public
 */
export type SnapshotRef = t.OutputOf<typeof SnapshotRefInput>
/**
 * What `snapshots.list` takes.
 *
 * @public
 */
export type ListSnapshotsOptions = t.OutputOf<typeof ListSnapshotsInput>
/**
 * What `snapshots.clone` takes.
 *
 * @public
 */
export type CloneSnapshotOptions = t.OutputOf<typeof CloneSnapshotInput>
/**
 * What `snapshots.hold` and `snapshots.release` take.
 *
 * @public
 */
export type HoldSnapshotOptions = t.OutputOf<typeof HoldSnapshotInput>
/**
 * What `snapshots.addSchedule` takes; durations may be strings like `"15m"`.
 *
 * @public
 */
export type AddScheduleOptions = t.OutputOf<typeof AddScheduleInput>
