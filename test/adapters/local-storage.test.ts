import { spawn } from 'node:child_process'
import { access, appendFile, mkdtemp, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { localStorage, openLocalStorage, type LocalStorage } from '../../src/adapters/local/local-storage.js'
import type { RangeChange, StoragePort } from '../../src/ports/storage.js'
import type { AdapterFactory } from '../../src/testkit/conformance.js'
import { storageConformance } from '../../src/testkit/storage-conformance.js'
import { applyToModel } from '../../src/testkit/storage-conformance-ranges.js'
import { pattern } from '../../src/testkit/storage-conformance-support.js'
import { cleanupPools, closeLater, crashImage, expectBytes, GiB, KiB, logEnd, MiB, open, rejection, tempDir, walFile } from '../fixtures/local-pool.js'

const t = { scope: 'test', value: 1 }

afterEach(cleanupPools)

const dirOf = new WeakMap<StoragePort, string>()
const factory: AdapterFactory<StoragePort> = {
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drkit-local-conf-'))
    const storage = localStorage({ dir })
    dirOf.set(storage, dir)
    return storage
  },
  dispose: async (storage) => {
    await storage.close()
    const dir = dirOf.get(storage)
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  },
}

describe('localStorage conformance', () => {
  for (const c of storageConformance(factory)) it(c.name, c.run)
})

