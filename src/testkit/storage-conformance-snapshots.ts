import assert from 'node:assert/strict'
import type { ConformanceCase } from './conformance.js'
import {
  BS,
  assertReads,
  makeVolume,
  pattern,
  rejectsWith,
  token,
  writeBlock,
  zeros,
  type StorageCaseBuilder,
} from './storage-conformance-support.js'

/** Storage conformance cases for snapshots: isolation, reads, restore, clones, allocation, holds and labels. */
export function snapshotCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    test('createSnapshot describes the new snapshot; snapshotInfo returns it and listSnapshots lists oldest first', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const first = await storage.createSnapshot('vol', 'zeta', token())
      assert.equal(first.volume, 'vol')
      assert.equal(first.name, 'zeta')
      assert.equal(first.sizeBytes, 4 * BS)
      assert.deepEqual(first.labels, {})
      assert.deepEqual(first.holds, [])
      assert.equal(typeof first.createdAt, 'number')
      const second = await storage.createSnapshot('vol', 'alpha', token())
      assert.deepEqual(await storage.snapshotInfo('vol', 'zeta'), first)
      assert.deepEqual(await storage.listSnapshots('vol'), [first, second])
    }),

    test('a snapshot name taken on the volume rejects with E_CONFLICT; the same name on another volume is accepted', async (storage) => {
      await makeVolume(storage, 'a', 2)
      await makeVolume(storage, 'b', 2)
      await storage.createSnapshot('a', 'snap', token())
      await rejectsWith(storage.createSnapshot('a', 'snap', token()), 'E_CONFLICT', 'duplicate snapshot')
      await storage.createSnapshot('b', 'snap', token())
      assert.equal((await storage.listSnapshots('a')).length, 1)
    }),

    test('calls naming an unknown snapshot reject with E_NOT_FOUND', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      await storage.createSnapshot('vol', 'real', token())
      const t = token()
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['snapshotInfo', () => storage.snapshotInfo('vol', 'nope')],
        ['read', () => storage.read('vol', 0, 1, { snapshot: 'nope' })],
        ['deleteSnapshot', () => storage.deleteSnapshot('vol', 'nope', t)],
        ['restoreSnapshot', () => storage.restoreSnapshot('vol', 'nope', t)],
        ['cloneSnapshot', () => storage.cloneSnapshot('vol', 'nope', 'clone', t)],
        ['holdSnapshot', () => storage.holdSnapshot('vol', 'nope', 'tag', t)],
        ['releaseSnapshot', () => storage.releaseSnapshot('vol', 'nope', 'tag', t)],
        ['changedBlocks from', () => storage.changedBlocks('vol', 'nope', 'live')],
        ['changedBlocks to', () => storage.changedBlocks('vol', 'real', 'nope')],
      ]
      for (const [operation, call] of calls) await rejectsWith(call(), 'E_NOT_FOUND', operation)
      assert.deepEqual(
        (await storage.listVolumes()).map((v) => v.name),
        ['vol'],
      )
    }),

    test('a snapshot keeps its contents after later writes, trims and a shrink of the volume', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      const data = pattern(1, 8 * BS)
      await storage.write('vol', 0, data, token())
      await storage.createSnapshot('vol', 'snap', token())
      await storage.write('vol', 100, pattern(2, 2 * BS), token())
      await storage.trim('vol', 4 * BS, 2 * BS, token())
      await storage.resizeVolume('vol', 2 * BS, token())
      await storage.resizeVolume('vol', 8 * BS, token())
      await assertReads(storage, 'vol', 0, data, 'snapshot contents', 'snap')
      assert.equal((await storage.snapshotInfo('vol', 'snap')).sizeBytes, 8 * BS)
    }),

    test('read with { snapshot } reads the snapshot at its own size; past it rejects with E_INVALID_INPUT', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const data = pattern(3, 2 * BS)
      await storage.write('vol', 0, data, token())
      await storage.createSnapshot('vol', 'snap', token())
      await storage.resizeVolume('vol', 6 * BS, token())
      await storage.write('vol', 0, pattern(4, 6 * BS), token())
      await assertReads(storage, 'vol', 10, data.subarray(10, BS + 77), 'partial snapshot read', 'snap')
      await rejectsWith(storage.read('vol', BS, 2 * BS, { snapshot: 'snap' }), 'E_INVALID_INPUT', 'read past the snapshot size')
      await assertReads(storage, 'vol', 0, pattern(4, 6 * BS), 'live read')
    }),

    test('restoreSnapshot rolls the volume back to the snapshot contents and size', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = pattern(5, 4 * BS)
      await storage.write('vol', 0, data, token())
      await storage.createSnapshot('vol', 'snap', token())
      await storage.resizeVolume('vol', 8 * BS, token())
      await storage.write('vol', 2 * BS, pattern(6, 5 * BS), token())
      await storage.trim('vol', 0, BS, token())
      await storage.restoreSnapshot('vol', 'snap', token())
      assert.equal((await storage.volumeInfo('vol')).sizeBytes, 4 * BS)
      await assertReads(storage, 'vol', 0, data, 'restored contents')
      await storage.resizeVolume('vol', 8 * BS, token())
      await assertReads(storage, 'vol', 4 * BS, zeros(4 * BS), 'blocks written past the snapshot size are gone')
    }),

    test('restoreSnapshot keeps every snapshot intact and the volume writable afterwards', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const one = pattern(1, 2 * BS)
      const two = pattern(2, 2 * BS)
      await storage.write('vol', 0, one, token())
      await storage.createSnapshot('vol', 'one', token())
      await storage.write('vol', 0, two, token())
      await storage.createSnapshot('vol', 'two', token())
      await storage.restoreSnapshot('vol', 'one', token())
      await assertReads(storage, 'vol', 0, one, 'live after restore')
      await assertReads(storage, 'vol', 0, two, 'later snapshot', 'two')
      await storage.write('vol', 0, pattern(3, 10), token())
      await assertReads(storage, 'vol', 0, one, 'restored snapshot after a write', 'one')
      await storage.restoreSnapshot('vol', 'two', token())
      await assertReads(storage, 'vol', 0, two, 'live after restoring the later snapshot')
    }),

    test('cloneSnapshot creates a writable volume with the snapshot contents, size and origin volume@snapshot', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = pattern(7, 4 * BS)
      await storage.write('vol', 0, data, token())
      await storage.createSnapshot('vol', 'snap', token())
      await storage.resizeVolume('vol', 6 * BS, token())
      const clone = await storage.cloneSnapshot('vol', 'snap', 'copy', token())
      assert.equal(clone.name, 'copy')
      assert.equal(clone.origin, 'vol@snap')
      assert.equal(clone.sizeBytes, 4 * BS)
      assert.equal(clone.blockSize, BS)
      assert.equal(clone.online, true)
      assert.equal(clone.writable, true)
      assert.deepEqual(await storage.volumeInfo('copy'), clone)
      await assertReads(storage, 'copy', 0, data, 'clone contents')
      assert.deepEqual(await storage.listSnapshots('copy'), [])
    }),

    test('a clone and its source are independent: writes to either are seen by neither the other nor the snapshot', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = pattern(8, 4 * BS)
      await storage.write('vol', 0, data, token())
      await storage.createSnapshot('vol', 'snap', token())
      await storage.cloneSnapshot('vol', 'snap', 'copy', token())
      const toClone = pattern(9, BS + 5)
      await storage.write('copy', 100, toClone, token())
      const toSource = pattern(10, BS)
      await storage.write('vol', 2 * BS, toSource, token())
      const cloneView = data.slice()
      cloneView.set(toClone, 100)
      const sourceView = data.slice()
      sourceView.set(toSource, 2 * BS)
      await assertReads(storage, 'copy', 0, cloneView, 'clone')
      await assertReads(storage, 'vol', 0, sourceView, 'source')
      await assertReads(storage, 'vol', 0, data, 'snapshot', 'snap')
    }),

    test('cloneSnapshot to a volume name already taken rejects with E_CONFLICT', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      await makeVolume(storage, 'other', 4)
      await storage.createSnapshot('vol', 'snap', token())
      await rejectsWith(storage.cloneSnapshot('vol', 'snap', 'other', token()), 'E_CONFLICT', 'clone onto a taken name')
      assert.equal((await storage.volumeInfo('other')).sizeBytes, 4 * BS)
    }),

    test('a snapshot with a clone cannot be deleted (E_PRECONDITION) until the clone is deleted', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      await writeBlock(storage, 'vol', 0, 1)
      await storage.createSnapshot('vol', 'snap', token())
      await storage.cloneSnapshot('vol', 'snap', 'copy', token())
      await rejectsWith(storage.deleteSnapshot('vol', 'snap', token()), 'E_PRECONDITION', 'delete a cloned snapshot')
      await rejectsWith(storage.deleteVolume('vol', token()), 'E_PRECONDITION', 'delete the source volume')
      assert.equal((await storage.listSnapshots('vol')).length, 1)
      await storage.deleteVolume('copy', token())
      await storage.deleteSnapshot('vol', 'snap', token())
      await storage.deleteVolume('vol', token())
      assert.deepEqual(await storage.listVolumes(), [])
    }),

    test('deleteSnapshot frees the blocks only it referenced: allocatedBytes drops once nothing references them', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      await storage.write('vol', 0, pattern(1, 4 * BS), token())
      await storage.createSnapshot('vol', 'one', token())
      await storage.createSnapshot('vol', 'two', token())
      await storage.write('vol', 0, pattern(2, 2 * BS), token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 6 * BS, 'overwritten blocks stay allocated for the snapshots')
      await storage.deleteSnapshot('vol', 'one', token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 6 * BS, 'snapshot two still references the old blocks')
      await storage.deleteSnapshot('vol', 'two', token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 4 * BS, 'nothing references the old blocks')
      await storage.createSnapshot('vol', 'three', token())
      await storage.deleteSnapshot('vol', 'three', token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 4 * BS, 'blocks the volume uses are kept')
    }),

    test('holdSnapshot blocks deleteSnapshot with E_PRECONDITION until every hold is released; both are idempotent', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      await storage.createSnapshot('vol', 'snap', token())
      await storage.holdSnapshot('vol', 'snap', 'replication', token())
      await storage.holdSnapshot('vol', 'snap', 'replication', token())
      await storage.holdSnapshot('vol', 'snap', 'restart-point', token())
      assert.deepEqual([...(await storage.snapshotInfo('vol', 'snap')).holds].sort(), ['replication', 'restart-point'])
      await rejectsWith(storage.deleteSnapshot('vol', 'snap', token()), 'E_PRECONDITION', 'delete a held snapshot')
      await storage.releaseSnapshot('vol', 'snap', 'replication', token())
      await storage.releaseSnapshot('vol', 'snap', 'replication', token())
      await rejectsWith(storage.deleteSnapshot('vol', 'snap', token()), 'E_PRECONDITION', 'delete with one hold left')
      await storage.releaseSnapshot('vol', 'snap', 'restart-point', token())
      assert.deepEqual((await storage.snapshotInfo('vol', 'snap')).holds, [])
      await storage.deleteSnapshot('vol', 'snap', token())
      assert.deepEqual(await storage.listSnapshots('vol'), [])
    }),

    test('labels given at creation are kept as given, and changing the passed object afterwards changes nothing', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const labels: Record<string, string> = { policy: 'hourly', site: 'east' }
      const info = await storage.createSnapshot('vol', 'snap', token(), labels)
      labels['policy'] = 'changed'
      assert.deepEqual(info.labels, { policy: 'hourly', site: 'east' })
      assert.deepEqual((await storage.snapshotInfo('vol', 'snap')).labels, { policy: 'hourly', site: 'east' })
    }),
  ]
}
