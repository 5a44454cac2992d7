import * as zlib from 'node:zlib'

const TABLES = buildTables()

function buildTables(): Uint32Array {
  const tables = new Uint32Array(8 * 256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    tables[i] = c >>> 0
  }
  for (let i = 0; i < 256; i++) {
    let c = tables[i] ?? 0
    for (let slice = 1; slice < 8; slice++) {
      c = (tables[c & 0xff] ?? 0) ^ (c >>> 8)
      tables[slice * 256 + i] = c >>> 0
    }
  }
  return tables
}

/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) computed in JavaScript with slicing-by-8. It is the portable
 * definition of the local adapter's block and log checksums, used where the runtime has no native CRC-32.
 */
export function crc32Portable(data: Uint8Array): number {
  const t = TABLES
  let c = ~0
  let i = 0
  const n = data.length
  for (; i + 8 <= n; i += 8) {
    const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + data[i + 4]!]! ^
      t[512 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!
  }
  for (; i < n; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

/**
 * The checksum of a block payload or a log frame: CRC-32 (IEEE). Uses Node's native `zlib.crc32` when the
 * runtime has it (Node 20.15 and later) and {@link crc32Portable} otherwise; both give the same value, so the
 * on-disk format does not depend on the Node version.
 */
export const crc32: (data: Uint8Array) => number =
  typeof zlib.crc32 === 'function' ? (data) => zlib.crc32(data) : crc32Portable
