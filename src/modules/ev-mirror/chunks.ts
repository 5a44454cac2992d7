import { DrError } from '../../kernel/errors.js'
import { decodeRuns, encodeRuns, payloadCrc, type BlockRun } from '../mirror/index.js'

/**
 * The first byte of a chunk frame of the ev-mirror protocol.
 *
 * @public
 */
export const EV_CHUNK = 0x22

/** Frame type, chunk index, run count, CRC-32 of the payload. */
const HEADER = 13

/**
 * A decoded chunk: its index, its runs (the mirror protocol's run codec) and the CRC-32 of its payload.
 *
 * @public
 */
export interface Chunk {
  readonly index: number
  readonly crc: number
  readonly runs: readonly BlockRun[]
}

function corrupt(message: string): DrError {
  return new DrError('E_CORRUPT', `ev-mirror protocol: ${message}`, { protocol: 'drkit.ev-mirror' })
}

/**
 * Encodes a chunk frame — this protocol's 13-byte header around the mirror protocol's run payload — and returns
 * it with the CRC-32 of its payload.
 *
 * @public
 */
export function encodeChunk(index: number, runs: readonly BlockRun[]): { frame: Uint8Array; crc: number } {
  const payload = encodeRuns(runs)
  const crc = payloadCrc(payload)
  const frame = new Uint8Array(HEADER + payload.length)
  const view = new DataView(frame.buffer)
  view.setUint8(0, EV_CHUNK)
  view.setUint32(1, index, true)
  view.setUint32(5, runs.length, true)
  view.setUint32(9, crc, true)
  frame.set(payload, HEADER)
  return { frame, crc }
}

/**
 * Decodes a chunk frame; a checksum mismatch or a malformed frame or run is `E_CORRUPT` (and never applied).
 *
 * @public
 */
export function decodeChunk(bytes: Uint8Array, blockSize: number): Chunk {
  if (bytes.length < HEADER || bytes[0] !== EV_CHUNK) throw corrupt('expected a chunk frame')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const index = view.getUint32(1, true)
  const crc = view.getUint32(9, true)
  const payload = bytes.subarray(HEADER)
  if (payloadCrc(payload) !== crc) throw corrupt(`chunk ${index} fails its checksum`)
  return { index, crc, runs: decodeRuns(payload, blockSize, view.getUint32(5, true)) }
}
