import { readBytes, writeBytes, type ConstituentIo } from './constituent-io.js'
import { OBJECT_HEADER_BYTES, decodeDataHeader, decodeObject, encodeDataHeader, encodeObject, type Locator } from './layout.js'

/** Writes the header of an empty data constituent. */
export async function formatData(io: ConstituentIo, volume: string, ordinal: number): Promise<void> {
  await writeBytes(io, volume, 0, encodeDataHeader(ordinal))
}

/**
 * Appends object `id` to a data constituent of `sizeBytes`: the object (header and bytes) first, then the header
 * that moves the next free offset past it. Bytes below the next free offset are never rewritten, so a locator —
 * live or in a snapshot — always finds the bytes it was written for. Undefined when the object does not fit.
 */
export async function appendObject(
  io: ConstituentIo,
  volume: string,
  sizeBytes: number,
  id: number,
  data: Uint8Array,
): Promise<Omit<Locator, 'ordinal'> | undefined> {
  const header = decodeDataHeader(await readBytes(io, volume, 0, 32), volume)
  const encoded = encodeObject(id, data)
  const end = header.nextFree + encoded.bytes.length
  if (end > sizeBytes) return undefined
  await writeBytes(io, volume, header.nextFree, encoded.bytes)
  await writeBytes(io, volume, 0, encodeDataHeader(header.ordinal, end))
  return { id, offset: header.nextFree, length: data.length, crc: encoded.crc }
}

/** Reads and checks the object a locator points at, from the data constituent or its snapshot `snapshot`. */
export async function readObject(io: ConstituentIo, volume: string, locator: Locator, snapshot?: string): Promise<Uint8Array> {
  const bytes = await readBytes(io, volume, locator.offset, OBJECT_HEADER_BYTES + locator.length, snapshot)
  return decodeObject(bytes, locator, volume)
}
