/**
 * Where every frame of the journal is: file offset, size and first version, in columns (20 bytes a frame), so
 * that a million appends cost about 20 MB of index rather than the records themselves.
 */
export class FrameTable {
  #offsets = new Float64Array(1024)
  #firstVersions = new Float64Array(1024)
  #sizes = new Uint32Array(1024)
  #count = 0

  /** Adds a frame and returns its id. */
  add(offset: number, size: number, firstVersion: number): number {
    if (this.#count === this.#sizes.length) this.#grow()
    const id = this.#count++
    this.#offsets[id] = offset
    this.#sizes[id] = size
    this.#firstVersions[id] = firstVersion
    return id
  }

  /** Number of frames. */
  get count(): number {
    return this.#count
  }

  /** File offset of frame `id`. */
  offset(id: number): number {
    return this.#offsets[id] as number
  }

  /** Size in bytes of frame `id` (header included). */
  size(id: number): number {
    return this.#sizes[id] as number
  }

  /** Version of the first record of frame `id`. */
  firstVersion(id: number): number {
    return this.#firstVersions[id] as number
  }

  #grow(): void {
    const capacity = this.#sizes.length * 2
    const offsets = new Float64Array(capacity)
    offsets.set(this.#offsets)
    const firstVersions = new Float64Array(capacity)
    firstVersions.set(this.#firstVersions)
    const sizes = new Uint32Array(capacity)
    sizes.set(this.#sizes)
    this.#offsets = offsets
    this.#firstVersions = firstVersions
    this.#sizes = sizes
  }
}

/** One stream of the journal: its versions and the ids of its frames in version order. */
export interface StreamEntry {
  readonly name: string
  /** Version of the last durable record. */
  durable: number
  /** Version of the last record accepted, durable or still being written. */
  reserved: number
  readonly frames: number[]
  /** Settles when the appends in flight for this stream have; undefined when none are. */
  inFlight: Promise<void> | undefined
}

/** The in-memory index of a journal: every stream, and where its frames are. */
export class JournalIndex {
  readonly frames = new FrameTable()
  readonly #streams = new Map<string, StreamEntry>()

  /** The entry of `stream`, if it has ever been appended to. */
  get(stream: string): StreamEntry | undefined {
    return this.#streams.get(stream)
  }

  /** The entry of `stream`, created empty when missing. */
  entry(stream: string): StreamEntry {
    let entry = this.#streams.get(stream)
    if (entry === undefined) {
      entry = { name: stream, durable: 0, reserved: 0, frames: [], inFlight: undefined }
      this.#streams.set(stream, entry)
    }
    return entry
  }

  /** Records a durable frame of `entry` holding versions `firstVersion … firstVersion + count - 1`. */
  addFrame(entry: StreamEntry, offset: number, size: number, firstVersion: number, count: number): void {
    entry.frames.push(this.frames.add(offset, size, firstVersion))
    entry.durable = firstVersion + count - 1
    if (entry.reserved < entry.durable) entry.reserved = entry.durable
  }

  /** Position in `entry.frames` of the frame holding `version` (which must be at most `entry.durable`). */
  frameHolding(entry: StreamEntry, version: number): number {
    let low = 0
    let high = entry.frames.length - 1
    while (low < high) {
      const middle = (low + high + 1) >>> 1
      if (this.frames.firstVersion(entry.frames[middle] as number) <= version) low = middle
      else high = middle - 1
    }
    return low
  }

  /** Names of the streams with at least one durable record that start with `prefix`, sorted. */
  names(prefix: string): string[] {
    const names: string[] = []
    for (const entry of this.#streams.values()) if (entry.durable > 0 && entry.name.startsWith(prefix)) names.push(entry.name)
    return names.sort()
  }

  /** Number of streams with at least one durable record. */
  get streamCount(): number {
    let count = 0
    for (const entry of this.#streams.values()) if (entry.durable > 0) count++
    return count
  }
}
