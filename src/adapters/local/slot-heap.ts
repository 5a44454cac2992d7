/**
 * A binary min-heap of slot numbers: the free list of a block file, handing out the lowest free slot first so
 * data stays packed towards the start of the file and the tail can be truncated.
 */
export class SlotHeap {
  #items = new Uint32Array(64)
  #size = 0

  /** How many slots the heap holds (stale ones included). */
  get size(): number {
    return this.#size
  }

  /** Empties the heap. */
  clear(): void {
    this.#size = 0
  }

  /** Adds a slot. */
  push(slot: number): void {
    if (this.#size === this.#items.length) {
      const grown = new Uint32Array(this.#items.length * 2)
      grown.set(this.#items)
      this.#items = grown
    }
    const items = this.#items
    let i = this.#size++
    items[i] = slot
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = items[parent]!
      if (p <= slot) break
      items[i] = p
      items[parent] = slot
      i = parent
    }
  }

  /** Removes and returns the lowest slot, or undefined when empty. */
  pop(): number | undefined {
    if (this.#size === 0) return undefined
    const items = this.#items
    const top = items[0]!
    const last = items[--this.#size]!
    let i = 0
    const n = this.#size
    if (n > 0) {
      items[0] = last
      for (;;) {
        const left = 2 * i + 1
        if (left >= n) break
        const right = left + 1
        const child = right < n && items[right]! < items[left]! ? right : left
        if (items[child]! >= last) break
        items[i] = items[child]!
        items[child] = last
        i = child
      }
    }
    return top
  }
}
