import { DrError, callAdapter } from '../../kernel/errors.js'
import type { NetworkPort } from '../../ports/network.js'
import type { StoragePort } from '../../ports/storage.js'
import { chainCrc, planChunks, readChunk } from '../mirror/index.js'
import { encodeChunk } from './chunks.js'
import { EV_MIRROR_SERVICE, decodeEvControl, encodeEvControl, nextFrame } from './wire.js'

/**
 * One member transfer: the source constituent and its snapshot (and the base snapshot for an update), the
 * destination site and constituent (and its copy of the base), the relationship and its epoch.
 *
 * @public
 */
export interface MemberTransfer {
  readonly relationship: string
  readonly epoch: number
  readonly source: { readonly storage: StoragePort; readonly network: NetworkPort; readonly volume: string; readonly snapshot: string; readonly base: string | null }
  readonly destination: { readonly site: string; readonly volume: string; readonly base: string | null }
  readonly chunkBytes: number
  readonly signal: AbortSignal
}

/**
 * What one member transfer did: the chunks of the delta, the chunks and data bytes sent this time, and the chunk
 * it resumed from (0 when it started afresh; the chunk count when the destination already had the snapshot).
 *
 * @public
 */
export interface MemberTransferResult {
  readonly chunks: number
  readonly sent: number
  readonly bytes: number
  readonly resumedFrom: number
}

/**
 * Sends one member snapshot (or the update from its base) to the destination over a channel: the changed blocks
 * between the two snapshots, in checksummed chunks, from the chunk the destination says it needs next.
 *
 * @public
 */
export async function sendMember(job: MemberTransfer): Promise<MemberTransferResult> {
  const { storage, network } = job.source
  const changed = await callAdapter(storage.kind, 'changedBlocks', () => storage.changedBlocks(job.source.volume, job.source.base, job.source.snapshot))
  const info = await callAdapter(storage.kind, 'snapshotInfo', () => storage.snapshotInfo(job.source.volume, job.source.snapshot))
  const plans = planChunks(changed.blocks, changed.holes, changed.blockSize, job.chunkBytes)
  const channel = await callAdapter(network.kind, 'connect', () => network.connect(job.destination.site, EV_MIRROR_SERVICE))
  const frames = channel.frames()[Symbol.asyncIterator]()
  try {
    await channel.send(
      encodeEvControl({
        t: 'begin',
        relationship: job.relationship,
        epoch: job.epoch,
        volume: job.destination.volume,
        snapshot: job.source.snapshot,
        base: job.source.base === null ? null : job.destination.base,
        sizeBytes: info.sizeBytes,
        blockSize: changed.blockSize,
        chunks: plans.length,
        labels: { 'ev-mirror': job.relationship },
      }),
    )
    const ready = decodeEvControl(await nextFrame(frames, channel))
    if (ready.t === 'refused') throw refusal(ready.code, ready.message)
    if (ready.t !== 'ready') throw new DrError('E_CORRUPT', 'ev-mirror protocol: expected ready', {})
    if (ready.done) return { chunks: plans.length, sent: 0, bytes: 0, resumedFrom: plans.length }
    let chained = 0
    let bytes = 0
    for (let index = ready.from; index < plans.length; index++) {
      if (job.signal.aborted) throw new DrError('E_ABORTED', `transfer of ${job.source.volume}@${job.source.snapshot} was aborted`, {})
      const plan = plans[index]
      if (plan === undefined) break
      const runs = await readChunk(storage, job.source.volume, job.source.snapshot, plan, changed.blockSize)
      const { frame, crc } = encodeChunk(index, runs)
      await channel.send(frame)
      chained = chainCrc(chained, crc)
      bytes += runs.reduce((n, r) => n + (r.data?.length ?? 0), 0)
    }
    await channel.send(encodeEvControl({ t: 'end', chunks: plans.length, crc: chained }))
    const done = decodeEvControl(await nextFrame(frames, channel))
    if (done.t === 'refused') throw refusal(done.code, done.message)
    if (done.t !== 'done') throw new DrError('E_CORRUPT', 'ev-mirror protocol: expected done', {})
    return { chunks: plans.length, sent: plans.length - ready.from, bytes, resumedFrom: ready.from }
  } finally {
    await channel.close().catch(() => undefined)
  }
}

function refusal(code: string, message: string): DrError {
  const known = ['E_FENCED', 'E_CORRUPT', 'E_NOT_FOUND', 'E_PRECONDITION'].includes(code)
  return new DrError(known ? (code as 'E_FENCED') : 'E_UNAVAILABLE', `destination refused the transfer: ${message}`, { code })
}