describe('localStorage options and opening', () => {
  it('rejects a missing directory or a bad default block size with E_INVALID_INPUT', async () => {
    expect(() => localStorage({ dir: '' })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect(() => localStorage({ dir: '/tmp/x', defaultBlockSize: 3000 })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect((await rejection(openLocalStorage({ dir: '/tmp/x', defaultBlockSize: 2 * MiB }))).code).toBe('E_INVALID_INPUT')
  })

  it('opens lazily on the first call, with the configured default block size', async () => {
    const dir = join(await tempDir(), 'pool')
    const storage = closeLater(localStorage({ dir, defaultBlockSize: 16 * KiB, fsync: false }))
    await expect(access(dir)).rejects.toThrow()
    expect((await storage.createVolume({ name: 'v', sizeBytes: MiB }, t)).blockSize).toBe(16 * KiB)
    expect(await readdir(dir)).toContain('blocks-16384.dat')
  })

  it('refuses a second instance on the same pool with E_CONFLICT, also through another path or when a live process holds the lock', async () => {
    const dir = await tempDir()
    const first = await open(dir)
    expect((await rejection(openLocalStorage({ dir }))).code).toBe('E_CONFLICT')
    const alias = join(await tempDir(), 'alias')
    await symlink(dir, alias)
    expect((await rejection(openLocalStorage({ dir: alias }))).code).toBe('E_CONFLICT')
    await first.close()
    await writeFile(join(dir, 'LOCK'), `${process.ppid} held-elsewhere\n`)
    expect((await rejection(openLocalStorage({ dir }))).code).toBe('E_CONFLICT')
  })

  it('takes over a lock left by a process that no longer runs', async () => {
    const dir = await tempDir()
    const first = await open(dir)
    await first.createVolume({ name: 'v', sizeBytes: MiB }, t)
    await first.close()
    const child = spawn(process.execPath, ['-e', ''])
    const pid = child.pid ?? 0
    await new Promise((resolve) => child.on('close', resolve))
    await writeFile(join(dir, 'LOCK'), `${pid} dead\n`)
    const storage = await open(dir)
    expect((await storage.listVolumes()).map((v) => v.name)).toEqual(['v'])
    expect(await readFile(join(dir, 'LOCK'), 'utf8')).toMatch(new RegExp(`^${process.pid} `))
  })
})

describe('localStorage persistence', () => {
  it('keeps volumes, data, snapshots, clones, shares, config, holds and fence tokens across close and reopen', async () => {
    const dir = await tempDir()
    const before = await open(dir, { fsync: true })
    const t7 = { scope: 'test', value: 7 }
    await before.createVolume({ name: 'db', sizeBytes: 4 * MiB, blockSize: 4 * KiB }, t7)
    await before.createVolume({ name: 'big', sizeBytes: 8 * MiB, blockSize: MiB }, t7)
    await before.write('db', 1000, pattern(1, 50 * KiB), t7)
    await before.write('big', 3 * MiB - 10, pattern(2, 20), t7)
    await before.createSnapshot('db', 'one', t7, { policy: 'hourly' })
    await before.holdSnapshot('db', 'one', 'replication', t7)
    await before.write('db', 0, pattern(3, 8 * KiB), t7)
    await before.trim('db', 40 * KiB, 8 * KiB, t7)
    await before.cloneSnapshot('db', 'one', 'copy', t7)
    await before.write('copy', 100 * KiB, pattern(4, 5), t7)
    await before.createShare({ name: 'export', volume: 'db', path: '/srv', protocol: 'nfs', access: ['read'] }, t7)
    await before.putConfig('db', 'mirror', { to: 'west', every: 30 }, t7)
    await before.setWritable('big', false, t7)
    await before.setOnline('copy', false, t7)
    await before.resizeVolume('big', 6 * MiB, t7)
    const volumes = await before.listVolumes()
    const snapshots = await before.listSnapshots('db')
    const live = await before.read('db', 0, 4 * MiB)
    const old = await before.read('db', 0, 4 * MiB, { snapshot: 'one' })
    const big = await before.read('big', 0, 6 * MiB)
    const changed = await before.changedBlocks('db', 'one', 'live')
    await before.setOnline('copy', true, t7)
    const copy = await before.read('copy', 0, 4 * MiB)
    await before.setOnline('copy', false, t7)
    await before.close()

    const after = await open(dir)
    expect(await after.listVolumes()).toEqual(volumes)
    expect(await after.listSnapshots('db')).toEqual(snapshots)
    expectBytes(await after.read('db', 0, 4 * MiB), live)
    expectBytes(await after.read('db', 0, 4 * MiB, { snapshot: 'one' }), old)
    expectBytes(await after.read('big', 0, 6 * MiB), big)
    expect(await after.changedBlocks('db', 'one', 'live')).toEqual(changed)
    expect(await after.listShares()).toHaveLength(1)
    expect(await after.getConfig('db', 'mirror')).toEqual({ to: 'west', every: 30 })
    expect((await rejection(after.deleteSnapshot('db', 'one', t7))).code).toBe('E_PRECONDITION')
    expect((await rejection(after.write('db', 0, pattern(5, 1), { scope: 'test', value: 6 }))).code).toBe('E_FENCED')
    await after.setOnline('copy', true, t7)
    expectBytes(await after.read('copy', 0, 4 * MiB), copy)
    expect((await after.verify()).problems).toEqual([])
  })

  it('replays the log after a crash: a copy of the files taken while open has every acknowledged change', async () => {
    const dir = await tempDir()
    const storage = await open(dir, { fsync: true })
    await storage.createVolume({ name: 'v', sizeBytes: 2 * MiB, blockSize: 4 * KiB }, { scope: 'a', value: 3 })
    await storage.write('v', 5, pattern(1, 30 * KiB), t)
    await storage.createSnapshot('v', 's', t)
    await storage.write('v', 10 * KiB, pattern(2, 3), t)
    await storage.putConfig('v', 'k', [1, 2], t)
    const image = await crashImage(dir)
    const recovered = await open(image)
    expectBytes(await recovered.read('v', 0, 2 * MiB), await storage.read('v', 0, 2 * MiB))
    expectBytes(await recovered.read('v', 0, 2 * MiB, { snapshot: 's' }), await storage.read('v', 0, 2 * MiB, { snapshot: 's' }))
    expect(await recovered.getConfig('v', 'k')).toEqual([1, 2])
    expect((await rejection(recovered.createVolume({ name: 'w', sizeBytes: MiB }, { scope: 'a', value: 2 }))).code).toBe('E_FENCED')
    expect((await recovered.verify()).problems).toEqual([])
  })

  it('a presented token is durable once presentToken resolves: a crash image taken then refuses the superseded token', async () => {
    const dir = await tempDir()
    const storage = await open(dir, { fsync: true })
    await storage.createVolume({ name: 'v', sizeBytes: MiB, blockSize: 4 * KiB }, { scope: 'leader', value: 3 })
    await storage.presentToken({ scope: 'leader', value: 4 })
    const recovered = await open(await crashImage(dir))
    expect((await rejection(recovered.write('v', 0, pattern(1, 10), { scope: 'leader', value: 3 }))).code).toBe('E_FENCED')
    await recovered.write('v', 0, pattern(1, 10), { scope: 'leader', value: 4 })
    expectBytes(await recovered.read('v', 0, 10), pattern(1, 10))
  })

  it('folds the log into a new checkpoint as it grows, while writes keep coming, without losing any', async () => {
    const dir = await tempDir()
    const storage = await open(dir, { fsync: true, checkpointAfterBytes: 2048 })
    await storage.createVolume({ name: 'v', sizeBytes: 4 * MiB, blockSize: 4 * KiB }, t)
    const model = new Uint8Array(4 * MiB)
    for (let round = 0; round < 12; round++) {
      await Promise.all(
        Array.from({ length: 16 }, async (_, lane) => {
          const offset = lane * 256 * KiB + round * 9 * KiB
          const data = pattern(round * 16 + lane, 9 * KiB)
          await storage.write('v', offset, data, t)
          model.set(data, offset)
        }),
      )
      if (round % 4 === 3) await storage.createSnapshot('v', `s${round}`, t)
    }
    const generations = (await readdir(dir)).filter((name) => name.startsWith('wal-')).map((name) => Number(name.slice(4, 16)))
    expect(Math.max(...generations)).toBeGreaterThan(3)
    await storage.putConfig('v', 'after', 'a change queued behind any checkpoint still running', t)
    const image = await crashImage(dir)
    expectBytes(await storage.read('v', 0, 4 * MiB), model, 'live')
    const recovered = await open(image)
    expectBytes(await recovered.read('v', 0, 4 * MiB), model, 'recovered')
    expect((await recovered.listSnapshots('v')).map((s) => s.name)).toEqual(['s3', 's7', 's11'])
    expect((await recovered.verify()).problems).toEqual([])
  })

  it('drops a torn log tail on open, keeping every complete batch', async () => {
    const dir = await tempDir()
    const storage = await open(dir, { fsync: true })
    await storage.createVolume({ name: 'v', sizeBytes: MiB, blockSize: 4 * KiB }, t)
    await storage.write('v', 0, pattern(1, 4 * KiB), t)
    const kept = await crashImage(dir)
    await storage.write('v', 4 * KiB, pattern(2, 4 * KiB), t)
    const image = await crashImage(dir)
    const log = await walFile(image)
    const full = await logEnd(log)
    const keptSize = await logEnd(await walFile(kept))
    await truncate(log, full - 7)
    const torn = await open(image)
    expectBytes(await torn.read('v', 0, 4 * KiB), pattern(1, 4 * KiB))
    expectBytes(await torn.read('v', 4 * KiB, 4 * KiB), new Uint8Array(4 * KiB))
    await torn.close()
    expect(full).toBeGreaterThan(keptSize)

    const garbage = await crashImage(dir)
    await appendFile(await walFile(garbage), Buffer.from('partial batch that was never acknowledged'))
    const extended = await open(garbage)
    expectBytes(await extended.read('v', 4 * KiB, 4 * KiB), pattern(2, 4 * KiB))
  })

  it('rejects damage in the middle of the log or in the checkpoint with E_CORRUPT', async () => {
    const dir = await tempDir()
    const storage = await open(dir, { fsync: true })
    await storage.createVolume({ name: 'v', sizeBytes: MiB, blockSize: 4 * KiB }, t)
    for (let i = 0; i < 4; i++) await storage.write('v', i * 4 * KiB, pattern(i, 100), t)
    const image = await crashImage(dir)
    const log = await walFile(image)
    const bytes = await readFile(log)
    bytes[20] = (bytes[20] ?? 0) ^ 0xff
    await writeFile(log, bytes)
    expect((await rejection(openLocalStorage({ dir: image }))).code).toBe('E_CORRUPT')

    await storage.close()
    const checkpoint = join(dir, 'pool.ckpt')
    const image2 = await readFile(checkpoint)
    image2[image2.length - 3] = (image2[image2.length - 3] ?? 0) ^ 0x01
    await writeFile(checkpoint, image2)
    expect((await rejection(openLocalStorage({ dir }))).code).toBe('E_CORRUPT')
  })
})

describe('localStorage blocks on disk', () => {
  it('stores block data verbatim in block files under the pool directory', async () => {
    const dir = await tempDir()
    const storage = await open(dir)
    await storage.createVolume({ name: 'v', sizeBytes: 64 * MiB }, t)
    const data = pattern(9, 64 * KiB)
    await storage.write('v', 32 * MiB, data, t)
    const file = await readFile(join(dir, 'blocks-65536.dat'))
    expect(file.length).toBe(64 * KiB)
    expect(file.indexOf(Buffer.from(data))).toBe(0)
    expect((await storage.volumeInfo('v')).allocatedBytes).toBe(64 * KiB)
  })

  it('fails reads of a block whose bytes changed on disk with E_CORRUPT naming the volume and block', async () => {
    const dir = await tempDir()
    const storage = await open(dir)
    await storage.createVolume({ name: 'v', sizeBytes: MiB, blockSize: 4 * KiB }, t)
    await storage.write('v', 8 * KiB, pattern(1, 4 * KiB), t)
    await storage.write('v', 20 * KiB, pattern(2, 4 * KiB), t)
    await storage.createSnapshot('v', 's', t)
    await storage.close()
    const file = join(dir, 'blocks-4096.dat')
    const bytes = await readFile(file)
    bytes[100] = (bytes[100] ?? 0) ^ 0x40
    await writeFile(file, bytes)
    const reopened = await open(dir)
    const live = await rejection(reopened.read('v', 0, 64 * KiB))
    expect(live).toMatchObject({ code: 'E_CORRUPT', details: { volume: 'v', block: 2 } })
    expect(await rejection(reopened.read('v', 8 * KiB + 5, 1, { snapshot: 's' }))).toMatchObject({ code: 'E_CORRUPT', details: { block: 2 } })
    expect((await rejection(reopened.write('v', 8 * KiB + 5, pattern(3, 10), t))).code).toBe('E_CORRUPT')
    expectBytes(await reopened.read('v', 20 * KiB, 4 * KiB), pattern(2, 4 * KiB))
    expect((await reopened.verify()).problems).toEqual(['slot 0 (4096): checksum mismatch'])
    await reopened.write('v', 8 * KiB, pattern(4, 4 * KiB), t)
    expectBytes(await reopened.read('v', 8 * KiB, 4 * KiB), pattern(4, 4 * KiB))
  })

  it('frees slots when snapshots go, reuses them for later writes and truncates free space at the end of the file', async () => {
    const dir = await tempDir()
    const storage = await open(dir, { fsync: true })
    const file = join(dir, 'blocks-4096.dat')
    const usage = async (): Promise<{ usedSlots: number; fileSlots: number }> => {
      const files = (await storage.stats()).blockFiles
      return files.find((f) => f.blockSize === 4 * KiB) ?? { usedSlots: -1, fileSlots: -1 }
    }
    await storage.createVolume({ name: 'v', sizeBytes: MiB, blockSize: 4 * KiB }, t)
    await storage.write('v', 0, pattern(1, MiB), t)
    await storage.createSnapshot('v', 'a', t)
    await storage.write('v', 0, pattern(2, MiB), t)
    await storage.createSnapshot('v', 'b', t)
    await storage.write('v', 0, pattern(3, MiB / 2), t)
    expect(await usage()).toEqual(expect.objectContaining({ usedSlots: 640, fileSlots: 640 }))
    expect((await storage.volumeInfo('v')).allocatedBytes).toBe(640 * 4 * KiB)
    expect((await stat(file)).size).toBe(640 * 4 * KiB)

    await storage.deleteSnapshot('v', 'a', t)
    expect((await usage()).usedSlots).toBe(384)
    expect((await storage.volumeInfo('v')).allocatedBytes).toBe(384 * 4 * KiB)
    await storage.write('v', MiB / 2, pattern(4, MiB / 2), t)
    expect(await usage()).toEqual(expect.objectContaining({ usedSlots: 512, fileSlots: 640 }))
    await storage.deleteSnapshot('v', 'b', t)
    await storage.write('v', 0, pattern(5, MiB), t)
    expect((await usage()).fileSlots).toBeLessThanOrEqual(640)
    expectBytes(await storage.read('v', 0, MiB), pattern(5, MiB))

    await storage.createVolume({ name: 'tail', sizeBytes: MiB, blockSize: 4 * KiB }, t)
    await storage.write('tail', 0, pattern(6, MiB), t)
    const grown = (await stat(file)).size
    await storage.deleteVolume('tail', t)
    await storage.trim('v', MiB / 2, MiB / 2, t)
    await storage.write('v', 0, pattern(7, 4 * KiB), t)
    await storage.close()
    expect(grown).toBeGreaterThanOrEqual(2 * MiB)
    expect((await stat(file)).size).toBeLessThanOrEqual(MiB)
  })

  it('charges a clone only for the blocks it writes and keeps blocks shared with its origin once', async () => {
    const dir = await tempDir()
    const storage = await open(dir)
    await storage.createVolume({ name: 'v', sizeBytes: MiB, blockSize: 4 * KiB }, t)
    await storage.write('v', 0, pattern(1, 64 * KiB), t)
    await storage.createSnapshot('v', 's', t)
    const clone = await storage.cloneSnapshot('v', 's', 'c', t)
    expect(clone.allocatedBytes).toBe(0)
    await storage.write('c', 0, pattern(2, 4 * KiB), t)
    expect((await storage.volumeInfo('c')).allocatedBytes).toBe(4 * KiB)
    expect((await storage.volumeInfo('v')).allocatedBytes).toBe(64 * KiB)
    expect((await storage.stats()).blockFiles[0]?.usedSlots).toBe(17)
    await storage.close()
    const reopened = await open(dir)
    expect((await reopened.volumeInfo('c')).allocatedBytes).toBe(4 * KiB)
    expect((await reopened.volumeInfo('v')).allocatedBytes).toBe(64 * KiB)
  })
})

describe('localStorage costs', () => {
  async function snapshotCost(storage: LocalStorage, volume: string): Promise<number> {
    const before = (await storage.stats()).metadataBytesWritten
    await storage.createSnapshot(volume, 'snap', t)
    return (await storage.stats()).metadataBytesWritten - before
  }

  it('writes the same few metadata bytes for a snapshot of a 16 GiB volume with thousands of blocks as of a tiny one', async () => {
    const storage = await open(await tempDir())
    await storage.createVolume({ name: 'tiny', sizeBytes: 64 * KiB, blockSize: 4 * KiB }, t)
    await storage.write('tiny', 0, pattern(1, 10), t)
    await storage.createVolume({ name: 'huge', sizeBytes: 16 * GiB, blockSize: 4 * KiB }, t)
    const blocks = (16 * GiB) / (4 * KiB)
    const data = pattern(2, 4 * KiB)
    for (let i = 0; i < 3000; i++) await storage.write('huge', Math.floor((i * blocks) / 3000) * 4 * KiB, data, t)
    const tiny = await snapshotCost(storage, 'tiny')
    const huge = await snapshotCost(storage, 'huge')
    expect(tiny).toBeLessThan(200)
    expect(huge).toBe(tiny)
  })

  it('changedBlocks looks at map pages in proportion to the changed blocks, not to the volume size', async () => {
    const storage = await open(await tempDir())
    const visits = async (): Promise<{ pages: number; entries: number }> => {
      const stats = await storage.stats()
      return { pages: stats.pagesVisited, entries: stats.entriesVisited }
    }
    await storage.createVolume({ name: 'huge', sizeBytes: 16 * GiB, blockSize: 4 * KiB }, t)
    const blocks = (16 * GiB) / (4 * KiB)
    for (let i = 0; i < 2000; i++) await storage.write('huge', Math.floor((i * blocks) / 2000) * 4 * KiB, pattern(i, 4 * KiB), t)
    await storage.createSnapshot('huge', 'a', t)
    const changed = [7, 100_000, 2_000_000, 4_000_000]
    for (const block of changed) await storage.write('huge', block * 4 * KiB, pattern(block, 1), t)
    await storage.createSnapshot('huge', 'b', t)
    const start = await visits()
    const diff = await storage.changedBlocks('huge', 'a', 'b')
    const end = await visits()
    expect(diff.blocks).toEqual(changed)
    expect(end.pages - start.pages).toBeLessThanOrEqual(changed.length * 4)
    expect(end.entries - start.entries).toBeLessThanOrEqual(changed.length * 256)
    const full = await storage.changedBlocks('huge', null, 'b')
    expect(full.blocks.length).toBe(2000 + changed.length)
  })

  it('group commit: concurrent writes share log batches and fsyncs', async () => {
    const storage = await open(await tempDir(), { fsync: true })
    await storage.createVolume({ name: 'v', sizeBytes: 4 * MiB, blockSize: 4 * KiB }, t)
    const before = (await storage.stats()).logBatches
    await Promise.all(Array.from({ length: 64 }, (_, i) => storage.write('v', i * 64 * KiB, pattern(i, 6000), t)))
    const batches = (await storage.stats()).logBatches - before
    expect(batches).toBeGreaterThan(0)
    expect(batches).toBeLessThan(32)
    for (let i = 0; i < 64; i++) expectBytes(await storage.read('v', i * 64 * KiB, 6000), pattern(i, 6000))
  })
})

describe('localStorage fences and close', () => {
  it('deleting a fenced volume fails its deferred I/O with E_NOT_FOUND, and closing fails deferred I/O with E_CLOSED', async () => {
    const storage = await open(await tempDir())
    await storage.createVolume({ name: 'gone', sizeBytes: MiB, blockSize: 4 * KiB }, t)
    await storage.createVolume({ name: 'held', sizeBytes: MiB, blockSize: 4 * KiB }, t)
    await storage.fence('gone', t)
    await storage.fence('held', t)
    const deferred = rejection(storage.read('gone', 0, 10))
    const waiting = rejection(storage.write('held', 0, pattern(1, 10), t))
    await storage.deleteVolume('gone', t)
    expect((await deferred).code).toBe('E_NOT_FOUND')
    const closing = storage.close()
    expect((await waiting).code).toBe('E_CLOSED')
    await closing
  })
})


type Command =
  | { readonly kind: 'write'; readonly offset: number; readonly length: number; readonly seed: number }
  | { readonly kind: 'trim'; readonly offset: number; readonly length: number }
  | { readonly kind: 'ranges'; readonly changes: ReadonlyArray<{ readonly offset: number; readonly length: number; readonly seed: number; readonly hole: boolean }> }
  | { readonly kind: 'snapshot' }
  | { readonly kind: 'restore'; readonly pick: number }
  | { readonly kind: 'delete'; readonly pick: number }
  | { readonly kind: 'resize'; readonly blocks: number }

const BLOCK = 4 * KiB
const MAX_BLOCKS = 24

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), offset: fc.nat(MAX_BLOCKS * BLOCK - 1), length: fc.integer({ min: 1, max: 3 * BLOCK }), seed: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trim' as const), offset: fc.nat(MAX_BLOCKS * BLOCK - 1), length: fc.integer({ min: 1, max: 6 * BLOCK }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('ranges' as const),
      changes: fc.array(
        fc.record({ offset: fc.nat(MAX_BLOCKS * BLOCK - 1), length: fc.integer({ min: 1, max: 3 * BLOCK }), seed: fc.nat(), hole: fc.boolean() }),
        { minLength: 1, maxLength: 8 },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('snapshot' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restore' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resize' as const), blocks: fc.integer({ min: 1, max: MAX_BLOCKS }) }) },
)

