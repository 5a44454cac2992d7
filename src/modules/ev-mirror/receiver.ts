import * as t from 'io-ts'
import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { Channel } from '../../ports/network.js'
import type { StoragePort } from '../../ports/storage.js'
import { chainCrc } from '../mirror/index.js'
import { KeyedMutex } from '../volume/index.js'
import { decodeChunk } from './chunks.js'
import { recordEpoch } from './epoch.js'
import { EV_CONTROL, decodeEvControl, encodeEvControl, nextFrame, type BeginFrame } from './wire.js'

/**
 * The configuration record on a destination constituent holding the progress of the transfer under way.
 *
 * @public
 */
export const PROGRESS_KEY = 'ev-mirror.progress'

const Progress = t.type({ snapshot: t.string, next: t.number })

/**
 * Receives member transfers on the destination site: checks the epoch, prepares the constituent (rolled back
 * to the base snapshot, or emptied for a baseline), applies checksummed chunks in order while recording its
 * progress on the constituent (so a broken transfer resumes at the next chunk), and takes the member snapshot
 * once the sender's chained checksum matches. The constituent is writable only while it receives: it is made
 * read-only again whether the transfer ends or fails, before the sender hears of it, and transfers to one
 * constituent are served one at a time.
 *
 * @public
 */
export class MemberReceiver {
  readonly #storage: StoragePort
  readonly #token: () => FenceToken
  readonly #serial = new KeyedMutex()

  constructor(storage: StoragePort, token: () => FenceToken) {
    this.#storage = storage
    this.#token = token
  }

  /**
   * Runs `work` on constituent `volume` once no transfer is being received into it (and keeps new ones out
   * meanwhile): a failover presents a constituent only after a transfer it aborted has stopped writing there.
   */
  exclusive<T>(volume: string, work: () => Promise<T>): Promise<T> {
    return this.#serial.run(volume, work)
  }

  /** Serves one channel until its transfer is done or fails (a failure is sent back as `refused`). */
  async serve(channel: Channel): Promise<void> {
    const frames = channel.frames()[Symbol.asyncIterator]()
    try {
      const begin = decodeEvControl(await nextFrame(frames, channel))
      if (begin.t !== 'begin') throw new DrError('E_CORRUPT', 'ev-mirror protocol: expected begin', {})
      await this.#serial.run(begin.volume, () => this.#serveMember(begin, frames, channel))
    } catch (error) {
      const failure = toDrError(error)
      await channel.send(encodeEvControl({ t: 'refused', code: failure.code, message: failure.message })).catch(() => undefined)
    } finally {
      await channel.close().catch(() => undefined)
    }
  }

  async #serveMember(begin: BeginFrame, frames: AsyncIterator<Uint8Array>, channel: Channel): Promise<void> {
    try {
      const from = await this.#prepare(begin)
      await channel.send(encodeEvControl({ t: 'ready', from: from ?? begin.chunks, done: from === null }))
      if (from !== null) await this.#receive(begin, from, frames, channel)
    } catch (error) {
      await this.#writable(begin.volume, false).catch(() => undefined)
      throw error
    }
  }

  /** Returns the chunk to resume from, or null when the member snapshot is already there. */
  async #prepare(begin: BeginFrame): Promise<number | null> {
    const s = this.#storage
    await recordEpoch(s, begin.volume, begin.epoch, this.#token(), begin.relationship)
    const snapshots = await callAdapter(s.kind, 'listSnapshots', () => s.listSnapshots(begin.volume))
    if (snapshots.some((snap) => snap.name === begin.snapshot)) {
      // Done before (perhaps by a receiver that died before it could tidy up).
      await this.#writable(begin.volume, false)
      await callAdapter(s.kind, 'deleteConfig', () => s.deleteConfig(begin.volume, PROGRESS_KEY, this.#token()))
      return null
    }
    await this.#writable(begin.volume, true)
    const progress = await callAdapter(s.kind, 'getConfig', () => s.getConfig(begin.volume, PROGRESS_KEY))
    if (Progress.is(progress) && progress.snapshot === begin.snapshot) return progress.next
    if (begin.base === null) {
      const info = await callAdapter(s.kind, 'volumeInfo', () => s.volumeInfo(begin.volume))
      await callAdapter(s.kind, 'trim', () => s.trim(begin.volume, 0, info.sizeBytes, this.#token()))
    } else {
      const base = begin.base
      await callAdapter(s.kind, 'restoreSnapshot', () => s.restoreSnapshot(begin.volume, base, this.#token()))
    }
    const info = await callAdapter(s.kind, 'volumeInfo', () => s.volumeInfo(begin.volume))
    if (info.sizeBytes !== begin.sizeBytes) await callAdapter(s.kind, 'resizeVolume', () => s.resizeVolume(begin.volume, begin.sizeBytes, this.#token()))
    await callAdapter(s.kind, 'putConfig', () => s.putConfig(begin.volume, PROGRESS_KEY, { snapshot: begin.snapshot, next: 0 }, this.#token()))
    return 0
  }

  async #writable(volume: string, writable: boolean): Promise<void> {
    await callAdapter(this.#storage.kind, 'setWritable', () => this.#storage.setWritable(volume, writable, this.#token()))
  }

  async #receive(begin: BeginFrame, from: number, frames: AsyncIterator<Uint8Array>, channel: Channel): Promise<void> {
    const s = this.#storage
    let expected = from
    let chained = 0
    for (;;) {
      const bytes = await nextFrame(frames, channel)
      if (bytes[0] === EV_CONTROL) {
        const end = decodeEvControl(bytes)
        if (end.t !== 'end') throw new DrError('E_CORRUPT', 'ev-mirror protocol: expected end', {})
        if (end.chunks !== begin.chunks || expected !== begin.chunks || end.crc !== chained) {
          throw new DrError('E_CORRUPT', `ev-mirror: transfer of ${begin.volume}@${begin.snapshot} ended incomplete or with a checksum mismatch`, { volume: begin.volume })
        }
        break
      }
      const chunk = decodeChunk(bytes, begin.blockSize)
      if (chunk.index !== expected) {
        throw new DrError('E_CORRUPT', `ev-mirror: chunk ${chunk.index} of ${begin.volume}@${begin.snapshot} is out of order`, { volume: begin.volume, chunk: chunk.index })
      }
      for (const run of chunk.runs) {
        const offset = run.start * begin.blockSize
        const data = run.data
        if (data === null) await callAdapter(s.kind, 'trim', () => s.trim(begin.volume, offset, run.count * begin.blockSize, this.#token()))
        else await callAdapter(s.kind, 'write', () => s.write(begin.volume, offset, data, this.#token()))
      }
      chained = chainCrc(chained, chunk.crc)
      expected += 1
      await callAdapter(s.kind, 'putConfig', () => s.putConfig(begin.volume, PROGRESS_KEY, { snapshot: begin.snapshot, next: expected }, this.#token()))
    }
    await callAdapter(s.kind, 'createSnapshot', () => s.createSnapshot(begin.volume, begin.snapshot, this.#token(), begin.labels))
    await this.#writable(begin.volume, false)
    await callAdapter(s.kind, 'deleteConfig', () => s.deleteConfig(begin.volume, PROGRESS_KEY, this.#token()))
    await channel.send(encodeEvControl({ t: 'done' }))
  }
}
