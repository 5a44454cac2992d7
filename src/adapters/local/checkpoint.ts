import * as t from 'io-ts'
import { JsonValue } from '../../kernel/codecs.js'
import { EMPTY_SLOT, forEachPage, newLeaf, newNode, PAGE_ENTRIES, type MapPage, type NodePage } from './block-map.js'
import { CHECKPOINT_MAGIC, concatBytes, corruptFile, encodeFrame, scanFrames } from './frames.js'
import type { PoolState, VolumeState } from './pool-state.js'
import { decodeJson, ShareRecord } from './records.js'

const RootId = t.union([t.number, t.null])

const SnapshotImage = t.type({
  name: t.string,
  createdAt: t.number,
  sizeBytes: t.number,
  labels: t.record(t.string, t.string),
  holds: t.array(t.string),
  root: RootId,
})

const VolumeImage = t.type({
  name: t.string,
  blockSize: t.number,
  createdAt: t.number,
  origin: t.union([t.string, t.null]),
  sizeBytes: t.number,
  online: t.boolean,
  writable: t.boolean,
  root: RootId,
  config: t.array(t.tuple([t.string, JsonValue])),
  snapshots: t.array(SnapshotImage),
})

/** Codec of a checkpoint's header: everything but the map pages, which follow it in binary frames. */
const PoolImage = t.type({
  version: t.literal(1),
  walGen: t.number,
  tokens: t.array(t.tuple([t.string, t.number])),
  volumes: t.array(VolumeImage),
  shares: t.array(ShareRecord),
  pageCount: t.number,
})

const FRAME_TARGET_BYTES = 4 << 20
const encoder = new TextEncoder()

/**
 * Serialises the pool as checkpoint frames: a JSON header, then every map page once (children before parents,
 * so shared pages stay shared), packed into binary frames. `walGen` is the first log generation to replay on
 * top of it. Synchronous, so the image is exactly the state at the moment of the call.
 */
export function encodeCheckpoint(state: PoolState, walGen: number): Uint8Array[] {
  const ids = new Map<MapPage, number>()
  const seen = new Set<MapPage>()
  const pageFrames: Uint8Array[] = []
  let chunk: Uint8Array[] = []
  let chunkBytes = 0
  const flush = (): void => {
    if (chunk.length === 0) return
    pageFrames.push(encodeFrame(CHECKPOINT_MAGIC, concatBytes(chunk)))
    chunk = []
    chunkBytes = 0
  }
  const visit = (page: MapPage): void => {
    ids.set(page, ids.size)
    const bytes = encodePage(page, ids)
    chunk.push(bytes)
    chunkBytes += bytes.length
    if (chunkBytes >= FRAME_TARGET_BYTES) flush()
  }
  const rootId = (root: NodePage | null): number | null => (root === null ? null : (ids.get(root) ?? null))
  const volumes = [...state.volumes.values()].map((volume) => {
    forEachPage(volume.root, seen, visit)
    for (const snapshot of volume.snapshots.values()) forEachPage(snapshot.root, seen, visit)
    return volume
  })
  flush()
  const header: t.TypeOf<typeof PoolImage> = {
    version: 1,
    walGen,
    tokens: state.guard.entries(),
    volumes: volumes.map((volume) => ({
      name: volume.name,
      blockSize: volume.blockSize,
      createdAt: volume.createdAt,
      origin: volume.origin ?? null,
      sizeBytes: volume.sizeBytes,
      online: volume.online,
      writable: volume.writable,
      root: rootId(volume.root),
      config: [...volume.config.entries()],
      snapshots: [...volume.snapshots.values()].map((snapshot) => ({
        name: snapshot.name,
        createdAt: snapshot.createdAt,
        sizeBytes: snapshot.sizeBytes,
        labels: { ...snapshot.labels },
        holds: [...snapshot.holds],
        root: rootId(snapshot.root),
      })),
    })),
    shares: [...state.shares.values()],
    pageCount: ids.size,
  }
  return [encodeFrame(CHECKPOINT_MAGIC, encoder.encode(JSON.stringify(PoolImage.encode(header)))), ...pageFrames]
}

