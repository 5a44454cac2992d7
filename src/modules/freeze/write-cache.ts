/**
 * One acknowledged write held in a handle's write-back cache: its order number among the volume's writes (`seq`),
 * where it goes, its bytes, and when it was acknowledged.
 *
 * @public
 */
export interface CachedWrite {
  readonly seq: number
  readonly offset: number
  readonly data: Uint8Array
  readonly at: number
}

/**
 * The write-back cache of a volume handle: writes acknowledged to the application but not yet on the volume
 * (the seed's "cached writes the application considers committed"). Reads see them over the volume's data, newest
 * last; a flush writes them in order and forgets each once it is on the volume; before a restore dismounts the
 * volume they are journaled off the volume and replayed after the remount.
 *
 * @public
 */
export class WriteBackCache {
  #writes: CachedWrite[] = []
  #dirtyBytes = 0

  /** Bytes acknowledged and not yet flushed. */
  get dirtyBytes(): number {
    return this.#dirtyBytes
  }

  /** Number of writes acknowledged and not yet flushed. */
  get size(): number {
    return this.#writes.length
  }

  /** Caches a copy of `data` at `offset` as write number `seq`. */
  put(seq: number, offset: number, data: Uint8Array, at: number): void {
    this.#writes.push({ seq, offset, data: data.slice(), at })
    this.#dirtyBytes += data.length
  }

  /** The cached writes, oldest first (a stable copy of the list: later puts and removals do not change it). */
  pending(): readonly CachedWrite[] {
    return [...this.#writes]
  }

  /** Forgets the cached writes whose `seq` is in `seqs` (they are on the volume now). */
  remove(seqs: ReadonlySet<number>): void {
    if (seqs.size === 0) return
    const kept: CachedWrite[] = []
    for (const write of this.#writes) {
      if (seqs.has(write.seq)) this.#dirtyBytes -= write.data.length
      else kept.push(write)
    }
    this.#writes = kept
  }

  /** True when cached writes cover every byte of `[offset, offset + length)`, so a read needs no storage. */
  covers(offset: number, length: number, writes: readonly CachedWrite[] = this.#writes): boolean {
    const end = offset + length
    const spans = writes
      .filter((w) => w.offset < end && w.offset + w.data.length > offset)
      .map((w) => [Math.max(w.offset, offset), Math.min(w.offset + w.data.length, end)] as const)
      .sort((a, b) => a[0] - b[0])
    let reached = offset
    for (const [from, to] of spans) {
      if (from > reached) return false
      reached = Math.max(reached, to)
    }
    return reached >= end
  }

  /**
   * Lays `writes` (default: the cached ones), oldest first, over `base` — the bytes of `[offset, offset + length)`
   * as read from the volume (zeros when omitted) — and returns the result.
   */
  overlay(offset: number, length: number, base?: Uint8Array, writes: readonly CachedWrite[] = this.#writes): Uint8Array {
    const out = base === undefined ? new Uint8Array(length) : base.slice(0, length)
    const end = offset + length
    for (const write of writes) {
      const from = Math.max(write.offset, offset)
      const to = Math.min(write.offset + write.data.length, end)
      if (from >= to) continue
      out.set(write.data.subarray(from - write.offset, to - write.offset), from - offset)
    }
    return out
  }
}
