import { EMPTY_SLOT, PAGE_ENTRIES, type MapPage, type NodePage } from './block-map.js'
import type { BlockStore } from './block-store.js'
import { crc32 } from '../../kernel/crc32.js'
import type { LocalPool } from './local-pool.js'

/**
 * What a full check of a local pool found: how much it looked at and every inconsistency, in words.
 *
 * @public
 */
export interface PoolCheck {
  readonly volumes: number
  readonly snapshots: number
  readonly pages: number
  readonly slots: number
  readonly problems: readonly string[]
}

interface Tree {
  readonly label: string
  readonly root: NodePage | null
  readonly store: BlockStore
}

/**
 * Checks a pool end to end, like a scrub: every map page's reference count matches the trees that share it,
 * every leaf's count matches its entries, every slot's reference count matches the leaves that point at it,
 * every slot in use is charged to exactly one volume, and every referenced slot's data matches its checksum. Holds every volume's map lock (shared) while
 * it runs.
 */
export async function verifyPool(pool: LocalPool): Promise<PoolCheck> {
  const volumes = [...pool.state.volumes.values()].sort((a, b) => (a.name < b.name ? -1 : 1))
  const unlocks = await Promise.all(volumes.map((volume) => pool.io(volume).lock('shared')))
  try {
    const problems: string[] = []
    const trees: Tree[] = []
    for (const volume of volumes) {
      const store = pool.state.store(volume.blockSize)
      trees.push({ label: volume.name, root: volume.root, store })
      for (const snapshot of volume.snapshots.values()) {
        trees.push({ label: `${volume.name}@${snapshot.name}`, root: snapshot.root, store })
      }
    }
    const pageRefs = new Map<MapPage, number>()
    const slotRefs = new Map<BlockStore, Map<number, SlotSeen>>()
    const seen = new Set<MapPage>()
    for (const tree of trees) {
      let refs = slotRefs.get(tree.store)
      if (refs === undefined) {
        refs = new Map()
        slotRefs.set(tree.store, refs)
      }
      if (tree.root !== null) {
        pageRefs.set(tree.root, (pageRefs.get(tree.root) ?? 0) + 1)
        countReferences(tree.root, tree.label, seen, pageRefs, refs, problems)
      }
    }
    for (const [page, refs] of pageRefs) {
      if (page.refs !== refs) problems.push(`a map page has ${page.refs} references recorded, ${refs} found`)
    }
    let slots = 0
    for (const [store, refs] of slotRefs) {
      slots += refs.size
      if (store.usage().usedSlots !== refs.size) {
        problems.push(`block file ${store.blockSize}: ${store.usage().usedSlots} slots in use recorded, ${refs.size} referenced`)
      }
      const charged = volumes.filter((volume) => volume.blockSize === store.blockSize).reduce((sum, volume) => sum + store.owned(volume.id), 0)
      if (charged !== refs.size) problems.push(`block file ${store.blockSize}: ${charged} slots charged to volumes, ${refs.size} referenced`)
      for (const [slot, { refs: count, crc }] of refs) {
        if (store.references(slot) !== count) problems.push(`slot ${slot} (${store.blockSize}): ${store.references(slot)} references recorded, ${count} found`)
        const data = new Uint8Array(store.blockSize)
        await store.read(slot, [data])
        if (crc32(data) !== crc) problems.push(`slot ${slot} (${store.blockSize}): checksum mismatch`)
      }
    }
    const snapshots = volumes.reduce((sum, volume) => sum + volume.snapshots.size, 0)
    return { volumes: volumes.length, snapshots, pages: pageRefs.size, slots, problems }
  } finally {
    for (const unlock of unlocks) unlock()
  }
}

interface SlotSeen {
  refs: number
  readonly crc: number
}

function countReferences(
  page: MapPage,
  label: string,
  seen: Set<MapPage>,
  pageRefs: Map<MapPage, number>,
  slotRefs: Map<number, SlotSeen>,
  problems: string[],
): void {
  if (seen.has(page)) return
  seen.add(page)
  if (page.kind === 'node') {
    for (const child of page.children) {
      if (child === null) continue
      pageRefs.set(child, (pageRefs.get(child) ?? 0) + 1)
      countReferences(child, label, seen, pageRefs, slotRefs, problems)
    }
    return
  }
  let count = 0
  for (let i = 0; i < PAGE_ENTRIES; i++) {
    const slot = page.slots[i] ?? EMPTY_SLOT
    if (slot === EMPTY_SLOT) continue
    count++
    const crc = page.crcs[i] ?? 0
    const known = slotRefs.get(slot)
    if (known === undefined) slotRefs.set(slot, { refs: 1, crc })
    else {
      known.refs++
      if (known.crc !== crc) problems.push(`${label}: slot ${slot} is recorded with two different checksums`)
    }
  }
  if (count !== page.count) problems.push(`${label}: a leaf holds ${count} blocks, ${page.count} recorded`)
}
