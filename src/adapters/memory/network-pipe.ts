import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'

/**
 * How much one direction of a memory channel may hold in flight (accepted by `send` but not yet read): a
 * sender waits once either bound is reached. A single frame larger than `bytes` is accepted into an empty window.
 *
 * @public
 */
export interface FrameWindow {
  readonly frames: number
  readonly bytes: number
}

/** The simulated link one direction of a channel runs over: its clock, one-way latency and window. */
export interface PipeOptions {
  readonly clock: Clock
  readonly latencyMs: number
  readonly window: FrameWindow
}

interface WaitingSend {
  readonly frame: Uint8Array
  readonly resolve: () => void
  readonly reject: (error: DrError) => void
}

interface InFlightFrame {
  readonly frame: Uint8Array
  /** When the frame reaches the reader (clock time). */
  readonly at: number
}

interface WaitingReader {
  readonly resolve: (result: IteratorResult<Uint8Array>) => void
  readonly reject: (error: DrError) => void
}

/**
 * One direction of a memory channel: an ordered queue of copied frames with a bounded in-flight window, a
 * token-bucket bandwidth limit and a one-way latency, all on the link's clock. The sender's end of a channel
 * sends into one pipe and its reader reads from the other.
 */
export class FramePipe {
  readonly #options: PipeOptions
  readonly #inFlight: InFlightFrame[] = []
  #inFlightBytes = 0
  #lastArrival = 0
  readonly #waitingSends: WaitingSend[] = []
  readonly #readers: WaitingReader[] = []
  /** Why sends are refused, once they are. */
  #sendError: DrError | undefined
  /** What the reader sees once the frames in flight are read: more to come, a clean end, or a failure. */
  #readEnd: 'open' | 'ended' | DrError = 'open'
  #limit: number | undefined
  #tokens = 0
  #refilledAt = 0
  #cancelSendTimer: (() => void) | undefined
  #cancelReadTimer: (() => void) | undefined

  constructor(options: PipeOptions) {
    this.#options = options
  }

  /** Queues a copy of `frame`; resolves once it is inside the window and paid for by the bandwidth limit. */
  send(frame: Uint8Array): Promise<void> {
    if (this.#sendError !== undefined) return Promise.reject(this.#sendError)
    if (!(frame instanceof Uint8Array)) {
      return Promise.reject(new DrError('E_INVALID_INPUT', 'memory.channel.send: a frame must be a Uint8Array', { adapter: 'memory' }))
    }
    const copy = frame.slice()
    return new Promise<void>((resolve, reject) => {
      this.#waitingSends.push({ frame: copy, resolve, reject })
      this.#settle()
    })
  }

  /** The next frame for the reader, the end of the stream, or the failure that broke the channel. */
  next(): Promise<IteratorResult<Uint8Array>> {
    return new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
      this.#readers.push({ resolve, reject })
      this.#settle()
    })
  }

  /**
   * Sets the send rate in bytes per second (`undefined` removes it). The bucket starts empty and holds one
   * second of traffic, or one frame when a frame is larger than that.
   */
  setLimit(bytesPerSecond: number | undefined): void {
    if (bytesPerSecond !== undefined && !(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) {
      throw new DrError('E_INVALID_INPUT', 'memory.channel.setBandwidthLimit: the limit must be a positive number of bytes per second or undefined', {
        adapter: 'memory',
        bytesPerSecond,
      })
    }
    this.#limit = bytesPerSecond
    this.#tokens = 0
    this.#refilledAt = this.#options.clock.now()
    this.#cancelSendTimer?.()
    this.#cancelSendTimer = undefined
    this.#settle()
  }

  /** The sending side closed: sends are refused with `reason`; the reader reads what is in flight, then ends. */
  end(reason: DrError): void {
    this.#refuseSends(reason)
    if (this.#readEnd === 'open') this.#readEnd = 'ended'
    this.#settle()
  }

  /** The reading side closed: sends are refused with `reason` and what is in flight is dropped. */
  discard(reason: DrError): void {
    this.#refuseSends(reason)
    this.#dropInFlight()
    if (this.#readEnd === 'open') this.#readEnd = 'ended'
    this.#settle()
  }

  /** The link broke: every waiting and later send and read fails with `error`; what is in flight is lost. */
  break(error: DrError): void {
    this.#refuseSends(error)
    this.#dropInFlight()
    if (this.#readEnd === 'open') this.#readEnd = error
    this.#settle()
  }

  #refuseSends(reason: DrError): void {
    if (this.#sendError === undefined) this.#sendError = reason
    this.#cancelSendTimer?.()
    this.#cancelSendTimer = undefined
    for (const waiting of this.#waitingSends.splice(0)) waiting.reject(this.#sendError)
  }

  #dropInFlight(): void {
    this.#inFlight.splice(0)
    this.#inFlightBytes = 0
    this.#cancelReadTimer?.()
    this.#cancelReadTimer = undefined
  }

  /** Moves frames from waiting senders into the window and from the window to waiting readers until stuck. */
  #settle(): void {
    for (;;) {
      const accepted = this.#acceptSend()
      const delivered = this.#deliverFrame()
      if (!accepted && !delivered) break
    }
    const end = this.#readEnd
    if (end instanceof DrError) {
      for (const reader of this.#readers.splice(0)) reader.reject(end)
    } else if (end === 'ended' && this.#inFlight.length === 0) {
      for (const reader of this.#readers.splice(0)) reader.resolve({ value: undefined, done: true })
    }
  }

  #acceptSend(): boolean {
    const waiting = this.#waitingSends[0]
    if (waiting === undefined || this.#cancelSendTimer !== undefined) return false
    const size = waiting.frame.byteLength
    const window = this.#options.window
    const fits =
      this.#inFlight.length === 0 ||
      (this.#inFlight.length < window.frames && this.#inFlightBytes + size <= window.bytes)
    if (!fits) return false
    const waitMs = this.#bandwidthWait(size)
    if (waitMs > 0) {
      this.#cancelSendTimer = this.#options.clock.setTimer(waitMs, () => {
        this.#cancelSendTimer = undefined
        this.#settle()
      })
      return false
    }
    if (this.#limit !== undefined) this.#tokens -= size
    this.#waitingSends.shift()
    const at = Math.max(this.#lastArrival, this.#options.clock.now() + this.#options.latencyMs)
    this.#lastArrival = at
    this.#inFlight.push({ frame: waiting.frame, at })
    this.#inFlightBytes += size
    waiting.resolve()
    return true
  }

  #deliverFrame(): boolean {
    const head = this.#inFlight[0]
    if (head === undefined || this.#readers.length === 0 || this.#cancelReadTimer !== undefined) return false
    const now = this.#options.clock.now()
    if (head.at > now) {
      this.#cancelReadTimer = this.#options.clock.setTimer(head.at - now, () => {
        this.#cancelReadTimer = undefined
        this.#settle()
      })
      return false
    }
    this.#inFlight.shift()
    this.#inFlightBytes -= head.frame.byteLength
    this.#readers.shift()?.resolve({ value: head.frame, done: false })
    return true
  }

  /** Milliseconds until the bucket holds `size` bytes of tokens (0 when it already does or there is no limit). */
  #bandwidthWait(size: number): number {
    const limit = this.#limit
    if (limit === undefined) return 0
    const now = this.#options.clock.now()
    this.#tokens = Math.min(Math.max(limit, size), this.#tokens + ((now - this.#refilledAt) * limit) / 1000)
    this.#refilledAt = now
    const missing = size - this.#tokens
    return missing <= 1e-6 ? 0 : Math.max(1, Math.ceil((missing * 1000) / limit))
  }
}
