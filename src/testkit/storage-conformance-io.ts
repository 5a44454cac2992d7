import assert from 'node:assert/strict'
import type { ConformanceCase } from './conformance.js'
import {
  BS,
  assertReads,
  integers,
  makeVolume,
  pattern,
  rejectsWith,
  token,
  writeBlock,
  zeros,
  type StorageCaseBuilder,
} from './storage-conformance-support.js'

/** Storage conformance cases for block I/O: round trips, zeros, bounds, copies, allocation and trim. */
export function ioCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    test('an unwritten volume reads as zeros at any offset and length, and a zero-length read at the end is empty', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      await assertReads(storage, 'vol', 0, zeros(8 * BS), 'whole volume')
      await assertReads(storage, 'vol', 1234, zeros(3 * BS + 17), 'unaligned range')
      assert.equal((await storage.read('vol', 8 * BS, 0)).length, 0)
    }),

    test('random partial-block writes at arbitrary offsets read back exactly as a byte-array model predicts', async (storage) => {
      const size = 8 * BS
      await makeVolume(storage, 'vol', 8)
      const model = new Uint8Array(size)
      const next = integers(42)
      for (let i = 0; i < 60; i++) {
        const offset = next(size)
        const length = 1 + next(Math.min(size - offset, 2 * BS + 100))
        const data = pattern(i + 1, length)
        await storage.write('vol', offset, data, token())
        model.set(data, offset)
        const readOffset = next(size)
        const readLength = next(size - readOffset + 1)
        await assertReads(storage, 'vol', readOffset, model.subarray(readOffset, readOffset + readLength), `read after write ${i}`)
      }
      await assertReads(storage, 'vol', 0, model, 'whole volume')
    }),

    test('a write spanning several blocks reads back whole and leaves the bytes around it untouched', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      const before = pattern(1, 8 * BS)
      await storage.write('vol', 0, before, token())
      const data = pattern(2, 3 * BS + 200)
      const offset = BS + 100
      await storage.write('vol', offset, data, token())
      await assertReads(storage, 'vol', offset, data, 'written range')
      await assertReads(storage, 'vol', 0, before.subarray(0, offset), 'bytes before')
      await assertReads(storage, 'vol', offset + data.length, before.subarray(offset + data.length), 'bytes after')
    }),

    test('read, write and trim past the end or at a negative offset reject with E_INVALID_INPUT and change nothing', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = pattern(1, 4 * BS)
      await storage.write('vol', 0, data, token())
      const end = 4 * BS
      await rejectsWith(storage.read('vol', end - 10, 11), 'E_INVALID_INPUT', 'read across the end')
      await rejectsWith(storage.read('vol', end + 1, 0), 'E_INVALID_INPUT', 'read after the end')
      await rejectsWith(storage.read('vol', -1, 1), 'E_INVALID_INPUT', 'read at a negative offset')
      await rejectsWith(storage.write('vol', end - 10, pattern(2, 11), token()), 'E_INVALID_INPUT', 'write across the end')
      await rejectsWith(storage.write('vol', end, pattern(2, 1), token()), 'E_INVALID_INPUT', 'write at the end')
      await rejectsWith(storage.write('vol', -1, pattern(2, 1), token()), 'E_INVALID_INPUT', 'write at a negative offset')
      await rejectsWith(storage.trim('vol', 0, end + BS, token()), 'E_INVALID_INPUT', 'trim across the end')
      await assertReads(storage, 'vol', 0, data, 'data after rejected calls')
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 4 * BS)
    }),

    test('read returns a copy and write copies its input: changing either buffer afterwards leaves the stored data alone', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const source = pattern(5, BS + 10)
      const expected = source.slice()
      const writing = storage.write('vol', 5, source, token())
      source.fill(0)
      await writing
      source.fill(0xee)
      const first = await storage.read('vol', 5, expected.length)
      first.fill(0xaa)
      await assertReads(storage, 'vol', 5, expected, 'stored data')
    }),

    test('writeRanges copies its input: changing the buffers right after the call, between calls, or (lent) after it settled leaves the stored data alone', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      const expected = new Uint8Array(8 * BS)
      for (let call = 0; call < 3; call++) {
        const changes = [0, 1].map((k) => ({ offset: (call * 2 + k) * BS + 3, data: pattern(call * 2 + k + 1, BS - 6) }))
        for (const { offset, data } of changes) expected.set(data, offset)
        const writing = storage.writeRanges('vol', changes, token())
        for (const { data } of changes) data.fill(0)
        await writing
        for (const { data } of changes) data.fill(0xee)
      }
      await assertReads(storage, 'vol', 0, expected, 'stored data')
      const lent = [{ offset: 6 * BS, data: pattern(9, 2 * BS) }]
      expected.set(lent[0]!.data, 6 * BS)
      await storage.writeRanges('vol', lent, token(), { lent: true })
      lent[0]!.data.fill(0xee)
      await assertReads(storage, 'vol', 0, expected, 'data lent until the call settled, changed after')
    }),

    test('allocatedBytes counts each written block once, as a whole block', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      await storage.write('vol', 10, pattern(1, 1), token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, BS, 'one byte allocates its block')
      await storage.write('vol', 20, pattern(2, 100), token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, BS, 'rewriting the same block')
      await storage.write('vol', 3 * BS - 1, pattern(3, 2), token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 3 * BS, 'two bytes across a block boundary')
    }),

    test('trim frees the whole blocks in its range: they read as zeros and stop counting as allocated, partial edge blocks are kept', async (storage) => {
      await makeVolume(storage, 'vol', 6)
      const data = pattern(4, 6 * BS)
      await storage.write('vol', 0, data, token())
      await storage.trim('vol', BS / 2, 3 * BS, token())
      const info = await storage.volumeInfo('vol')
      assert.equal(info.allocatedBytes, 4 * BS, 'blocks 1 and 2 freed')
      await assertReads(storage, 'vol', 0, data.subarray(0, BS), 'block 0 (partly in range) kept')
      await assertReads(storage, 'vol', BS, zeros(2 * BS), 'trimmed blocks')
      await assertReads(storage, 'vol', 3 * BS, data.subarray(3 * BS), 'blocks 3.. kept')
      await storage.trim('vol', 0, 6 * BS, token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 0)
      await assertReads(storage, 'vol', 0, zeros(6 * BS), 'everything trimmed')
      await writeBlock(storage, 'vol', 1, 9)
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, BS, 'a trimmed block can be written again')
    }),
  ]
}
