import * as t from 'io-ts'
import { NonNegativeInt, type Json } from '../kernel/codecs.js'
import type { FenceToken } from '../kernel/fencing.js'

/**
 * What a volume is and how it is set: size and block size in bytes, whether it accepts I/O (`online`) and
 * writes (`writable`), and how many bytes are allocated: the blocks this volume wrote that its live data or its
 * snapshots still reference (a clone is charged only for the blocks it wrote itself).
 *
 * @public
 */
export interface VolumeInfo {
  readonly name: string
  readonly sizeBytes: number
  readonly blockSize: number
  readonly online: boolean
  readonly writable: boolean
  readonly allocatedBytes: number
  /** Set when the volume was cloned from a snapshot: `volume@snapshot`. */
  readonly origin?: string
  readonly createdAt: number
}

/**
 * Parameters of a new volume. `blockSize` is a power of two between 4 KiB and 1 MiB (adapter default when absent)
 * and `sizeBytes` a multiple of it.
 *
 * @public
 */
export interface CreateVolumeRequest {
  readonly name: string
  readonly sizeBytes: number
  readonly blockSize?: number
}

/**
 * A point-in-time copy of one volume. It never changes after creation. `held` lists the holds that stop it
 * from being deleted (a replication base, a restart point); `labels` are free-form tags set at creation.
 *
 * @public
 */
export interface SnapshotInfo {
  readonly volume: string
  readonly name: string
  readonly createdAt: number
  readonly sizeBytes: number
  readonly labels: Readonly<Record<string, string>>
  readonly holds: readonly string[]
}

/**
 * Which blocks differ between two points of a volume. `blocks` are block indexes in ascending order; `holes`
 * are the blocks among those that are unallocated at `to` (never written, trimmed or cut off by a shrink), so
 * a replicator sends "zero this block" instead of reading it.
 *
 * @public
 */
export interface ChangedBlocks {
  readonly volume: string
  readonly from: string | null
  readonly to: string
  readonly blockSize: number
  readonly sizeBytes: number
  readonly blocks: readonly number[]
  readonly holes: readonly number[]
}

/**
 * The states a share probe can find, as the namespace module must distinguish them: the share answers
 * (`online`), its volume is offline (`offline`), it no longer exists (`deleted`), or the rights it was
 * probed with are refused (`accessDenied`).
 *
 * @public
 */
export type ShareState = 'online' | 'offline' | 'deleted' | 'accessDenied'

/**
 * A share (export) of a path on a volume, as clients see it. `access` lists the rights granted.
 *
 * @public
 */
export interface ShareInfo {
  readonly name: string
  readonly volume: string
  readonly path: string
  readonly protocol: 'smb' | 'nfs'
  readonly access: readonly ('read' | 'write')[]
  readonly createdAt: number
}

/**
 * The result of probing a share at the share level: what state it was found in and why.
 *
 * @public
 */
export interface ShareProbe {
  readonly share: string
  readonly state: ShareState
  readonly detail?: string
}

/**
 * Where a read comes from: the live volume (default) or one of its snapshots.
 *
 * @public
 */
export interface ReadSource {
  readonly snapshot?: string
}

/**
 * Options of {@link StoragePort.readRanges}: where to read from (see {@link ReadSource}) and, optionally, the
 * caller's buffers to read into.
 *
 * @public
 */
export interface ReadRangesOptions extends ReadSource {
  /**
   * One buffer per range, each exactly as long as its range and none overlapping another: the adapter reads each
   * range into its buffer (zeros where unwritten, whatever the buffer held before) and resolves with these same
   * buffers. A caller that reuses its buffers — the replication engine reads a delta set straight into the send
   * buffers it reuses — reads without allocating. Their contents are undefined if the call rejects; either way the
   * adapter no longer touches them once the call settled.
   */
  readonly into?: readonly Uint8Array[]
}

/**
 * A byte range of a volume: `length` bytes from byte `offset`.
 *
 * @public
 */
export interface ByteRange {
  readonly offset: number
  readonly length: number
}

/**
 * One change of a {@link StoragePort.writeRanges} call: either `data` written at byte `offset` (any offset and
 * length; partial blocks are merged), or a hole: the whole blocks inside `[offset, offset + length)` unmapped, as
 * `trim` does (they read as zeros again; partial edge blocks are kept).
 *
 * @public
 */
