import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import { DrError } from '../../kernel/errors.js'
import { encodeFrame, encodeFrameHeader, FrameDecoder, type FrameTypeCode, type WireFrame } from './framing.js'

/**
 * How a frame connection ended: `clean` when the peer closed its side of the stream (a clean end at the
 * transport, which the channel still judges by whether a `close` frame came first), or the failure that broke it
 * (`E_CORRUPT` for a damaged frame, `E_UNAVAILABLE` for a reset, timeout or local destroy).
 */
export type ConnectionEnd = { readonly clean: true } | { readonly clean: false; readonly error: DrError }

/**
 * A socket (plain or TLS) spoken to in checked frames: frames out with their checksums (on TLS, the header's only:
 * TLS authenticates every record, so a payload checksum would check the same bytes twice), frames in through a
 * {@link FrameDecoder}, handed one by one to whichever handler is current, so that the handshake can hand the
 * connection over to a channel between two frames of the same read. Frames that arrive while no handler is set
 * wait for one.
 */
export class FrameConnection {
  readonly socket: Socket
  /** Whether payload checksums are written and verified: on plain TCP; TLS authenticates every record already. */
  readonly #checked: boolean
  readonly #decoder: FrameDecoder
  #handler: ((frame: WireFrame) => void) | undefined
  readonly #held: WireFrame[] = []
  #onEnd: ((end: ConnectionEnd) => void) | undefined
  #end: ConnectionEnd | undefined
  #dispatching = false
  #notified = false

  constructor(socket: Socket, maxFrameBytes: number) {
    this.socket = socket
    this.#checked = !(socket instanceof TLSSocket)
    this.#decoder = new FrameDecoder(maxFrameBytes, this.#checked)
    socket.setNoDelay(true)
    socket.on('data', (bytes: Buffer) => this.#receive(bytes))
    socket.on('end', () => this.#finish({ clean: true }))
    socket.on('error', (error: Error) => this.#finish({ clean: false, error: lost(this.remoteAddress, error) }))
    socket.on('close', () => this.#finish({ clean: false, error: lost(this.remoteAddress) }))
  }

  /** `host:port` of the other end, for reports and errors. */
  get remoteAddress(): string | undefined {
    const host = this.socket.remoteAddress
    return host === undefined ? undefined : `${host}:${this.socket.remotePort ?? '?'}`
  }

  /** True once the connection has ended one way or another. */
  get ended(): boolean {
    return this.#end !== undefined
  }

  /** Changes the largest frame this connection accepts from the next frame header on. */
  setMaxFrameBytes(bytes: number): void {
    this.#decoder.maxFrameBytes = bytes
  }

  /** Makes `handler` receive every following frame (and any that waited for a handler). */
  setHandler(handler: (frame: WireFrame) => void): void {
    this.#handler = handler
    this.#drain()
  }

  /** Detaches the handler and end listener; frames and the end wait for the next owner to attach. */
  detach(): void {
    this.#handler = undefined
    this.#onEnd = undefined
  }

  /** Calls `listener` once when the connection ends (at once if it already has). */
  setEndListener(listener: (end: ConnectionEnd) => void): void {
    this.#onEnd = listener
    if (this.#end !== undefined && this.#held.length === 0) this.#notifyEnd()
  }

  /** Writes one frame; resolves once the socket has taken its bytes, rejects with `E_UNAVAILABLE` if it cannot. */
  write(type: FrameTypeCode, payload: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.socket.destroyed || !this.socket.writable) {
        reject(lost(this.remoteAddress))
        return
      }
      this.socket.cork()
      this.socket.write(encodeFrameHeader(type, payload, this.#checked))
      this.socket.write(payload, (error) => (error === undefined || error === null ? resolve() : reject(lost(this.remoteAddress, error))))
      this.socket.uncork()
    })
  }

  /** Writes a small control frame without waiting for it; a failure shows up as the end of the connection. */
  send(type: FrameTypeCode, payload?: Uint8Array): void {
    if (this.socket.destroyed || !this.socket.writable) return
    this.socket.write(encodeFrame(type, payload, this.#checked))
  }

  /** Ends the stream after what was written (the peer sees a clean end of stream). */
  end(): void {
    if (!this.socket.destroyed) this.socket.end()
  }

  /** Tears the connection down at once, ending it with `error` (or a plain loss) unless it already ended. */
  destroy(error?: DrError): void {
    this.#finish({ clean: false, error: error ?? lost(this.remoteAddress) })
    this.socket.destroy()
  }

  #receive(bytes: Buffer): void {
    if (this.#end !== undefined) return
    for (const frame of this.#decoder.push(bytes)) this.#held.push(frame)
    const failure = this.#decoder.failure
    if (failure === undefined) this.#drain()
    else this.destroy(failure)
  }

  #drain(): void {
    if (this.#dispatching) return
    this.#dispatching = true
    try {
      for (;;) {
        const handler = this.#handler
        if (handler === undefined) break
        const frame = this.#held.shift()
        if (frame === undefined) break
        handler(frame)
      }
    } finally {
      this.#dispatching = false
    }
    if (this.#end !== undefined && this.#held.length === 0) this.#notifyEnd()
  }

  #finish(end: ConnectionEnd): void {
    if (this.#end !== undefined) return
    this.#end = end
    if (!end.clean) this.socket.destroy()
    this.#drain()
  }

  #notifyEnd(): void {
    if (this.#notified || this.#end === undefined || this.#onEnd === undefined) return
    this.#notified = true
    this.#onEnd(this.#end)
  }
}

function lost(remote: string | undefined, cause?: unknown): DrError {
  const why = cause instanceof Error ? `: ${cause.message}` : ''
  return new DrError('E_UNAVAILABLE', `tcp connection to ${remote ?? 'peer'} was lost${why}`, { adapter: 'tcp', remote }, { cause })
}
