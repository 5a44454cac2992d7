/**
 * Buffer sizes are rounded up to this, so frames of slightly different sizes (a chunk's run headers vary with
 * its runs) reuse the same buffers.
 */
const SIZE_STEP = 64 * 1024

/**
 * A buffer taken from {@link SendBuffers}: `bytes` to fill and send, and `release` to give it back once the
 * channel is done with it (a send that settled). A buffer never released is simply garbage collected.
 */
export interface SendBuffer {
  readonly bytes: Uint8Array
  readonly release: () => void
}

/**
 * The buffers a site's mirror agent builds chunk frames in, kept between delta sets up to `maxIdleBytes`. A
 * buffer the process has just allocated costs a page fault per 4 KiB the first time it is written (on a virtual
 * machine, more than the copy itself), while a reused one is already mapped: reading a delta set into reused
 * buffers and sending them from there is what keeps a small incremental cheap.
 */
export class SendBuffers {
  readonly #maxIdleBytes: number
  readonly #idle: Uint8Array[] = []
  #idleBytes = 0

  constructor(maxIdleBytes: number) {
    this.#maxIdleBytes = maxIdleBytes
  }

  /** Bytes kept for reuse now. */
  get idleBytes(): number {
    return this.#idleBytes
  }

  /** A buffer of exactly `size` bytes (its contents undefined): a kept one large enough, or a new one. */
  take(size: number): SendBuffer {
    const index = this.#idle.findIndex((buffer) => buffer.length >= size)
    const buffer = index === -1 ? new Uint8Array(Math.max(SIZE_STEP, Math.ceil(size / SIZE_STEP) * SIZE_STEP)) : (this.#idle.splice(index, 1)[0] as Uint8Array)
    if (index !== -1) this.#idleBytes -= buffer.length
    let released = false
    return {
      bytes: buffer.subarray(0, size),
      release: () => {
        if (released) return
        released = true
        this.#keep(buffer)
      },
    }
  }

  #keep(buffer: Uint8Array): void {
    if (this.#idleBytes + buffer.length > this.#maxIdleBytes) return
    this.#idle.push(buffer)
    this.#idleBytes += buffer.length
  }
}
