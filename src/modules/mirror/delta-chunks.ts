import { crc32 } from '../../kernel/crc32.js'
import { DrError, callAdapter } from '../../kernel/errors.js'
import type { ByteRange, StoragePort } from '../../ports/storage.js'
import { chunkFrameLayout, type BlockRun } from './protocol.js'
import type { BufferPool } from '../../kernel/buffer-pool.js'

/**
 * One planned chunk of a delta set: its runs of data blocks and holes (no data yet), and what it weighs.
 *
 * @public
 */
export interface ChunkPlan {
  readonly runs: ReadonlyArray<{ readonly start: number; readonly count: number; readonly hole: boolean }>
  readonly blocks: number
  readonly holes: number
  readonly dataBytes: number
}

/**
 * What a whole delta set carries: the number of chunks, data blocks, holes and data bytes.
 *
 * @public
 */
export interface DeltaSummary {
  readonly chunks: number
  readonly blocks: number
  readonly holes: number
  readonly dataBytes: number
}

/** The most runs one chunk may carry, whatever their kind (bounds a chunk of holes only). */
export const MAX_RUNS_PER_CHUNK = 16_384

/**
 * Splits the changed blocks of a delta set into chunks of at most `chunkBytes` of data (at least one block) and
 * `MAX_RUNS_PER_CHUNK` runs, in ascending block order. The plan depends only on its inputs, so sender and
 * resumed sender cut the same chunks and a transfer can continue at any chunk index.
 *
 * @param blocks - changed blocks, ascending (holes included)
 * @param holes - the blocks among them that are unallocated at the cut (sent as "zero this block")
 * @public
 */
export function planChunks(blocks: readonly number[], holes: readonly number[], blockSize: number, chunkBytes: number): ChunkPlan[] {
  const holeSet = new Set(holes)
  const perChunk = Math.max(1, Math.floor(chunkBytes / blockSize))
  const plans: ChunkPlan[] = []
  let runs: Array<{ start: number; count: number; hole: boolean }> = []
  let dataBlocks = 0
  let holeBlocks = 0
  const close = (): void => {
    if (runs.length === 0) return
    plans.push({ runs, blocks: dataBlocks, holes: holeBlocks, dataBytes: dataBlocks * blockSize })
    runs = []
    dataBlocks = 0
    holeBlocks = 0
  }
  for (const block of blocks) {
    const hole = holeSet.has(block)
    if (!hole && dataBlocks >= perChunk) close()
    const last = runs[runs.length - 1]
    if (last !== undefined && last.hole === hole && last.start + last.count === block) {
      last.count++
    } else {
      if (runs.length >= MAX_RUNS_PER_CHUNK) close()
      runs.push({ start: block, count: 1, hole })
    }
    if (hole) holeBlocks++
    else dataBlocks++
  }
  close()
  return plans
}

/**
 * Totals of a chunk plan.
 *
 * @public
 */
export function summarize(plans: readonly ChunkPlan[]): DeltaSummary {
  let blocks = 0
  let holes = 0
  let dataBytes = 0
  for (const plan of plans) {
    blocks += plan.blocks
    holes += plan.holes
    dataBytes += plan.dataBytes
  }
  return { chunks: plans.length, blocks, holes, dataBytes }
}

/**
 * Reads the data of planned chunks from a snapshot (or the live volume when `snapshot` is undefined), in one
 * storage call for all their runs: the adapter can then coalesce blocks that sit next to each other on disk even
 * when they belong to different chunks (changed blocks written one after another usually do).
 *
 * @public
 */
export async function readChunks(
  storage: StoragePort,
  volume: string,
  snapshot: string | undefined,
  plans: readonly ChunkPlan[],
  blockSize: number,
): Promise<BlockRun[][]> {
  const source = snapshot === undefined ? undefined : { snapshot }
  const ranges = plans.flatMap((plan) => plan.runs.filter((run) => !run.hole).map((run) => ({ offset: run.start * blockSize, length: run.count * blockSize })))
  const data = ranges.length === 0 ? [] : await callAdapter(storage.kind, 'readRanges', () => storage.readRanges(volume, ranges, source))
  if (data.length !== ranges.length) throw readRangesBroke(storage.kind, `returned ${data.length} ranges for ${ranges.length}`)
  let next = 0
  return plans.map((plan) => plan.runs.map((run): BlockRun => ({ start: run.start, count: run.count, data: run.hole ? null : (data[next++] as Uint8Array) })))
}

