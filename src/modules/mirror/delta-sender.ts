import type { ChangedBlocks, StoragePort } from '../../ports/storage.js'
import { getOrThrow } from '../../kernel/either.js'
import type { Cut } from './cut-log.js'
import { planDelta } from './decide.js'
import type { PartialDeltaSet } from './destination.js'
import { chainCrc, payloadCrc, planChunks, readChunk, summarize, type ChunkPlan, type DeltaSummary } from './delta-chunks.js'
import { encodeChunkFrame, encodeControl, type BlockRun } from './protocol.js'

/** How many chunks are read ahead of the one being sent (reads overlap the network). */
const READ_AHEAD = 3

/**
 * Where and how a delta set is sent: how a frame goes to the channel, the source volume and its storage, the
 * session's epoch, block size and chunk size, and a counter of the bytes handed to the channel.
 *
 * @public
 */
export interface DeltaSetTarget {
  readonly send: (frame: Uint8Array) => Promise<void>
  readonly storage: StoragePort
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
 * each read in one storage call with a few reads ahead of the network, then its header. `partial` is what the
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
  const read = (chunk: ChunkPlan): Promise<BlockRun[]> => readChunk(target.storage, target.volume, cut.name, chunk, target.blockSize)
  const ahead: Array<Promise<BlockRun[]>> = []
  const fill = (index: number): void => {
    for (let next = index + ahead.length; ahead.length < READ_AHEAD && next < plans.length; next++) {
      const reading = read(plans[next] as ChunkPlan)
      reading.catch(() => undefined)
      ahead.push(reading)
    }
  }
  for (let index = from; index < plans.length; index++) {
    fill(index)
    const runs = await (ahead.shift() as Promise<BlockRun[]>)
    fill(index + 1)
    const { frame, crc: chunkCrc } = encodeChunkFrame({ epoch: target.epoch, n: cut.n, baseN, index }, runs, payloadCrc)
    await target.send(frame)
    target.sent(frame.length, true)
    crc = chainCrc(crc, chunkCrc)
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
