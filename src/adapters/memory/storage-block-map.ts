/**
 * The byte counter of a volume: how many bytes of the blocks it wrote are still referenced by anything.
 */
export interface Allocation {
  bytes: number
}

/**
 * One block of data, immutable once written and shared by every map that references it. `refs` counts the leaf
 * nodes that hold it; the owner's allocation is charged while it is above zero.
 */
export interface DataBlock {
  readonly bytes: Uint8Array
  readonly owner: Allocation
  refs: number
}

/**
 * What a map holds for one block index: its data (`null` for a hole left by a trim, a shrink or a restore) and
 * its birth, the generation at which the block last changed.
 */
export interface Leaf {
  readonly data: DataBlock | null
  readonly birth: number
}

interface BottomNode {
  readonly kind: 'bottom'
  refs: number
  maxBirth: number
  readonly slots: Array<Leaf | undefined>
}

interface InnerNode {
  readonly kind: 'inner'
  refs: number
  maxBirth: number
  readonly slots: Array<TreeNode | undefined>
}

type TreeNode = BottomNode | InnerNode

const FANOUT = 64

function span(level: number): number {
  return FANOUT ** level
}

function digit(index: number, level: number): number {
  return Math.floor(index / span(level)) % FANOUT
}

function newNode(level: number): TreeNode {
  return level === 0
    ? { kind: 'bottom', refs: 1, maxBirth: 0, slots: [] }
    : { kind: 'inner', refs: 1, maxBirth: 0, slots: [] }
}

function retainData(data: DataBlock | null): void {
  if (data === null) return
  if (data.refs === 0) data.owner.bytes += data.bytes.length
  data.refs++
}

function releaseData(data: DataBlock | null): void {
  if (data === null) return
  data.refs--
  if (data.refs === 0) data.owner.bytes -= data.bytes.length
}

function releaseNode(node: TreeNode): void {
  node.refs--
  if (node.refs > 0) return
  if (node.kind === 'bottom') {
    for (const leaf of node.slots) if (leaf !== undefined) releaseData(leaf.data)
  } else {
    for (const child of node.slots) if (child !== undefined) releaseNode(child)
  }
}

/** Returns a node only the caller references: `node` itself, or a copy when it is shared. */
function exclusive(node: TreeNode): TreeNode {
  if (node.refs === 1) return node
  node.refs--
  if (node.kind === 'bottom') {
    for (const leaf of node.slots) if (leaf !== undefined) retainData(leaf.data)
    return { kind: 'bottom', refs: 1, maxBirth: node.maxBirth, slots: [...node.slots] }
  }
  for (const child of node.slots) if (child !== undefined) child.refs++
  return { kind: 'inner', refs: 1, maxBirth: node.maxBirth, slots: [...node.slots] }
}

/**
 * A copy-on-write radix tree from block index to {@link Leaf}, the block map of a volume or a snapshot.
 * `share()` is O(1): both maps reference the same nodes and the first write through either copies only the path
 * it changes. Every node remembers the newest birth below it, so the blocks born after a generation are found
 * without visiting the rest (ZFS birth times).
 */
export class BlockMap {
  #root: TreeNode | undefined
  #levels: number

  private constructor(root: TreeNode | undefined, levels: number) {
    this.#root = root
    this.#levels = levels
  }

  /** A map with no blocks. */
  static empty(): BlockMap {
    return new BlockMap(undefined, 1)
  }

  /** A second map with the same contents, sharing every node with this one. */
  share(): BlockMap {
    if (this.#root !== undefined) this.#root.refs++
    return new BlockMap(this.#root, this.#levels)
  }

  /** Drops this map's references; blocks nothing else references are freed. The map is empty afterwards. */
  release(): void {
    if (this.#root !== undefined) releaseNode(this.#root)
    this.#root = undefined
    this.#levels = 1
  }

  /** The leaf at `index`, if the block was ever written in this map's history. */
  get(index: number): Leaf | undefined {
    if (index >= span(this.#levels)) return undefined
    let node = this.#root
    for (let level = this.#levels - 1; node !== undefined; level--) {
      if (node.kind === 'bottom') return node.slots[digit(index, 0)]
      node = node.slots[digit(index, level)]
    }
    return undefined
  }

  /** Sets the leaf at `index`, copying the shared nodes on its path. */
  set(index: number, leaf: Leaf): void {
    while (index >= span(this.#levels)) {
      if (this.#root !== undefined) {
        this.#root = { kind: 'inner', refs: 1, maxBirth: this.#root.maxBirth, slots: [this.#root] }
      }
      this.#levels++
    }
    let node = this.#root === undefined ? newNode(this.#levels - 1) : exclusive(this.#root)
    this.#root = node
    for (let level = this.#levels - 1; ; level--) {
      node.maxBirth = Math.max(node.maxBirth, leaf.birth)
      const slot = digit(index, level)
      if (node.kind === 'bottom') {
        const previous = node.slots[slot]
        retainData(leaf.data)
        releaseData(previous?.data ?? null)
        node.slots[slot] = leaf
        return
      }
      const current = node.slots[slot]
      const child = current === undefined ? newNode(level - 1) : exclusive(current)
      node.slots[slot] = child
      node = child
    }
  }

  /** Every leaf born after generation `after`, in ascending index order. Visits only subtrees that hold one. */
  *bornAfter(after: number): Generator<[number, Leaf]> {
    if (this.#root !== undefined) yield* walk(this.#root, this.#levels - 1, 0, 0, Infinity, after)
  }

  /** Every leaf with an index in `[from, to)`, in ascending index order. */
  *range(from: number, to: number): Generator<[number, Leaf]> {
    if (this.#root !== undefined) yield* walk(this.#root, this.#levels - 1, 0, from, to, -1)
  }
}

function* walk(node: TreeNode, level: number, base: number, from: number, to: number, after: number): Generator<[number, Leaf]> {
  if (node.maxBirth <= after) return
  const width = span(level)
  const first = Math.max(0, Math.floor((from - base) / width))
  const last = Math.min(FANOUT - 1, Math.floor((to - 1 - base) / width))
  for (let slot = first; slot <= last; slot++) {
    const start = base + slot * width
    if (node.kind === 'bottom') {
      const leaf = node.slots[slot]
      if (leaf !== undefined && leaf.birth > after) yield [start, leaf]
    } else {
      const child = node.slots[slot]
      if (child !== undefined) yield* walk(child, level - 1, start, from, to, after)
    }
  }
}
