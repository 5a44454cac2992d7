import { cp, readFile, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { gatherRanges } from '../../src/adapters/local/block-gather.js'
import { setBlocks } from '../../src/adapters/local/block-map.js'
import type { BlockStore } from '../../src/adapters/local/block-store.js'
import { LOG_MAGIC, scanFrames } from '../../src/adapters/local/frames.js'
import { crc32 } from '../../src/kernel/crc32.js'
import type { LocalStorage } from '../../src/adapters/local/local-storage.js'
import type { RangeChange } from '../../src/ports/storage.js'
import { applyToModel } from '../../src/testkit/storage-conformance-ranges.js'
import { integers, pattern } from '../../src/testkit/storage-conformance-support.js'
import { cleanupPools, crashImage, expectBytes, KiB, MiB, open, rejection, tempDir, walFile } from '../fixtures/local-pool.js'

const t = { scope: 'test', value: 1 }
const BS = 4 * KiB

afterEach(cleanupPools)

/** `count` distinct block indexes below `blocks`, in random order. */
function randomBlocks(seed: number, count: number, blocks: number): number[] {
  const next = integers(seed)
  const chosen = new Set<number>()
  while (chosen.size < count) chosen.add(next(blocks))
  return [...chosen]
}

/** Whole-block changes writing `pattern(block)` into each of `blocks`. */
function blockWrites(blocks: readonly number[]): RangeChange[] {
  return blocks.map((block) => ({ offset: block * BS, data: pattern(block + 1, BS) }))
}

/** Where the last complete frame of the pool's newest log ends. */
async function frameEnd(dir: string): Promise<number> {
  const log = await walFile(dir)
  return scanFrames(await readFile(log), LOG_MAGIC, log).validEnd
}

async function counters(storage: LocalStorage): Promise<{ reads: number; writes: number; batches: number; fileSlots: number; usedSlots: number }> {
  const stats = await storage.stats()
  const file = stats.blockFiles.find((f) => f.blockSize === BS)
  return { reads: stats.blockReads, writes: stats.blockWrites, batches: stats.logBatches, fileSlots: file?.fileSlots ?? 0, usedSlots: file?.usedSlots ?? 0 }
}

/** A volume `v` of `blocks` blocks written whole with `pattern(seed)`, and that content as its model. */
async function filledVolume(seed: number, blocks: number): Promise<{ storage: LocalStorage; model: Uint8Array }> {
  const storage = await open(await tempDir())
  await storage.createVolume({ name: 'v', sizeBytes: blocks * BS, blockSize: BS }, t)
  const model = pattern(seed, blocks * BS)
  await storage.write('v', 0, model, t)
  return { storage, model }
}

/**
 * Trims the 100 blocks from `trimAt` (freeing a run of 100 slots), then writes `count` random blocks below
 * `within` in one vectored write, and checks that it went into the freed run: the file did not grow, one pwritev.
 */
async function writeIntoTrimmedRun(
  storage: LocalStorage,
  model: Uint8Array,
  { trimAt, seed, count, within }: { trimAt: number; seed: number; count: number; within: number },
): Promise<void> {
  await storage.trim('v', trimAt * BS, 100 * BS, t)
  model.fill(0, trimAt * BS, (trimAt + 100) * BS)
  const fitting = blockWrites(randomBlocks(seed, count, within))
  const before = await counters(storage)
  await storage.writeRanges('v', fitting, t)
  for (const change of fitting) applyToModel(model, change)
  const after = await counters(storage)
  expect(after.fileSlots, `the ${count} blocks went into the 100 slots the trim freed`).toBe(before.fileSlots)
  expect(after.writes - before.writes, 'in one run').toBe(1)
}

describe('localStorage vectored I/O: fewer, larger calls', () => {
  it('one writeRanges of 600 scattered blocks is 3 pwritev calls and one log batch; reading them back in any order is 3 preadv calls', async () => {
    const storage = await open(await tempDir())
    await storage.createVolume({ name: 'v', sizeBytes: 64 * MiB, blockSize: BS }, t)
    const blocks = randomBlocks(1, 600, (64 * MiB) / BS)
    const start = await counters(storage)
    await storage.writeRanges('v', blockWrites(blocks), t)
    const written = await counters(storage)
    expect(written.writes - start.writes, 'pwritev calls: 256 slots each at most').toBe(3)
    expect(written.batches - start.batches, 'one metadata commit for the whole call').toBe(1)
    const order = randomBlocks(2, 600, 600).map((i) => blocks[i]!)
    const results = await storage.readRanges('v', order.map((block) => ({ offset: block * BS, length: BS })))
    expect((await counters(storage)).reads - written.reads, 'preadv calls').toBe(3)
    order.forEach((block, i) => expectBytes(results[i]!, pattern(block + 1, BS), `block ${block}`))
  })

  it('the same blocks through single calls cost one file call each, which is what writeRanges and readRanges save', async () => {
    const storage = await open(await tempDir())
    await storage.createVolume({ name: 'v', sizeBytes: 64 * MiB, blockSize: BS }, t)
    const blocks = randomBlocks(3, 40, (64 * MiB) / BS)
    const start = await counters(storage)
    for (const change of blockWrites(blocks)) if (change.hole !== true) await storage.write('v', change.offset, change.data, t)
    const written = await counters(storage)
    expect(written.writes - start.writes).toBe(40)
    expect(written.batches - start.batches).toBe(40)
    for (const block of blocks) expectBytes(await storage.read('v', block * BS, BS), pattern(block + 1, BS))
    expect((await counters(storage)).reads - written.reads).toBe(40)
  })

  it('a vectored write takes a free run that fits; with only scattered free space it reuses it once over a quarter of the file is free, so the file stops growing', async () => {
    const blocks = 1024
    const { storage, model } = await filledVolume(9, blocks)
    await writeIntoTrimmedRun(storage, model, { trimAt: 200, seed: 4, count: 80, within: blocks })

    for (let round = 0; round < 30; round++) {
      const changes = blockWrites(randomBlocks(100 + round, 64, blocks))
      await storage.writeRanges('v', changes, t)
      for (const change of changes) applyToModel(model, change)
      await storage.createSnapshot('v', `r${round}`, t)
      if (round > 0) await storage.deleteSnapshot('v', `r${round - 1}`, t)
    }
    const end = await counters(storage)
    expect(end.fileSlots, `file of ${end.fileSlots} slots for ${end.usedSlots} in use`).toBeLessThanOrEqual(Math.ceil((end.usedSlots * 4) / 3) + 64)
    expectBytes(await storage.read('v', 0, blocks * BS), model)
    expect((await storage.verify()).problems).toEqual([])
  })

  it('a run freed after a vectored write found only scattered free space is found by the next vectored write', async () => {
    const blocks = 1024
    const { storage, model } = await filledVolume(3, blocks)
    await storage.createSnapshot('v', 'old', t)
    for (const change of blockWrites(randomBlocks(11, 100, blocks))) {
      if (change.hole !== true) await storage.write('v', change.offset, change.data, t)
      applyToModel(model, change)
    }
    await storage.deleteSnapshot('v', 'old', t)
    const scattered = blockWrites(randomBlocks(12, 80, blocks))
    const beforeScattered = await counters(storage)
    await storage.writeRanges('v', scattered, t)
    for (const change of scattered) applyToModel(model, change)
    expect((await counters(storage)).fileSlots, 'no run of 80 among 100 scattered free slots: the file grew').toBe(beforeScattered.fileSlots + 80)

    await writeIntoTrimmedRun(storage, model, { trimAt: 500, seed: 13, count: 90, within: 500 })
    expectBytes(await storage.read('v', 0, blocks * BS), model)
    expect((await storage.verify()).problems).toEqual([])
  })
})

describe('localStorage placement of single writes', () => {
  /** Writes `blocks` one `write` call each, in their (random) order, and mirrors them into `model`. */
  async function singleWrites(storage: LocalStorage, model: Uint8Array, blocks: readonly number[]): Promise<void> {
    for (const change of blockWrites(blocks)) {
      if (change.hole !== true) await storage.write('v', change.offset, change.data, t)
      applyToModel(model, change)
    }
  }

  it('blocks rewritten one write at a time, after a snapshot freed scattered slots, sit in consecutive slots: reading them back is one preadv per 256', async () => {
    const blocks = 4096
    const { storage, model } = await filledVolume(21, blocks)
    await storage.createSnapshot('v', 'old', t)
    await singleWrites(storage, model, randomBlocks(22, 200, blocks))
    await storage.deleteSnapshot('v', 'old', t)
    // 200 scattered free slots now; the next 200 single writes must not fall into them one by one.
    const changed = randomBlocks(23, 200, blocks)
    await singleWrites(storage, model, changed)
    const before = await counters(storage)
    const results = await storage.readRanges('v', changed.map((block) => ({ offset: block * BS, length: BS })))
    expect((await counters(storage)).reads - before.reads, 'preadv calls for 200 blocks written one by one').toBe(1)
    changed.forEach((block, i) => expectBytes(results[i]!, model.subarray(block * BS, (block + 1) * BS), `block ${block}`))
    expect((await storage.verify()).problems).toEqual([])
  })

  it('single writes fill a free run left by a trim before growing the file', async () => {
    const blocks = 1024
    const { storage, model } = await filledVolume(24, blocks)
    await storage.trim('v', 300 * BS, 100 * BS, t)
    model.fill(0, 300 * BS, 400 * BS)
    const before = await counters(storage)
    const changed = randomBlocks(25, 90, blocks).filter((block) => block < 300 || block >= 400)
    await singleWrites(storage, model, changed)
    const after = await counters(storage)
    expect(after.fileSlots, 'the rewritten blocks went into the 100 slots the trim freed').toBe(before.fileSlots)
    const reread = await counters(storage)
    await storage.readRanges('v', changed.map((block) => ({ offset: block * BS, length: BS })))
    expect((await counters(storage)).reads - reread.reads).toBe(1)
    expectBytes(await storage.read('v', 0, blocks * BS), model)
  })

  it('with only scattered free space, single writes grow the file until a quarter of it is free, then reuse the scattered slots', async () => {
    const blocks = 1024
    const { storage, model } = await filledVolume(26, blocks)
    for (let round = 0; round < 30; round++) {
      await singleWrites(storage, model, randomBlocks(200 + round, 64, blocks))
      await storage.createSnapshot('v', `r${round}`, t)
      if (round > 0) await storage.deleteSnapshot('v', `r${round - 1}`, t)
    }
    const end = await counters(storage)
    // At most a quarter of the file free when writes stop growing it, plus the 64 slots the last round freed.
    const bound = Math.ceil(((end.usedSlots + 64) * 4) / 3)
    expect(end.fileSlots, `file of ${end.fileSlots} slots for ${end.usedSlots} in use`).toBeLessThanOrEqual(bound)
    expect(end.fileSlots, 'the file did grow past the live data before reusing scattered slots').toBeGreaterThan(end.usedSlots + 64)
    expectBytes(await storage.read('v', 0, blocks * BS), model)
    expect((await storage.verify()).problems).toEqual([])
  })
})

describe('localStorage vectored I/O: crash atomicity', () => {
  it('a crash keeps all of one writeRanges call or none: its trims and its write are one log frame, and a log cut anywhere inside it keeps none', async () => {
    const dir = await tempDir()
    const storage = await open(dir, { fsync: true })
    await storage.createVolume({ name: 'v', sizeBytes: 256 * BS, blockSize: BS }, t)
    const before = pattern(1, 256 * BS)
    await storage.write('v', 0, before, t)
    const kept = await crashImage(dir)
    const changes: RangeChange[] = [
      ...blockWrites(randomBlocks(5, 40, 256)),
      { offset: 10 * BS, length: 5 * BS, hole: true },
      { offset: 100 * BS + 3, data: pattern(7, 50) },
      { offset: 200 * BS, length: 3 * BS, hole: true },
    ]
    const batches = (await storage.stats()).logBatches
    await storage.writeRanges('v', changes, t)
    expect((await storage.stats()).logBatches - batches).toBe(1)
    const after = before.slice()
    for (const change of changes) applyToModel(after, change)
    const image = await crashImage(dir)
    const frameStart = await frameEnd(kept)
    const end = await frameEnd(image)
    expect(end).toBeGreaterThan(frameStart)

    const whole = await open(await crashImage(image))
    expectBytes(await whole.read('v', 0, 256 * BS), after, 'the whole frame')
    const step = Math.max(1, Math.floor((end - frameStart) / 8))
    for (let cut = frameStart + 1; cut < end; cut += step) {
      const torn = await tempDir()
      await cp(image, torn, { recursive: true })
      await truncate(await walFile(torn), cut)
      const recovered = await open(torn)
      expectBytes(await recovered.read('v', 0, 256 * BS), before, `log cut ${cut - frameStart} bytes into the frame`)
      expect((await recovered.verify()).problems).toEqual([])
      await recovered.close()
    }
  })
})

describe('localStorage vectored I/O: rules', () => {
  it('names the offending range or change in messages and details, and changes nothing', async () => {
    const storage = await open(await tempDir())
    await storage.createVolume({ name: 'v', sizeBytes: 4 * BS, blockSize: BS }, t)
    const past = await rejection(storage.writeRanges('v', [{ offset: 0, data: pattern(1, 10) }, { offset: 4 * BS, length: 1, hole: true }], t))
    expect(past).toMatchObject({ code: 'E_INVALID_INPUT', details: { adapter: 'local', field: 'changes.1', offset: 4 * BS, length: 1 } })
    expect(past.message).toContain('changes[1]')
    const malformed = await rejection(storage.readRanges('v', [{ offset: 0, length: 1 }, { offset: 'x', length: 1 }] as never))
    expect(malformed.code).toBe('E_INVALID_INPUT')
    expect(malformed.message).toContain('"1.offset"')
    expect(malformed.details['violations']).toEqual(expect.arrayContaining([expect.objectContaining({ path: '1.offset' })]))
    expect((await storage.volumeInfo('v')).allocatedBytes).toBe(0)
  })

  it('readRanges fails with E_CORRUPT naming the block when a block changed on disk, and a writeRanges that must merge that block changes nothing', async () => {
    const dir = await tempDir()
    let storage = await open(dir)
    await storage.createVolume({ name: 'v', sizeBytes: 8 * BS, blockSize: BS }, t)
    await storage.writeRanges('v', blockWrites([2, 5]), t)
    await storage.close()
    const file = join(dir, `blocks-${BS}.dat`)
    const bytes = await readFile(file)
    bytes[BS + 7] = (bytes[BS + 7] ?? 0) ^ 0x40
    await writeFile(file, bytes)
    storage = await open(dir)
    const failed = await rejection(storage.readRanges('v', [{ offset: 2 * BS, length: BS }, { offset: 5 * BS, length: 10 }]))
    expect(failed).toMatchObject({ code: 'E_CORRUPT', details: { volume: 'v', block: 5 } })
    expectBytes((await storage.readRanges('v', [{ offset: 2 * BS, length: BS }]))[0]!, pattern(3, BS), 'an intact block alone')
    const merging = await rejection(storage.writeRanges('v', [{ offset: 0, data: pattern(8, BS) }, { offset: 5 * BS + 1, data: pattern(9, 1) }], t))
    expect(merging.code).toBe('E_CORRUPT')
    expectBytes(await storage.read('v', 0, BS), new Uint8Array(BS), 'the valid change before it was not applied')
  })

  it('a readRanges into the caller\'s buffers that fails leaves them alone once it rejected: every read settled first', async () => {
    // Blocks in separate slots, so each is its own read; block 0's read returns damaged bytes at once, the others
    // land 20 ms later.
    const count = 8
    const good = pattern(4, BS)
    const root = setBlocks(null, Array.from({ length: count }, (_, block) => ({ block, slot: block * 2, crc: crc32(good) })), { retain: () => undefined, release: () => undefined })
    const store = {
      blockSize: BS,
      read: async (first: number, targets: readonly Uint8Array[]): Promise<void> => {
        if (first === 0) return void targets[0]!.fill(9)
        await new Promise((resolve) => setTimeout(resolve, 20))
        for (const target of targets) target.set(good)
      },
    }
    const ranges = Array.from({ length: count }, (_, block) => ({ offset: block * BS, length: BS }))
    const into = ranges.map(() => new Uint8Array(BS))
    expect(await rejection(gatherRanges(store as unknown as BlockStore, root, 'v', ranges, into))).toMatchObject({ code: 'E_CORRUPT', details: { block: 0 } })
    const atRejection = into.map((buffer) => buffer.slice())
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(into.every((buffer, i) => Buffer.from(buffer).equals(atRejection[i]!)), 'nothing was written into the buffers after the call rejected').toBe(true)
  })

  it('a replication writeRanges into a read-only volume survives reopening, and the volume is still read-only', async () => {
    const dir = await tempDir()
    const storage = await open(dir, { fsync: true })
    await storage.createVolume({ name: 'replica', sizeBytes: 8 * BS, blockSize: BS }, t)
    await storage.setWritable('replica', false, t)
    await storage.writeRanges('replica', blockWrites([1, 6]), t, { replication: true })
    const recovered = await open(await crashImage(dir))
    expect((await recovered.volumeInfo('replica')).writable).toBe(false)
    const [one, six] = await recovered.readRanges('replica', [{ offset: BS, length: BS }, { offset: 6 * BS, length: BS }])
    expectBytes(one!, pattern(2, BS))
    expectBytes(six!, pattern(7, BS))
  })
})
