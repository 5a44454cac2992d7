import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { Buffer } from 'node:buffer'
import { DrError } from '../../kernel/errors.js'
import { Name, PositiveInt } from '../../kernel/codecs.js'

/**
 * The version of the tcp channel protocol this adapter speaks. A peer that speaks another is refused.
 */
export const TCP_PROTOCOL_VERSION = 2

/**
 * The largest frame a server reads from a connection before its hello has been checked (4 KiB): an unauthenticated
 * peer can make the server hold no more than this, however large the frames of an open channel may be. Every hello
 * fits: at most two 128-character site names, a 256-character service (1.5 KiB as JSON even if every character
 * is escaped) and the adapter's own channel id of under 300 characters.
 */
export const HANDSHAKE_MAX_FRAME_BYTES = 4096

const WindowCodec = t.type({ frames: PositiveInt, bytes: PositiveInt })

const ShortText = (name: string, max: number): t.Type<string, string, unknown> =>
  new t.Type<string, string, unknown>(
    name,
    (u): u is string => typeof u === 'string' && u.length <= max,
    (u, c) => (typeof u === 'string' && u.length <= max ? t.success(u) : t.failure(u, c)),
    t.identity,
  )

/**
 * The first frame of a connection: who is connecting, to which site and service, the channel's id, and the
 * window and largest frame the connecting side can receive.
 */
export const HelloCodec = t.type({
  version: t.number,
  kind: t.union([t.literal('channel'), t.literal('probe')]),
  site: Name,
  target: Name,
  service: ShortText('service', 256),
  channel: ShortText('channel id', 512),
  window: WindowCodec,
  maxFrameBytes: PositiveInt,
})

/** The handshake frame a client sends. */
export type Hello = t.TypeOf<typeof HelloCodec>

/** The server's acceptance: its site, the window it can receive and the largest frame it takes. */
export const AcceptCodec = t.type({ version: t.number, site: Name, window: WindowCodec, maxFrameBytes: PositiveInt })

/** The handshake frame a server accepts a connection with. */
export type Accept = t.TypeOf<typeof AcceptCodec>

/** Why a server refused a connection. */
export const RefusalReasonCodec = t.union([
  t.literal('version'),
  t.literal('authentication'),
  t.literal('wrong-site'),
  t.literal('no-listener'),
  t.literal('closed'),
])

/** The handshake frame a server refuses a connection with. */
export const RefuseCodec = t.type({ reason: RefusalReasonCodec, message: ShortText('message', 4096) })

/** A refusal: why, and a sentence for the log. */
export type Refuse = t.TypeOf<typeof RefuseCodec>

/** Encodes a handshake frame's payload. */
export function encodeHandshake(value: Hello | Accept | Refuse): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8')
}

/** Decodes a handshake frame's payload, or throws `E_CORRUPT` naming what did not fit. */
export function decodeHandshake<A>(codec: t.Type<A, unknown, unknown>, payload: Uint8Array, what: string): A {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'))
  } catch (error) {
    throw new DrError('E_CORRUPT', `tcp ${what} frame is not JSON`, { adapter: 'tcp' }, { cause: error })
  }
  const result = codec.decode(value)
  if (isLeft(result)) throw new DrError('E_CORRUPT', `tcp ${what} frame is malformed`, { adapter: 'tcp', what })
  return result.right
}
