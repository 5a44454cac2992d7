import { DrError, isDrError, toDrError } from '../../kernel/errors.js'
import { systemClock, type Clock } from '../../kernel/clock.js'
import type { Channel } from '../../ports/network.js'
import { decodeResumable, encodeResumable } from './resumable-protocol.js'

/**
 * Options of a {@link ResumableSender}: the transfer's id (the receiver keys its position by it), random access
 * to the chunks (`undefined` past the last one; the same index must always give the same bytes), and how many
 * chunks may be sent ahead of the receiver's acknowledgement (default 8) — the most a reconnect ever re-sends.
 *
 * @public
 */
export interface ResumableSenderOptions {
  readonly transferId: string
  readonly chunk: (index: number) => Promise<Uint8Array | undefined> | Uint8Array | undefined
  readonly window?: number
}

/**
 * What one connection of a sender did: the chunk it resumed from, what it sent, how much of that had been
 * sent before (re-sent because it was in flight when an earlier connection broke), and how it ended.
 *
 * @public
 */
export interface SendAttempt {
  readonly resumedFrom: number
  chunksSent: number
  bytesSent: number
  chunksResent: number
  bytesResent: number
  outcome: 'running' | 'complete' | 'failed'
}

/**
 * How a transfer ended: its id and number of chunks.
 *
 * @public
 */
export interface SendOutcome {
  readonly transferId: string
  readonly chunks: number
}

interface Waiter {
  readonly resolve: () => void
}

function unavailable(transferId: string, why: string): DrError {
  return new DrError('E_UNAVAILABLE', `resumable transfer "${transferId}": ${why}`, { adapter: 'tcp', transferId })
}

/**
 * The sending side of a resumable transfer of numbered chunks. Each `run` uses one channel: it asks the
 * receiver where the transfer stands, sends from the first chunk the receiver lacks, keeps at most `window`
 * chunks unacknowledged, and ends the transfer once every chunk is acknowledged. When the channel breaks, `run`
 * rejects with `E_UNAVAILABLE`; calling `run` again on a new channel (or using {@link sendResumable}) resumes
 * from the last acknowledged chunk, so only chunks that were in flight are sent again.
 *
 * @public
 */
export class ResumableSender {
  readonly transferId: string
  readonly #chunk: ResumableSenderOptions['chunk']
  readonly #window: number
  /** One past the highest chunk index ever sent, to tell a first send from a re-send. */
  #highestSent = 0
  readonly #attempts: SendAttempt[] = []

  constructor(options: ResumableSenderOptions) {
    if (typeof options?.transferId !== 'string' || options.transferId.length === 0 || typeof options.chunk !== 'function') {
      throw new DrError('E_INVALID_INPUT', 'ResumableSender: a non-empty transferId and a chunk(index) function are required', { adapter: 'tcp' })
    }
    const window = options.window ?? 8
    if (!(Number.isSafeInteger(window) && window > 0)) {
      throw new DrError('E_INVALID_INPUT', `ResumableSender: window must be a positive integer, got ${window}`, { adapter: 'tcp', window })
    }
    this.transferId = options.transferId
    this.#chunk = options.chunk
    this.#window = window
  }

  /** Every connection used so far, oldest first. */
  get attempts(): readonly SendAttempt[] {
    return this.#attempts
  }

  /** The most chunks in flight at once, hence the most a reconnect re-sends. */
  get window(): number {
    return this.#window
  }

