import assert from 'node:assert/strict'
import type { ConformanceCase } from './conformance.js'
import {
  BS,
  assertReads,
  makeVolume,
  pattern,
  rejectsWith,
  settle,
  token,
  track,
  writeBlock,
  zeros,
  type StorageCaseBuilder,
} from './storage-conformance-support.js'

/** Storage conformance cases for I/O fences: deferral, ordering and what a snapshot taken while fenced holds. */
export function fenceCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    test('fence marks the volume fenced until unfence; unfencing an unfenced volume is a no-op', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      assert.equal(await storage.isFenced('vol'), false)
      await storage.unfence('vol', token())
      assert.equal(await storage.isFenced('vol'), false)
      await storage.fence('vol', token())
      assert.equal(await storage.isFenced('vol'), true)
      await storage.unfence('vol', token())
      assert.equal(await storage.isFenced('vol'), false)
      await storage.write('vol', 0, pattern(1, 10), token())
    }),

    test('fencing a fenced volume rejects with E_CONFLICT and leaves it fenced', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      await storage.fence('vol', token())
      await rejectsWith(storage.fence('vol', token()), 'E_CONFLICT', 'second fence')
      assert.equal(await storage.isFenced('vol'), true)
      await storage.unfence('vol', token())
    }),

    test('a write issued after fence stays pending until unfence and is not in a snapshot taken while fenced', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const before = await writeBlock(storage, 'vol', 0, 1)
      await storage.fence('vol', token())
      const deferred = pattern(2, BS)
      const write = track(storage.write('vol', 0, deferred, token()))
      await settle()
      assert.equal(write.settled(), false, 'the write waits while the volume is fenced')
      await storage.createSnapshot('vol', 'cut', token())
      assert.equal(write.settled(), false, 'taking a snapshot does not release the write')
      await storage.unfence('vol', token())
      await write.promise
      await assertReads(storage, 'vol', 0, deferred, 'live after unfence')
      await assertReads(storage, 'vol', 0, before, 'snapshot taken while fenced', 'cut')
    }),

    test('a write completed before fence is in a snapshot taken while fenced', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = pattern(3, 2 * BS + 9)
      await storage.write('vol', 100, data, token())
      await storage.fence('vol', token())
      await storage.createSnapshot('vol', 'cut', token())
      await storage.unfence('vol', token())
      await assertReads(storage, 'vol', 100, data, 'snapshot', 'cut')
    }),

    test('I/O issued just before fence completes before fence resolves and is in the snapshot taken next', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      const data = pattern(4, 3 * BS)
      const write = track(storage.write('vol', 0, data, token()))
      await storage.fence('vol', token())
      assert.equal(write.settled(), true, 'fence resolves only after the I/O that was running')
      await storage.createSnapshot('vol', 'cut', token())
      await write.promise
      await storage.unfence('vol', token())
      await assertReads(storage, 'vol', 0, data, 'snapshot', 'cut')
    }),

    test('I/O waiting on a fence runs in arrival order after unfence: each read sees exactly the writes that arrived before it', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      await storage.fence('vol', token())
      const a = pattern(5, BS)
      const b = pattern(6, BS)
      const c = pattern(7, BS)
      const first = storage.write('vol', 0, a, token())
      const readA = storage.read('vol', 0, 2 * BS)
      const second = storage.write('vol', 0, b, token())
      const third = storage.write('vol', BS / 2, c, token())
      const readC = storage.read('vol', 0, 2 * BS)
      await settle()
      await storage.unfence('vol', token())
      await Promise.all([first, second, third])
      const expectA = new Uint8Array(2 * BS)
      expectA.set(a)
      const expectC = new Uint8Array(2 * BS)
      expectC.set(b)
      expectC.set(c, BS / 2)
      assert.deepEqual(await readA, expectA, 'the first read sees only the first write')
      assert.deepEqual(await readC, expectC, 'the last read sees every write, in order')
      await assertReads(storage, 'vol', 0, expectC, 'final contents')
    }),

    test('a read or trim issued while fenced waits until unfence', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const data = await writeBlock(storage, 'vol', 1, 8)
      await storage.fence('vol', token())
      const read = track(storage.read('vol', BS, BS))
      const trim = track(storage.trim('vol', BS, BS, token()))
      await settle()
      assert.equal(read.settled(), false, 'the read waits')
      assert.equal(trim.settled(), false, 'the trim waits')
      await storage.unfence('vol', token())
      assert.deepEqual(await read.promise, data)
      await trim.promise
      await assertReads(storage, 'vol', BS, zeros(BS), 'trimmed after unfence')
    }),

    test('a fence on one volume does not hold up I/O on another volume', async (storage) => {
      await makeVolume(storage, 'fenced', 2)
      await makeVolume(storage, 'free', 2)
      await storage.fence('fenced', token())
      const data = pattern(9, 100)
      await storage.write('free', 0, data, token())
      await assertReads(storage, 'free', 0, data, 'other volume')
      assert.equal(await storage.isFenced('free'), false)
      await storage.unfence('fenced', token())
    }),
  ]
}
