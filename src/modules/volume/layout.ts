import { crc32 } from '../../kernel/crc32.js'
import { DrError } from '../../kernel/errors.js'

/**
 * The on-disk layout of an expandable volume's constituents. Every constituent is an ordinary volume of the
 * site's storage; everything the expandable volume knows about its objects lives in those volumes' blocks, so a
 * storage snapshot of a constituent captures it and a block replicator copies it.
 *
 * - namespace constituent: a header block, then a hash table of fixed {@link NAMESPACE_SLOT_BYTES}-byte slots
 *   (path hash → slot, linear probing). A used slot is a stub: the path and the object's global object id.
 * - object-locator constituent (OLS): a header block (next never-issued global object id), then fixed
 *   {@link LOCATOR_RECORD_BYTES}-byte records indexed by global object id: data constituent ordinal, offset,
 *   length and CRC-32 of the object.
 * - data constituent: a header block (next free offset), then objects appended one after the other, each an
 *   {@link OBJECT_HEADER_BYTES}-byte header (magic, id, length, CRC-32) followed by its bytes.
 */

/** Block size of every constituent volume, and the size of each constituent's header region. */
export const CONSTITUENT_BLOCK_SIZE = 4096

/** Bytes of one namespace slot. */
export const NAMESPACE_SLOT_BYTES = 256

/** Bytes of a slot's fixed fields (state, path length, global object id); the path fills the rest. */
const SLOT_FIXED_BYTES = 8

/** Longest object path in UTF-8 bytes, so that a path always fits its slot. */
export const MAX_PATH_BYTES = NAMESPACE_SLOT_BYTES - SLOT_FIXED_BYTES

/** Bytes of one object-locator record. */
export const LOCATOR_RECORD_BYTES = 32

/** Bytes of the header in front of each object in a data constituent. */
export const OBJECT_HEADER_BYTES = 16

const NAMESPACE_MAGIC = 'DRKNS001'
const LOCATOR_MAGIC = 'DRKOLS01'
const DATA_MAGIC = 'DRKDC001'
const OBJECT_MAGIC = 0x4f424a31

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** FNV-1a (32-bit) of a path's UTF-8 bytes: where its probe sequence starts, and where the object is placed. */
export function pathHash(path: string): number {
  let hash = 0x811c9dc5
  for (const byte of encoder.encode(path)) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash >>> 0
}

