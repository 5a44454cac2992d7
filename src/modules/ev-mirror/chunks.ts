import { DrError, callAdapter } from '../../kernel/errors.js'
import { crc32 } from '../../kernel/crc32.js'
import type { StoragePort } from '../../ports/storage.js'

/**
 * The first byte of a chunk frame of the ev-mirror protocol.
 *
 * @public
 */
export const EV_CHUNK = 0x22

const HEADER = 13
const RUN_HEADER = 9

/**
 * A run of blocks: `count` blocks from `start`, data (read at send time) or a hole.
 *
 * @public
 */
export interface RunPlan {
  readonly start: number
  readonly count: number
  readonly hole: boolean
}

/**
 * A run with its data (null for a hole).
 *
 * @public
 */
export interface DataRun {
  readonly start: number
  readonly count: number
  readonly data: Uint8Array | null
}

/**
 * A decoded chunk: its index, its runs and the CRC-32 of its payload.
 *
 * @public
 */
export interface Chunk {
  readonly index: number
  readonly crc: number
  readonly runs: readonly DataRun[]
}

/**
 * Splits changed blocks (ascending) into chunks of at most `chunkBytes` of data (at least one block each), as
 * runs of consecutive data blocks or holes. The plan depends only on its inputs, so a resumed sender cuts the
 * same chunks.
 *
 * @public
 */
export function planRuns(blocks: readonly number[], holes: readonly number[], blockSize: number, chunkBytes: number): RunPlan[][] {
  const holeSet = new Set(holes)
  const perChunk = Math.max(1, Math.floor(chunkBytes / blockSize))
  const chunks: RunPlan[][] = []
  let runs: Array<{ start: number; count: number; hole: boolean }> = []
  let data = 0
  for (const block of blocks) {
    const hole = holeSet.has(block)
    if (!hole && data >= perChunk) {
      chunks.push(runs)
      runs = []
      data = 0
    }
    const last = runs[runs.length - 1]
    if (last !== undefined && last.hole === hole && last.start + last.count === block) last.count += 1
    else runs.push({ start: block, count: 1, hole })
    if (!hole) data += 1
  }
  if (runs.length > 0) chunks.push(runs)
  return chunks
}

/**
 * Reads the data of one planned chunk from a snapshot of `volume`.
 *
 * @public
 */
export function readRuns(storage: StoragePort, volume: string, snapshot: string, plan: readonly RunPlan[], blockSize: number): Promise<DataRun[]> {
  return Promise.all(
    plan.map(async (run): Promise<DataRun> => {
      if (run.hole) return { start: run.start, count: run.count, data: null }
      const data = await callAdapter(storage.kind, 'read', () => storage.read(volume, run.start * blockSize, run.count * blockSize, { snapshot }))
      return { start: run.start, count: run.count, data }
    }),
  )
}

/**
 * Encodes a chunk frame; returns it with the CRC-32 of its payload.
 *
 * @public
 */
export function encodeChunk(index: number, runs: readonly DataRun[]): { frame: Uint8Array; crc: number } {
  const size = runs.reduce((n, r) => n + RUN_HEADER + (r.data?.length ?? 0), 0)
  const bytes = new Uint8Array(HEADER + size)
  const view = new DataView(bytes.buffer)
  let at = HEADER
  for (const run of runs) {
    view.setUint32(at, run.start, true)
    view.setUint32(at + 4, run.count, true)
    view.setUint8(at + 8, run.data === null ? 1 : 0)
    at += RUN_HEADER
    if (run.data !== null) {
      bytes.set(run.data, at)
      at += run.data.length
    }
  }
  const crc = crc32(bytes.subarray(HEADER)) >>> 0
  view.setUint8(0, EV_CHUNK)
  view.setUint32(1, index, true)
  view.setUint32(5, runs.length, true)
  view.setUint32(9, crc, true)
  return { frame: bytes, crc }
}

function corrupt(message: string): DrError {
  return new DrError('E_CORRUPT', `ev-mirror protocol: ${message}`, { protocol: 'drkit.ev-mirror' })
}

/**
 * Decodes a chunk frame; a checksum mismatch or a malformed frame is `E_CORRUPT` (and never applied).
 *
 * @public
 */
export function decodeChunk(bytes: Uint8Array, blockSize: number): Chunk {
  if (bytes.length < HEADER || bytes[0] !== EV_CHUNK) throw corrupt('expected a chunk frame')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const index = view.getUint32(1, true)
  const expectedRuns = view.getUint32(5, true)
  const crc = view.getUint32(9, true)
  if ((crc32(bytes.subarray(HEADER)) >>> 0) !== crc) throw corrupt(`chunk ${index} fails its checksum`)
  const runs: DataRun[] = []
  let at = HEADER
  while (at < bytes.length) {
    if (at + RUN_HEADER > bytes.length) throw corrupt('truncated run header')
    const start = view.getUint32(at, true)
    const count = view.getUint32(at + 4, true)
    const hole = view.getUint8(at + 8) === 1
    at += RUN_HEADER
    if (count === 0) throw corrupt('empty run')
    if (hole) {
      runs.push({ start, count, data: null })
      continue
    }
    const length = count * blockSize
    if (at + length > bytes.length) throw corrupt('truncated run data')
    runs.push({ start, count, data: bytes.subarray(at, at + length) })
    at += length
  }
  if (runs.length !== expectedRuns) throw corrupt(`chunk ${index}: expected ${expectedRuns} runs, found ${runs.length}`)
  return { index, crc, runs }
}

/**
 * Folds one chunk's CRC into the running checksum of a member transfer.
 *
 * @public
 */
export function chainCrc(running: number, chunkCrc: number): number {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, chunkCrc >>> 0, true)
  return crc32(bytes, running) >>> 0
}
