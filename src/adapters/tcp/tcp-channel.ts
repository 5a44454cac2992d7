import { Buffer } from 'node:buffer'
import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { Channel } from '../../ports/network.js'
import type { ConnectionEnd, FrameConnection } from './frame-connection.js'
import { releaseFrame } from './frame-buffers.js'
import { FRAME_HEADER_BYTES, FrameType, type WireFrame } from './framing.js'
import { TokenBucket } from './token-bucket.js'

/**
 * How much one direction of a tcp channel may have in flight: frames the sender wrote that the receiver has not
 * yet consumed. A sender waits once either bound is reached; one frame larger than `bytes` may go into an empty
 * window. The receiver announces its window in the handshake and never buffers more.
 *
 * @public
 */
export interface TcpWindow {
  readonly frames: number
  readonly bytes: number
}

/** What a channel is built from: its ends' names, the connection, the two windows and the clock. */
export interface TcpChannelInit {
  readonly id: string
  readonly localSite: string
  readonly remoteSite: string
  readonly connection: FrameConnection
  /** What this end may have unacknowledged at the peer (the peer's receive window). */
  readonly sendWindow: TcpWindow
  /** The largest frame this end may send (the smaller of the two ends' limits). */
  readonly maxSendBytes: number
  /** What this end announced it can hold (checked against a misbehaving peer). */
  readonly receiveWindow: TcpWindow
  readonly clock: Clock
  /** How long `close` waits for the peer to finish the connection before tearing it down. */
  readonly closeGraceMs: number
  /** Called once when the channel is finished, whatever the reason. */
  readonly onFinished: (channel: TcpChannel) => void
}

interface PendingSend {
  readonly frame: Uint8Array
  readonly resolve: () => void
  readonly reject: (error: DrError) => void
}

interface Reader {
  readonly resolve: (result: IteratorResult<Uint8Array>) => void
  readonly reject: (error: DrError) => void
}

const ACK_BYTES = 8

function unavailable(id: string, why: string, cause?: unknown): DrError {
  return new DrError('E_UNAVAILABLE', `tcp channel ${id} ${why}`, { adapter: 'tcp', channel: id }, { cause })
}

/**
 * One end of a channel over one TCP (or TLS) connection. Sends go out in call order as checked `data` frames,
 * each once the send window has room and the bandwidth limit allows; the receiver returns window credit with
 * `ack` frames as its reader consumes frames, so neither end ever holds more than a window. A `close` frame ends
 * the channel cleanly; an end of stream without one, a reset or a damaged frame breaks it.
 */
export class TcpChannel implements Channel {
  readonly id: string
  readonly localSite: string
  readonly remoteSite: string
  readonly #init: TcpChannelInit
  readonly #connection: FrameConnection
  readonly #bucket: TokenBucket
  readonly #queue: PendingSend[] = []
  #pumping = false
  #wakePump: (() => void) | undefined
  #unackedFrames = 0
  #unackedBytes = 0
  readonly #inbox: Buffer[] = []
  #inboxBytes = 0
  readonly #readers: Reader[] = []
  #consumedFrames = 0
  #consumedBytes = 0
  #ackScheduled = false
  /** Why sends are refused, once they are. */
  #sendError: DrError | undefined
  /** What a reader sees once the inbox is empty: more to come, a clean end, or the failure. */
  #readEnd: 'open' | 'ended' | DrError = 'open'
  #closing: Promise<void> | undefined
  #finished = false
  readonly #finishedSignal: Promise<void>
  #markFinished: () => void = () => undefined