/** The UTF-8 bytes of `path`. */
export function pathBytes(path: string): Uint8Array {
  return encoder.encode(path)
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** A 32-byte constituent header starting with `magic`, and a view to fill in its fields. */
function header(magic: string): { readonly bytes: Uint8Array; readonly fields: DataView } {
  const bytes = new Uint8Array(32)
  bytes.set(encoder.encode(magic), 0)
  return { bytes, fields: view(bytes) }
}

function hasMagic(bytes: Uint8Array, magic: string): boolean {
  return encoder.encode(magic).every((byte, i) => bytes[i] === byte)
}

function corrupt(what: string, details: Record<string, unknown>): DrError {
  return new DrError('E_CORRUPT', `volume: ${what}`, details)
}

/** Rounds `bytes` up to a whole number of constituent blocks. */
export function roundToBlocks(bytes: number): number {
  return Math.ceil(bytes / CONSTITUENT_BLOCK_SIZE) * CONSTITUENT_BLOCK_SIZE
}

/** Size of a namespace constituent with `slots` slots. */
export function namespaceVolumeBytes(slots: number): number {
  return CONSTITUENT_BLOCK_SIZE + roundToBlocks(slots * NAMESPACE_SLOT_BYTES)
}

/** Size of an object-locator constituent holding ids 1..`objectIds`. */
export function locatorVolumeBytes(objectIds: number): number {
  return CONSTITUENT_BLOCK_SIZE + roundToBlocks((objectIds + 1) * LOCATOR_RECORD_BYTES)
}

/** Byte offset of namespace slot `slot`. */
export function slotOffset(slot: number): number {
  return CONSTITUENT_BLOCK_SIZE + slot * NAMESPACE_SLOT_BYTES
}

/** Byte offset of the locator record of global object id `id`. */
export function locatorOffset(id: number): number {
  return CONSTITUENT_BLOCK_SIZE + id * LOCATOR_RECORD_BYTES
}

/** The header of a new namespace constituent. */
export function encodeNamespaceHeader(slots: number): Uint8Array {
  const { bytes, fields } = header(NAMESPACE_MAGIC)
  fields.setUint32(8, slots, true)
  return bytes
}

/** A namespace slot: empty (never used), a stub, or a tombstone (a stub was removed; probing goes on past it). */
export type NamespaceSlot =
  | { readonly state: 'empty' }
  | { readonly state: 'tombstone' }
  | { readonly state: 'used'; readonly path: string; readonly id: number }

const SLOT_STATE = { empty: 0, used: 1, tombstone: 2 } as const

/** Encodes a stub (or a tombstone when `stub` is undefined) as slot bytes. */
export function encodeSlot(stub: { readonly path: string; readonly id: number } | undefined): Uint8Array {
  const bytes = new Uint8Array(NAMESPACE_SLOT_BYTES)
  const v = view(bytes)
  if (stub === undefined) {
    v.setUint8(0, SLOT_STATE.tombstone)
    return bytes
  }
  const path = encoder.encode(stub.path)
  v.setUint8(0, SLOT_STATE.used)
  v.setUint16(2, path.length, true)
  v.setUint32(4, stub.id, true)
  bytes.set(path, SLOT_FIXED_BYTES)
  return bytes
}

/** Decodes one slot. Rejects with `E_CORRUPT` when the bytes are not a slot. */
export function decodeSlot(bytes: Uint8Array, where: { volume: string; slot: number }): NamespaceSlot {
  const v = view(bytes)
  const state = v.getUint8(0)
  if (state === SLOT_STATE.empty) return { state: 'empty' }
  if (state === SLOT_STATE.tombstone) return { state: 'tombstone' }
  const length = v.getUint16(2, true)
  if (state !== SLOT_STATE.used || length === 0 || length > MAX_PATH_BYTES) throw corrupt(`namespace slot ${where.slot} is damaged`, where)
  try {
    return { state: 'used', path: decoder.decode(bytes.subarray(SLOT_FIXED_BYTES, SLOT_FIXED_BYTES + length)), id: v.getUint32(4, true) }
  } catch {
    throw corrupt(`namespace slot ${where.slot} holds a path that is not UTF-8`, where)
  }
}

/** The header of an object-locator constituent (by default: no id issued yet). */
export function encodeLocatorHeader(objectIds: number, nextId = 1): Uint8Array {
  const { bytes, fields } = header(LOCATOR_MAGIC)
  fields.setUint32(8, nextId, true)
  fields.setUint32(12, objectIds, true)
  return bytes
}

/** Reads the next never-issued global object id from a locator header. */
export function decodeLocatorHeader(bytes: Uint8Array, volume: string): { readonly nextId: number } {
  if (!hasMagic(bytes, LOCATOR_MAGIC)) throw corrupt(`"${volume}" is not an object-locator constituent`, { volume })
  return { nextId: view(bytes).getUint32(8, true) }
}

/**
 * Where an object lives: its data constituent (by ordinal), byte offset, length and CRC-32.
 *
 * @public
 */
export interface Locator {
  readonly id: number
  readonly ordinal: number
  readonly offset: number
  readonly length: number
  readonly crc: number
}

/** Encodes a live locator record (or a free one when `locator` is undefined). */
export function encodeLocator(locator: Locator | undefined): Uint8Array {
  const bytes = new Uint8Array(LOCATOR_RECORD_BYTES)
  if (locator === undefined) return bytes
  const v = view(bytes)
  v.setUint8(0, 1)
  v.setUint32(4, locator.id, true)
  v.setUint32(8, locator.ordinal, true)
  v.setUint32(12, locator.length, true)
  v.setFloat64(16, locator.offset, true)
  v.setUint32(24, locator.crc, true)
  return bytes
}

/** Decodes a locator record; undefined when the record is free. `E_CORRUPT` when it names another id. */
export function decodeLocator(bytes: Uint8Array, id: number, volume: string): Locator | undefined {
  const v = view(bytes)
  if (v.getUint8(0) === 0) return undefined
  const locator: Locator = { id: v.getUint32(4, true), ordinal: v.getUint32(8, true), length: v.getUint32(12, true), offset: v.getFloat64(16, true), crc: v.getUint32(24, true) }
  if (v.getUint8(0) !== 1 || locator.id !== id || !Number.isSafeInteger(locator.offset)) {
    throw corrupt(`locator record ${id} of "${volume}" is damaged`, { volume, id })
  }
  return locator
}

/** The header of a data constituent whose next free byte is `nextFree`. */
export function encodeDataHeader(ordinal: number, nextFree = CONSTITUENT_BLOCK_SIZE): Uint8Array {
  const { bytes, fields } = header(DATA_MAGIC)
  fields.setFloat64(8, nextFree, true)
  fields.setUint32(16, ordinal, true)
  return bytes
}

/** Reads a data constituent's header. */
export function decodeDataHeader(bytes: Uint8Array, volume: string): { readonly nextFree: number; readonly ordinal: number } {
  const v = view(bytes)
  const nextFree = v.getFloat64(8, true)
  if (!hasMagic(bytes, DATA_MAGIC) || !Number.isSafeInteger(nextFree) || nextFree < CONSTITUENT_BLOCK_SIZE) {
    throw corrupt(`"${volume}" is not a data constituent`, { volume })
  }
  return { nextFree, ordinal: v.getUint32(16, true) }
}

/** An object as appended to a data constituent: header then bytes. */
export function encodeObject(id: number, data: Uint8Array): { readonly bytes: Uint8Array; readonly crc: number } {
  const crc = crc32(data)
  const bytes = new Uint8Array(OBJECT_HEADER_BYTES + data.length)
  const v = view(bytes)
  v.setUint32(0, OBJECT_MAGIC, true)
  v.setUint32(4, id, true)
  v.setUint32(8, data.length, true)
  v.setUint32(12, crc, true)
  bytes.set(data, OBJECT_HEADER_BYTES)
  return { bytes, crc }
}

/**
 * Checks an object read back from a data constituent against its locator (magic, id, length, CRC-32) and
 * returns its bytes. A mismatch is `E_CORRUPT`: never served.
 */
export function decodeObject(bytes: Uint8Array, locator: Locator, volume: string): Uint8Array {
  const v = view(bytes)
  const data = bytes.slice(OBJECT_HEADER_BYTES)
  const ok =
    bytes.length === OBJECT_HEADER_BYTES + locator.length &&
    v.getUint32(0, true) === OBJECT_MAGIC &&
    v.getUint32(4, true) === locator.id &&
    v.getUint32(8, true) === locator.length &&
    v.getUint32(12, true) === locator.crc &&
    crc32(data) === locator.crc
  if (!ok) throw corrupt(`object ${locator.id} at offset ${locator.offset} of "${volume}" fails its checksum`, { volume, id: locator.id, offset: locator.offset })
  return data
}
