import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { isDrError } from '../../../src/kernel/index.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { bytes, createVolume, fencedVolumes, gatedWrites, members, text, world, type World } from './world.js'

const site = 'east'
const volume = 'db'

/** A small seeded PRNG (mulberry32), so a failing case replays with the same latencies. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Op = { readonly kind: 'put' | 'delete'; readonly path: string }

/** The contents after each prefix of `ops` (index k: after the first k ops), for sequential semantics. */
function prefixStates(initial: ReadonlyMap<string, string>, ops: readonly Op[]): Array<Map<string, string>> {
  const states = [new Map(initial)]
  let current = new Map(initial)
  ops.forEach((op, i) => {
    current = new Map(current)
    if (op.kind === 'put') current.set(op.path, `op-${i}`)
    else current.delete(op.path)
    states.push(current)
  })
  return states
}

const sameContents = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean =>
  a.size === b.size && [...a].every(([path, value]) => b.get(path) === value)

describe('consistency-group snapshot under concurrent object writes (property)', () => {
  it('no snapshot ever holds a stub pointing to a missing object; it equals the state after some prefix of the writes', async () => {
    const paths = ['a', 'b', 'c', 'd', 'e', 'f', 'g']
    const op = fc.record({ kind: fc.constantFrom<'put' | 'delete'>('put', 'put', 'delete'), path: fc.constantFrom(...paths) })
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 24 }), fc.nat({ max: 24 }), fc.integer(), fc.integer({ min: 1, max: 4 }), async (ops, startAt, seed, writers) => {
        const random = seeded(seed)
        const base = memoryStorage({ latencyMs: () => (random() < 0.3 ? 1 : 0) })
        const w = await world({ base })
        await createVolume(w, volume, 3)
        const initial = new Map(paths.slice(0, 4).map((p) => [p, `init-${p}`] as const))
        for (const [path, value] of initial) await w.volumes.putObject({ site, volume, path, data: bytes(value) })
        w.faults.setLatency(() => Math.floor(random() * 3))

        // Writers issue the operations in order (each op queues behind the previous one on the volume's lock);
        // the snapshot starts once `startAt` of them were issued.
        let snapshot: Promise<{ id: number }> | undefined
        const issued: Array<Promise<unknown>> = []
        let next = 0
        const writer = async (): Promise<void> => {
          while (next < ops.length) {
            const i = next++
            if (i === Math.min(startAt, ops.length - 1) && snapshot === undefined) snapshot = w.volumes.snapshot({ site, volume, name: 'cut' })
            const o = ops[i] as Op
            const done =
              o.kind === 'put'
                ? w.volumes.putObject({ site, volume, path: o.path, data: bytes(`op-${i}`) })
                : w.volumes.deleteObject({ site, volume, path: o.path }).catch((error: unknown) => {
                    if (!isDrError(error, 'E_NOT_FOUND')) throw error
                  })
            issued.push(done)
            if (random() < 0.5) await done
          }
        }
        await Promise.all(Array.from({ length: writers }, writer))
        await Promise.all(issued)
        const cut = await (snapshot ?? w.volumes.snapshot({ site, volume, name: 'cut' }))

        const seen = new Map<string, string>()
        for (const { path } of await w.volumes.listObjects({ site, volume, snapshot: cut.id })) {
          seen.set(path, text(await w.volumes.readSnapshotObject({ site, volume, snapshot: cut.id, path })))
        }
        expect(prefixStates(initial, ops).some((state) => sameContents(state, seen))).toBe(true)
        expect(await fencedVolumes(w.base, members(volume, 3))).toEqual([])
      }),
      { numRuns: 60 },
    )
  })
})

describe('every cut point of an object operation is consistent', () => {
  // `visibleAt`: the write after which the snapshot shows the operation (the namespace stub for a new put or a
  // delete, the OLS record for a replace) — before it the snapshot shows the old state, never a mix.
  const cases: Array<{ what: string; writes: number; visibleAt: number; run: (w: World) => Promise<unknown>; before: Record<string, string>; after: Record<string, string> }> = [
    { what: 'a put of a new path', writes: 5, visibleAt: 5, run: (w) => w.volumes.putObject({ site, volume, path: 'new', data: bytes('fresh') }), before: { old: 'old' }, after: { old: 'old', new: 'fresh' } },
    { what: 'a put over an existing path', writes: 3, visibleAt: 3, run: (w) => w.volumes.putObject({ site, volume, path: 'old', data: bytes('newer') }), before: { old: 'old' }, after: { old: 'newer' } },
    { what: 'a delete', writes: 2, visibleAt: 1, run: (w) => w.volumes.deleteObject({ site, volume, path: 'old' }), before: { old: 'old' }, after: {} },
  ]
  for (const { what, writes, visibleAt, run, before, after } of cases) {
    for (let cut = 0; cut <= writes; cut++) {
      it(`a snapshot taken after ${cut} of the ${writes} writes of ${what} holds no dangling stub`, async () => {
        const gate = gatedWrites(memoryStorage())
        const w = await world({ base: gate.port })
        await createVolume(w, volume, 2)
        await w.volumes.putObject({ site, volume, path: 'old', data: bytes('old') })
        const held = gate.pass(cut)
        const operation = run(w)
        const stopped = await Promise.race([held.then(() => true), operation.then(() => false)])
        expect(stopped).toBe(cut < writes)
        const snap = await w.volumes.snapshot({ site, volume, name: 'cut' })
        gate.release()
        await operation
        const seen: Record<string, string> = {}
        for (const { path } of await w.volumes.listObjects({ site, volume, snapshot: snap.id })) {
          seen[path] = text(await w.volumes.readSnapshotObject({ site, volume, snapshot: snap.id, path }))
        }
        expect([before, after]).toContainEqual(seen)
        expect(seen).toEqual(cut >= visibleAt ? after : before)
      })
    }
  }
})