/**
 * A chunk frame whose run data has been read into place: its plan, the frame's bytes (headers still to write with
 * `writeChunkFrame`), and `release`, to call once the frame is sent.
 *
 * @public
 */
export interface ChunkFrame {
  readonly plan: ChunkPlan
  readonly frame: Uint8Array
  readonly release: () => void
}

/**
 * Reads the data of planned chunks from a snapshot (or the live volume) straight into chunk frames taken from
 * `buffers`, in one storage call for all their runs (`readRanges` with `into`): no copy, and no new memory once
 * the buffers are warm. An adapter that returns other arrays than the buffers it was given is copied from.
 *
 * @public
 */
export async function readChunkFrames(
  storage: StoragePort,
  volume: string,
  snapshot: string | undefined,
  plans: readonly ChunkPlan[],
  blockSize: number,
  buffers: BufferPool,
): Promise<ChunkFrame[]> {
  const frames: ChunkFrame[] = []
  const ranges: ByteRange[] = []
  const into: Uint8Array[] = []
  for (const plan of plans) {
    const layout = chunkFrameLayout(plan.runs, blockSize)
    const { bytes, release } = buffers.take(layout.size)
    frames.push({ plan, frame: bytes, release })
    let next = 0
    for (const run of plan.runs) {
      if (run.hole) continue
      const at = layout.dataAt[next++] as number
      ranges.push({ offset: run.start * blockSize, length: run.count * blockSize })
      into.push(bytes.subarray(at, at + run.count * blockSize))
    }
  }
  // On a failure the buffers are not given back: an adapter may still be writing into them.
  if (ranges.length > 0) {
    const options = snapshot === undefined ? { into } : { snapshot, into }
    const data = await callAdapter(storage.kind, 'readRanges', () => storage.readRanges(volume, ranges, options))
    checkRead(storage.kind, data, into)
  }
  return frames
}

/** Checks what `readRanges` resolved with against the buffers it was given, copying from arrays that are not them. */
function checkRead(adapter: string, data: readonly Uint8Array[], into: readonly Uint8Array[]): void {
  if (data.length !== into.length) throw readRangesBroke(adapter, `returned ${data.length} ranges for ${into.length}`)
  data.forEach((bytes, i) => {
    const target = into[i] as Uint8Array
    if (bytes === target) return
    if (!(bytes instanceof Uint8Array) || bytes.length !== target.length) throw readRangesBroke(adapter, `returned a result of another length for range ${i}`)
    target.set(bytes)
  })
}

/** The `E_ADAPTER` for a `readRanges` whose result breaks the port's contract. */
function readRangesBroke(adapter: string, message: string): DrError {
  return new DrError('E_ADAPTER', `${adapter}.readRanges ${message}`, { adapter, operation: 'readRanges' })
}

/**
 * Reads the data of one planned chunk (see `readChunks`).
 *
 * @public
 */
export async function readChunk(storage: StoragePort, volume: string, snapshot: string | undefined, plan: ChunkPlan, blockSize: number): Promise<BlockRun[]> {
  return (await readChunks(storage, volume, snapshot, [plan], blockSize))[0] as BlockRun[]
}

/**
 * The CRC-32 of a chunk payload.
 *
 * @public
 */
export function payloadCrc(payload: Uint8Array): number {
  return crc32(payload) >>> 0
}

/**
 * Folds one chunk's CRC into the running checksum of a delta set (the checksum the header carries over all its
 * data: every chunk's CRC, in order).
 *
 * @public
 */
export function chainCrc(running: number, chunkCrc: number): number {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, chunkCrc >>> 0, true)
  return crc32(bytes, running) >>> 0
}
