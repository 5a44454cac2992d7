import * as t from 'io-ts'
import { Duration, Name, PositiveInt, Size } from '../../kernel/codecs.js'

const CONTROL = /[\u0000-\u001f\u007f]/

function boundedText(name: string, max: number): t.Type<string, string, unknown> {
  const is = (u: unknown): u is string => typeof u === 'string' && u.length > 0 && u.length <= max && !CONTROL.test(u)
  return new t.Type<string, string, unknown>(name, is, (u, c) => (is(u) ? t.success(u) : t.failure(u, c)), t.identity)
}

function positive<O>(codec: t.Type<number, O, unknown>, name: string): t.Type<number, O, unknown> {
  return new t.Type<number, O, unknown>(
    name,
    (u): u is number => codec.is(u) && u > 0,
    (u, c) => {
      const decoded = codec.validate(u, c)
      if (decoded._tag === 'Left') return decoded
      return decoded.right > 0 ? t.success(decoded.right) : t.failure(u, c)
    },
    codec.encode,
  )
}

/**
 * A mount path as the host's applications know it: a UNIX directory (`/mnt/data`) or a Windows drive letter or
 * folder (`F:`); 1–1024 characters without control characters.
 *
 * @public
 */
export const MountPath = boundedText('MountPath (1-1024 characters, no control characters)', 1024)

/**
 * The identity a mounted volume presents to applications (a file system UUID, a serial, a drive label), kept
 * unchanged across restores; 1–256 characters without control characters.
 *
 * @public
 */
export const VolumeIdentity = boundedText('VolumeIdentity (1-256 characters, no control characters)', 256)

/**
 * A reference the embedder's replica resolver understands, such as a mirror id; 1–256 characters.
 *
 * @public
 */
export const ReplicaRef = boundedText('ReplicaRef (1-256 characters, no control characters)', 256)

/**
 * A duration greater than zero, in milliseconds or as a string like `"30s"`.
 *
 * @public
 */
export const PositiveDuration = positive(Duration, 'PositiveDuration (more than 0 ms, or a string like "30s")')

/**
 * Where a protected volume can be restored from:
 * - `snapshot`: roll the volume back to one of its own snapshots (`StoragePort.restoreSnapshot`, no block copy);
 * - `replica`: copy the data of another site's volume, found through the `resolveReplica` dependency (only the
 *   blocks changed since a common snapshot when there is one, else every allocated block);
 * - `standby`: swap in an identical, up-to-date standby volume of the same site (no data copy at all: the mount
 *   and the handles are re-pointed to it, with the same identity).
 *
 * @public
 */
export const RestoreSourceCodec = t.union(
  [
    t.type({ kind: t.literal('snapshot'), snapshot: Name }, 'SnapshotSource'),
    t.type({ kind: t.literal('replica'), ref: ReplicaRef }, 'ReplicaSource'),
    t.type({ kind: t.literal('standby'), volume: Name }, 'StandbySource'),
  ],
  'RestoreSource',
)

/**
 * One restore source (see {@link RestoreSourceCodec}).
 *
 * @public
 */
export type RestoreSource = t.TypeOf<typeof RestoreSourceCodec>

/**
 * How the update lock is retried while someone else holds it: a random wait between `minDelayMs` and
 * `maxDelayMs` (equal bounds give a fixed wait) for at most `maxAttempts` tries, then `E_CONFLICT`.
 *
 * @public
 */
export const LockRetryInput = t.partial({ minDelayMs: Duration, maxDelayMs: Duration, maxAttempts: PositiveInt }, 'LockRetry')

/**
 * At most `restores` automatic restores (started by an intercepted I/O error or a health probe) in any
 * `windowMs`; beyond that, errors reach the applications and `freeze.autoRestoreLimited` says why.
 *
 * @public
 */
export const AutoRestoreLimitInput = t.type({ restores: PositiveInt, windowMs: PositiveDuration }, 'AutoRestoreLimit')

/**
 * Options of `freeze.protect`.
 *
 * @public
 */