export type RangeChange =
  | { readonly offset: number; readonly data: Uint8Array; readonly hole?: undefined }
  | { readonly offset: number; readonly length: number; readonly hole: true; readonly data?: undefined }

/**
 * Options of {@link StoragePort.writeRanges}. `replication: true` is for drkit's replication engine only: it lets
 * the call change a read-only volume (a mirror destination, which stays read-only to every client while delta
 * sets are applied into it). Clients never set it. `lent: true` says the caller leaves the changes' data alone
 * until the call settles, so an adapter that is done with the data by then may use it where it would otherwise
 * copy it (the mirror writes received chunks this way, from buffers it owns until the write settled).
 *
 * @public
 */
export interface WriteRangesOptions {
  readonly replication?: boolean
  readonly lent?: boolean
}

const Bytes = new t.Type<Uint8Array, Uint8Array, unknown>(
  'Uint8Array',
  (u): u is Uint8Array => u instanceof Uint8Array,
  (u, c) => (u instanceof Uint8Array ? t.success(u) : t.failure(u, c)),
  t.identity,
)

const DataChange = t.intersection([t.type({ offset: NonNegativeInt, data: Bytes }), t.partial({ hole: t.undefined })])
const HoleChange = t.intersection([t.type({ offset: NonNegativeInt, length: NonNegativeInt, hole: t.literal(true) }), t.partial({ data: t.undefined })])

/**
 * Codec of the `ranges` of {@link StoragePort.readRanges}: an array of {@link ByteRange}; adapters decode with it.
 *
 * @public
 */
export const ByteRangesCodec = t.readonlyArray(t.type({ offset: NonNegativeInt, length: NonNegativeInt }), 'ByteRange[]')

/**
 * Codec of the options of {@link StoragePort.readRanges} (see {@link ReadRangesOptions}); adapters decode with it,
 * then check the `into` buffers against the ranges with `checkReadTargets`.
 *
 * @public
 */
export const ReadRangesOptionsCodec = t.union([t.undefined, t.partial({ snapshot: t.string, into: t.readonlyArray(Bytes) })], 'ReadRangesOptions')

/**
 * Checks the `into` buffers of a {@link StoragePort.readRanges} call against its ranges: one per range, each of
 * its range's length. Throws what `error(message, details)` builds (the adapter's `E_INVALID_INPUT`) naming the
 * first mismatch, so the call reads nothing.
 *
 * @public
 */
export function checkReadTargets(
  ranges: readonly ByteRange[],
  into: readonly Uint8Array[],
  error: (message: string, details: Record<string, unknown>) => Error,
): void {
  if (into.length !== ranges.length) {
    throw error(`into: ${into.length} buffers for ${ranges.length} ranges`, { field: 'into', buffers: into.length, ranges: ranges.length })
  }
  into.forEach((buffer, index) => {
    const length = (ranges[index] as ByteRange).length
    if (buffer.byteLength !== length) {
      throw error(`into[${index}]: a buffer of ${buffer.byteLength} bytes for a range of ${length}`, { field: `into.${index}`, bytes: buffer.byteLength, length })
    }
  })
}

/**
 * Codec of the `changes` of {@link StoragePort.writeRanges}: an array of `RangeChange` (a change is data or a
 * hole, never both); adapters decode with it.
 *
 * @public
 */
export const RangeChangesCodec = t.readonlyArray(
  new t.Type<RangeChange, RangeChange, unknown>(
    'RangeChange',
    (u): u is RangeChange => DataChange.is(u) || HoleChange.is(u),
    // A change with a `hole` field is judged as a hole, any other as data, so errors name that shape's fields.
    (u, c) => {
      const shape = typeof u === 'object' && u !== null && (u as { hole?: unknown }).hole !== undefined ? HoleChange : DataChange
      return shape.validate(u, t.appendContext(c, '', shape))
    },
    t.identity,
  ),
  'RangeChange[]',
)

/**
 * Codec of `WriteRangesOptions`.
 *
 * @public
 */
export const WriteRangesOptionsCodec = t.union([t.undefined, t.partial({ replication: t.boolean, lent: t.boolean })], 'WriteRangesOptions')

/**
 * The storage port of a site: volumes and their blocks, snapshots, changed blocks, I/O fences, shares and
 * configuration records. Every mutating call takes the caller's {@link FenceToken} and rejects a token lower than
 * the highest seen for its scope with `E_FENCED`. Missing resources reject with `E_NOT_FOUND`, name clashes with
 * `E_CONFLICT`, I/O on an offline volume or a write to a read-only one with `E_PRECONDITION`, checksum
 * mismatches with `E_CORRUPT`.
 *
 * @public
 */
