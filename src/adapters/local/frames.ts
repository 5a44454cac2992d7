import { DrError } from '../../kernel/errors.js'
import { crc32 } from '../../kernel/crc32.js'

const HEADER_BYTES = 16
const MAX_BODY_BYTES = 1 << 30

/** Frame magic of write-ahead log batches. */
export const LOG_MAGIC = 0x574b5244 // 'DRKW'
/** Frame magic of checkpoint sections. */
export const CHECKPOINT_MAGIC = 0x434b5244 // 'DRKC'

/** `E_CORRUPT` for damaged or inconsistent pool metadata in `file`. */
export function corruptFile(file: string, why: string, details: Record<string, unknown> = {}): DrError {
  return new DrError('E_CORRUPT', `local: ${file} is damaged: ${why}`, { adapter: 'local', file, ...details })
}

/** The concatenation of byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let bytes = 0
  for (const part of parts) bytes += part.length
  const out = new Uint8Array(bytes)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/**
 * Wraps `body` in a checksummed frame: magic, body length, body CRC and a CRC of those three, so a reader can
 * tell a frame from garbage and a complete frame from a torn one.
 */
export function encodeFrame(magic: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(HEADER_BYTES + body.length)
  const view = new DataView(frame.buffer)
  view.setUint32(0, magic, true)
  view.setUint32(4, body.length, true)
  view.setUint32(8, crc32(body), true)
  view.setUint32(12, crc32(frame.subarray(0, 12)), true)
  frame.set(body, HEADER_BYTES)
  return frame
}

/** What a scan of a frame file found: the bodies of the valid frames in order and where they end. */
export interface FrameScan {
  readonly bodies: Uint8Array[]
  /** Byte offset just past the last valid frame: the length to truncate a torn tail to. */
  readonly validEnd: number
  /** True when bytes other than zeros (preallocated space) follow `validEnd`: a torn tail was discarded. */
  readonly tornTail: boolean
}

function frameAt(data: Uint8Array, view: DataView, at: number, magic: number): Uint8Array | undefined {
  if (at + HEADER_BYTES > data.length) return undefined
  if (view.getUint32(at, true) !== magic) return undefined
  if (view.getUint32(at + 12, true) !== crc32(data.subarray(at, at + 12))) return undefined
  const length = view.getUint32(at + 4, true)
  if (length > MAX_BODY_BYTES || at + HEADER_BYTES + length > data.length) return undefined
  const body = data.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length)
  return crc32(body) === view.getUint32(at + 8, true) ? body : undefined
}

/**
 * Reads the frames of a file. Frames are appended one at a time and each is durable before the next is
 * written, so zeros after the last frame are preallocated space, a damaged frame followed only by garbage is a
 * torn tail (an append cut short by a crash) and is dropped; a damaged frame followed by a valid one means durable data was damaged, and the scan rejects with
 * `E_CORRUPT`.
 */
export function scanFrames(data: Uint8Array, magic: number, file: string): FrameScan {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const bodies: Uint8Array[] = []
  let at = 0
  while (at < data.length) {
    const body = frameAt(data, view, at, magic)
    if (body === undefined) break
    bodies.push(body)
    at += HEADER_BYTES + body.length
  }
  const tornTail = data.subarray(at).some((byte) => byte !== 0)
  if (tornTail) {
    for (let probe = at + 1; probe + HEADER_BYTES <= data.length; probe++) {
      if (frameAt(data, view, probe, magic) !== undefined) {
        throw corruptFile(file, `bad frame at byte ${at}, before intact ones`, { offset: at })
      }
    }
  }
  return { bodies, validEnd: at, tornTail }
}
