import assert from 'node:assert/strict'
import type { ByteRange, RangeChange, StoragePort } from '../ports/storage.js'
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

/** Applies one change to a byte-array model of a volume: data is copied in, a hole zeroes the whole blocks inside it. */
export function applyToModel(model: Uint8Array, change: RangeChange): void {
  if (change.hole !== true) {
    model.set(change.data, change.offset)
    return
  }
  const first = Math.ceil(change.offset / BS) * BS
  const end = Math.floor((change.offset + change.length) / BS) * BS
  if (first < end) model.fill(0, first, end)
}

/** Makes the same changes one at a time with `write` and `trim`. */
async function applySingly(storage: StoragePort, volume: string, changes: readonly RangeChange[]): Promise<void> {
  for (const change of changes) {
    if (change.hole === true) await storage.trim(volume, change.offset, change.length, token())
    else await storage.write(volume, change.offset, change.data, token())
  }
}

/** Asserts that `readRanges` returned exactly the model's bytes for each range, in request order. */
function assertRanges(actual: readonly Uint8Array[], model: Uint8Array, ranges: readonly ByteRange[], what: string): void {
  assert.equal(actual.length, ranges.length, `${what}: one result per range`)
  ranges.forEach(({ offset, length }, i) => {
    const result = actual[i]
    assert.ok(result instanceof Uint8Array, `${what}: result ${i} is a Uint8Array`)
    assert.equal(result.length, length, `${what}: result ${i} length`)
    const at = result.findIndex((byte, k) => byte !== model[offset + k])
    assert.equal(at, -1, `${what}: result ${i} ([${offset}, ${offset + length})) differs at byte ${offset + at}`)
  })
}

/** Random changes within a volume of `size` bytes: mostly data of up to two blocks and a bit, sometimes holes. */
function randomChanges(next: (below: number) => number, size: number, seed: number): RangeChange[] {
  return Array.from({ length: 1 + next(6) }, (_, k): RangeChange => {
    const offset = next(size)
    const length = 1 + next(Math.min(size - offset, 2 * BS + 100))
    return next(10) < 3 ? { offset, length, hole: true } : { offset, data: pattern(seed * 10 + k, length) }
  })
}

/** Random ranges within a volume of `size` bytes, empty ones included. */
function randomRanges(next: (below: number) => number, size: number): ByteRange[] {
  return Array.from({ length: 1 + next(5) }, () => {
    const offset = next(size + 1)
    return { offset, length: next(size - offset + 1) }
  })
}

