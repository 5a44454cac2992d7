import assert from 'node:assert/strict'
import type { RangeChange, StoragePort } from '../ports/storage.js'
import type { ConformanceCase } from './conformance.js'
import { applyToModel } from './storage-conformance-ranges.js'
import {
  BS,
  assertReads,
  makeVolume,
  pattern,
  rejectsWith,
  token,
  track,
  writeBlock,
  type StorageCaseBuilder,
} from './storage-conformance-support.js'

/** What a client can see of volume `vol`: its description and every byte. */
async function contents(storage: StoragePort, volume: string): Promise<unknown> {
  const info = await storage.volumeInfo(volume)
  return { info, data: await storage.read(volume, 0, info.sizeBytes) }
}

/** Changes over every block of an 8-block volume, each block's new value distinct from `pattern(1, …)`. */
function spreadChanges(): RangeChange[] {
  return [
    { offset: 0, data: pattern(11, 2 * BS) },
    { offset: 2 * BS, length: BS, hole: true },
    { offset: 3 * BS + 9, data: pattern(12, BS) },
    { offset: 5 * BS, data: pattern(13, 3 * BS) },
  ]
}

/** Storage conformance cases for the rules of vectored I/O: writability, replication, bad input, fences and units. */
export function rangeRuleCases(test: StorageCaseBuilder): ConformanceCase[] {
  return [
    test('writeRanges on a read-only volume rejects with E_PRECONDITION and changes nothing; with { replication: true } it applies and the volume stays read-only', async (storage) => {
      await makeVolume(storage, 'replica', 4)
      const data = await writeBlock(storage, 'replica', 0, 1)
      await storage.setWritable('replica', false, token())
      const before = await contents(storage, 'replica')
      const changes: RangeChange[] = [{ offset: 10, data: pattern(2, BS) }, { offset: 2 * BS, length: BS, hole: true }]
      await rejectsWith(storage.writeRanges('replica', changes, token()), 'E_PRECONDITION', 'client writeRanges to a read-only volume')
      await rejectsWith(storage.writeRanges('replica', changes, token(), { replication: false }), 'E_PRECONDITION', 'replication: false')
      assert.deepEqual(await contents(storage, 'replica'), before, 'nothing changed')
      await storage.writeRanges('replica', changes, token(), { replication: true })
      const model = new Uint8Array(4 * BS)
      model.set(data)
      for (const change of changes) applyToModel(model, change)
      await assertReads(storage, 'replica', 0, model, 'applied by the replication engine')
      assert.equal((await storage.volumeInfo('replica')).writable, false, 'still read-only to clients')
      await rejectsWith(storage.write('replica', 0, pattern(3, 1), token()), 'E_PRECONDITION', 'a client write still')
    }),

    test('readRanges and writeRanges on an offline volume reject with E_PRECONDITION, replication or not, and change nothing', async (storage) => {
      await makeVolume(storage, 'vol', 2)
      const data = await writeBlock(storage, 'vol', 0, 1)
      await storage.setOnline('vol', false, token())
      await rejectsWith(storage.readRanges('vol', [{ offset: 0, length: 1 }]), 'E_PRECONDITION', 'readRanges offline')
      await rejectsWith(storage.writeRanges('vol', [{ offset: 0, data: pattern(2, 1) }], token()), 'E_PRECONDITION', 'writeRanges offline')
      const replication = storage.writeRanges('vol', [{ offset: 0, data: pattern(2, 1) }], token(), { replication: true })
      await rejectsWith(replication, 'E_PRECONDITION', 'replication writeRanges offline')
      await storage.setOnline('vol', true, token())
      await assertReads(storage, 'vol', 0, data, 'unchanged')
    }),

    test('malformed or out-of-range input to readRanges and writeRanges rejects with E_INVALID_INPUT and changes nothing, even after valid changes in the same call', async (storage) => {
      await makeVolume(storage, 'vol', 4)
      await storage.write('vol', 0, pattern(1, 4 * BS), token())
      const before = await contents(storage, 'vol')
      const end = 4 * BS
      const valid: RangeChange = { offset: 0, data: pattern(2, BS) }
      const reads: Array<[string, unknown]> = [
        ['not an array', { offset: 0, length: 1 }],
        ['a negative offset', [{ offset: -1, length: 1 }]],
        ['a missing length', [{ offset: 0, length: 1 }, { offset: 0 }]],
        ['a fractional offset', [{ offset: 1.5, length: 1 }]],
        ['a range across the end', [{ offset: 0, length: 1 }, { offset: end - 10, length: 11 }]],
        ['a range after the end', [{ offset: end + 1, length: 0 }]],
      ]
      for (const [what, ranges] of reads) {
        await rejectsWith(storage.readRanges('vol', ranges as never), 'E_INVALID_INPUT', `readRanges with ${what}`)
      }
      const two = [{ offset: 0, length: 4 }, { offset: BS, length: 8 }]
      const targets: Array<[string, unknown]> = [
        ['into that is not an array', { into: new Uint8Array(12) }],
        ['into with a buffer fewer than the ranges', { into: [new Uint8Array(4)] }],
        ['into with a buffer more than the ranges', { into: [new Uint8Array(4), new Uint8Array(8), new Uint8Array(1)] }],
        ['into with a buffer shorter than its range', { into: [new Uint8Array(4), new Uint8Array(7)] }],
        ['into with a buffer longer than its range', { into: [new Uint8Array(5), new Uint8Array(8)] }],
        ['into with something that is not bytes', { into: [new Uint8Array(4), 'eight by'] }],
        ['a snapshot that is not a name', { snapshot: 7 }],
      ]
      for (const [what, options] of targets) {
        const untouched = (options as { into?: unknown }).into
        const snapshot = Array.isArray(untouched) ? untouched.map((b: unknown) => (b instanceof Uint8Array ? b.slice() : b)) : undefined
        await rejectsWith(storage.readRanges('vol', two, options as never), 'E_INVALID_INPUT', `readRanges with ${what}`)
        if (Array.isArray(untouched)) assert.deepEqual(untouched, snapshot, `readRanges with ${what} wrote nothing into the buffers`)
      }
      const writes: Array<[string, unknown, unknown?]> = [
        ['not an array', null],
        ['data past the end', [valid, { offset: end - 10, data: pattern(3, 11) }]],
        ['a hole past the end', [valid, { offset: end, length: BS, hole: true }]],
        ['data that is not bytes', [valid, { offset: 0, data: 'text' }]],
        ['a negative offset', [valid, { offset: -1, data: pattern(3, 1) }]],
        ['hole: false', [valid, { offset: 0, length: BS, hole: false }]],
        ['both data and a hole', [valid, { offset: 0, length: BS, hole: true, data: pattern(3, BS) }]],
        ['a bad replication option', [valid], { replication: 'yes' }],
        ['a bad lent option', [valid], { lent: 1 }],
      ]
      for (const [what, changes, options] of writes) {
        const call = storage.writeRanges('vol', changes as never, token(), options as never)
        await rejectsWith(call, 'E_INVALID_INPUT', `writeRanges with ${what}`)
        assert.deepEqual(await contents(storage, 'vol'), before, `writeRanges with ${what} changed nothing`)
      }
    }),

    test('readRanges and writeRanges issued while fenced wait for unfence and then run in arrival order with other I/O', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      const initial = pattern(1, 8 * BS)
      await storage.write('vol', 0, initial, token())
      await storage.fence('vol', token())
      const changes = spreadChanges()
      const vectored = track(storage.writeRanges('vol', changes, token()))
      const read = storage.readRanges('vol', [{ offset: 0, length: 8 * BS }])
      const later = storage.write('vol', 0, pattern(9, BS), token())
      await storage.createSnapshot('vol', 'while-fenced', token())
      assert.equal(vectored.settled(), false, 'writeRanges has not completed while fenced')
      await storage.unfence('vol', token())
      await Promise.all([vectored.promise, later])
      const model = initial.slice()
      for (const change of changes) applyToModel(model, change)
      assert.deepEqual((await read)[0], model, 'the read saw the writeRanges that arrived before it, not the write after it')
      await assertReads(storage, 'vol', 0, initial, 'the snapshot taken while fenced has none of it', 'while-fenced')
    }),

    test('writeRanges is one unit: a fence issued during it waits for all of it, and no read sees some of its changes without the others', async (storage) => {
      await makeVolume(storage, 'vol', 8)
      const initial = pattern(1, 8 * BS)
      await storage.write('vol', 0, initial, token())
      const changes = spreadChanges()
      const model = initial.slice()
      for (const change of changes) applyToModel(model, change)
      const blocks = Array.from({ length: 8 }, (_, i) => ({ offset: i * BS, length: BS }))
      const early = storage.readRanges('vol', blocks)
      const vectored = track(storage.writeRanges('vol', changes, token()))
      const rangesRead = storage.readRanges('vol', blocks)
      const wholeRead = storage.read('vol', 0, 8 * BS)
      await storage.fence('vol', token())
      assert.equal(vectored.settled(), true, 'the fence resolved only after the whole writeRanges')
      await storage.createSnapshot('vol', 'cut', token())
      await storage.unfence('vol', token())
      await vectored.promise
      await assertReads(storage, 'vol', 0, model, 'the snapshot after the fence has all of it', 'cut')
      const results = [Buffer.concat(await early), Buffer.concat(await rangesRead), Buffer.from(await wholeRead)]
      for (const [i, result] of results.entries()) {
        const whole = result.equals(Buffer.from(model)) || result.equals(Buffer.from(initial))
        assert.ok(whole, `read ${i} saw all of the writeRanges or none of it`)
      }
    }),
  ]
}
