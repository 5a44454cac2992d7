import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { DrError } from '../../kernel/errors.js'
import type { SlotOwner } from './block-map.js'
import { SlotHeap } from './slot-heap.js'

/**
 * The shortest free run single writes fill in order (see {@link BlockStore.allocate}): shorter runs are left to
 * vectored writes that fit them, or to the fallback once scattered free space is reused.
 */
const MIN_EXTENT_SLOTS = 64

/**
 * Space used by one block file of a local pool: slots referenced by some block map, and slots the file spans.
 *
 * @public
 */
export interface BlockFileUsage {
  readonly blockSize: number
  readonly usedSlots: number
  readonly fileSlots: number
  readonly fileBytes: number
}

/**
 * The physical blocks of one block size: a file of fixed-size slots, written once per allocation and never
 * overwritten in place while referenced (redirect-on-write). It counts the map references of every slot and
 * charges each slot in use to the volume that wrote it (what `allocatedBytes` reports); a
 * slot whose count drops to zero waits in limbo until the metadata that freed it is durable, and only then
 * returns to the free list — so a crash can never find a durable map pointing at a slot that was reused. Free
 * slots at the end of the file are truncated away. Writes place their blocks in consecutive slots where they can
 * — single writes one after another along a free extent ({@link BlockStore.allocate}), vectored writes in one
 * free run ({@link BlockStore.allocateRun}) — so blocks written together are read back together, in a few large
 * calls, as a replication of recent changes does.
 */
export class BlockStore {
  /** Bytes per slot. */
  readonly blockSize: number
  readonly #file: FileHandle
  #refs = new Uint32Array(1024)
  #owners = new Uint32Array(1024)
  readonly #owned = new Map<number, number>()
  #isFree = new Uint8Array(1024)
  /** Slots marked in `#isFree`: the heap may also hold stale entries, taken since from an extent or a run. */
  #freeCount = 0
  /**
   * At least the length of the longest run of free slots, so {@link BlockStore.allocateRun} skips a scan that
   * cannot succeed: a failed scan sets it to the longest run it saw, taking slots only shortens runs, and freeing
   * a slot raises it (to 1 when both neighbours are in use, to "unknown" when the slot joins a run).
   */
  #longestFreeRunBound = Number.POSITIVE_INFINITY
  readonly #free = new SlotHeap()
  /** The free run single writes are filling: its next slot to hand out and its end (empty until one is chosen). */
  #extent = { next: 0, end: 0 }
  #limbo: number[] = []
  #slotCount: number
  #usedSlots = 0
  #tracking = false
  #dirty = false
  #truncation: Promise<void> = Promise.resolve()
  #reads = 0
  #writes = 0

  private constructor(file: FileHandle, blockSize: number, slotCount: number) {
    this.#file = file
    this.blockSize = blockSize
    this.#slotCount = slotCount
    this.#grow(slotCount)
  }