/** Storage conformance cases for vectored I/O: `readRanges` and `writeRanges` mean what the single calls mean. */
export function rangeCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    test('writeRanges and readRanges over random ranges match the same changes made with write and trim, and a byte-array model', async (storage) => {
      const blocks = 16
      const size = blocks * BS
      await makeVolume(storage, 'vectored', blocks)
      await makeVolume(storage, 'single', blocks)
      const model = new Uint8Array(size)
      const snapshots: Array<[string, Uint8Array]> = []
      const next = integers(7)
      for (let round = 0; round < 30; round++) {
        const changes = randomChanges(next, size, round)
        await storage.writeRanges('vectored', changes, token())
        await applySingly(storage, 'single', changes)
        for (const change of changes) applyToModel(model, change)
        const ranges = randomRanges(next, size)
        assertRanges(await storage.readRanges('vectored', ranges), model, ranges, `vectored volume, round ${round}`)
        assertRanges(await storage.readRanges('single', ranges), model, ranges, `single-call volume, round ${round}`)
        if (round % 10 === 9) {
          await storage.createSnapshot('vectored', `s${round}`, token())
          await storage.createSnapshot('single', `s${round}`, token())
          snapshots.push([`s${round}`, model.slice()])
        }
      }
      await assertReads(storage, 'vectored', 0, model, 'whole vectored volume')
      await assertReads(storage, 'single', 0, model, 'whole single-call volume')
      const [vectored, single] = [await storage.volumeInfo('vectored'), await storage.volumeInfo('single')]
      assert.equal(vectored.allocatedBytes, single.allocatedBytes, 'allocatedBytes as with single calls')
      for (const [name, contents] of snapshots) {
        const ranges = randomRanges(next, size)
        assertRanges(await storage.readRanges('vectored', ranges, { snapshot: name }), contents, ranges, `snapshot ${name}`)
      }
    }),

    test('readRanges returns one new array per range in request order: overlapping, repeated and empty ranges included', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = pattern(1, 4 * BS)
      await storage.write('vol', 0, data, token())
      const ranges = [
        { offset: 3 * BS + 5, length: 700 },
        { offset: 0, length: 2 * BS + 1 },
        { offset: 100, length: BS },
        { offset: 100, length: BS },
        { offset: 4 * BS, length: 0 },
        { offset: BS - 1, length: 2 },
      ]
      const results = await storage.readRanges('vol', ranges)
      assertRanges(results, data, ranges, 'results')
      results[2]!.fill(0)
      assert.deepEqual(results[3], data.subarray(100, 100 + BS), 'a repeated range is a separate array')
      await assertReads(storage, 'vol', 0, data, 'changing a result leaves the volume alone')
      assert.deepEqual(await storage.readRanges('vol', []), [], 'no ranges, no results')
    }),

    test("readRanges with into reads into the caller's buffers and resolves with them: zeros where unwritten, whatever they held, from a snapshot too", async (storage) => {
      await makeVolume(storage, 'vol', 6)
      const before = pattern(1, 6 * BS)
      await storage.write('vol', 0, before, token())
      await storage.createSnapshot('vol', 'before', token())
      await storage.trim('vol', 2 * BS, 2 * BS, token())
      await storage.write('vol', 5 * BS + 7, pattern(2, 300), token())
      const model = before.slice()
      model.fill(0, 2 * BS, 4 * BS)
      model.set(pattern(2, 300), 5 * BS + 7)
      const ranges = [
        { offset: 2 * BS + 9, length: BS },
        { offset: BS - 3, length: 2 * BS + 6 },
        { offset: 5 * BS, length: BS },
        { offset: 0, length: 0 },
      ]
      const backing = new Uint8Array(4 * BS + 6).fill(0xee)
      let at = 0
      const into = ranges.map(({ length }) => backing.subarray(at, (at += length)))
      const results = await storage.readRanges('vol', ranges, { into })
      assert.equal(results.length, into.length, 'one result per buffer')
      results.forEach((result, i) => assert.equal(result, into[i], `result ${i} is the caller's buffer`))
      assertRanges(results, model, ranges, 'into the live volume')
      backing.fill(0xee)
      assertRanges(await storage.readRanges('vol', ranges, { snapshot: 'before', into }), before, ranges, 'into, from the snapshot')
      assertRanges(into, before, ranges, "the caller's buffers hold the snapshot's bytes")
    }),

    test('writeRanges applies its changes in array order: a later change wins where two overlap, in whole and in part', async (storage) => {
      await makeVolume(storage, 'vol', 6)
      const model = pattern(1, 6 * BS)
      await storage.write('vol', 0, model, token())
      const changes: RangeChange[] = [
        { offset: 0, data: pattern(2, 2 * BS) },
        { offset: BS / 2, data: pattern(3, 100) },
        { offset: BS, length: BS, hole: true },
        { offset: BS + 10, data: pattern(4, 20) },
        { offset: 3 * BS, data: pattern(5, BS) },
        { offset: 3 * BS, length: 2 * BS + 50, hole: true },
        { offset: 5 * BS + 1, data: pattern(6, BS - 1) },
      ]
      await storage.writeRanges('vol', changes, token())
      for (const change of changes) applyToModel(model, change)
      await assertReads(storage, 'vol', 0, model, 'contents')
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 4 * BS, 'blocks 3 and 4 were left as holes')
    }),

    test('a hole in writeRanges unmaps whole blocks only, like trim: edge blocks keep their bytes and holed blocks stop counting as allocated', async (storage) => {
      await makeVolume(storage, 'vol', 6)
      const data = pattern(4, 6 * BS)
      await storage.write('vol', 0, data, token())
      await storage.writeRanges('vol', [{ offset: BS / 2, length: 3 * BS, hole: true }, { offset: 5 * BS + 1, length: BS - 1, hole: true }], token())
      await assertReads(storage, 'vol', 0, data.subarray(0, BS), 'block 0, partly in the hole, kept')
      await assertReads(storage, 'vol', BS, zeros(2 * BS), 'blocks 1 and 2 unmapped')
      await assertReads(storage, 'vol', 3 * BS, data.subarray(3 * BS), 'blocks 3.. kept')
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 4 * BS)
      await storage.writeRanges('vol', [{ offset: 0, length: 6 * BS, hole: true }, { offset: 2 * BS, data: pattern(5, 1) }], token())
      const expected = zeros(6 * BS)
      expected.set(pattern(5, 1), 2 * BS)
      await assertReads(storage, 'vol', 0, expected, 'a write after a hole in the same call lands')
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, BS)
    }),

    test('writeRanges leaves snapshots as they were; changedBlocks then lists exactly the blocks it wrote and the blocks it unmapped as holes', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      const before = pattern(1, 8 * BS)
      await storage.write('vol', 0, before, token())
      await storage.createSnapshot('vol', 'before', token())
      await storage.writeRanges('vol', [{ offset: BS + 7, data: pattern(2, 10) }, { offset: 4 * BS, length: 2 * BS, hole: true }, { offset: 7 * BS, data: pattern(3, BS) }], token())
      await storage.createSnapshot('vol', 'after', token())
      assertRanges(await storage.readRanges('vol', [{ offset: 0, length: 8 * BS }], { snapshot: 'before' }), before, [{ offset: 0, length: 8 * BS }], 'snapshot before')
      const diff = await storage.changedBlocks('vol', 'before', 'after')
      assert.deepEqual(diff.blocks, [1, 4, 5, 7])
      assert.deepEqual(diff.holes, [4, 5])
      await storage.restoreSnapshot('vol', 'before', token())
      await assertReads(storage, 'vol', 0, before, 'restored')
    }),

    test('writeRanges copies its input: changing the data buffers after the call leaves the stored data alone', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const first = pattern(1, BS)
      const second = pattern(2, 100)
      const expected = new Uint8Array(2 * BS)
      expected.set(first)
      expected.set(second, BS + 3)
      const writing = storage.writeRanges('vol', [{ offset: 0, data: first }, { offset: BS + 3, data: second }], token())
      first.fill(0)
      second.fill(0)
      await writing
      await assertReads(storage, 'vol', 0, expected, 'stored data')
    }),

    test('writeRanges with no changes, or only empty ones, changes nothing; on an unknown volume or snapshot both calls reject with E_NOT_FOUND', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const data = await writeBlock(storage, 'vol', 0, 1)
      await storage.createSnapshot('vol', 'before', token())
      await storage.writeRanges('vol', [], token())
      await storage.writeRanges('vol', [{ offset: 5, data: new Uint8Array(0) }, { offset: 7, length: 0, hole: true }, { offset: 9, length: BS, hole: true }], token())
      await assertReads(storage, 'vol', 0, data, 'unchanged')
      assert.deepEqual((await storage.changedBlocks('vol', 'before', 'live')).blocks, [], 'no block changed')
      await rejectsWith(storage.readRanges('nope', [{ offset: 0, length: 1 }]), 'E_NOT_FOUND', 'readRanges of an unknown volume')
      await rejectsWith(storage.readRanges('vol', [{ offset: 0, length: 1 }], { snapshot: 'nope' }), 'E_NOT_FOUND', 'readRanges of an unknown snapshot')
      await rejectsWith(storage.writeRanges('nope', [{ offset: 0, data: pattern(2, 1) }], token()), 'E_NOT_FOUND', 'writeRanges to an unknown volume')
    }),
  ]
}
