import assert from 'node:assert/strict'
import type { ConformanceCase } from './conformance.js'
import { BS, makeVolume, pattern, token, writeBlock, type StorageCaseBuilder } from './storage-conformance-support.js'

/** Storage conformance cases for changed-block lists between snapshots and the live volume, holes included. */
export function changedBlockCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    test('changedBlocks from null lists exactly the written blocks in ascending order, with no holes', async (storage) => {
      await makeVolume(storage, 'vol', 64)
      for (const index of [40, 3, 17, 63, 0]) await writeBlock(storage, 'vol', index, index + 1)
      await storage.write('vol', 20 * BS - 1, pattern(1, 2), token())
      await storage.createSnapshot('vol', 'snap', token())
      const changed = await storage.changedBlocks('vol', null, 'snap')
      assert.equal(changed.volume, 'vol')
      assert.equal(changed.from, null)
      assert.equal(changed.to, 'snap')
      assert.equal(changed.blockSize, BS)
      assert.equal(changed.sizeBytes, 64 * BS)
      assert.deepEqual(changed.blocks, [0, 3, 17, 19, 20, 40, 63])
      assert.deepEqual(changed.holes, [])
      assert.deepEqual((await storage.changedBlocks('vol', null, 'live')).blocks, [0, 3, 17, 19, 20, 40, 63])
    }),

    test('changedBlocks between two snapshots lists exactly the blocks written in between, once however often written', async (storage) => {
      await makeVolume(storage, 'vol', 32)
      for (const index of [1, 2, 3, 4]) await writeBlock(storage, 'vol', index, index)
      await storage.createSnapshot('vol', 'one', token())
      for (let i = 0; i < 5; i++) await writeBlock(storage, 'vol', 9, 100 + i)
      await storage.write('vol', 2 * BS + 7, pattern(2, 3), token())
      await writeBlock(storage, 'vol', 30, 5)
      await storage.createSnapshot('vol', 'two', token())
      await writeBlock(storage, 'vol', 4, 6)
      const changed = await storage.changedBlocks('vol', 'one', 'two')
      assert.equal(changed.from, 'one')
      assert.equal(changed.to, 'two')
      assert.deepEqual(changed.blocks, [2, 9, 30])
      assert.deepEqual(changed.holes, [])
    }),

    test("changedBlocks to 'live' lists the blocks written since the snapshot, and nothing when nothing was written", async (storage) => {
      await makeVolume(storage, 'vol', 16)
      await writeBlock(storage, 'vol', 5, 1)
      await storage.createSnapshot('vol', 'snap', token())
      assert.deepEqual((await storage.changedBlocks('vol', 'snap', 'live')).blocks, [])
      assert.deepEqual((await storage.changedBlocks('vol', 'snap', 'snap')).blocks, [])
      await writeBlock(storage, 'vol', 11, 2)
      await storage.write('vol', 5 * BS + 1, pattern(3, 1), token())
      const changed = await storage.changedBlocks('vol', 'snap', 'live')
      assert.equal(changed.to, 'live')
      assert.equal(changed.sizeBytes, 16 * BS)
      assert.deepEqual(changed.blocks, [5, 11])
      assert.deepEqual(changed.holes, [])
    }),

    test('a block trimmed after the base snapshot is listed and reported as a hole', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      await storage.write('vol', 0, pattern(1, 8 * BS), token())
      await storage.createSnapshot('vol', 'base', token())
      await storage.trim('vol', 2 * BS, 2 * BS, token())
      await writeBlock(storage, 'vol', 6, 2)
      await storage.createSnapshot('vol', 'after', token())
      for (const to of ['after', 'live']) {
        const changed = await storage.changedBlocks('vol', 'base', to)
        assert.deepEqual(changed.blocks, [2, 3, 6], `blocks to ${to}`)
        assert.deepEqual(changed.holes, [2, 3], `holes to ${to}`)
      }
    }),

    test('blocks cut off by a shrink after the base snapshot are listed as holes, also after growing back', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      await storage.write('vol', 0, pattern(1, 6 * BS), token())
      await storage.createSnapshot('vol', 'base', token())
      await storage.resizeVolume('vol', 4 * BS, token())
      const shrunk = await storage.changedBlocks('vol', 'base', 'live')
      assert.equal(shrunk.sizeBytes, 4 * BS)
      assert.deepEqual(shrunk.blocks, [4, 5])
      assert.deepEqual(shrunk.holes, [4, 5])
      await storage.resizeVolume('vol', 8 * BS, token())
      await storage.createSnapshot('vol', 'grown', token())
      const grown = await storage.changedBlocks('vol', 'base', 'grown')
      assert.equal(grown.sizeBytes, 8 * BS)
      assert.deepEqual(grown.blocks, [4, 5])
      assert.deepEqual(grown.holes, [4, 5])
    }),

    test('after a restore, changedBlocks from a later snapshot lists the blocks the restore reverted and no untouched block', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      await writeBlock(storage, 'vol', 0, 1)
      await writeBlock(storage, 'vol', 1, 2)
      await storage.createSnapshot('vol', 'early', token())
      await writeBlock(storage, 'vol', 1, 3)
      await writeBlock(storage, 'vol', 5, 4)
      await storage.createSnapshot('vol', 'late', token())
      await storage.restoreSnapshot('vol', 'early', token())
      const changed = await storage.changedBlocks('vol', 'late', 'live')
      for (const index of [1, 5]) assert.ok(changed.blocks.includes(index), `reverted block ${index} is listed`)
      for (const index of [0, 2, 3, 4, 6, 7]) assert.ok(!changed.blocks.includes(index), `untouched block ${index} is not listed`)
      assert.ok(changed.holes.includes(5), 'block 5 is unallocated again, so it is a hole')
      assert.ok(!changed.holes.includes(1), 'block 1 has the early data, so it is not a hole')
      assert.deepEqual(
        [...changed.blocks].sort((a, b) => a - b),
        changed.blocks,
        'blocks ascend',
      )
    }),
  ]
}
