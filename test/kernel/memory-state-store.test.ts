import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/kernel/clock.js'
import { MemoryStateStore, memoryStateStore } from '../../src/kernel/memory-state-store.js'
import { stateStoreConformance } from '../../src/testkit/state-store-conformance.js'

describe('MemoryStateStore conformance', () => {
  for (const c of stateStoreConformance({ create: async () => memoryStateStore(), dispose: (store) => store.close() })) it(c.name, c.run)
})

describe('MemoryStateStore', () => {
  it('is a StateStore of kind memory', () => {
    const store = memoryStateStore()
    expect(store).toBeInstanceOf(MemoryStateStore)
    expect(store.kind).toBe('memory')
  })

  it('stamps records with its clock', async () => {
    const clock = new ManualClock(1_000)
    const store = memoryStateStore({ clock })
    await store.append('s', 0, [{ type: 't', data: 1 }])
    await clock.advance(500)
    await store.append('s', 1, [{ type: 't', data: 2 }])
    expect((await store.read('s')).map((r) => r.at)).toEqual([1_000, 1_500])
  })

  it('hands out frozen records and snapshots that no reader can change', async () => {
    const store = memoryStateStore()
    await store.append('s', 0, [{ type: 't', data: { list: [1] } }])
    await store.saveSnapshot({ stream: 's', version: 1, state: { n: 1 } })
    const [first] = await store.read('s')
    expect(Object.isFrozen(first)).toBe(true)
    expect(Object.isFrozen((first?.data as { list: number[] }).list)).toBe(true)
    expect(Object.isFrozen((await store.loadSnapshot('s'))?.state)).toBe(true)
  })

  it('accepts a snapshot ahead of its stream (the journal may live elsewhere)', async () => {
    const store = memoryStateStore()
    await store.saveSnapshot({ stream: 'elsewhere', version: 7, state: { total: 3 } })
    expect(await store.loadSnapshot('elsewhere')).toEqual({ stream: 'elsewhere', version: 7, state: { total: 3 } })
    expect(await store.version('elsewhere')).toBe(0)
  })

  it('names the stream, expected and actual versions in a conflict', async () => {
    const store = memoryStateStore()
    await store.append('s', 0, [{ type: 't', data: 1 }])
    await expect(store.append('s', 0, [{ type: 't', data: 2 }])).rejects.toMatchObject({
      code: 'E_CONFLICT',
      details: { store: 'memory', stream: 's', expectedVersion: 0, actualVersion: 1 },
    })
  })
})
