import * as t from 'io-ts'
import { Duration, Name, NonNegativeInt, PositiveInt, Size } from '../../kernel/codecs.js'
import { CONSTITUENT_BLOCK_SIZE, MAX_PATH_BYTES } from './layout.js'
import { ConstituentRoleCodec } from './state.js'

function refined<A, O>(name: string, base: t.Type<A, O, unknown>, ok: (a: A) => boolean): t.Type<A, O, unknown> {
  return new t.Type<A, O, unknown>(
    name,
    (u): u is A => base.is(u) && ok(u),
    (u, c) => {
      const decoded = base.validate(u, c)
      if (decoded._tag === 'Left') return decoded
      return ok(decoded.right) ? t.success(decoded.right) : t.failure(u, c)
    },
    base.encode,
  )
}

const encoder = new TextEncoder()

/**
 * The name of an expandable volume: a {@link Name} of at most 100 characters, so that its constituents'
 * storage names (`<name>.ns`, `<name>.ols`, `<name>.dc-<ordinal>`) are names too.
 *
 * @public
 */
export const ExpandableVolumeName = refined('ExpandableVolumeName (a Name of at most 100 characters)', Name, (s) => s.length <= 100)

/**
 * An object path: 1–248 UTF-8 bytes without control characters (`reports/2026/q1.csv`).
 *
 * @public
 */
export const ObjectPath = refined(
  `ObjectPath (1-${MAX_PATH_BYTES} UTF-8 bytes, no control characters)`,
  t.string,
  (s) => s.length > 0 && !/[\u0000-\u001f\u007f]/.test(s) && encoder.encode(s).length <= MAX_PATH_BYTES,
)

/**
 * A client identity as listed in a snapshot's allowed clients: 1–256 characters without control characters.
 *
 * @public
 */
export const ClientId = refined(
  'ClientId (1-256 characters, no control characters)',
  t.string,
  (s) => s.length > 0 && s.length <= 256 && !/[\u0000-\u001f\u007f]/.test(s),
)

/**
 * Object bytes: a `Uint8Array`.
 *
 * @public
 */
