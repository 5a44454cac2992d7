import { readBytes, writeBytes, type ConstituentIo } from './constituent-io.js'
import { NAMESPACE_SLOT_BYTES, decodeSlot, encodeNamespaceHeader, encodeSlot, pathHash, slotOffset } from './layout.js'

/** Slots read per storage call while probing (one 4 KiB block). */
const PROBE_BATCH = 16
/** Slots read per storage call while listing (256 KiB). */
const LIST_BATCH = 1024

/**
 * A stub as the namespace constituent holds it: the object's path, its global object id, and the slot it sits in.
 *
 * @public
 */
export interface Stub {
  readonly path: string
  readonly id: number
  readonly slot: number
}

/**
 * What probing a path found: the stub holding it, if any, and otherwise the first reusable slot on its probe
 * sequence (undefined when the table is full).
 *
 * @public
 */
export interface NamespaceProbe {
  readonly stub: Stub | undefined
  readonly free: number | undefined
}

/** Writes the header of an empty namespace constituent (its slots read as zeros: empty). */
export async function formatNamespace(io: ConstituentIo, volume: string, slots: number): Promise<void> {
  await writeBytes(io, volume, 0, encodeNamespaceHeader(slots))
}

/**
 * Follows the probe sequence of `path` (linear probing from its hash) until the path or an empty slot is found,
 * reading {@link PROBE_BATCH} slots per call. Reads the namespace snapshot `snapshot` when given.
 */
export async function probePath(io: ConstituentIo, volume: string, slots: number, path: string, snapshot?: string): Promise<NamespaceProbe> {
  const start = pathHash(path) % slots
  let free: number | undefined
  let seen = 0
  while (seen < slots) {
    const first = (start + seen) % slots
    const count = Math.min(PROBE_BATCH, slots - first, slots - seen)
    const bytes = await readBytes(io, volume, slotOffset(first), count * NAMESPACE_SLOT_BYTES, snapshot)
    for (let i = 0; i < count; i++) {
      const slot = first + i
      const decoded = decodeSlot(bytes.subarray(i * NAMESPACE_SLOT_BYTES, (i + 1) * NAMESPACE_SLOT_BYTES), { volume, slot })
      if (decoded.state === 'empty') return { stub: undefined, free: free ?? slot }
      if (decoded.state === 'tombstone') free ??= slot
      else if (decoded.path === path) return { stub: { path, id: decoded.id, slot }, free }
    }
    seen += count
  }
  return { stub: undefined, free }
}

/** Writes a stub into `slot`, or a tombstone when `stub` is undefined (the stub is removed). */
export async function writeSlot(io: ConstituentIo, volume: string, slot: number, stub: { readonly path: string; readonly id: number } | undefined): Promise<void> {
  await writeBytes(io, volume, slotOffset(slot), encodeSlot(stub))
}

/** Every stub of the namespace (or of its snapshot `snapshot`), in slot order. */
export async function listStubs(io: ConstituentIo, volume: string, slots: number, snapshot?: string): Promise<Stub[]> {
  const stubs: Stub[] = []
  for (let first = 0; first < slots; first += LIST_BATCH) {
    const count = Math.min(LIST_BATCH, slots - first)
    const bytes = await readBytes(io, volume, slotOffset(first), count * NAMESPACE_SLOT_BYTES, snapshot)
    for (let i = 0; i < count; i++) {
      const slot = first + i
      const decoded = decodeSlot(bytes.subarray(i * NAMESPACE_SLOT_BYTES, (i + 1) * NAMESPACE_SLOT_BYTES), { volume, slot })
      if (decoded.state === 'used') stubs.push({ path: decoded.path, id: decoded.id, slot })
    }
  }
  return stubs
}
