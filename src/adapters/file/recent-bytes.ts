/** Size of one cached piece of the file. */
const CHUNK_BYTES = 1024 * 1024

/**
 * The most recent bytes of an append-only file, up to a budget, kept in memory in 1 MiB chunks so that reading
 * recent records needs no system call. It holds one contiguous range `[from, to)`: bytes are added at its end
 * (a gap starts it afresh), and the oldest chunks are dropped when the budget is exceeded.
 */
export class RecentBytes {
  readonly #maxChunks: number
  readonly #chunks = new Map<number, Buffer>()
  #from = 0
  #to = 0

  /** `budget` bytes at most are kept (rounded down to whole chunks; below one chunk nothing is kept). */
  constructor(budget: number) {
    this.#maxChunks = Math.floor(budget / CHUNK_BYTES)
  }

  /** Records that the file holds `bytes` at `offset`. Bytes before the cached end are taken as already known. */
  add(offset: number, bytes: Uint8Array): void {
    if (this.#maxChunks === 0) return
    if (offset > this.#to || this.#chunks.size === 0) this.#restartAt(offset)
    let position = Math.max(offset, this.#to)
    const end = offset + bytes.length
    while (position < end) {
      const index = Math.floor(position / CHUNK_BYTES)
      let chunk = this.#chunks.get(index)
      if (chunk === undefined) {
        chunk = Buffer.allocUnsafe(CHUNK_BYTES)
        this.#chunks.set(index, chunk)
      }
      const within = position - index * CHUNK_BYTES
      const length = Math.min(CHUNK_BYTES - within, end - position)
      chunk.set(bytes.subarray(position - offset, position - offset + length), within)
      position += length
    }
    this.#to = Math.max(this.#to, end)
    this.#evict()
  }

  /** Forgets everything from `offset` on (the file was cut there). */
  truncate(offset: number): void {
    if (offset >= this.#to) return
    if (offset <= this.#from) {
      this.#restartAt(offset)
      return
    }
    this.#to = offset
    for (const index of [...this.#chunks.keys()]) if (index * CHUNK_BYTES >= offset) this.#chunks.delete(index)
  }

  /** Bytes `[offset, offset + length)` of the file, or undefined when they are not all cached. */
  read(offset: number, length: number): Buffer | undefined {
    if (offset < this.#from || offset + length > this.#to) return undefined
    const index = Math.floor(offset / CHUNK_BYTES)
    const within = offset - index * CHUNK_BYTES
    const first = this.#chunks.get(index)
    if (first === undefined) return undefined
    if (within + length <= CHUNK_BYTES) return first.subarray(within, within + length)
    const copy = Buffer.allocUnsafe(length)
    let copied = 0
    for (let chunkIndex = index; copied < length; chunkIndex++) {
      const chunk = this.#chunks.get(chunkIndex)
      if (chunk === undefined) return undefined
      const start = chunkIndex === index ? within : 0
      const take = Math.min(CHUNK_BYTES - start, length - copied)
      chunk.copy(copy, copied, start, start + take)
      copied += take
    }
    return copy
  }

  #restartAt(offset: number): void {
    this.#chunks.clear()
    this.#from = offset
    this.#to = offset
  }

  #evict(): void {
    while (this.#chunks.size > this.#maxChunks) {
      const oldest = Math.floor(this.#from / CHUNK_BYTES)
      this.#chunks.delete(oldest)
      this.#from = (oldest + 1) * CHUNK_BYTES
    }
  }
}
