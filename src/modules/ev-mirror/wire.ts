import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError } from '../../kernel/errors.js'
import type { Channel } from '../../ports/network.js'

/**
 * The network service the destination side of expandable-volume replication listens on.
 *
 * @public
 */
export const EV_MIRROR_SERVICE = 'drkit.ev-mirror'

/**
 * The first byte of a control frame of this protocol (chunk frames start with `EV_CHUNK`, see chunks.ts).
 *
 * @public
 */
export const EV_CONTROL = 0x21

const Begin = t.type({
  t: t.literal('begin'),
  relationship: t.string,
  epoch: t.number,
  volume: t.string,
  snapshot: t.string,
  base: t.union([t.string, t.null]),
  sizeBytes: t.number,
  blockSize: t.number,
  chunks: t.number,
  labels: t.record(t.string, t.string),
})
const Ready = t.type({ t: t.literal('ready'), from: t.number, done: t.boolean })
const End = t.type({ t: t.literal('end'), chunks: t.number, crc: t.number })
const Done = t.type({ t: t.literal('done') })
const Refused = t.type({ t: t.literal('refused'), code: t.string, message: t.string })

/**
 * The control frames of one member transfer: `begin` (sender), `ready` with the chunk to resume from (receiver),
 * `end` with the chained checksum (sender), `done` once the member snapshot exists (receiver), or `refused`.
 *
 * @public
 */
export const EvControlCodec = t.union([Begin, Ready, End, Done, Refused])

/**
 * One control frame.
 *
 * @public
 */
export type EvControl = t.TypeOf<typeof EvControlCodec>

/**
 * The `begin` frame.
 *
 * @public
 */
export type BeginFrame = t.TypeOf<typeof Begin>

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Encodes a control frame.
 *
 * @public
 */
export function encodeEvControl(frame: EvControl): Uint8Array {
  const json = encoder.encode(JSON.stringify(frame))
  const bytes = new Uint8Array(json.length + 1)
  bytes[0] = EV_CONTROL
  bytes.set(json, 1)
  return bytes
}

/**
 * Decodes a control frame; anything else is `E_CORRUPT`.
 *
 * @public
 */
export function decodeEvControl(bytes: Uint8Array): EvControl {
  if (bytes[0] !== EV_CONTROL) throw new DrError('E_CORRUPT', 'ev-mirror protocol: expected a control frame', { protocol: EV_MIRROR_SERVICE })
  let raw: unknown
  try {
    raw = JSON.parse(decoder.decode(bytes.subarray(1)))
  } catch {
    throw new DrError('E_CORRUPT', 'ev-mirror protocol: control frame is not JSON', { protocol: EV_MIRROR_SERVICE })
  }
  const decoded = EvControlCodec.decode(raw)
  if (isLeft(decoded)) throw new DrError('E_CORRUPT', 'ev-mirror protocol: unknown control frame', { protocol: EV_MIRROR_SERVICE })
  return decoded.right
}

/**
 * Reads the next frame of a channel; `E_UNAVAILABLE` when the channel ends first.
 *
 * @public
 */
export async function nextFrame(frames: AsyncIterator<Uint8Array>, channel: Channel): Promise<Uint8Array> {
  const next = await frames.next()
  if (next.done === true) throw new DrError('E_UNAVAILABLE', `ev-mirror channel ${channel.id} to ${channel.remoteSite} ended`, { site: channel.remoteSite })
  return next.value
}
