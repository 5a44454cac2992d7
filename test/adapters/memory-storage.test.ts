import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { memoryStorage, type MemoryStorage } from '../../src/adapters/memory/storage.js'
import { ManualClock } from '../../src/kernel/clock.js'
import type { AdapterFactory } from '../../src/testkit/conformance.js'
import { storageConformance } from '../../src/testkit/storage-conformance.js'
import type { StoragePort } from '../../src/ports/storage.js'

const factory: AdapterFactory<StoragePort> = {
  create: async () => memoryStorage(),
  dispose: async (storage) => storage.close(),
}

const t = { scope: 'test', value: 1 }
const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

function filled(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value)
}

/** Resolves true if `promise` settles within a few turns of the event loop without the clock moving. */
async function settlesWithoutTime(promise: Promise<unknown>): Promise<boolean> {
  let settled = false
  promise.then(
    () => (settled = true),
    () => (settled = true),
  )
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve))
  return settled
}

describe('memoryStorage conformance', () => {
  for (const c of storageConformance(factory)) it(c.name, c.run)
})

describe('memoryStorage options', () => {
  it('uses 64 KiB blocks by default and the configured default block size otherwise', async () => {
    expect((await memoryStorage().createVolume({ name: 'v', sizeBytes: MiB }, t)).blockSize).toBe(64 * KiB)
    expect((await memoryStorage({ defaultBlockSize: 8 * KiB }).createVolume({ name: 'v', sizeBytes: MiB }, t)).blockSize).toBe(8 * KiB)
  })

  it('rejects a bad default block size or latency with E_INVALID_INPUT', () => {
    for (const defaultBlockSize of [1000, 2 * KiB, 2 * MiB]) {
      expect(() => memoryStorage({ defaultBlockSize })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    }
    expect(() => memoryStorage({ latencyMs: -1 })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
  })

  it('delays every call by the latency on the given clock', async () => {
    const clock = new ManualClock(0)
    const storage = memoryStorage({ latencyMs: 5, clock })
    const creating = storage.createVolume({ name: 'v', sizeBytes: MiB }, t)
    expect(await settlesWithoutTime(creating)).toBe(false)
    await clock.advance(4)
    expect(await settlesWithoutTime(creating)).toBe(false)
    await clock.advance(1)
    expect((await creating).createdAt).toBe(0)
    const missing = storage.volumeInfo('missing')
    expect(await settlesWithoutTime(missing)).toBe(false)
    await clock.advance(5)
    await expect(missing).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
  })

  it('draws the latency from a function per call, and a fence waits for I/O still in its latency', async () => {
    const clock = new ManualClock(0)
    const delays = [0, 30, 0, 0]
    const storage = memoryStorage({ latencyMs: () => delays.shift() ?? 0, clock })
    await storage.createVolume({ name: 'v', sizeBytes: MiB }, t)
    const writing = storage.write('v', 0, filled(10, 7), t)
    const fencing = storage.fence('v', t)
    expect(await storage.isFenced('v')).toBe(true)
    expect(await settlesWithoutTime(fencing)).toBe(false)
    await clock.advance(30)
    await writing
    await fencing
    await storage.createSnapshot('v', 'cut', t)
    await storage.unfence('v', t)
    expect(await storage.read('v', 0, 10, { snapshot: 'cut' })).toEqual(filled(10, 7))
  })
})

describe('memoryStorage behaviour beyond the port contract', () => {
  it('rejects I/O waiting on a fence with E_CLOSED when the storage closes, and with E_NOT_FOUND when the volume is deleted', async () => {
    const storage = memoryStorage()
    await storage.createVolume({ name: 'a', sizeBytes: MiB }, t)
    await storage.createVolume({ name: 'b', sizeBytes: MiB }, t)
    await storage.fence('a', t)
    await storage.fence('b', t)
    const deleted = storage.write('a', 0, filled(1, 1), t)
    const closed = storage.read('b', 0, 1)
    await storage.deleteVolume('a', t)
    await expect(deleted).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await storage.close()
    await expect(closed).rejects.toMatchObject({ code: 'E_CLOSED' })
  })

  it('rejects a write or writeRanges waiting on a fence whose token was superseded while it waited', async () => {
    const storage = memoryStorage()
    await storage.createVolume({ name: 'v', sizeBytes: MiB }, t)
    await storage.fence('v', t)
    const stale = storage.write('v', 0, filled(1, 1), t)
    const staleRanges = storage.writeRanges('v', [{ offset: 0, data: filled(1, 2) }, { offset: 100, data: filled(1, 3) }], t)
    await storage.unfence('v', { scope: 'test', value: 2 })
    await expect(stale).rejects.toMatchObject({ code: 'E_FENCED' })
    await expect(staleRanges).rejects.toMatchObject({ code: 'E_FENCED' })
    expect(await storage.readRanges('v', [{ offset: 0, length: 1 }, { offset: 100, length: 1 }])).toEqual([filled(1, 0), filled(1, 0)])
  })

  it('a readRanges or writeRanges of many ranges costs one latency, like one read; bad input is rejected without waiting for a fence', async () => {
    const clock = new ManualClock(0)
    const storage = memoryStorage({ latencyMs: 5, clock, defaultBlockSize: 4 * KiB })
    const creating = storage.createVolume({ name: 'v', sizeBytes: MiB }, t)
    await clock.advance(5)
    await creating
    const changes = Array.from({ length: 100 }, (_, i) => ({ offset: i * 8 * KiB, data: filled(4 * KiB, i + 1) }))
    const writing = storage.writeRanges('v', changes, t)
    expect(await settlesWithoutTime(writing)).toBe(false)
    await clock.advance(5)
    await writing
    const reading = storage.readRanges('v', changes.map((c) => ({ offset: c.offset, length: 4 * KiB })))
    await clock.advance(5)
    expect((await reading).map((bytes) => bytes[0])).toEqual(changes.map((_, i) => i + 1))
    const fencing = storage.fence('v', t)
    await clock.advance(5)
    await fencing
    const bad = expect(storage.writeRanges('v', [{ offset: -1, data: filled(1, 1) }], t)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await clock.advance(5)
    await bad
  })

  it('charges a clone only for the blocks it writes itself', async () => {
    const storage = memoryStorage({ defaultBlockSize: 4 * KiB })
    await storage.createVolume({ name: 'v', sizeBytes: 64 * KiB }, t)
    await storage.write('v', 0, filled(16 * KiB, 1), t)
    await storage.createSnapshot('v', 's', t)
    expect((await storage.cloneSnapshot('v', 's', 'c', t)).allocatedBytes).toBe(0)
    await storage.write('c', 0, filled(5 * KiB, 2), t)
    expect((await storage.volumeInfo('c')).allocatedBytes).toBe(8 * KiB)
    expect((await storage.volumeInfo('v')).allocatedBytes).toBe(16 * KiB)
    await storage.deleteVolume('c', t)
    await storage.deleteSnapshot('v', 's', t)
    expect((await storage.volumeInfo('v')).allocatedBytes).toBe(16 * KiB)
  })

  it('snapshots, clones, restores and diffs a sparse 1 PiB volume without touching its unwritten blocks', async () => {
    const storage = memoryStorage()
    const size = 2 ** 50
    await storage.createVolume({ name: 'huge', sizeBytes: size }, t)
    const written = [0, 12_345, 2 ** 33, size / (64 * KiB) - 1]
    for (const [i, block] of written.entries()) await storage.write('huge', block * 64 * KiB, filled(64 * KiB, i + 1), t)
    await storage.createSnapshot('huge', 'one', t)
    for (let i = 0; i < 100; i++) {
      await storage.write('huge', 2 ** 40 + i * 64 * KiB * 1000, filled(1, 9), t)
      await storage.createSnapshot('huge', `s${i}`, t)
    }
    expect((await storage.changedBlocks('huge', null, 'one')).blocks).toEqual(written)
    expect((await storage.changedBlocks('huge', 's10', 's11')).blocks).toEqual([2 ** 40 / (64 * KiB) + 11_000])
    await storage.cloneSnapshot('huge', 'one', 'copy', t)
    expect(await storage.read('copy', size - 64 * KiB, 4)).toEqual(filled(4, 4))
    await storage.restoreSnapshot('huge', 'one', t)
    expect((await storage.changedBlocks('huge', 'one', 'live')).blocks).toHaveLength(100)
    await storage.resizeVolume('huge', 64 * KiB, t)
    expect((await storage.volumeInfo('huge')).allocatedBytes).toBe(64 * KiB * 104)
  })

  it('creates snapshots of a 1 GiB volume holding 16 MiB of data without copying the data', async () => {
    const storage = memoryStorage()
    await storage.createVolume({ name: 'v', sizeBytes: GiB }, t)
    for (let i = 0; i < 256; i++) await storage.write('v', i * 4 * MiB, filled(64 * KiB, (i % 255) + 1), t)
    const before = process.memoryUsage().arrayBuffers
    for (let i = 0; i < 200; i++) await storage.createSnapshot('v', `s${i}`, t)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB)
    expect((await storage.volumeInfo('v')).allocatedBytes).toBe(16 * MiB)
    expect(await storage.read('v', 255 * 4 * MiB, 3, { snapshot: 's199' })).toEqual(filled(3, 1))
  })
})

// ---- property test against a reference model --------------------------------------------------------------------

const BS = 4 * KiB
const MAX_BLOCKS = 12

/** The model of one point of a volume: bytes, and per block its data version (0: none) and its birth tick. */
interface ModelPoint {
  bytes: Uint8Array
  versions: number[]
  births: number[]
  tick: number
}

type Op =
  | { kind: 'write'; block: number; delta: number; length: number; seed: number }
  | { kind: 'trim'; block: number; delta: number; length: number }
  | { kind: 'snapshot' }
  | { kind: 'restore'; pick: number }
  | { kind: 'delete'; pick: number }
  | { kind: 'resize'; blocks: number }

const rangeArb = {
  block: fc.nat(MAX_BLOCKS - 1),
  delta: fc.oneof(fc.constant(0), fc.nat(BS - 1)),
  length: fc.oneof(fc.constant(BS), fc.constant(2 * BS), fc.nat(3 * BS)),
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), ...rangeArb, seed: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trim' as const), ...rangeArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('snapshot' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restore' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resize' as const), blocks: fc.integer({ min: 1, max: MAX_BLOCKS }) }) },
)

function copyPoint(point: ModelPoint, tick: number): ModelPoint {
  return { bytes: point.bytes.slice(), versions: [...point.versions], births: [...point.births], tick }
}

/** What a correct adapter reports between two model points: blocks born in the later one after the earlier one. */
function expectedChanges(from: ModelPoint | null, to: ModelPoint): { blocks: number[]; holes: number[] } {
  const fromTick = from?.tick ?? 0
  const later = from === null || fromTick <= to.tick ? to : from
  const earlierTick = later === to ? fromTick : to.tick
  const blocks = later.births.flatMap((birth, block) => (birth > earlierTick ? [block] : []))
  return { blocks, holes: blocks.filter((block) => to.versions[block] === 0) }
}

/** Byte-wise equality of two ranges, a shorter one padded with zeros (as a volume reads past a smaller size). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const length = Math.max(a.length, b.length)
  const pad = (bytes: Uint8Array): Buffer => Buffer.concat([bytes, new Uint8Array(length - bytes.length)])
  return pad(a).equals(pad(b))
}

async function checkAgainstModel(storage: MemoryStorage, live: ModelPoint, snapshots: Map<string, ModelPoint>): Promise<void> {
  expect((await storage.volumeInfo('v')).sizeBytes).toBe(live.bytes.length)
  expect(sameBytes(await storage.read('v', 0, live.bytes.length), live.bytes), 'live contents').toBe(true)
  for (const [name, point] of snapshots) {
    expect(sameBytes(await storage.read('v', 0, point.bytes.length, { snapshot: name }), point.bytes), `contents of ${name}`).toBe(true)
  }
  const referenced = new Set([live, ...snapshots.values()].flatMap((point) => point.versions.filter((version) => version !== 0)))
  expect((await storage.volumeInfo('v')).allocatedBytes).toBe(referenced.size * BS)
  const targets: Array<[string, ModelPoint]> = [...snapshots, ['live', live]]
  for (const [fromName, fromPoint] of [[null, null] as const, ...snapshots]) {
    for (const [toName, toPoint] of targets) {
      const { blocks, holes } = await storage.changedBlocks('v', fromName, toName)
      const expected = expectedChanges(fromPoint, toPoint)
      expect({ from: fromName, to: toName, blocks, holes }).toEqual({ from: fromName, to: toName, ...expected })
      const before = fromPoint?.bytes ?? new Uint8Array(0)
      for (let block = 0; block < MAX_BLOCKS; block++) {
        const differs = !sameBytes(before.subarray(block * BS, (block + 1) * BS), toPoint.bytes.subarray(block * BS, (block + 1) * BS))
        if (differs) expect(blocks, `block ${block} differs between ${fromName} and ${toName}`).toContain(block)
      }
    }
  }
}

describe('memoryStorage against a reference model', () => {
  it('reads, allocation and changed blocks match a byte-array model over random writes, trims, snapshots, restores and resizes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const storage = memoryStorage({ defaultBlockSize: BS })
        await storage.createVolume({ name: 'v', sizeBytes: 8 * BS }, t)
        let tick = 0
        let version = 0
        const live: ModelPoint = { bytes: new Uint8Array(8 * BS), versions: Array(MAX_BLOCKS).fill(0), births: Array(MAX_BLOCKS).fill(0), tick: Infinity }
        const snapshots = new Map<string, ModelPoint>()
        const picked = (pick: number): string | undefined => [...snapshots.keys()][pick % Math.max(1, snapshots.size)]
        for (const op of ops) {
          tick++
          if (op.kind === 'write' || op.kind === 'trim') {
            const size = live.bytes.length
            const offset = (op.block * BS + op.delta) % size
            const length = Math.min(op.length, size - offset)
            if (op.kind === 'write') {
              await storage.write('v', offset, filled(length, op.seed), t)
              live.bytes.fill(op.seed, offset, offset + length)
              for (let block = Math.floor(offset / BS); block * BS < offset + length; block++) {
                live.versions[block] = ++version
                live.births[block] = tick
              }
            } else {
              await storage.trim('v', offset, length, t)
              for (let block = Math.ceil(offset / BS); (block + 1) * BS <= offset + length; block++) {
                if (live.versions[block] === 0) continue
                live.bytes.fill(0, block * BS, (block + 1) * BS)
                live.versions[block] = 0
                live.births[block] = tick
              }
            }
          } else if (op.kind === 'snapshot') {
            await storage.createSnapshot('v', `s${tick}`, t)
            snapshots.set(`s${tick}`, copyPoint(live, tick))
          } else if (op.kind === 'restore' || op.kind === 'delete') {
            const name = picked(op.pick)
            const point = name === undefined ? undefined : snapshots.get(name)
            if (name === undefined || point === undefined) continue
            if (op.kind === 'delete') {
              await storage.deleteSnapshot('v', name, t)
              snapshots.delete(name)
              continue
            }
            await storage.restoreSnapshot('v', name, t)
            for (let block = 0; block < MAX_BLOCKS; block++) {
              if ((live.births[block] ?? 0) <= point.tick) continue
              live.births[block] = tick
              live.versions[block] = point.versions[block] ?? 0
            }
            live.bytes = point.bytes.slice()
          } else {
            await storage.resizeVolume('v', op.blocks * BS, t)
            for (let block = op.blocks; block < MAX_BLOCKS; block++) {
              if (live.versions[block] === 0) continue
              live.versions[block] = 0
              live.births[block] = tick
            }
            const bytes = new Uint8Array(op.blocks * BS)
            bytes.set(live.bytes.subarray(0, bytes.length))
            live.bytes = bytes
          }
          await checkAgainstModel(storage, live, snapshots)
        }
      }),
      { numRuns: 150 },
    )
  })
})
