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

/** Storage conformance cases for volume life cycle, size, online and writable state. */
export function volumeCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    test('createVolume returns an empty, online, writable volume with the requested size and block size', async (storage) => {
      const info = await makeVolume(storage, 'vol', 16)
      assert.equal(info.name, 'vol')
      assert.equal(info.sizeBytes, 16 * BS)
      assert.equal(info.blockSize, BS)
      assert.equal(info.online, true)
      assert.equal(info.writable, true)
      assert.equal(info.allocatedBytes, 0)
      assert.equal(info.origin, undefined)
      assert.equal(typeof info.createdAt, 'number')
      const big = await storage.createVolume({ name: 'big', sizeBytes: 4 * 1024 * 1024, blockSize: 1024 * 1024 }, token())
      assert.equal(big.blockSize, 1024 * 1024)
      const byDefault = await storage.createVolume({ name: 'default', sizeBytes: 1024 * 1024 }, token())
      assert.equal(byDefault.sizeBytes % byDefault.blockSize, 0, 'the adapter default block size divides the size')
    }),

    test('volumeInfo describes a volume and listVolumes returns every volume sorted by name', async (storage) => {
      assert.deepEqual(await storage.listVolumes(), [])
      const created = [await makeVolume(storage, 'b', 2), await makeVolume(storage, 'c', 3), await makeVolume(storage, 'a', 1)]
      assert.deepEqual(await storage.volumeInfo('c'), created[1])
      const listed = await storage.listVolumes()
      assert.deepEqual(
        listed.map((v) => v.name),
        ['a', 'b', 'c'],
      )
      assert.deepEqual(listed[0], created[2])
    }),

    test('createVolume with a name already taken rejects with E_CONFLICT and keeps the existing volume', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = await writeBlock(storage, 'vol', 1, 11)
      await rejectsWith(makeVolume(storage, 'vol', 8), 'E_CONFLICT', 'duplicate createVolume')
      assert.equal((await storage.volumeInfo('vol')).sizeBytes, 4 * BS)
      await assertReads(storage, 'vol', BS, data, 'existing data')
    }),

    test('createVolume rejects a bad block size or a size that is not a whole number of blocks with E_INVALID_INPUT', async (storage) => {
      for (const blockSize of [0, 1000, 2048, 4097, 3 * 4096, 2 * 1024 * 1024]) {
        await rejectsWith(storage.createVolume({ name: 'v', sizeBytes: 1024 * 1024 * 4, blockSize }, token()), 'E_INVALID_INPUT', `blockSize ${blockSize}`)
      }
      for (const sizeBytes of [-BS, BS + 1, BS / 2, 1.5 * BS]) {
        await rejectsWith(storage.createVolume({ name: 'v', sizeBytes, blockSize: BS }, token()), 'E_INVALID_INPUT', `sizeBytes ${sizeBytes}`)
      }
      assert.deepEqual(await storage.listVolumes(), [])
    }),

    test('deleteVolume removes the volume and frees its name; deleting an unknown volume rejects with E_NOT_FOUND', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      await writeBlock(storage, 'vol', 0, 1)
      await storage.deleteVolume('vol', token())
      assert.deepEqual(await storage.listVolumes(), [])
      await rejectsWith(storage.volumeInfo('vol'), 'E_NOT_FOUND', 'volumeInfo after delete')
      await rejectsWith(storage.deleteVolume('vol', token()), 'E_NOT_FOUND', 'second delete')
      await makeVolume(storage, 'vol', 4)
      await assertReads(storage, 'vol', 0, zeros(BS), 'a new volume of the same name starts empty')
    }),

    test('calls naming an unknown volume reject with E_NOT_FOUND', async (storage) => {
      const t = token()
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['volumeInfo', () => storage.volumeInfo('nope')],
        ['resizeVolume', () => storage.resizeVolume('nope', BS, t)],
        ['setOnline', () => storage.setOnline('nope', false, t)],
        ['setWritable', () => storage.setWritable('nope', false, t)],
        ['read', () => storage.read('nope', 0, 1)],
        ['write', () => storage.write('nope', 0, pattern(1, 1), t)],
        ['trim', () => storage.trim('nope', 0, BS, t)],
        ['createSnapshot', () => storage.createSnapshot('nope', 's', t)],
        ['listSnapshots', () => storage.listSnapshots('nope')],
        ['changedBlocks', () => storage.changedBlocks('nope', null, 'live')],
        ['fence', () => storage.fence('nope', t)],
        ['isFenced', () => storage.isFenced('nope')],
        ['createShare', () => storage.createShare({ name: 'sh', volume: 'nope', path: '/', protocol: 'nfs', access: ['read'] }, t)],
        ['putConfig', () => storage.putConfig('nope', 'k', 1, t)],
        ['getConfig', () => storage.getConfig('nope', 'k')],
        ['listConfig', () => storage.listConfig('nope')],
      ]
      for (const [operation, call] of calls) await rejectsWith(call(), 'E_NOT_FOUND', operation)
      assert.deepEqual(await storage.listShares(), [])
    }),

    test('resizeVolume grows a volume: existing data is kept and the new range reads as zeros', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = pattern(7, 4 * BS)
      await storage.write('vol', 0, data, token())
      const info = await storage.resizeVolume('vol', 10 * BS, token())
      assert.equal(info.sizeBytes, 10 * BS)
      assert.equal((await storage.volumeInfo('vol')).sizeBytes, 10 * BS)
      await assertReads(storage, 'vol', 0, data, 'old data')
      await assertReads(storage, 'vol', 4 * BS, zeros(6 * BS), 'grown range')
      await storage.write('vol', 9 * BS, pattern(8, BS), token())
      await assertReads(storage, 'vol', 9 * BS, pattern(8, BS), 'write to the grown range')
    }),

    test('resizeVolume shrinks a volume: reads past the new end fail, cut blocks are freed and read as zeros after growing back', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      const data = pattern(9, 8 * BS)
      await storage.write('vol', 0, data, token())
      assert.equal((await storage.volumeInfo('vol')).allocatedBytes, 8 * BS)
      const info = await storage.resizeVolume('vol', 3 * BS, token())
      assert.equal(info.sizeBytes, 3 * BS)
      assert.equal(info.allocatedBytes, 3 * BS, 'the cut blocks are freed')
      await rejectsWith(storage.read('vol', 3 * BS, 1), 'E_INVALID_INPUT', 'read past the new end')
      await assertReads(storage, 'vol', 0, data.subarray(0, 3 * BS), 'kept blocks')
      await storage.resizeVolume('vol', 8 * BS, token())
      await assertReads(storage, 'vol', 3 * BS, zeros(5 * BS), 'cut blocks after growing back')
    }),

    test('resizeVolume to a size that is not a whole number of blocks rejects with E_INVALID_INPUT', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      for (const size of [BS + 512, -BS]) {
        await rejectsWith(storage.resizeVolume('vol', size, token()), 'E_INVALID_INPUT', `resize to ${size}`)
      }
      assert.equal((await storage.volumeInfo('vol')).sizeBytes, 4 * BS)
    }),

    test('deleteVolume rejects with E_PRECONDITION while the volume has snapshots or shares', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      await storage.createSnapshot('vol', 'snap', token())
      await rejectsWith(storage.deleteVolume('vol', token()), 'E_PRECONDITION', 'delete with a snapshot')
      await storage.deleteSnapshot('vol', 'snap', token())
      await storage.createShare({ name: 'share', volume: 'vol', path: '/data', protocol: 'smb', access: ['read'] }, token())
      await rejectsWith(storage.deleteVolume('vol', token()), 'E_PRECONDITION', 'delete with a share')
      assert.equal((await storage.volumeInfo('vol')).name, 'vol')
      await storage.deleteShare('share', token())
      await storage.deleteVolume('vol', token())
      assert.deepEqual(await storage.listVolumes(), [])
    }),

    test('an offline volume rejects read, write and trim with E_PRECONDITION and serves them again once online', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = await writeBlock(storage, 'vol', 0, 3)
      await storage.setOnline('vol', false, token())
      assert.equal((await storage.volumeInfo('vol')).online, false)
      await rejectsWith(storage.read('vol', 0, BS), 'E_PRECONDITION', 'read offline')
      await rejectsWith(storage.write('vol', 0, pattern(4, BS), token()), 'E_PRECONDITION', 'write offline')
      await rejectsWith(storage.trim('vol', 0, BS, token()), 'E_PRECONDITION', 'trim offline')
      await storage.setOnline('vol', true, token())
      assert.equal((await storage.volumeInfo('vol')).online, true)
      await assertReads(storage, 'vol', 0, data, 'data kept while offline')
      await storage.write('vol', BS, pattern(5, 10), token())
    }),

    test('a read-only volume rejects write and trim with E_PRECONDITION but still serves reads', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = await writeBlock(storage, 'vol', 2, 3)
      await storage.setWritable('vol', false, token())
      assert.equal((await storage.volumeInfo('vol')).writable, false)
      await rejectsWith(storage.write('vol', 0, pattern(4, 100), token()), 'E_PRECONDITION', 'write read-only')
      await rejectsWith(storage.trim('vol', 2 * BS, BS, token()), 'E_PRECONDITION', 'trim read-only')
      await assertReads(storage, 'vol', 2 * BS, data, 'read of a read-only volume')
      await assertReads(storage, 'vol', 0, zeros(BS), 'rejected write changed nothing')
      await storage.setWritable('vol', true, token())
      await storage.write('vol', 0, pattern(4, 100), token())
      await assertReads(storage, 'vol', 0, pattern(4, 100), 'write after making it writable')
    }),
  ]
}
