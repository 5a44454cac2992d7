import * as zlib from 'node:zlib'

/** Eight 256-entry tables for the slice-by-8 CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320). */
const TABLES: readonly Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256))
  const first = tables[0] as Uint32Array
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    first[n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    let c = first[n] as number
    for (let k = 1; k < 8; k++) {
      c = (first[c & 0xff] as number) ^ (c >>> 8)
      ;(tables[k] as Uint32Array)[n] = c >>> 0
    }
  }
  return tables
})()

/**
 * CRC-32 (the zlib / PNG / Ethernet checksum) of `data`, computed in JavaScript. `previous` continues a running
 * checksum, like zlib's `crc32(data, value)`. Used where `node:zlib` has no `crc32` (Node 20 before 20.15).
 *
 * @public
 */
export function crc32Js(data: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array]
  let crc = ~previous >>> 0
  let i = 0
  const end8 = data.length - (data.length % 8)
  while (i < end8) {
    const a = (crc ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24))) >>> 0
    crc =
      (t7[a & 0xff] as number) ^
      (t6[(a >>> 8) & 0xff] as number) ^
      (t5[(a >>> 16) & 0xff] as number) ^
      (t4[a >>> 24] as number) ^
      (t3[data[i + 4] as number] as number) ^
      (t2[data[i + 5] as number] as number) ^
      (t1[data[i + 6] as number] as number) ^
      (t0[data[i + 7] as number] as number)
    i += 8
  }
  while (i < data.length) crc = (t0[(crc ^ (data[i++] as number)) & 0xff] as number) ^ (crc >>> 8)
  return ~crc >>> 0
}

/**
 * CRC-32 of `data`: `node:zlib`'s native `crc32` where the running Node has it, {@link crc32Js} otherwise.
 * Both give the same value.
 *
 * @public
 */
export const crc32: (data: Uint8Array, previous?: number) => number =
  typeof zlib.crc32 === 'function' ? (data, previous = 0) => zlib.crc32(data, previous) : crc32Js