export interface StoragePort {
  /** Adapter name for errors (`memory`, `local`…). */
  readonly kind: string

  /** Creates an empty volume (reads as zeros, nothing allocated), online and writable. */
  createVolume(request: CreateVolumeRequest, token: FenceToken): Promise<VolumeInfo>
  /** Deletes a volume. Rejects with `E_PRECONDITION` while it has snapshots, clones depending on it or shares. */
  deleteVolume(volume: string, token: FenceToken): Promise<void>
  /** Grows or shrinks a volume to `sizeBytes` (a multiple of the block size). Shrinking frees the cut blocks. */
  resizeVolume(volume: string, sizeBytes: number, token: FenceToken): Promise<VolumeInfo>
  /** The volume's current description. */
  volumeInfo(volume: string): Promise<VolumeInfo>
  /** Every volume of the site, sorted by name. */
  listVolumes(): Promise<readonly VolumeInfo[]>
  /** Takes a volume online (I/O allowed) or offline (I/O rejected with `E_PRECONDITION`). */
  setOnline(volume: string, online: boolean, token: FenceToken): Promise<void>
  /** Makes a volume writable or read-only. */
  setWritable(volume: string, writable: boolean, token: FenceToken): Promise<void>

  /**
   * Reads `length` bytes at byte `offset` of the volume or of one of its snapshots. Unwritten ranges read as
   * zeros. Waits while the volume is fenced. Rejects with `E_INVALID_INPUT` past the end.
   */
  read(volume: string, offset: number, length: number, source?: ReadSource): Promise<Uint8Array>
  /**
   * Writes `data` at byte `offset` (any offset and length within the volume; partial blocks are merged).
   * Waits while the volume is fenced; resolves once the write is durable.
   */
  write(volume: string, offset: number, data: Uint8Array, token: FenceToken): Promise<void>
  /** Marks whole blocks in `[offset, offset + length)` as unallocated (they read as zeros again). */
  trim(volume: string, offset: number, length: number, token: FenceToken): Promise<void>
  /**
   * Reads many ranges of the volume or of one of its snapshots in one call; resolves with one array per range,
   * in request order. Each range reads exactly as {@link StoragePort.read} would (zeros where unwritten,
   * `E_CORRUPT` on a checksum mismatch), and all of them from the same state: no write lands between two of
   * them. Waits while the volume is fenced. Rejects with `E_INVALID_INPUT`, reading nothing, when any range is
   * malformed or ends past the end; `E_PRECONDITION` when the volume is offline. Ranges may overlap, repeat or be
   * empty. An adapter reads them as few large reads as it can, so a caller passes a whole batch at once. With
   * `options.into` it reads into the caller's buffers and resolves with them (see `ReadRangesOptions`);
   * buffers that do not match the ranges reject with `E_INVALID_INPUT`, reading nothing.
   */
  readRanges(volume: string, ranges: readonly ByteRange[], options?: ReadRangesOptions): Promise<Uint8Array[]>
  /**
   * Applies many changes to the live volume in one call: data written and holes punched (see
   * `RangeChange`), in array order, so a later change wins where two overlap. The call is one unit: no
   * reader sees some of its changes and not the others, a fence waits for the whole call, and it resolves once
   * every change is durable. An adapter that survives crashes keeps all of a call's changes or none after a crash
   * before the call resolved (the local adapter commits them in one log batch); a unit larger than one call
   * still needs a snapshot to roll back to. A rejected call changes nothing: `E_FENCED` for a stale token (checked
   * as `write` checks it), `E_INVALID_INPUT` when any change is malformed or ends past the end, `E_PRECONDITION`
   * when the volume is offline, or read-only and `options.replication` is not set (see
   * `WriteRangesOptions`; clients never set it). Snapshots keep their contents, as with `write`.
   */
  writeRanges(volume: string, changes: readonly RangeChange[], token: FenceToken, options?: WriteRangesOptions): Promise<void>

