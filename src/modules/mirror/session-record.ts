import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError, callAdapter } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StoragePort } from '../../ports/storage.js'
import { MIRROR_CONFIG } from './naming.js'

/**
 * When a source cuts delta sets: every `everyMs`, or as soon as `highWaterMarkBytes` of changed data have
 * accumulated (checked every `probeMs`), whichever comes first.
 *
 * @public
 */
export const CutPolicyCodec = t.type({ everyMs: t.number, highWaterMarkBytes: t.number, probeMs: t.number }, 'CutPolicy')

/**
 * When a destination plays back complete delta sets: at once (both null), or in batches once the oldest waiting
 * one is `everyMs` old or `highWaterMarkBytes` are waiting.
 *
 * @public
 */
export const PlaybackPolicyCodec = t.type(
  { everyMs: t.union([t.number, t.null]), highWaterMarkBytes: t.union([t.number, t.null]) },
  'PlaybackPolicy',
)

/**
 * How a relationship transfers: chunk size, send retries before `mirror.sendFailed`, the staging bound at the
 * destination beyond which it stops reading (back-pressure to the source), null for none, the bandwidth the
 * source may use in bytes per second (absent: unlimited), and the backlog bound at the source (changed data cut
 * but not yet played back) beyond which the source's I/O is suspended until the destination catches up (absent:
 * none).
 *
 * @public
 */
export const TransferPolicyCodec = t.intersection(
  [
    t.type({ chunkBytes: t.number, retries: t.number, stagingMaxBytes: t.union([t.number, t.null]) }),
    t.partial({ bandwidthBytesPerSecond: t.number, backlogMaxBytes: t.number }),
  ],
  'TransferPolicy',
)

/**
 * Where the other side of a relationship is.
 *
 * @public
 */
export const VolumeRefCodec = t.type({ site: t.string, volume: t.string }, 'VolumeRef')

/**
 * The base a side starts from when attached: the delta-set number both sides hold a snapshot of, and the name
 * of that snapshot on this side (null: nothing in common, a full copy follows).
 *
 * @public
 */
export const AttachBaseCodec = t.union([t.type({ n: t.number, snapshot: t.string }), t.null], 'AttachBase')

/**
 * A volume's mirror session record, kept by the agent as a configuration record on the volume itself, so that
 * each site knows its own role and epoch after a restart, whatever the coordinator remembers.
 *
 * @public
 */
export const VolumeSessionCodec = t.type(
  {
    session: t.string,
    role: t.union([t.literal('source'), t.literal('destination'), t.literal('primary')]),
    epoch: t.number,
    active: t.boolean,
    peer: VolumeRefCodec,
    base: AttachBaseCodec,
    cut: CutPolicyCodec,
    playback: PlaybackPolicyCodec,
    transfer: TransferPolicyCodec,
  },
  'VolumeSession',
)

/** The cut policy. */
export type CutPolicy = t.TypeOf<typeof CutPolicyCodec>
/** The playback policy. */
export type PlaybackPolicy = t.TypeOf<typeof PlaybackPolicyCodec>
/** The transfer policy. */
export type TransferPolicy = t.TypeOf<typeof TransferPolicyCodec>
/** A site and volume. */
export type VolumeRef = t.TypeOf<typeof VolumeRefCodec>
/** An attach base. */
export type AttachBase = t.TypeOf<typeof AttachBaseCodec>
/** A volume session record. */
export type VolumeSession = t.TypeOf<typeof VolumeSessionCodec>

/**
 * Reads the session record of a volume, if any. A record that does not decode is `E_CORRUPT`.
 *
 * @public
 */
export async function readVolumeSession(storage: StoragePort, volume: string): Promise<VolumeSession | undefined> {
  const raw = await callAdapter(storage.kind, 'getConfig', () => storage.getConfig(volume, MIRROR_CONFIG.session))
  if (raw === undefined) return undefined
  const decoded = VolumeSessionCodec.decode(raw)
  if (isLeft(decoded)) throw new DrError('E_CORRUPT', `mirror: the session record of volume "${volume}" is damaged`, { volume })
  return decoded.right
}

/**
 * Writes the session record of a volume.
 *
 * @public
 */
export async function writeVolumeSession(storage: StoragePort, volume: string, record: VolumeSession, token: FenceToken): Promise<void> {
  await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(volume, MIRROR_CONFIG.session, VolumeSessionCodec.encode(record), token))
}
