/**
 * Buffer sizes are rounded up to this, so frames of slightly different sizes (a chunk's run headers vary with
 * its runs) reuse the same buffers.
 */
const SIZE_STEP = 64 * 1024

/**
 * A buffer taken from a {@link BufferPool}: `bytes` to fill and use, and `release` to give it back once nothing
 * reads it any more (a send or a write that settled). A buffer never released is simply garbage collected.
 */
export interface PooledBuffer {
  readonly bytes: Uint8Array
  readonly release: () => void
}

/**
 * Large transient buffers kept for reuse, up to `maxIdleBytes` of them idle. Memory the process has just
 * allocated costs a page fault per 4 KiB the first time it is written (on a virtual machine, more than the copy
 * itself: filling a new 1 MiB buffer took 1–4 ms where a reused one took 0.03 ms), while a reused buffer is
 * already mapped. The mirror builds its chunk frames in one, the local storage adapter its copies of the data it
 * writes.
 */
export class BufferPool {
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
  take(size: number): PooledBuffer {
    if (size === 0) return { bytes: new Uint8Array(0), release: () => undefined }
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