export const ObjectBytes = new t.Type<Uint8Array, Uint8Array, unknown>(
  'Uint8Array',
  (u): u is Uint8Array => u instanceof Uint8Array,
  (u, c) => (u instanceof Uint8Array ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/**
 * An `AbortSignal`.
 *
 * @public
 */
export const AbortSignalCodec = new t.Type<AbortSignal, AbortSignal, unknown>(
  'AbortSignal',
  (u): u is AbortSignal => u instanceof AbortSignal,
  (u, c) => (u instanceof AbortSignal ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const DataConstituentCount = refined('DataConstituentCount (1-1024)', PositiveInt, (n) => n <= 1024)
const ConstituentSize = refined(`ConstituentSize (a Size of at least ${2 * CONSTITUENT_BLOCK_SIZE} bytes)`, Size, (n) => n >= 2 * CONSTITUENT_BLOCK_SIZE)
const MaxObjects = refined('MaxObjects (1-1048576)', PositiveInt, (n) => n <= 1_048_576)
const HoldTime = refined('FenceHoldTime (a Duration of at least 1ms)', Duration, (n) => n >= 1)

/**
 * Options of `volumes.create`: the site, the name, how many data constituents and their size each, and
 * optionally how many objects the volume may hold (default 4096) and its default maximum fence-hold time
 * (default 30 s).
 *
 * @public
 */
export const CreateVolumeInput = t.intersection(
  [
    t.type({ site: Name, volume: ExpandableVolumeName, dataConstituents: DataConstituentCount, size: ConstituentSize }),
    t.partial({ maxObjects: MaxObjects, maxFenceHoldMs: HoldTime }),
  ],
  'CreateVolumeOptions',
)

/**
 * Which expandable volume: site and name.
 *
 * @public
 */
export const ExpandableVolumeRefInput = t.type({ site: Name, volume: ExpandableVolumeName }, 'ExpandableVolumeRef')

/**
 * Options of `volumes.list`: a site.
 *
 * @public
 */
export const ListVolumesInput = t.type({ site: Name }, 'ListVolumesOptions')

/**
 * Options of `volumes.expand`: how many data constituents to add.
 *
 * @public
 */
export const ExpandVolumeInput = t.type({ site: Name, volume: ExpandableVolumeName, add: DataConstituentCount }, 'ExpandVolumeOptions')

/**
 * Options of `volumes.shrink`: how many data constituents to remove (the highest ordinals), or which ordinals.
 *
 * @public
 */
export const ShrinkVolumeInput = t.type(
  { site: Name, volume: ExpandableVolumeName, remove: t.union([DataConstituentCount, refined('NonEmptyOrdinals', t.array(PositiveInt), (a) => a.length > 0)]) },
  'ShrinkVolumeOptions',
)

/**
 * Options of `volumes.putObject`.
 *
 * @public
 */
export const PutObjectInput = t.type({ site: Name, volume: ExpandableVolumeName, path: ObjectPath, data: ObjectBytes }, 'PutObjectOptions')

/**
 * Which object of the active file system: site, volume and path.
 *
 * @public
 */
export const ObjectRefInput = t.type({ site: Name, volume: ExpandableVolumeName, path: ObjectPath }, 'ObjectRef')

/**
 * Options of `volumes.listObjects`: the volume, and optionally an overall snapshot id (0: the active file system,
 * after the read redirect) and the client asking.
 *
 * @public
 */
export const ListObjectsInput = t.intersection([ExpandableVolumeRefInput, t.partial({ snapshot: NonNegativeInt, client: ClientId })], 'ListObjectsOptions')

/**
 * Options of `volumes.snapshot`: the volume, the overall snapshot name, and optionally the clients allowed to
 * read it (default: any), the maximum fence-hold time for this call (default: the volume's) and a signal that
 * aborts it.
 *
 * @public
 */
export const SnapshotVolumeInput = t.intersection(
  [t.type({ site: Name, volume: ExpandableVolumeName, name: Name }), t.partial({ allowedClients: t.array(ClientId), maxFenceHoldMs: HoldTime, signal: AbortSignalCodec })],
  'SnapshotVolumeOptions',
)

/**
 * Which overall snapshot: site, volume and snapshot name.
 *
 * @public
 */
export const VolumeSnapshotRefInput = t.type({ site: Name, volume: ExpandableVolumeName, name: Name }, 'VolumeSnapshotRef')

/**
 * A client's handle to an object: the overall snapshot id (0 for the active file system), the path, and the
 * client's identity (checked against the snapshot's allowed clients).
 *
 * @public
 */
export const SnapshotHandleInput = t.intersection(
  [t.type({ site: Name, volume: ExpandableVolumeName, snapshot: NonNegativeInt, path: ObjectPath }), t.partial({ client: ClientId })],
  'SnapshotHandle',
)

/**
 * A client's handle to an object by global object id and location id (the data constituent ordinal it was last
 * found on), in a snapshot or in the active file system (snapshot 0, after the read redirect).
 *
 * @public
 */
export const ObjectIdHandleInput = t.intersection(
  [t.type({ site: Name, volume: ExpandableVolumeName, snapshot: NonNegativeInt, id: NonNegativeInt, ordinal: PositiveInt }), t.partial({ client: ClientId })],
  'ObjectIdHandle',
)

/**
 * What `volumes.readObjectById` takes.
 *
 * @public
 */
export type ObjectIdHandle = t.OutputOf<typeof ObjectIdHandleInput>

/**
 * Options of `volumes.setReadRedirect`: the overall snapshot id that serves reads of the active file system, or
 * null to serve them from the active file system again.
 *
 * @public
 */
export const SetReadRedirectInput = t.type({ site: Name, volume: ExpandableVolumeName, snapshot: t.union([PositiveInt, t.null]) }, 'SetReadRedirectOptions')

/**
 * Options of `volumes.setReplica`: the volume and the replication relationship it is now the read-only side of, or
 * null to give it back to its clients.
 *
 * @public
 */
export const SetReplicaInput = t.type({ site: Name, volume: ExpandableVolumeName, replicaOf: t.union([Name, t.null]) }, 'SetReplicaOptions')

/**
 * Options of `volumes.adoptSnapshot`: an overall snapshot whose member snapshots already exist on the
 * constituents (made by a replicator), to be catalogued.
 *
 * @public
 */
export const AdoptSnapshotInput = t.intersection(
  [
    t.type({
      site: Name,
      volume: ExpandableVolumeName,
      name: Name,
      members: t.array(t.type({ volume: Name, role: ConstituentRoleCodec, ordinal: NonNegativeInt, snapshot: Name, timestamp: NonNegativeInt })),
    }),
    t.partial({ valid: t.boolean, allowedClients: t.array(ClientId), createdAt: NonNegativeInt }),
  ],
  'AdoptSnapshotOptions',
)

/**
 * What `volumes.create` takes; `size` may be a string like `"64GiB"`.
 *
 * @public
 */
export type CreateVolumeOptions = t.OutputOf<typeof CreateVolumeInput>
/**
 * Names one expandable volume.
 *
 * @public
 */
export type ExpandableVolumeRef = t.OutputOf<typeof ExpandableVolumeRefInput>
/**
 * What `volumes.expand` takes.
 *
 * @public
 */
export type ExpandVolumeOptions = t.OutputOf<typeof ExpandVolumeInput>
/**
 * What `volumes.shrink` takes.
 *
 * @public
 */
export type ShrinkVolumeOptions = t.OutputOf<typeof ShrinkVolumeInput>
/**
 * What `volumes.putObject` takes.
 *
 * @public
 */
export type PutObjectOptions = t.OutputOf<typeof PutObjectInput>
/**
 * Names one object of the active file system.
 *
 * @public
 */
export type ObjectRef = t.OutputOf<typeof ObjectRefInput>
/**
 * What `volumes.listObjects` takes.
 *
 * @public
 */
export type ListObjectsOptions = t.OutputOf<typeof ListObjectsInput>
/**
 * What `volumes.snapshot` takes.
 *
 * @public
 */
export type SnapshotVolumeOptions = t.OutputOf<typeof SnapshotVolumeInput>
/**
 * Names one overall snapshot.
 *
 * @public
 */
export type VolumeSnapshotRef = t.OutputOf<typeof VolumeSnapshotRefInput>
/**
 * A client's handle to an object in a snapshot or in the active file system.
 *
 * @public
 */
export type SnapshotHandle = t.OutputOf<typeof SnapshotHandleInput>
/**
 * What `volumes.setReadRedirect` takes.
 *
 * @public
 */
export type SetReadRedirectOptions = t.OutputOf<typeof SetReadRedirectInput>
/**
 * What `volumes.setReplica` takes.
 *
 * @public
 */
export type SetReplicaOptions = t.OutputOf<typeof SetReplicaInput>
/**
 * What `volumes.adoptSnapshot` takes.
 *
 * @public
 */
export type AdoptSnapshotOptions = t.OutputOf<typeof AdoptSnapshotInput>
