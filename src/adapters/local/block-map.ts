/**
 * The block map of a volume or snapshot: a persistent radix tree from block index to physical slot and
 * checksum. Pages are shared between trees and carry a reference count, as in LVM thin's metadata btree:
 * a snapshot or clone takes one more reference on a root (O(1)); a later write copies only the pages on the
 * path it changes (copy-on-write of map pages); releasing a tree frees the pages, and the slots, that nothing
 * else references. Two trees are compared by walking them together and skipping shared pages, so a diff costs
 * the pages that differ, not the size of the volume.
 */

/** log2 of the entries per page. */
const PAGE_BITS = 8
/** Entries per map page (leaf entries or child pointers). */
export const PAGE_ENTRIES = 1 << PAGE_BITS
/** Levels below the root: the root is at level 3 and leaves at level 0. */
const ROOT_LEVEL = 3
/** How many blocks one tree can address: 2^32. */
export const MAX_BLOCKS = 2 ** (PAGE_BITS * (ROOT_LEVEL + 1))
/** The slot value of an unallocated leaf entry. */
export const EMPTY_SLOT = 0xffffffff

/** A leaf page: slot and checksum of 256 consecutive blocks (`EMPTY_SLOT` where unallocated). */
export interface LeafPage {
  readonly kind: 'leaf'
  refs: number
  count: number
  readonly slots: Uint32Array
  readonly crcs: Uint32Array
}

/** An interior page: 256 children, each covering `256^level` blocks. */
export interface NodePage {
  readonly kind: 'node'
  refs: number
  count: number
  readonly children: Array<MapPage | null>
}

/** A page of a block map. */
export type MapPage = LeafPage | NodePage

/** The physical store whose slots a tree's leaves reference: one reference per leaf page that holds a slot. */
export interface SlotOwner {
  retain(slot: number): void
  release(slot: number): void
}

/** Work counters for tests and benchmarks: map pages and leaf entries looked at by diffs. */
export interface MapStats {
  pagesVisited: number
  entriesVisited: number
}

/** One allocated block as a diff or a lookup sees it. */
export interface BlockEntry {
  readonly block: number
  readonly slot: number
  readonly crc: number
}

/** Blocks covered by one page at `level`. */
function pageSpan(level: number): number {
  return 2 ** (PAGE_BITS * (level + 1))
}

function childIndex(block: number, level: number): number {
  return Math.floor(block / pageSpan(level - 1)) % PAGE_ENTRIES
}

/** A new, unshared, empty leaf page. */
export function newLeaf(): LeafPage {
  return { kind: 'leaf', refs: 1, count: 0, slots: new Uint32Array(PAGE_ENTRIES).fill(EMPTY_SLOT), crcs: new Uint32Array(PAGE_ENTRIES) }
}

/** A new, unshared, empty interior page. */
export function newNode(): NodePage {
  return { kind: 'node', refs: 1, count: 0, children: new Array<MapPage | null>(PAGE_ENTRIES).fill(null) }
}

function copyPage(page: MapPage, owner: SlotOwner): MapPage {
  if (page.kind === 'leaf') {
    for (const slot of page.slots) if (slot !== EMPTY_SLOT) owner.retain(slot)
    return { kind: 'leaf', refs: 1, count: page.count, slots: page.slots.slice(), crcs: page.crcs.slice() }
  }
  for (const child of page.children) if (child !== null) child.refs++
  return { kind: 'node', refs: 1, count: page.count, children: page.children.slice() }
}

/** Takes one more reference on a tree (a snapshot, a clone or a restore now shares it). */
export function retainTree(root: NodePage | null): NodePage | null {
  if (root !== null) root.refs++
  return root
}

/** Drops one reference on a page; when none is left, drops its children's and its slots' references. */
export function releaseTree(page: MapPage | null, owner: SlotOwner): void {
  if (page === null || --page.refs > 0) return
  if (page.kind === 'leaf') {
    for (const slot of page.slots) if (slot !== EMPTY_SLOT) owner.release(slot)
  } else {
    for (const child of page.children) releaseTree(child, owner)
  }
}

function exclusive<P extends MapPage>(page: P, owner: SlotOwner): P {
  if (page.refs === 1) return page
  page.refs--
  return copyPage(page, owner) as P
}

function exclusiveChild(parent: NodePage, index: number, level: number, owner: SlotOwner): MapPage {
  const child = parent.children[index] ?? null
  if (child === null) {
    const fresh = level === 0 ? newLeaf() : newNode()
    parent.children[index] = fresh
    parent.count++
    return fresh
  }
  const own = exclusive(child, owner)
  parent.children[index] = own
  return own
}

function findLeaf(root: NodePage | null, block: number): LeafPage | null {
  let page: MapPage | null = root
  for (let level = ROOT_LEVEL; page !== null && page.kind === 'node'; level--) {
    page = page.children[childIndex(block, level)] ?? null
  }
  return page
}

/**
 * Fills `slots` and `crcs` with the entries of `count` blocks from `first` (`EMPTY_SLOT` where unallocated),
 * descending the tree once per leaf page.
 */
export function lookupRange(root: NodePage | null, first: number, count: number, slots: Uint32Array, crcs: Uint32Array): void {
  let i = 0
  while (i < count) {
    const block = first + i
    const leaf = findLeaf(root, block)
    const start = block % PAGE_ENTRIES
    const n = Math.min(PAGE_ENTRIES - start, count - i)
    if (leaf === null) {
      slots.fill(EMPTY_SLOT, i, i + n)
    } else {
      slots.set(leaf.slots.subarray(start, start + n), i)
      crcs.set(leaf.crcs.subarray(start, start + n), i)
    }
    i += n
  }
}