  constructor(init: TcpChannelInit) {
    this.id = init.id
    this.localSite = init.localSite
    this.remoteSite = init.remoteSite
    this.#init = init
    this.#connection = init.connection
    this.#bucket = new TokenBucket(init.clock)
    this.#finishedSignal = new Promise<void>((resolve) => {
      this.#markFinished = resolve
    })
    this.#connection.setHandler((frame) => this.#onFrame(frame))
    this.#connection.setEndListener((end) => this.#onEnd(end))
  }

  send(frame: Uint8Array): Promise<void> {
    if (this.#sendError !== undefined) return Promise.reject(this.#sendError)
    if (!(frame instanceof Uint8Array)) {
      return Promise.reject(new DrError('E_INVALID_INPUT', 'tcp channel send: a frame must be a Uint8Array', { adapter: 'tcp', channel: this.id }))
    }
    if (frame.byteLength > this.#init.maxSendBytes) {
      return Promise.reject(
        new DrError('E_INVALID_INPUT', `tcp channel send: a frame of ${frame.byteLength} bytes is over the limit of ${this.#init.maxSendBytes}`, {
          adapter: 'tcp',
          channel: this.id,
          bytes: frame.byteLength,
          limit: this.#init.maxSendBytes,
        }),
      )
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ frame, resolve, reject })
      if (this.#pumping) this.#wakePump?.()
      else void this.#pump()
    })
  }

  /** Gives a received frame back: a large one's buffer is reused for a later frame of any tcp channel. */
  release(frame: Uint8Array): void {
    releaseFrame(frame)
  }

  frames(): AsyncIterable<Uint8Array> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => this.#next(),
        return: async () => ({ done: true, value: undefined }),
      }),
    }
  }

  setBandwidthLimit(bytesPerSecond: number | undefined): void {
    this.#bucket.setRate(bytesPerSecond)
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#closing = this.#close()
    return this.#closing
  }

  /** Frames received and not yet read, and frames sent and not yet acknowledged (for tests and stats). */
  get backlog(): { readonly inboxFrames: number; readonly unackedFrames: number; readonly unackedBytes: number } {
    return { inboxFrames: this.#inbox.length, unackedFrames: this.#unackedFrames, unackedBytes: this.#unackedBytes }
  }

  /** Resolves once the channel is finished (closed by either end or broken). */
  get finished(): Promise<void> {
    return this.#finishedSignal
  }

  async #close(): Promise<void> {
    this.#failSends(unavailable(this.id, 'is closed'))
    this.#endReading('ended', true)
    if (!this.#connection.ended) {
      this.#connection.send(FrameType.close)
      this.#connection.end()
      let cancel: () => void = () => undefined
      const grace = new Promise<void>((resolve) => {
        cancel = this.#init.clock.setTimer(this.#init.closeGraceMs, resolve)
      })
      await Promise.race([this.#finishedSignal, grace])
      cancel()
    }
    this.#connection.destroy(unavailable(this.id, 'is closed'))
    this.#finish()
  }

  #next(): Promise<IteratorResult<Uint8Array>> {
    const frame = this.#inbox.shift()
    if (frame !== undefined) {
      this.#inboxBytes -= frame.length
      this.#consumed(frame.length)
      return Promise.resolve({ done: false, value: frame })
    }
    if (this.#readEnd === 'ended') return Promise.resolve({ done: true, value: undefined })
    if (this.#readEnd !== 'open') return Promise.reject(this.#readEnd)
    return new Promise((resolve, reject) => this.#readers.push({ resolve, reject }))
  }

  /** Counts a consumed frame and returns credit: at once past a quarter window, otherwise after this turn. */
  #consumed(bytes: number): void {
    this.#consumedFrames++
    this.#consumedBytes += bytes
    const window = this.#init.receiveWindow
    if (this.#consumedFrames * 4 >= window.frames || this.#consumedBytes * 4 >= window.bytes) {
      this.#sendAck()
    } else if (!this.#ackScheduled) {
      this.#ackScheduled = true
      setImmediate(() => {
        this.#ackScheduled = false
        this.#sendAck()
      })
    }
  }

  #sendAck(): void {
    if (this.#consumedFrames === 0 || this.#readEnd !== 'open') return
    const ack = Buffer.allocUnsafe(ACK_BYTES)
    ack.writeUInt32BE(this.#consumedFrames, 0)
    ack.writeUInt32BE(this.#consumedBytes, 4)
    this.#consumedFrames = 0
    this.#consumedBytes = 0
    this.#connection.send(FrameType.ack, ack)
  }

  #onFrame(frame: WireFrame): void {
    switch (frame.type) {
      case FrameType.data:
        return this.#onData(frame.payload)
      case FrameType.ack:
        return this.#onAck(frame.payload)
      case FrameType.close:
        return this.#onPeerClose()
      default:
        return this.#violation(`sent a handshake frame (type ${frame.type}) on an open channel`)
    }
  }

  #onData(payload: Buffer): void {
    if (this.#readEnd !== 'open') return
    const reader = this.#readers.shift()
    if (reader !== undefined) {
      this.#consumed(payload.length)
      reader.resolve({ done: false, value: payload })
      return
    }
    this.#inbox.push(payload)
    this.#inboxBytes += payload.length
    const window = this.#init.receiveWindow
    if (this.#inbox.length > window.frames || (this.#inbox.length > 1 && this.#inboxBytes > window.bytes)) {
      this.#violation(`overran the receive window (${this.#inbox.length} frames, ${this.#inboxBytes} bytes)`)
    }
  }

  #onAck(payload: Buffer): void {
    if (payload.length !== ACK_BYTES) return this.#violation('sent a malformed ack')
    const frames = payload.readUInt32BE(0)
    const bytes = payload.readUInt32BE(4)
    if (frames > this.#unackedFrames || bytes > this.#unackedBytes) return this.#violation('acknowledged frames never sent')
    this.#unackedFrames -= frames
    this.#unackedBytes -= bytes
    this.#wakePump?.()
  }

  #onPeerClose(): void {
    this.#failSends(unavailable(this.id, 'was closed by the peer'))
    this.#endReading('ended', false)
    this.#connection.end()
  }

  #violation(what: string): void {
    this.#connection.destroy(new DrError('E_CORRUPT', `tcp channel ${this.id}: the peer ${what}`, { adapter: 'tcp', channel: this.id }))
  }

  #onEnd(end: ConnectionEnd): void {
    const failure = end.clean ? unavailable(this.id, 'lost its connection (the peer went away without closing)') : end.error
    this.#failSends(failure.code === 'E_UNAVAILABLE' ? failure : unavailable(this.id, `broke: ${failure.message}`, failure))
    if (this.#readEnd === 'open') this.#endReading(failure, false)
    this.#finish()
  }

  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    this.#bucket.fail(this.#sendError ?? unavailable(this.id, 'is finished'))
    this.#markFinished()
    this.#init.onFinished(this)
  }

  /** Stops reading: waiting readers get the end (or failure); `discard` drops frames not yet read. */
  #endReading(end: 'ended' | DrError, discard: boolean): void {
    if (this.#readEnd !== 'open') return
    this.#readEnd = end
    if (discard) {
      this.#inbox.length = 0
      this.#inboxBytes = 0
    }
    for (const reader of this.#readers.splice(0)) {
      if (end === 'ended') reader.resolve({ done: true, value: undefined })
      else reader.reject(end)
    }
  }

  #failSends(error: DrError): void {
    if (this.#sendError !== undefined) return
    this.#sendError = error
    this.#bucket.fail(error)
    for (const pending of this.#queue.splice(0)) pending.reject(error)
    this.#wakePump?.()
  }

  #windowHasRoom(bytes: number): boolean {
    const window = this.#init.sendWindow
    if (this.#unackedFrames === 0) return true
    return this.#unackedFrames < window.frames && this.#unackedBytes + bytes <= window.bytes
  }

  async #pump(): Promise<void> {
    this.#pumping = true
    try {
      for (;;) {
        const head = this.#queue[0]
        if (head === undefined || this.#sendError !== undefined) return
        const bytes = head.frame.byteLength
        if (!this.#windowHasRoom(bytes)) {
          await new Promise<void>((resolve) => {
            this.#wakePump = resolve
          })
          this.#wakePump = undefined
          continue
        }
        try {
          await this.#bucket.take(FRAME_HEADER_BYTES + bytes)
        } catch {
          return
        }
        if (this.#sendError !== undefined || this.#queue[0] !== head) return
        this.#queue.shift()
        this.#unackedFrames++
        this.#unackedBytes += bytes
        try {
          await this.#connection.write(FrameType.data, head.frame)
          head.resolve()
        } catch (error) {
          const failure = this.#sendError ?? unavailable(this.id, 'could not write a frame', error)
          head.reject(failure)
          this.#connection.destroy(failure)
          return
        }
      }
    } finally {
      this.#pumping = false
      this.#wakePump = undefined
    }
  }
}
