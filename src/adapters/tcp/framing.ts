import { Buffer } from 'node:buffer'
import { DrError } from '../../kernel/errors.js'
import { crc32 as frameChecksum } from '../../kernel/crc32.js'
import { frameBuffer } from './frame-buffers.js'

/**
 * The kinds of frame on a tcp connection. `hello` / `accept` / `refuse` make up the handshake; `data` carries one
 * channel frame, `ack` returns window credit for consumed data frames, `close` ends the channel cleanly.
 */
export const FrameType = {
  hello: 1,
  accept: 2,
  refuse: 3,
  data: 4,
  ack: 5,
  close: 6,
} as const

/**
 * One of the values of {@link FrameType}.
 */
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType]

/**
 * Bytes in a frame header: type (1), payload length (4), payload CRC-32 (4), header CRC-32 (4), big-endian.
 */
export const FRAME_HEADER_BYTES = 13

/**
 * The largest payload a tcp frame may carry by default (64 MiB). A header announcing more is treated as
 * corruption rather than allocated.
 */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024

/**
 * One decoded frame: its type and its payload, which has passed its checksum.
 */
export interface WireFrame {
  readonly type: FrameTypeCode
  readonly payload: Buffer
}

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType))

/**
 * The header that goes in front of `payload` on the wire. The payload checksum guards the bytes of the frame
 * (written as 0 when `checked` is false: on TLS, whose record authentication already rejects any damaged byte);
 * the header checksum guards its type and length, so a damaged length is caught before it is believed.
 */
export function encodeFrameHeader(type: FrameTypeCode, payload: Uint8Array, checked = true): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
  header.writeUInt8(type, 0)
  header.writeUInt32BE(payload.byteLength, 1)
  header.writeUInt32BE(checked ? frameChecksum(payload) : 0, 5)
  header.writeUInt32BE(frameChecksum(header.subarray(0, 9)), 9)
  return header
}

/** A whole frame (header and payload) in one buffer, for the small control frames. */
export function encodeFrame(type: FrameTypeCode, payload: Uint8Array = new Uint8Array(0), checked = true): Buffer {
  return Buffer.concat([encodeFrameHeader(type, payload, checked), payload])
}

function corrupt(message: string, details: Record<string, unknown>): DrError {
  return new DrError('E_CORRUPT', `tcp frame ${message}`, { adapter: 'tcp', ...details })
}

/**
 * Cuts a byte stream into checked frames. Bytes are pushed in as they arrive, in any pieces; whole frames come
 * out in order. A damaged header or payload sets {@link FrameDecoder.failure} (`E_CORRUPT`); the frames before it
 * are still returned, and nothing after it ever is: a stream is never trusted again after a corrupt frame.
 */
export class FrameDecoder {
  #maxFrameBytes: number
  readonly #checked: boolean
  readonly #pieces: Buffer[] = []
  #buffered = 0
  #header: { type: FrameTypeCode; length: number; checksum: number } | undefined
  #failure: DrError | undefined

  /**
   * @param maxFrameBytes - the largest payload accepted; larger announced lengths are corruption
   * @param checked - whether payload checksums are verified (false on TLS: see {@link encodeFrameHeader})
   */
  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES, checked = true) {
    this.#maxFrameBytes = maxFrameBytes
    this.#checked = checked
  }

  /** Adds received bytes and returns the frames they complete, in order (none once the stream failed). */
  push(bytes: Buffer): WireFrame[] {
    if (this.#failure !== undefined) return []
    if (bytes.length > 0) {
      this.#pieces.push(bytes)
      this.#buffered += bytes.length
    }
    const frames: WireFrame[] = []
    try {
      for (;;) {
        if (this.#header === undefined) {
          if (this.#buffered < FRAME_HEADER_BYTES) break
          this.#header = this.#readHeader(this.#take(FRAME_HEADER_BYTES))
        }
        const header = this.#header
        if (this.#buffered < header.length) break
        const payload = this.#take(header.length)
        this.#header = undefined
        if (this.#checked && frameChecksum(payload) !== header.checksum) {
          throw corrupt('payload checksum mismatch', { type: header.type, length: header.length })
        }
        frames.push({ type: header.type, payload })
      }
    } catch (error) {
      this.#failure = error instanceof DrError ? error : corrupt('could not be decoded', { cause: String(error) })
      this.#pieces.length = 0
      this.#buffered = 0
    }
    return frames
  }

  /**
   * Changes the largest payload accepted from the next frame header on (a connection raises it once the peer has
   * authenticated itself).
   */
  set maxFrameBytes(bytes: number) {
    this.#maxFrameBytes = bytes
  }

  /** The corruption that stopped the stream, if one did. */
  get failure(): DrError | undefined {
    return this.#failure
  }

  /** Bytes received that do not yet make a whole frame. */
  get pendingBytes(): number {
    return this.#buffered
  }

  #readHeader(header: Buffer): { type: FrameTypeCode; length: number; checksum: number } {
    if (frameChecksum(header.subarray(0, 9)) !== header.readUInt32BE(9)) throw corrupt('header checksum mismatch', {})
    const type = header.readUInt8(0)
    const length = header.readUInt32BE(1)
    if (!KNOWN_TYPES.has(type)) throw corrupt(`has unknown type ${type}`, { type })
    if (length > this.#maxFrameBytes) throw corrupt(`announces ${length} bytes, over the limit of ${this.#maxFrameBytes}`, { length })
    return { type: type as FrameTypeCode, length, checksum: header.readUInt32BE(5) }
  }

  /**
   * Removes and returns the next `count` buffered bytes: a view when they sit in one piece, else a copy in a
   * buffer from `frameBuffer` (pooled when large, given back with `releaseFrame`).
   */
  #take(count: number): Buffer {
    this.#buffered -= count
    const first = this.#pieces[0]
    if (first !== undefined && first.length >= count) {
      if (first.length === count) this.#pieces.shift()
      else this.#pieces[0] = first.subarray(count)
      return first.subarray(0, count)
    }
    const out = frameBuffer(count)
    let filled = 0
    while (filled < count) {
      const piece = this.#pieces[0] as Buffer
      const used = Math.min(piece.length, count - filled)
      piece.copy(out, filled, 0, used)
      filled += used
      if (used === piece.length) this.#pieces.shift()
      else this.#pieces[0] = piece.subarray(used)
    }
    return out
  }
}