  /** Takes a snapshot of the volume as it is now (O(1) in volume size). */
  createSnapshot(volume: string, name: string, token: FenceToken, labels?: Readonly<Record<string, string>>): Promise<SnapshotInfo>
  /** Deletes a snapshot and frees the blocks nothing else needs. `E_PRECONDITION` while held or cloned. */
  deleteSnapshot(volume: string, snapshot: string, token: FenceToken): Promise<void>
  /** A snapshot's description. */
  snapshotInfo(volume: string, snapshot: string): Promise<SnapshotInfo>
  /** Every snapshot of the volume, oldest first. */
  listSnapshots(volume: string): Promise<readonly SnapshotInfo[]>
  /** Rolls the live volume back to the snapshot's contents (size included). */
  restoreSnapshot(volume: string, snapshot: string, token: FenceToken): Promise<void>
  /** Creates a new writable volume whose contents are the snapshot's, sharing unchanged blocks with it. */
  cloneSnapshot(volume: string, snapshot: string, cloneName: string, token: FenceToken): Promise<VolumeInfo>
  /** Adds hold `tag` to a snapshot (idempotent). A held snapshot cannot be deleted. */
  holdSnapshot(volume: string, snapshot: string, tag: string, token: FenceToken): Promise<void>
  /** Removes hold `tag` from a snapshot (idempotent). */
  releaseSnapshot(volume: string, snapshot: string, tag: string, token: FenceToken): Promise<void>
  /**
   * Blocks that differ between snapshot `from` (or `null`: the empty volume) and snapshot `to` (or `'live'`, which
   * always means the live volume — drkit never names a snapshot `live`). Costs O(changed blocks), not O(volume
   * size); blocks never written are not listed unless they became holes (trimmed, or cut off by a shrink — such
   * blocks may lie past `to`'s size).
   */
  changedBlocks(volume: string, from: string | null, to: string | 'live'): Promise<ChangedBlocks>

  /**
   * Fences the volume: I/O that arrives from now on waits (it neither fails nor runs) until `unfence`. I/O
   * already running completes first; resolves once it has, so a snapshot taken next contains exactly the I/O
   * completed before the fence. Fencing a fenced volume rejects with `E_CONFLICT`.
   */
  fence(volume: string, token: FenceToken): Promise<void>
  /** Lifts the fence; waiting I/O runs in arrival order. Unfencing an unfenced volume is a no-op. */
  unfence(volume: string, token: FenceToken): Promise<void>
  /** True while the volume is fenced. */
  isFenced(volume: string): Promise<boolean>

  /** Exports `path` on `volume` as share `name`. `E_CONFLICT` if the name is taken. */
  createShare(share: Omit<ShareInfo, 'createdAt'>, token: FenceToken): Promise<ShareInfo>
  /** Removes a share (the data stays). */
  deleteShare(name: string, token: FenceToken): Promise<void>
  /** Changes the rights a share grants (e.g. to simulate or apply a permission change). */
  setShareAccess(name: string, access: readonly ('read' | 'write')[], token: FenceToken): Promise<void>
  /** A share's description, or undefined if it does not exist. */
  getShare(name: string): Promise<ShareInfo | undefined>
  /** Every share of the site, sorted by name. */
  listShares(): Promise<readonly ShareInfo[]>
  /**
   * Probes a share at the share level: that it exists, that its volume is online and that it can be opened
   * with the `access` rights. Never rejects for these conditions: they are reported in the result.
   */
  probeShare(name: string, access: readonly ('read' | 'write')[]): Promise<ShareProbe>

  /** Stores a configuration record on a volume (key → JSON), replacing any previous value. */
  putConfig(volume: string, key: string, value: Json, token: FenceToken): Promise<void>
  /** A configuration record, or undefined. */
  getConfig(volume: string, key: string): Promise<Json | undefined>
  /** Every configuration record of a volume, sorted by key. */
  listConfig(volume: string): Promise<ReadonlyArray<readonly [string, Json]>>
  /** Deletes a configuration record (idempotent). */
  deleteConfig(volume: string, key: string, token: FenceToken): Promise<void>

  /**
   * Raises this adapter's fence floor for `token.scope` to `token.value` and changes nothing else (durably, where
   * the adapter persists its tokens); a stale token rejects with `E_FENCED`. A coordinator that takes over a scope
   * presents its new token on every port at once, so a deposed coordinator is refused everywhere — not only on the
   * resources the new one happens to touch first.
   */
  presentToken(token: FenceToken): Promise<void>

  /** Releases resources (files, timers). Later calls reject with `E_CLOSED`; a second `close()` does nothing. */
  close(): Promise<void>
}