export const ProtectInput = t.intersection(
  [
    t.type({
      site: Name,
      volume: Name,
      mountPath: MountPath,
      identity: VolumeIdentity,
      sources: t.array(RestoreSourceCodec),
      freezeTimeoutMs: t.union([PositiveDuration, t.null]),
    }),
    t.partial({
      actorTimeoutMs: t.union([PositiveDuration, t.null]),
      probeEveryMs: PositiveDuration,
      mountOptions: t.record(t.string, t.string),
      readOnly: t.boolean,
      lockRetry: LockRetryInput,
      allowRollback: t.boolean,
      autoRestoreLimit: AutoRestoreLimitInput,
    }),
  ],
  'ProtectOptions',
)

/**
 * Names one protected volume: its site and volume.
 *
 * @public
 */
export const VolumeRefInput = t.type({ site: Name, volume: Name }, 'VolumeRef')

/**
 * The write-back cache of a volume handle: `writeBack` (default) acknowledges writes once cached and flushes them
 * every `flushEveryMs` (default 5 s; null: only on `flush()`/`close()`) or when more than `maxDirtyBytes` (default
 * 4 MiB) are dirty; `writeThrough` writes to storage before acknowledging.
 *
 * @public
 */
export const CacheInput = t.partial(
  {
    mode: t.keyof({ writeBack: null, writeThrough: null }),
    flushEveryMs: t.union([PositiveDuration, t.null]),
    maxDirtyBytes: positive(Size, 'PositiveSize (more than 0 bytes, or a string like "4MiB")'),
  },
  'CacheOptions',
)

/**
 * Options of `freeze.open`: the protected volume, by name or by mount path, an optional handle id and the actor
 * (application) the handle belongs to, and cache options.
 *
 * @public
 */
export const OpenInput = t.intersection(
  [t.type({ site: Name }), t.union([t.type({ volume: Name }), t.type({ mountPath: MountPath })]), t.partial({ id: Name, actor: Name, cache: CacheInput })],
  'OpenOptions',
)

/**
 * Options of `freeze.restore` (a planned, administrative restore): the volume and optionally the one source to use
 * (default: the protection's sources, in order).
 *
 * @public
 */
export const RestoreInput = t.intersection([VolumeRefInput, t.partial({ source: RestoreSourceCodec })], 'RestoreOptions')

/**
 * Options of `freeze.reportDisruption`: a disruption the embedder's own monitoring saw (a kernel storage exception,
 * a file-system event), optionally naming the actors that hit it, which are frozen even if the host does not list
 * them for the volume.
 *
 * @public
 */
export const ReportInput = t.intersection(
  [VolumeRefInput, t.partial({ actors: t.array(Name), code: boundedText('ErrorCode', 64), reason: boundedText('Reason', 1024) })],
  'ReportDisruptionOptions',
)

/**
 * Options of `freeze.lockVolume` / `freeze.unlockVolume`: the volume and who holds (or asks for) its update lock.
 *
 * @public
 */
export const LockInput = t.intersection([VolumeRefInput, t.type({ holder: Name }), t.partial({ maxAttempts: PositiveInt })], 'LockOptions')

/**
 * Options of `freeze.list`: optionally one site.
 *
 * @public
 */
export const ListInput = t.partial({ site: Name }, 'ListProtectionsOptions')

/**
 * What `freeze.protect` takes; durations may be strings like `"30s"`.
 *
 * @public
 */
export type ProtectOptions = t.OutputOf<typeof ProtectInput>
/**
 * Names one protected volume.
 *
 * @public
 */
export type VolumeRef = t.OutputOf<typeof VolumeRefInput>
/**
 * What `freeze.open` takes.
 *
 * @public
 */
export type OpenOptions = t.OutputOf<typeof OpenInput>
/**
 * Cache options of a volume handle.
 *
 * @public
 */
export type CacheOptions = t.OutputOf<typeof CacheInput>
/**
 * What `freeze.restore` takes.
 *
 * @public
 */
export type RestoreOptions = t.OutputOf<typeof RestoreInput>
/**
 * What `freeze.reportDisruption` takes.
 *
 * @public
 */
export type ReportDisruptionOptions = t.OutputOf<typeof ReportInput>
/**
 * What `freeze.lockVolume` and `freeze.unlockVolume` take.
 *
 * @public
 */
export type LockOptions = t.OutputOf<typeof LockInput>
/**
 * What `freeze.list` takes.
 *
 * @public
 */
export type ListProtectionsOptions = t.OutputOf<typeof ListInput>
