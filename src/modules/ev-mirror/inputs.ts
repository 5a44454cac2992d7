import * as t from 'io-ts'
import { Duration, JsonValue, Name } from '../../kernel/codecs.js'
import { MirrorId } from '../mirror/index.js'

/**
 * An `AbortSignal` passed along with an options object.
 *
 * @public
 */
export const AbortSignalInput = new t.Type<AbortSignal, AbortSignal, unknown>(
  'AbortSignal',
  (u): u is AbortSignal => u instanceof AbortSignal,
  (u, c) => (u instanceof AbortSignal ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const PositiveDuration = t.refinement(Duration, (n) => n > 0, 'PositiveDuration')
const Side = t.intersection([t.type({ site: Name, volume: Name }), t.partial({ vserver: Name })])

/**
 * Options of `evMirrors.create`: the source expandable volume, the destination site (and volume, default the
 * source's name; vservers default to the site names), an optional id, and the relationship configuration
 * (transfer schedule, users allowed to read the replicated snapshots, anything else to keep with it).
 *
 * @public
 */
export const CreateEvMirrorInput = t.intersection(
  [
    t.type({ source: Side, destination: t.intersection([t.type({ site: Name }), t.partial({ volume: Name, vserver: Name })]) }),
    t.partial({ id: MirrorId, config: t.partial({ schedule: PositiveDuration, authorizedUsers: t.array(Name), extra: JsonValue }) }),
  ],
  'CreateEvMirrorOptions',
)

/**
 * What `evMirrors.create` takes.
 *
 * @public
 */
export type CreateEvMirrorOptions = t.OutputOf<typeof CreateEvMirrorInput>

/**
 * Options of `evMirrors.transfer`: the relationship and, optionally, the source snapshot to transfer (default: a
 * new consistency-group snapshot taken now), anything to replicate with it (`attachment`: kept in the snapshot's
 * configuration record at the destination, readable there from storage alone), and an abort signal.
 *
 * @public
 */
export const EvTransferInput = t.intersection([t.type({ id: MirrorId }), t.partial({ snapshot: Name, attachment: JsonValue, signal: AbortSignalInput })], 'EvTransferOptions')

/**
 * What `evMirrors.transfer` takes.
 *
 * @public
 */
export type EvTransferOptions = t.OutputOf<typeof EvTransferInput>

/**
 * Options of `evMirrors.resync`: the relationship; the writes the old primary made after the common snapshot are
 * lost, so one of `acknowledgeDataLoss` or `safetySnapshot` (keep them in a snapshot first) is needed when there
 * are any; optionally the name of the snapshot taken on the new primary to transfer back.
 *
 * @public
 */
export const EvResyncInput = t.intersection(
  [t.type({ id: MirrorId }), t.partial({ acknowledgeDataLoss: t.literal(true), safetySnapshot: t.literal(true), snapshot: Name, signal: AbortSignalInput })],
  'EvResyncOptions',
)

/**
 * What `evMirrors.resync` takes.
 *
 * @public
 */
export type EvResyncOptions = t.OutputOf<typeof EvResyncInput>

/**
 * Options of `evMirrors.failover`: the relationship and, optionally, `force` — fail over even when the source
 * answers but cannot be made read-only (it is reported as left writable).
 *
 * @public
 */
export const EvFailoverInput = t.intersection([t.type({ id: MirrorId }), t.partial({ force: t.literal(true) })], 'EvFailoverOptions')

/**
 * What `evMirrors.failover` takes.
 *
 * @public
 */
export type EvFailoverOptions = t.OutputOf<typeof EvFailoverInput>

/**
 * Names one replicated snapshot on one expandable volume of a site, found through that site's storage alone.
 *
 * @public
 */
export const EvReplicatedConfigurationInput = t.type({ site: Name, volume: Name, snapshot: Name }, 'EvReplicatedConfigurationOptions')

/**
 * What `evMirrors.replicatedConfiguration` takes.
 *
 * @public
 */
export type EvReplicatedConfigurationOptions = t.OutputOf<typeof EvReplicatedConfigurationInput>

/**
 * Names one relationship.
 *
 * @public
 */
export const EvMirrorRefInput = t.type({ id: MirrorId }, 'EvMirrorRef')

/**
 * What the single-relationship methods take.
 *
 * @public
 */
export type EvMirrorRef = t.OutputOf<typeof EvMirrorRefInput>

/**
 * Names one replicated snapshot of a relationship.
 *
 * @public
 */
export const EvSnapshotRefInput = t.type({ id: MirrorId, snapshot: Name }, 'EvSnapshotRef')

/**
 * What `evMirrors.snapshotConfiguration` takes.
 *
 * @public
 */
export type EvSnapshotRef = t.OutputOf<typeof EvSnapshotRefInput>