  /** Opens (creating if needed) the block file at `path`. Slot references are then rebuilt by the loader. */
  static async open(path: string, blockSize: number): Promise<BlockStore> {
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT)
    const { size } = await handle.stat()
    return new BlockStore(handle, blockSize, Math.ceil(size / blockSize))
  }

  #grow(slots: number): void {
    if (slots <= this.#refs.length) return
    let capacity = this.#refs.length
    while (capacity < slots) capacity *= 2
    const refs = new Uint32Array(capacity)
    refs.set(this.#refs)
    this.#refs = refs
    const owners = new Uint32Array(capacity)
    owners.set(this.#owners)
    this.#owners = owners
    const isFree = new Uint8Array(capacity)
    isFree.set(this.#isFree)
    this.#isFree = isFree
  }

  /**
   * The reference counting of the maps of volume `owner` (a number the pool gives each volume): a slot that
   * gains its first reference through it is charged to that volume until it is freed.
   */
  owner(owner: number): SlotOwner {
    return { retain: (slot) => this.#retain(slot, owner), release: (slot) => this.#release(slot) }
  }

  /** How many slots in use are charged to volume `owner`. */
  owned(owner: number): number {
    return this.#owned.get(owner) ?? 0
  }

  #charge(owner: number, delta: number): void {
    const owned = (this.#owned.get(owner) ?? 0) + delta
    if (owned === 0) this.#owned.delete(owner)
    else this.#owned.set(owner, owned)
  }

  #retain(slot: number, owner: number): void {
    if (slot >= this.#slotCount) {
      this.#slotCount = slot + 1
      this.#grow(this.#slotCount)
    }
    const refs = this.#refs[slot] ?? 0
    this.#refs[slot] = refs + 1
    if (refs !== 0) return
    this.#usedSlots++
    this.#owners[slot] = owner
    this.#charge(owner, 1)
  }

  #release(slot: number): void {
    const refs = (this.#refs[slot] ?? 0) - 1
    this.#refs[slot] = refs
    if (refs !== 0) return
    this.#usedSlots--
    this.#charge(this.#owners[slot] ?? 0, -1)
    if (this.#tracking) this.#limbo.push(slot)
  }

  /**
   * Ends loading: every slot the file spans that no map references becomes free, free slots at the end of
   * the file are cut off, and from now on freed slots go through limbo.
   */
  async finishLoad(): Promise<void> {
    for (let slot = 0; slot < this.#slotCount; slot++) {
      if (this.#refs[slot] === 0) this.#markFree(slot)
    }
    this.#tracking = true
    this.#truncateTail()
    await this.#truncation
  }

  #markFree(slot: number): void {
    if (this.#isFree[slot] !== 1) this.#freeCount++
    this.#isFree[slot] = 1
    const joinsRun = this.#isFree[slot - 1] === 1 || (slot + 1 < this.#slotCount && this.#isFree[slot + 1] === 1)
    this.#longestFreeRunBound = joinsRun ? Number.POSITIVE_INFINITY : Math.max(this.#longestFreeRunBound, 1)
    this.#free.push(slot)
  }

  #take(slot: number): void {
    this.#isFree[slot] = 0
    this.#freeCount--
  }

  /**
   * Reserves `count` free slots for the blocks of a write, in the order they are handed out: along the current
   * free extent — a run of at least {@link MIN_EXTENT_SLOTS} free slots, the next one after it once it is used
   * up — so that blocks written one after another, even by separate single-block writes, sit in consecutive slots.
   * With no such run left, the end of the file; or, when more than a quarter of the file is free in scattered
   * slots, the lowest free ones, so the file stops growing (the same bound as {@link BlockStore.allocateRun}).
   */
  allocate(count: number): number[] {
    const slots: number[] = []
    while (slots.length < count) {
      const slot = this.#nextInExtent()
      if (slot === undefined) break
      this.#take(slot)
      slots.push(slot)
    }
    if (slots.length < count && this.#scatteredSpaceIsReused()) slots.push(...this.#lowest(count - slots.length))
    if (slots.length < count) slots.push(...this.#extend(count - slots.length))
    this.#dropStaleFreeEntries()
    return slots
  }

  /** The next free slot of the current extent, moving to the next free run when it is used up; none if no run is left. */
  #nextInExtent(): number | undefined {
    for (;;) {
      const { next, end } = this.#extent
      if (next < end) {
        this.#extent.next = next + 1
        if (next < this.#slotCount && this.#isFree[next] === 1) return next
        continue
      }
      const run = this.#freeRun(MIN_EXTENT_SLOTS, end) ?? (end > 0 ? this.#freeRun(MIN_EXTENT_SLOTS) : undefined)
      if (run === undefined) return undefined
      this.#extent = { next: run.start, end: run.end }
    }
  }

  /** Whether a write that finds no free run takes scattered free slots: when over a quarter of the file is free. */
  #scatteredSpaceIsReused(): boolean {
    return this.#freeCount * 4 > this.#slotCount
  }

  /** Up to `count` of the lowest free slots. */
  #lowest(count: number): number[] {
    const slots: number[] = []
    while (slots.length < count) {
      const slot = this.#free.pop()
      if (slot === undefined) break
      if (slot >= this.#slotCount || this.#isFree[slot] !== 1) continue
      this.#take(slot)
      slots.push(slot)
    }
    return slots
  }

  /**
   * Reserves `count` consecutive slots for one vectored write, so it goes out (and is later read back) in a few
   * large calls: the first run of free slots long enough, otherwise the end of the file. When more than a
   * quarter of the file is free yet no run fits, it takes free slots as {@link BlockStore.allocate} does, so
   * space freed in scattered slots is still reused and the file does not keep growing.
   */
  allocateRun(count: number): number[] {
    const run = this.#freeRun(count)
    if (run === undefined) return this.#scatteredSpaceIsReused() ? this.allocate(count) : this.#extend(count)
    const slots: number[] = []
    for (let slot = run.start; slot < run.start + count; slot++) {
      this.#take(slot)
      slots.push(slot)
    }
    this.#dropStaleFreeEntries()
    return slots
  }

  /**
   * The lowest run of at least `count` free slots inside the file from slot `from` on, if there is one. A scan
   * of the whole file that finds none makes the longest run it saw the bound that spares the next scans.
   */
  #freeRun(count: number, from = 0): { readonly start: number; readonly end: number } | undefined {
    if (this.#freeCount < count || this.#longestFreeRunBound < count || from >= this.#slotCount) return undefined
    const free = this.#isFree.subarray(0, this.#slotCount)
    let longest = 0
    for (let at = free.indexOf(1, from); at !== -1; ) {
      const end = free.indexOf(0, at)
      const runEnd = end === -1 ? free.length : end
      if (runEnd - at >= count) return { start: at, end: runEnd }
      longest = Math.max(longest, runEnd - at)
      at = end === -1 ? -1 : free.indexOf(1, end)
    }
    if (from === 0) this.#longestFreeRunBound = longest
    return undefined
  }

  /** Rebuilds the free list once most of its entries are stale (slots taken from an extent or a run, not popped). */
  #dropStaleFreeEntries(): void {
    if (this.#free.size <= 2 * this.#freeCount + 1024) return
    this.#free.clear()
    for (let slot = 0; slot < this.#slotCount; slot++) if (this.#isFree[slot] === 1) this.#free.push(slot)
  }

  /** `count` new slots at the end of the file. */
  #extend(count: number): number[] {
    const first = this.#slotCount
    this.#grow(first + count)
    this.#slotCount += count
    return Array.from({ length: count }, (_, k) => first + k)
  }

  /** Gives back reserved slots that were never referenced (their write failed). */
  unreserve(slots: readonly number[]): void {
    for (const slot of slots) this.#markFree(slot)
    this.#truncateTail()
  }

  /** Takes the slots freed since the last cut; pass them to {@link BlockStore.reuse} once the change is durable. */
  cut(): number[] {
    const limbo = this.#limbo
    this.#limbo = []
    return limbo
  }

  /** Returns slots whose freeing is durable to the free list. */
  reuse(slots: readonly number[]): void {
    if (slots.length === 0) return
    for (const slot of slots) this.#markFree(slot)
    this.#truncateTail()
  }

  #truncateTail(): void {
    const before = this.#slotCount
    while (this.#slotCount > 0 && this.#isFree[this.#slotCount - 1] === 1) this.#take(--this.#slotCount)
    if (this.#slotCount === before) return
    const bytes = this.#slotCount * this.blockSize
    this.#truncation = this.#truncation.then(() => this.#file.truncate(bytes))
  }

  /** Writes consecutive slots from `first`, one buffer of `blockSize` bytes each. */
  async write(first: number, buffers: readonly Uint8Array[]): Promise<void> {
    await this.#truncation
    let position = first * this.blockSize
    let pending = buffers.slice()
    while (pending.length > 0) {
      const { bytesWritten } = await this.#file.writev(pending, position)
      this.#writes++
      if (bytesWritten === 0) throw new DrError('E_ADAPTER', `local: no progress writing block slots at byte ${position}`, { adapter: 'local' })
      position += bytesWritten
      pending = skipBytes(pending, bytesWritten)
    }
    this.#dirty = true
  }

  /**
   * Reads consecutive slots from `first` into `targets`, one buffer of `blockSize` bytes each, in one `preadv`
   * when the kernel allows; bytes past the end of the file read as zeros.
   */
  async read(first: number, targets: readonly Uint8Array[]): Promise<void> {
    let position = first * this.blockSize
    let pending = targets.slice()
    while (pending.length > 0) {
      const { bytesRead } = await this.#file.readv(pending, position)
      this.#reads++
      if (bytesRead === 0) {
        for (const target of pending) target.fill(0)
        return
      }
      position += bytesRead
      pending = skipBytes(pending, bytesRead)
    }
  }

  /** File reads and writes (each one `preadv` or `pwritev`, of however many slots) issued since the file was opened. */
  calls(): { readonly reads: number; readonly writes: number } {
    return { reads: this.#reads, writes: this.#writes }
  }

  /** Makes every completed write durable (a no-op when nothing was written since the last sync). */
  async sync(): Promise<void> {
    if (!this.#dirty) return
    this.#dirty = false
    await this.#file.datasync()
  }

  /** How many references `slot` has (for consistency checks). */
  references(slot: number): number {
    return this.#refs[slot] ?? 0
  }

  /** Space used by the file. */
  usage(): BlockFileUsage {
    return {
      blockSize: this.blockSize,
      usedSlots: this.#usedSlots,
      fileSlots: this.#slotCount,
      fileBytes: this.#slotCount * this.blockSize,
    }
  }

  /** Waits for pending truncation and closes the file. */
  async close(): Promise<void> {
    await this.#truncation
    await this.#file.close()
  }
}

function skipBytes(buffers: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const rest: Uint8Array[] = []
  let skip = bytes
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length
      continue
    }
    rest.push(skip === 0 ? buffer : buffer.subarray(skip))
    skip = 0
  }
  return rest
}
