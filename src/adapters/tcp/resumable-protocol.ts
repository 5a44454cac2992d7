import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { Buffer } from 'node:buffer'
import { DrError, DrErrorCodes, type DrErrorCode } from '../../kernel/errors.js'
import { crc32 as frameChecksum } from '../../kernel/crc32.js'

/**
 * The messages of a resumable transfer, one per channel frame, told apart by their first byte:
 * `open` (sender: "transfer X — where were we?"), `position` (receiver: "next chunk I need is N"), `chunk`
 * (sender: index, checksum, bytes), `ack` (receiver: "every chunk below N is applied"), `end` (sender: "there are
 * N chunks"), `done` (receiver: "all N applied") and `abort` (either side: a coded reason to stop).
 */
export type ResumableMessage =
  | { readonly kind: 'open'; readonly transferId: string }
  | { readonly kind: 'position'; readonly transferId: string; readonly next: number }
  | { readonly kind: 'chunk'; readonly index: number; readonly data: Uint8Array }
  | { readonly kind: 'ack'; readonly next: number }
  | { readonly kind: 'end'; readonly total: number }
  | { readonly kind: 'done'; readonly total: number }
  | { readonly kind: 'abort'; readonly code: DrErrorCode; readonly message: string }

const TAG = { open: 1, position: 2, chunk: 3, ack: 4, end: 5, done: 6, abort: 7 } as const

/** Bytes in front of a chunk's data: tag (1), index (8, float64), CRC-32 of the data (4). */
export const CHUNK_HEADER_BYTES = 13

/** The version of the resumable transfer protocol. */
export const RESUMABLE_PROTOCOL_VERSION = 1

const OpenCodec = t.type({ version: t.literal(RESUMABLE_PROTOCOL_VERSION), transferId: t.string })
const PositionCodec = t.type({ transferId: t.string, next: t.number })
const AbortCodec = t.type({ code: t.keyof(Object.fromEntries(DrErrorCodes.map((code) => [code, null])) as Record<DrErrorCode, null>), message: t.string })

function corrupt(message: string): DrError {
  return new DrError('E_CORRUPT', `resumable transfer: ${message}`, { adapter: 'tcp' })
}

function jsonMessage(tag: number, value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  const out = Buffer.allocUnsafe(1 + body.length)
  out[0] = tag
  body.copy(out, 1)
  return out
}

function numberMessage(tag: number, value: number): Uint8Array {
  const out = Buffer.allocUnsafe(9)
  out[0] = tag
  out.writeDoubleBE(value, 1)
  return out
}

/** Encodes one message as the payload of one channel frame. */
export function encodeResumable(message: ResumableMessage): Uint8Array {
  switch (message.kind) {
    case 'open':
      return jsonMessage(TAG.open, { version: RESUMABLE_PROTOCOL_VERSION, transferId: message.transferId })
    case 'position':
      return jsonMessage(TAG.position, { transferId: message.transferId, next: message.next })
    case 'abort':
      return jsonMessage(TAG.abort, { code: message.code, message: message.message })
    case 'ack':
      return numberMessage(TAG.ack, message.next)
    case 'end':
      return numberMessage(TAG.end, message.total)
    case 'done':
      return numberMessage(TAG.done, message.total)
    case 'chunk': {
      const out = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + message.data.byteLength)
      out[0] = TAG.chunk
      out.writeDoubleBE(message.index, 1)
      out.writeUInt32BE(frameChecksum(message.data), 9)
      out.set(message.data, CHUNK_HEADER_BYTES)
      return out
    }
  }
}

function decodeJson<A>(codec: t.Type<A, unknown, unknown>, body: Buffer, what: string): A {
  let value: unknown
  try {
    value = JSON.parse(body.toString('utf8'))
  } catch {
    throw corrupt(`${what} message is not JSON`)
  }
  const result = codec.decode(value)
  if (isLeft(result)) throw corrupt(`${what} message is malformed`)
  return result.right
}

function count(frame: Buffer, what: string): number {
  if (frame.length !== 9) throw corrupt(`${what} message has ${frame.length} bytes, not 9`)
  const value = frame.readDoubleBE(1)
  if (!Number.isSafeInteger(value) || value < 0) throw corrupt(`${what} message carries ${value}, not a chunk count`)
  return value
}

/**
 * Decodes one frame of a resumable transfer. Throws `E_CORRUPT` for anything malformed, including a chunk whose
 * data does not match its checksum: such a chunk is never handed on.
 */
export function decodeResumable(payload: Uint8Array): ResumableMessage {
  const frame = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  const body = frame.subarray(1)
  switch (frame[0]) {
    case TAG.open:
      return { kind: 'open', transferId: decodeJson(OpenCodec, body, 'open').transferId }
    case TAG.position: {
      const position = decodeJson(PositionCodec, body, 'position')
      if (!Number.isSafeInteger(position.next) || position.next < 0) throw corrupt(`position ${position.next} is not a chunk count`)
      return { kind: 'position', ...position }
    }
    case TAG.abort:
      return { kind: 'abort', ...decodeJson(AbortCodec, body, 'abort') }
    case TAG.ack:
      return { kind: 'ack', next: count(frame, 'ack') }
    case TAG.end:
      return { kind: 'end', total: count(frame, 'end') }
    case TAG.done:
      return { kind: 'done', total: count(frame, 'done') }
    case TAG.chunk: {
      if (frame.length < CHUNK_HEADER_BYTES) throw corrupt('chunk message is shorter than its header')
      const index = frame.readDoubleBE(1)
      if (!Number.isSafeInteger(index) || index < 0) throw corrupt(`chunk index ${index} is not a chunk number`)
      const data = frame.subarray(CHUNK_HEADER_BYTES)
      if (frameChecksum(data) !== frame.readUInt32BE(9)) {
        throw new DrError('E_CORRUPT', `resumable transfer: chunk ${index} does not match its checksum`, { adapter: 'tcp', chunk: index })
      }
      return { kind: 'chunk', index, data }
    }
    default:
      throw corrupt(`unknown message tag ${String(frame[0])}`)
  }
}
