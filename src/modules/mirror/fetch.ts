import * as t from 'io-ts'
import { isLeft } from 'fp-ts/lib/Either.js'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { Channel } from '../../ports/network.js'
import { store, type AgentContext } from './agent-context.js'
import { payloadCrc, planChunks, readChunk } from './delta-chunks.js'
import { refuse } from './refusal.js'
import { refuseStranger } from './peer-rejections.js'
import { MIRROR_CONFIG, MIRROR_SERVICE, sessionSnapshotPrefix } from './naming.js'
import { decodeFrame, decodeRuns, encodeBlocks, encodeControl, encodeRuns, type FetchFrame } from './protocol.js'
import { ReplicaWriter } from './replica.js'

/** Blocks asked for per fetch request. */
export const FETCH_BATCH = 4096

const UndoProgressCodec = t.type({ kind: t.literal('undo'), session: t.string, epoch: t.number, cursor: t.number })

/**
 * Serves fetch requests on a channel: for each, reads the named blocks from a snapshot of `volume` (which must
 * belong to the session) and sends them back as checksummed block frames, then `fetchDone`. Requests from
 * another epoch, or from a site that is not the session's peer, are refused.
 */
export async function serveFetch(
  ctx: AgentContext,
  channel: Channel,
  frames: AsyncIterator<Uint8Array>,
  first: FetchFrame,
  lookup: (session: string) => { volume: string; epoch: number; chunkBytes: number; peer: string } | undefined,
): Promise<void> {
  let request: FetchFrame | undefined = first
  try {
    while (request !== undefined) {
      const entry = lookup(request.session)
      if (entry === undefined) return refuse(channel, 'E_NOT_FOUND', `session ${request.session} is unknown at ${ctx.site}`, null)
      if (await refuseStranger(ctx, channel, request.session, entry.peer, entry.epoch)) return
      if (request.epoch !== entry.epoch) {
        if (request.epoch < entry.epoch) {
          ctx.events.emit('mirror.staleEpochRefused', 'warning', { id: request.session, site: ctx.site, from: channel.remoteSite, epoch: request.epoch, current: entry.epoch })
        }
        return refuse(channel, request.epoch < entry.epoch ? 'E_FENCED' : 'E_PRECONDITION', `fetch at epoch ${request.epoch}, current ${entry.epoch}`, entry.epoch)
      }
      if (!request.snapshot.startsWith(sessionSnapshotPrefix(request.session))) {
        return refuse(channel, 'E_INVALID_INPUT', `snapshot ${request.snapshot} does not belong to session ${request.session}`, entry.epoch)
      }
      const info = await store(ctx, 'volumeInfo', (s) => s.volumeInfo(entry.volume))
      const blocks = [...new Set(request.blocks)].sort((a, b) => a - b).filter((b) => b * info.blockSize < info.sizeBytes)
      const plans = planChunks(blocks, [], info.blockSize, entry.chunkBytes)
      for (const plan of plans) {
        const runs = await readChunk(ctx.storage, entry.volume, request.snapshot, plan, info.blockSize)
        const payload = encodeRuns(runs)
        await channel.send(encodeBlocks(entry.epoch, request.batch, runs.length, payloadCrc(payload), payload))
      }
      await channel.send(encodeControl({ t: 'fetchDone', epoch: entry.epoch, batch: request.batch, frames: plans.length, blockSize: info.blockSize }))
      const next = await frames.next()
      if (next.done === true) return
      const decoded = decodeFrame(next.value)
      if (decoded.kind !== 'control' || decoded.frame.t !== 'fetch') return refuse(channel, 'E_INVALID_INPUT', 'expected a fetch frame', entry.epoch)
      request = decoded.frame
    }
  } catch (error) {
    const failure = toDrError(error)
    if (failure.code !== 'E_UNAVAILABLE' && failure.code !== 'E_CLOSED') await refuse(channel, 'E_PRECONDITION', failure.message, null)
  }
}