function encodePage(page: MapPage, ids: ReadonlyMap<MapPage, number>): Uint8Array {
  const entryBytes = page.kind === 'leaf' ? 9 : 5
  const out = new Uint8Array(3 + entryBytes * page.count)
  const view = new DataView(out.buffer)
  out[0] = page.kind === 'leaf' ? 0 : 1
  view.setUint16(1, page.count, true)
  let at = 3
  for (let i = 0; i < PAGE_ENTRIES; i++) {
    if (page.kind === 'leaf') {
      const slot = page.slots[i] ?? EMPTY_SLOT
      if (slot === EMPTY_SLOT) continue
      out[at] = i
      view.setUint32(at + 1, slot, true)
      view.setUint32(at + 5, page.crcs[i] ?? 0, true)
    } else {
      const child = page.children[i] ?? null
      if (child === null) continue
      out[at] = i
      view.setUint32(at + 1, ids.get(child) ?? 0, true)
    }
    at += entryBytes
  }
  return out
}

/**
 * Rebuilds the pool from checkpoint bytes into `state` (`openStore` opens the block file of each block size
 * first). Volumes come in creation order, so an origin is loaded before its clones and each shared slot is
 * charged to the volume that wrote it. Returns the first log generation to replay.
 */
export async function loadCheckpoint(
  data: Uint8Array,
  file: string,
  state: PoolState,
  openStore: (blockSize: number) => Promise<void>,
): Promise<number> {
  const scan = scanFrames(data, CHECKPOINT_MAGIC, file)
  if (scan.tornTail || scan.bodies.length === 0) throw corruptFile(file, 'incomplete file')
  const [head, ...pageBodies] = scan.bodies
  const image = decodeJson(PoolImage, head ?? new Uint8Array(), file, 'checkpoint header')
  const pages = decodePages(pageBodies, file)
  if (pages.length !== image.pageCount) throw corruptFile(file, `expected ${image.pageCount} map pages, found ${pages.length}`)
  const root = (id: number | null): NodePage | null => {
    if (id === null) return null
    const page = pages[id]
    if (page === undefined || page.kind !== 'node') throw corruptFile(file, `bad root page ${id}`)
    page.refs++
    return page
  }
  state.guard.restore(image.tokens)
  const seen = new Set<MapPage>()
  for (const v of image.volumes) {
    await openStore(v.blockSize)
    const volume: VolumeState = {
      id: state.newVolumeId(),
      name: v.name,
      blockSize: v.blockSize,
      createdAt: v.createdAt,
      origin: v.origin ?? undefined,
      sizeBytes: v.sizeBytes,
      online: v.online,
      writable: v.writable,
      root: root(v.root),
      snapshots: new Map(),
      config: new Map(v.config),
    }
    for (const s of v.snapshots) {
      volume.snapshots.set(s.name, { ...s, holds: new Set(s.holds), root: root(s.root) })
    }
    const owner = state.owner(volume)
    const retainSlots = (page: MapPage): void => {
      if (page.kind === 'leaf') for (const slot of page.slots) if (slot !== EMPTY_SLOT) owner.retain(slot)
    }
    forEachPage(volume.root, seen, retainSlots)
    for (const snapshot of volume.snapshots.values()) forEachPage(snapshot.root, seen, retainSlots)
    state.volumes.set(volume.name, volume)
  }
  for (const share of image.shares) state.shares.set(share.name, share)
  return image.walGen
}

function decodePages(bodies: readonly Uint8Array[], file: string): MapPage[] {
  const pages: MapPage[] = []
  for (const body of bodies) {
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
    let at = 0
    while (at < body.length) {
      if (at + 3 > body.length) throw corruptFile(file, 'truncated page')
      const leaf = body[at] === 0
      const count = view.getUint16(at + 1, true)
      const entryBytes = leaf ? 9 : 5
      at += 3
      if (at + count * entryBytes > body.length || count > PAGE_ENTRIES) throw corruptFile(file, 'truncated page')
      const page = leaf ? newLeaf() : newNode()
      page.refs = 0
      page.count = count
      for (let k = 0; k < count; k++, at += entryBytes) {
        const index = body[at] ?? 0
        if (page.kind === 'leaf') {
          page.slots[index] = view.getUint32(at + 1, true)
          page.crcs[index] = view.getUint32(at + 5, true)
        } else {
          const child = pages[view.getUint32(at + 1, true)]
          if (child === undefined) throw corruptFile(file, 'page refers to a later page')
          child.refs++
          page.children[index] = child
        }
      }
      pages.push(page)
    }
  }
  return pages
}
