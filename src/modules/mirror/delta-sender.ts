import type { ChangedBlocks, StoragePort } from '../../ports/storage.js'
import { getOrThrow } from '../../kernel/either.js'
import type { Cut } from './cut-log.js'
import { planDelta } from './decide.js'
import type { PartialDeltaSet } from './destination.js'
import { chainCrc, payloadCrc, planChunks, readChunkFrames, summarize, type ChunkFrame, type ChunkPlan, type DeltaSummary } from './delta-chunks.js'
import { encodeControl, writeChunkFrame } from './protocol.js'
import type { BufferPool } from '../../kernel/buffer-pool.js'

/**
 * How much chunk data one read takes: the chunks of a batch are read in one storage call (so blocks of different
 * chunks that sit together on disk are read together), and the next batch is read while this one is sent.
 */
const READ_BATCH_BYTES = 16 * 1024 * 1024

/**
 * Where and how a delta set is sent: how a frame goes to the channel, the source volume and its storage, the
 * buffers chunk frames are built in, the session's epoch, block size and chunk size, and a counter of the bytes
 * handed to the channel.
 *
 * @public
 */
export interface DeltaSetTarget {
  readonly send: (frame: Uint8Array) => Promise<void>
  readonly storage: StoragePort
  readonly buffers: BufferPool
  readonly volume: string
  readonly epoch: number
  readonly blockSize: number
  readonly chunkBytes: number
  readonly sent: (bytes: number, chunk: boolean) => void
}

/**
 * What one delta set carried: its totals, and the chunk it continued from (0 unless the destination already
 * held part of it).
 *
 * @public
 */
export interface SentDeltaSet {
  readonly summary: DeltaSummary
  readonly from: number
}

/**
 * Sends cut `cut` — the blocks it changed since its base (`full`: every allocated block) — as checksummed chunks,
 * read in batches of chunks (one storage call each, the next batch read while one is sent), then its header. `partial` is what the
 * destination already holds of it: the transfer continues at the first chunk it lacks, with the running checksum
 * it reported.
 *
 * @public
 */
export async function sendDeltaSet(target: DeltaSetTarget, cut: Cut, full: boolean, changed: ChangedBlocks, partial: PartialDeltaSet | undefined): Promise<SentDeltaSet> {
  getOrThrow(planDelta(full ? null : cut.baseN, cut.n))
  const holes = new Set(changed.holes)
  const blocks = full ? changed.blocks.filter((b) => !holes.has(b)) : changed.blocks
  const plans = planChunks(blocks, full ? [] : changed.holes, target.blockSize, target.chunkBytes)
  const summary = summarize(plans)
  const resume = partial !== undefined && partial.received <= plans.length
  const from = resume ? partial.received : 0
  let crc = resume ? partial.crc : 0
  const baseN = full ? null : cut.baseN
  const batches = batched(plans, from)
  const read = (batch: { readonly from: number; readonly to: number }): Promise<ChunkFrame[]> => {
    const reading = readChunkFrames(target.storage, target.volume, cut.name, plans.slice(batch.from, batch.to), target.blockSize, target.buffers)
    reading.catch(() => undefined)
    return reading
  }
  let ahead = batches[0] === undefined ? undefined : read(batches[0])
  for (const [b, batch] of batches.entries()) {
    const chunks = await (ahead as Promise<ChunkFrame[]>)
    const after = batches[b + 1]
    ahead = after === undefined ? undefined : read(after)
    for (const [offset, { plan, frame, release }] of chunks.entries()) {
      const chunkCrc = writeChunkFrame(frame, { epoch: target.epoch, n: cut.n, baseN, index: batch.from + offset }, plan.runs, target.blockSize, payloadCrc)
      await target.send(frame)
      target.sent(frame.length, true)
      release()
      crc = chainCrc(crc, chunkCrc)
    }
  }
  const header = encodeControl({
    t: 'header',
    epoch: target.epoch,
    n: cut.n,
    baseN,
    chunks: summary.chunks,
    blocks: summary.blocks,
    holes: summary.holes,
    dataBytes: summary.dataBytes,
    sizeBytes: changed.sizeBytes,
    blockSize: target.blockSize,
    crc,
    cutAt: cut.cutAt,
  })
  await target.send(header)
  target.sent(header.length, false)
  return { summary, from }
}

/** Groups the chunks from `from` on into read batches of at most {@link READ_BATCH_BYTES} of data (one chunk at least). */
function batched(plans: readonly ChunkPlan[], from: number): Array<{ readonly from: number; readonly to: number }> {
  const batches: Array<{ from: number; to: number }> = []
  let bytes = 0
  for (let index = from; index < plans.length; index++) {
    const current = batches[batches.length - 1]
    const size = (plans[index] as ChunkPlan).dataBytes
    if (current !== undefined && bytes + size <= READ_BATCH_BYTES) {
      current.to = index + 1
      bytes += size
    } else {
      batches.push({ from: index, to: index + 1 })
      bytes = size
    }
  }
  return batches
}