  /**
   * Runs the transfer over `channel` until it completes (resolves) or the channel fails (rejects; `E_UNAVAILABLE`
   * for a broken channel, or the code the receiver aborted with). Closes the channel either way.
   */
  async run(channel: Channel): Promise<SendOutcome> {
    const frames = channel.frames()[Symbol.asyncIterator]()
    let attempt: SendAttempt | undefined
    let acked = 0
    let done: number | undefined
    let failure: DrError | undefined
    let waiter: Waiter | undefined
    const wake = (): void => {
      const current = waiter
      waiter = undefined
      current?.resolve()
    }
    const waitForReceiver = (): Promise<void> => new Promise<void>((resolve) => (waiter = { resolve }))
    try {
      await channel.send(encodeResumable({ kind: 'open', transferId: this.transferId }))
      const first = await frames.next()
      if (first.done === true) throw unavailable(this.transferId, 'the receiver closed the channel before answering')
      const position = decodeResumable(first.value)
      if (position.kind === 'abort') throw new DrError(position.code, `resumable transfer "${this.transferId}" refused: ${position.message}`, { adapter: 'tcp' })
      if (position.kind !== 'position' || position.transferId !== this.transferId) {
        throw new DrError('E_CORRUPT', `resumable transfer "${this.transferId}": expected its position, got ${position.kind}`, { adapter: 'tcp' })
      }
      acked = position.next
      attempt = { resumedFrom: position.next, chunksSent: 0, bytesSent: 0, chunksResent: 0, bytesResent: 0, outcome: 'running' }
      this.#attempts.push(attempt)
      const reading = (async () => {
        try {
          for (;;) {
            const received = await frames.next()
            if (received.done === true) throw unavailable(this.transferId, 'the receiver closed the channel')
            const message = decodeResumable(received.value)
            if (message.kind === 'ack') acked = Math.max(acked, message.next)
            else if (message.kind === 'done') {
              done = message.total
              return
            } else if (message.kind === 'abort') {
              throw new DrError(message.code, `resumable transfer "${this.transferId}" aborted by the receiver: ${message.message}`, { adapter: 'tcp' })
            } else throw new DrError('E_CORRUPT', `resumable transfer "${this.transferId}": unexpected ${message.kind}`, { adapter: 'tcp' })
            wake()
          }
        } catch (error) {
          failure ??= toDrError(error, 'E_UNAVAILABLE')
        } finally {
          wake()
        }
      })()
      let index = position.next
      for (;;) {
        while (failure === undefined && done === undefined && index - acked >= this.#window) await waitForReceiver()
        if (failure !== undefined) throw failure
        const data = await this.#read(index)
        if (data === undefined) break
        if (!(data instanceof Uint8Array)) throw new DrError('E_INVALID_INPUT', `resumable transfer "${this.transferId}": chunk ${index} is not a Uint8Array`, { adapter: 'tcp' })
        await channel.send(encodeResumable({ kind: 'chunk', index, data }))
        attempt.chunksSent++
        attempt.bytesSent += data.byteLength
        if (index < this.#highestSent) {
          attempt.chunksResent++
          attempt.bytesResent += data.byteLength
        }
        index++
        this.#highestSent = Math.max(this.#highestSent, index)
      }
      await channel.send(encodeResumable({ kind: 'end', total: index }))
      while (failure === undefined && done === undefined) await waitForReceiver()
      await reading
      if (done === undefined) throw failure ?? unavailable(this.transferId, 'the transfer did not finish')
      if (done !== index) throw new DrError('E_CORRUPT', `resumable transfer "${this.transferId}": the receiver finished at ${done}, not ${index}`, { adapter: 'tcp' })
      attempt.outcome = 'complete'
      return { transferId: this.transferId, chunks: index }
    } catch (error) {
      if (attempt !== undefined) attempt.outcome = 'failed'
      throw failure ?? toDrError(error, 'E_INTERNAL')
    } finally {
      await channel.close()
    }
  }

  /** Chunk `index` from the source; a failing source is reported as such, never as a network failure. */
  async #read(index: number): Promise<Uint8Array | undefined> {
    try {
      return await this.#chunk(index)
    } catch (error) {
      throw toDrError(error, 'E_INTERNAL', { adapter: 'tcp', transferId: this.transferId, chunk: index })
    }
  }
}

/**
 * Options of {@link sendResumable}: how to open a new channel to the receiver, how many connections to try
 * before giving up (default 10), the pause between them (default 100 ms, doubling up to 5 s), the clock and an
 * abort signal.
 *
 * @public
 */
export interface SendResumableOptions {
  readonly connect: () => Promise<Channel>
  readonly attempts?: number
  readonly backoffMs?: number
  readonly clock?: Clock
  readonly signal?: AbortSignal
}

/**
 * Runs `sender` to completion, reconnecting with `connect` whenever the channel breaks or cannot be opened
 * (`E_UNAVAILABLE`); each reconnect resumes from the last acknowledged chunk. Any other error, or running out of
 * attempts, rejects with that error.
 *
 * @public
 */
export async function sendResumable(sender: ResumableSender, options: SendResumableOptions): Promise<SendOutcome> {
  const clock = options.clock ?? systemClock
  const attempts = options.attempts ?? 10
  let pause = options.backoffMs ?? 100
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted === true) throw new DrError('E_ABORTED', `resumable transfer "${sender.transferId}" aborted`, { adapter: 'tcp' })
    try {
      return await sender.run(await options.connect())
    } catch (error) {
      if (!isDrError(error, 'E_UNAVAILABLE') || attempt >= attempts) throw toDrError(error, 'E_UNAVAILABLE')
    }
    await clock.sleep(pause, options.signal)
    pause = Math.min(pause * 2, 5_000)
  }
}
