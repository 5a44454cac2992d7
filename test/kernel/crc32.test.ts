import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import * as zlib from 'node:zlib'
import fc from 'fast-check'
import { crc32, crc32Js } from '../../src/kernel/crc32.js'

describe('CRC-32', () => {
  it('matches the standard check value and node:zlib, including running checksums', () => {
    expect(crc32Js(Buffer.from('123456789'))).toBe(0xcbf43926)
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926)
    expect(crc32Js(new Uint8Array(0))).toBe(0)
    for (let length = 0; length < 300; length += 7) {
      const bytes = randomBytes(length)
      const previous = length * 2_654_435_761
      expect(crc32Js(bytes, previous >>> 0)).toBe(crc32(bytes, previous >>> 0))
      expect(crc32Js(bytes.subarray(length >> 1), crc32Js(bytes.subarray(0, length >> 1)))).toBe(crc32Js(bytes))
    }
  })

  it('property: the JavaScript CRC-32 equals zlib for any bytes, so on-disk formats do not depend on the Node version', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        if (typeof zlib.crc32 === 'function') expect(crc32Js(data)).toBe(zlib.crc32(data))
        expect(crc32(data)).toBe(crc32Js(data))
      }),
    )
  })
})
