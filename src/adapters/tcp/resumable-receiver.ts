import { DrError, isDrError, toDrError } from '../../kernel/errors.js'
import type { Channel } from '../../ports/network.js'
import { decodeResumable, encodeResumable, type ResumableMessage } from './resumable-protocol.js'

/**
 * One chunk of a resumable transfer as the receiver hands it on: which transfer, its number (from 0, in order,
 * without gaps) and its bytes, which matched their checksum.
 *
 * @public
 */
export interface ReceivedChunk {
  readonly transferId: string
  readonly index: number
  readonly data: Uint8Array
}

/**
 * Where a receiver keeps, per transfer, the number of chunks already applied, so that a transfer can resume
 * after the receiving process restarts. `save` is called after each chunk's `onChunk` has completed. For
 * exactly-once application across a crash, persist the position together with what `onChunk` wrote (and read
 * it back in `load`); otherwise a chunk applied just before a crash may be offered again after it.
 *
 * @public
 */
export interface ResumeStore {
  load(transferId: string): Promise<number | undefined> | number | undefined
  save(transferId: string, next: number): Promise<void> | void
}

/**
 * Options of a {@link ResumableReceiver}: what to do with each chunk, and where positions are kept (default: in
 * this object's memory only).
 *
 * @public
 */
export interface ResumableReceiverOptions {
  /** Called exactly once per chunk, in order; the chunk is acknowledged once the returned promise resolves. */
  readonly onChunk: (chunk: ReceivedChunk) => Promise<void> | void
  readonly store?: ResumeStore
}

/**
 * How one receiving session ended: the transfer, how many chunks are applied now, and whether the sender
 * declared the transfer complete (every chunk applied).
 *
 * @public
 */
export interface ReceiveOutcome {
  readonly transferId: string
  readonly chunks: number
  readonly complete: boolean
}

interface Session {
  superseded: boolean
  readonly channel: Channel
  readonly idle: Promise<void>
}

/** Sends the latest cumulative acknowledgement, never more than one at a time, never out of order. */
class AckSender {
  #latest = -1
  #sent = -1
  #sending = false
  readonly #channel: Channel

  constructor(channel: Channel) {
    this.#channel = channel
  }

  offer(next: number): void {
    this.#latest = Math.max(this.#latest, next)
    if (!this.#sending) void this.#run()
  }

  async #run(): Promise<void> {
    this.#sending = true
    try {
      while (this.#sent < this.#latest) {
        const next = this.#latest
        await this.#channel.send(encodeResumable({ kind: 'ack', next }))
        this.#sent = next
      }
    } catch {
      // The channel broke; the sender learns the position afresh when it reconnects.
    } finally {
      this.#sending = false
    }
  }
}

/**
 * The receiving side of resumable transfers. Each call to `serve` handles one connection of a sender: it
 * learns the transfer id, tells the sender how many chunks it already has, applies new chunks in order through
 * `onChunk` and acknowledges them. When a connection breaks, the sender reconnects and `serve` is called on the
 * new channel; a newer session for the same transfer takes over from an older one, after the older one's
 * `onChunk` in progress has finished, so no chunk is applied twice or skipped.
 *
 * @public
 */
export class ResumableReceiver {
  readonly #options: ResumableReceiverOptions
  readonly #positions = new Map<string, number>()
  readonly #sessions = new Map<string, Session>()

  constructor(options: ResumableReceiverOptions) {
    if (typeof options?.onChunk !== 'function') {
      throw new DrError('E_INVALID_INPUT', 'ResumableReceiver: onChunk must be a function', { adapter: 'tcp' })
    }
    this.#options = options
  }

  /** Chunks applied so far for `transferId` (as far as this object knows). */
  position(transferId: string): number | undefined {
    return this.#positions.get(transferId)
  }

  /** Forgets a finished transfer's position (not the store's). */
  forget(transferId: string): void {
    this.#positions.delete(transferId)
  }

  /**
   * Serves one sender connection until the sender ends the transfer or closes the channel. Rejects with the
   * channel's error when it breaks (`E_UNAVAILABLE`), with `E_CORRUPT` when a chunk fails its checksum or the
   * sender breaks the protocol, and with `onChunk`'s error when that fails; the channel is closed in every case.
   */
  async serve(channel: Channel): Promise<ReceiveOutcome> {
    const frames = channel.frames()[Symbol.asyncIterator]()
    let markIdle: () => void = () => undefined
    let session: Session | undefined
    let transferId: string | undefined
    try {
      const first = await frames.next()
      if (first.done === true) return { transferId: '', chunks: 0, complete: false }
      const opening = decodeResumable(first.value)
      if (opening.kind !== 'open') throw new DrError('E_CORRUPT', `resumable transfer: expected open, got ${opening.kind}`, { adapter: 'tcp' })
      transferId = opening.transferId
      const previous = this.#sessions.get(transferId)
      session = { superseded: false, channel, idle: new Promise<void>((resolve) => (markIdle = resolve)) }
      this.#sessions.set(transferId, session)
      if (previous !== undefined) {
        previous.superseded = true
        void previous.channel.close()
        await previous.idle
      }
      let next = await this.#load(transferId)
      await channel.send(encodeResumable({ kind: 'position', transferId, next }))
      const acks = new AckSender(channel)
      for (;;) {
        const received = await frames.next()
        if (received.done === true || session.superseded) return { transferId, chunks: next, complete: false }
        const message = decodeResumable(received.value)
        if (message.kind === 'chunk') {
          if (message.index > next) throw this.#protocol(`chunk ${message.index} arrived while chunk ${next} was expected`)
          if (message.index === next) {
            await this.#options.onChunk({ transferId, index: next, data: message.data })
            next++
            this.#positions.set(transferId, next)
            await this.#options.store?.save(transferId, next)
          }
          acks.offer(next)
        } else if (message.kind === 'end') {
          if (message.total !== next) throw this.#protocol(`the sender ended at ${message.total} chunks, ${next} were applied`)
          await channel.send(encodeResumable({ kind: 'done', total: next }))
          return { transferId, chunks: next, complete: true }
        } else if (message.kind === 'abort') {
          return { transferId, chunks: next, complete: false }
        } else {
          throw this.#protocol(`unexpected ${message.kind} message`)
        }
      }
    } catch (error) {
      const failure = toDrError(error, 'E_INTERNAL')
      if (!isDrError(error, 'E_UNAVAILABLE')) await this.#abort(channel, failure)
      throw failure
    } finally {
      if (transferId !== undefined && this.#sessions.get(transferId) === session) this.#sessions.delete(transferId)
      markIdle()
      await channel.close()
    }
  }

  async #load(transferId: string): Promise<number> {
    const known = this.#positions.get(transferId)
    if (known !== undefined) return known
    const stored = (await this.#options.store?.load(transferId)) ?? 0
    this.#positions.set(transferId, stored)
    return stored
  }

  #protocol(message: string): DrError {
    return new DrError('E_CORRUPT', `resumable transfer: ${message}`, { adapter: 'tcp' })
  }

  async #abort(channel: Channel, failure: DrError): Promise<void> {
    const abort: ResumableMessage = { kind: 'abort', code: failure.code, message: failure.message }
    await channel.send(encodeResumable(abort)).catch(() => undefined)
  }
}