/**
 * Points blocks at new slots in the tree owned by the caller and returns its new root. The path to each leaf is
 * copied where it is shared; a slot replaced is released, the new slot retained.
 */
export function setBlocks(root: NodePage | null, entries: readonly BlockEntry[], owner: SlotOwner): NodePage {
  const own = root === null ? newNode() : exclusive(root, owner)
  for (const { block, slot, crc } of entries) {
    let page: MapPage = own
    for (let level = ROOT_LEVEL; page.kind === 'node'; level--) {
      page = exclusiveChild(page, childIndex(block, level), level - 1, owner)
    }
    const index = block % PAGE_ENTRIES
    const old = page.slots[index] ?? EMPTY_SLOT
    owner.retain(slot)
    if (old === EMPTY_SLOT) page.count++
    else owner.release(old)
    page.slots[index] = slot
    page.crcs[index] = crc
  }
  return own
}

/**
 * Unmaps blocks `[first, end)` in the tree owned by the caller and returns its new root (null when the tree
 * became empty). Pages left empty are dropped.
 */
export function clearRange(root: NodePage | null, first: number, end: number, owner: SlotOwner): NodePage | null {
  if (root === null || first >= end) return root
  return clearIn(root, ROOT_LEVEL, 0, first, end, owner) as NodePage | null
}

function clearIn(page: MapPage, level: number, base: number, first: number, end: number, owner: SlotOwner): MapPage | null {
  const span = pageSpan(level)
  if (first <= base && end >= base + span) {
    releaseTree(page, owner)
    return null
  }
  const from = Math.max(first, base) - base
  const to = Math.min(end, base + span) - base
  if (page.kind === 'leaf') {
    if (!page.slots.subarray(from, to).some((slot) => slot !== EMPTY_SLOT)) return page
    const own = exclusive(page, owner)
    for (let i = from; i < to; i++) {
      const slot = own.slots[i] ?? EMPTY_SLOT
      if (slot === EMPTY_SLOT) continue
      owner.release(slot)
      own.slots[i] = EMPTY_SLOT
      own.count--
    }
    return finish(own, owner)
  }
  const childSpan = pageSpan(level - 1)
  const lo = Math.floor(from / childSpan)
  const hi = Math.ceil(to / childSpan)
  if (!page.children.slice(lo, hi).some((child) => child !== null)) return page
  const own = exclusive(page, owner)
  for (let i = lo; i < hi; i++) {
    const child = own.children[i] ?? null
    if (child === null) continue
    const next = clearIn(child, level - 1, base + i * childSpan, first, end, owner)
    own.children[i] = next
    if (next === null) own.count--
  }
  return finish(own, owner)
}

function finish(page: MapPage, owner: SlotOwner): MapPage | null {
  if (page.count > 0) return page
  releaseTree(page, owner)
  return null
}

/**
 * Calls `visit` for every block whose entry differs between tree `a` and tree `b`, in ascending block order,
 * with its entry in `b` (`EMPTY_SLOT` when unallocated there). Shared pages are skipped whole.
 */
export function diffTrees(
  a: NodePage | null,
  b: NodePage | null,
  visit: (block: number, slotInB: number) => void,
  stats: MapStats,
): void {
  diffPages(a, b, ROOT_LEVEL, 0, visit, stats)
}

function diffPages(
  a: MapPage | null,
  b: MapPage | null,
  level: number,
  base: number,
  visit: (block: number, slotInB: number) => void,
  stats: MapStats,
): void {
  if (a === b) return
  stats.pagesVisited++
  if (level === 0) {
    const sa = a?.kind === 'leaf' ? a.slots : null
    const sb = b?.kind === 'leaf' ? b.slots : null
    stats.entriesVisited += PAGE_ENTRIES
    for (let i = 0; i < PAGE_ENTRIES; i++) {
      const slotA = sa === null ? EMPTY_SLOT : (sa[i] ?? EMPTY_SLOT)
      const slotB = sb === null ? EMPTY_SLOT : (sb[i] ?? EMPTY_SLOT)
      if (slotA !== slotB) visit(base + i, slotB)
    }
    return
  }
  const ca = a?.kind === 'node' ? a.children : null
  const cb = b?.kind === 'node' ? b.children : null
  const childSpan = pageSpan(level - 1)
  for (let i = 0; i < PAGE_ENTRIES; i++) {
    const childA = ca === null ? null : (ca[i] ?? null)
    const childB = cb === null ? null : (cb[i] ?? null)
    if (childA !== childB) diffPages(childA, childB, level - 1, base + i * childSpan, visit, stats)
  }
}

/** Calls `visit` for every page of the tree once, children before their parent (shared pages once each). */
export function forEachPage(root: NodePage | null, seen: Set<MapPage>, visit: (page: MapPage) => void): void {
  if (root === null) return
  walk(root, seen, visit)
}

function walk(page: MapPage, seen: Set<MapPage>, visit: (page: MapPage) => void): void {
  if (seen.has(page)) return
  seen.add(page)
  if (page.kind === 'node') for (const child of page.children) if (child !== null) walk(child, seen, visit)
  visit(page)
}