/**
 * What an undo needs: the session and its epoch, the old source's volume, the peer (new primary) site and its
 * restart-point snapshot, and the two snapshots of the old source whose difference is the undo list.
 *
 * @public
 */
export interface UndoRequest {
  readonly session: string
  readonly volume: string
  readonly epoch: number
  readonly peerSite: string
  readonly snapshot: string
  readonly from: string
  readonly to: string
}

/**
 * Undoes, on the old source `volume`, every block changed since the common delta set: the blocks that differ
 * between snapshots `from` (the common cut) and `to` (the old source as it was when the resync planned the
 * undo) are fetched from the new primary's restart-point snapshot `snapshot` over the network and written with
 * replication writes (the old source stays read-only). The cursor is persisted after each batch, so a crash resumes where it stopped. Resolves with
 * the number of blocks undone.
 *
 * @public
 */
export async function undoFromPeer(ctx: AgentContext, options: UndoRequest): Promise<number> {
  const { session, volume, epoch } = options
  const changed = await store(ctx, 'changedBlocks', (s) => s.changedBlocks(volume, options.from, options.to))
  const blocks = changed.blocks
  const raw = await store(ctx, 'getConfig', (s) => s.getConfig(volume, MIRROR_CONFIG.progress))
  const decoded = raw === undefined ? undefined : UndoProgressCodec.decode(raw)
  let cursor = decoded !== undefined && !isLeft(decoded) && decoded.right.session === session && decoded.right.epoch === epoch ? decoded.right.cursor : 0
  if (cursor >= blocks.length) return blocks.length
  const writer = new ReplicaWriter(ctx, volume, session)
  const channel = await callAdapter(ctx.network.kind, 'connect', () => ctx.network.connect(options.peerSite, MIRROR_SERVICE))
  const frames = channel.frames()[Symbol.asyncIterator]()
  try {
    for (let batch = Math.floor(cursor / FETCH_BATCH); cursor < blocks.length; batch++) {
      const wanted = blocks.slice(cursor, cursor + FETCH_BATCH)
      await channel.send(encodeControl({ t: 'fetch', session, epoch, snapshot: options.snapshot, batch, blocks: wanted }))
      let received = 0
      for (;;) {
        const next = await frames.next()
        if (next.done === true) throw new DrError('E_UNAVAILABLE', `${options.peerSite} closed the fetch channel of ${session}`)
        const frame = decodeFrame(next.value)
        if (frame.kind === 'blocks') {
          if (frame.batch !== batch || frame.epoch !== epoch || payloadCrc(frame.payload) !== frame.crc) {
            throw new DrError('E_CORRUPT', `fetched blocks of batch ${batch} of ${session} are damaged`, { session, batch })
          }
          await writer.write(decodeRuns(frame.payload, changed.blockSize, frame.runs), changed.blockSize)
          received++
          continue
        }
        if (frame.kind === 'control' && frame.frame.t === 'fetchDone' && frame.frame.batch === batch) {
          if (frame.frame.frames !== received) throw new DrError('E_CORRUPT', `fetch batch ${batch} of ${session} is incomplete`, { session, batch })
          break
        }
        if (frame.kind === 'control' && frame.frame.t === 'refused') {
          throw new DrError(frame.frame.code, `${options.peerSite} refused the fetch of ${session}: ${frame.frame.message}`, { session })
        }
        throw new DrError('E_CORRUPT', `unexpected frame during the fetch of ${session}`, { session })
      }
      cursor += wanted.length
      const progress = { kind: 'undo' as const, session, epoch, cursor }
      await store(ctx, 'putConfig', (s) => s.putConfig(volume, MIRROR_CONFIG.progress, progress, ctx.token()))
    }
  } finally {
    await channel.close().catch(() => undefined)
  }
  return blocks.length
}

/** Forgets the undo cursor of a volume (the resync is done). */
export async function clearUndoProgress(ctx: AgentContext, volume: string): Promise<void> {
  await store(ctx, 'deleteConfig', (s) => s.deleteConfig(volume, MIRROR_CONFIG.progress, ctx.token()))
}