describe('localStorage against a model', () => {
  it('random writes, trims, vectored writes, snapshots, restores, deletions and resizes read back as a byte-array model, also after reopening', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 40 }), async (commands) => {
        const dir = await mkdtemp(join(tmpdir(), 'drkit-local-model-'))
        let storage = await openLocalStorage({ dir, fsync: false })
        try {
          let live = new Uint8Array(8 * BLOCK)
          const snapshots = new Map<string, Uint8Array>()
          await storage.createVolume({ name: 'v', sizeBytes: live.length, blockSize: BLOCK }, t)
          let n = 0
          for (const c of commands) {
            const names = [...snapshots.keys()]
            if (c.kind === 'write' || c.kind === 'trim') {
              const offset = c.offset % live.length
              const length = Math.min(c.length, live.length - offset)
              if (c.kind === 'write') {
                const data = pattern(c.seed, length)
                await storage.write('v', offset, data, t)
                live.set(data, offset)
              } else {
                await storage.trim('v', offset, length, t)
                const first = Math.ceil(offset / BLOCK) * BLOCK
                const end = Math.floor((offset + length) / BLOCK) * BLOCK
                if (first < end) live.fill(0, first, end)
              }
            } else if (c.kind === 'ranges') {
              const changes = c.changes.map(({ offset: at, length: size, seed, hole }): RangeChange => {
                const offset = at % live.length
                const length = Math.min(size, live.length - offset)
                return hole ? { offset, length, hole } : { offset, data: pattern(seed, length) }
              })
              await storage.writeRanges('v', changes, t)
              for (const change of changes) applyToModel(live, change)
            } else if (c.kind === 'snapshot') {
              const name = `s${n++}`
              await storage.createSnapshot('v', name, t)
              snapshots.set(name, live.slice())
            } else if (c.kind === 'restore' && names.length > 0) {
              const name = names[c.pick % names.length] ?? ''
              await storage.restoreSnapshot('v', name, t)
              live = (snapshots.get(name) ?? live).slice()
            } else if (c.kind === 'delete' && names.length > 0) {
              const name = names[c.pick % names.length] ?? ''
              await storage.deleteSnapshot('v', name, t)
              snapshots.delete(name)
            } else if (c.kind === 'resize') {
              await storage.resizeVolume('v', c.blocks * BLOCK, t)
              const resized = new Uint8Array(c.blocks * BLOCK)
              resized.set(live.subarray(0, resized.length))
              live = resized
            }
          }
          const check = async (): Promise<void> => {
            expectBytes(await storage.read('v', 0, live.length), live)
            for (const [name, data] of snapshots) {
              expectBytes(await storage.read('v', 0, data.length, { snapshot: name }), data)
              const diff = await storage.changedBlocks('v', name, 'live')
              for (let b = 0; b * BLOCK < Math.max(data.length, live.length); b++) {
                const was = data.subarray(b * BLOCK, (b + 1) * BLOCK)
                const now = live.subarray(b * BLOCK, (b + 1) * BLOCK)
                const differs = was.length !== now.length ? was.some((x) => x !== 0) || now.some((x) => x !== 0) : was.some((x, i) => x !== now[i])
                if (differs) expect(diff.blocks, `block ${b} changed since ${name}`).toContain(b)
              }
              for (const hole of diff.holes) {
                if (hole * BLOCK < live.length) expect(live.subarray(hole * BLOCK, (hole + 1) * BLOCK).every((x) => x === 0)).toBe(true)
              }
            }
            expect((await storage.verify()).problems).toEqual([])
          }
          await check()
          await storage.close()
          storage = await openLocalStorage({ dir, fsync: false })
          await check()
        } finally {
          await storage.close()
          await rm(dir, { recursive: true, force: true })
        }
      }),
      { numRuns: 40 },
    )
  })
})
