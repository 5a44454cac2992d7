import { describe, expect, it } from 'vitest'
import {
  DrError,
  InjectedCrash,
  ManualClock,
  createDrSystem,
  memoryStateStore,
  memoryStorage,
  memoryHost,
  MemoryNetworkFabric,
  type DrError as DrErrorType,
} from '../src/index.js'

async function rejection(config: unknown): Promise<DrErrorType> {
  try {
    await createDrSystem(config as never)
  } catch (error) {
    if (error instanceof DrError) return error
    throw error
  }
  throw new Error('createDrSystem accepted a bad config')
}

describe('createDrSystem', () => {
  it('rejects bad configuration with E_INVALID_INPUT naming the field path', async () => {
    const state = memoryStateStore()
    const noSites = await rejection({ state, sites: {} })
    expect(noSites.code).toBe('E_INVALID_INPUT')
    expect(noSites.message).toContain('field "sites"')

    const badStorage = await rejection({ state, sites: { east: { storage: { read: () => 0 } } } })
    expect(badStorage.message).toContain('field "sites.east.storage"')

    const badSiteName = await rejection({ state, sites: { 'east coast': { storage: memoryStorage() } } })
    expect(badSiteName.message).toContain('sites.east coast')

    const badState = await rejection({ state: {}, sites: { east: { storage: memoryStorage() } } })
    expect(badState.message).toContain('field "state"')

    const badClock = await rejection({ state, clock: 5, sites: { east: { storage: memoryStorage() } } })
    expect(badClock.message).toContain('field "clock"')

    expect((await rejection(undefined)).code).toBe('E_INVALID_INPUT')
    expect(await state.listStreams('')).toEqual([])
  })

  it('exposes sites and their ports, and refuses unknown sites and missing ports', async () => {
    const fabric = new MemoryNetworkFabric()
    await using dr = await createDrSystem({
      state: memoryStateStore(),
      sites: { east: { storage: memoryStorage(), network: fabric.port('east'), host: memoryHost() }, west: { storage: memoryStorage() } },
    })
    expect(dr.siteNames).toEqual(['east', 'west'])
    expect(dr.site('east').network().site).toBe('east')
    expect(() => dr.site('north')).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }))
    expect(() => dr.site('west').host()).toThrow(expect.objectContaining({ code: 'E_PRECONDITION' }))
  })

  it('holds a lease whose token fences adapter calls, renews it on the clock, and releases it on close', async () => {
    const clock = new ManualClock()
    const storage = memoryStorage()
    const dr = await createDrSystem({ state: memoryStateStore(), clock, leaseTtlMs: 3_000, sites: { east: { storage } } })
    const token = dr.token()
    await storage.createVolume({ name: 'v', sizeBytes: 65536 }, token)
    await clock.advance(10_000)
    expect(dr.token()).toEqual(token)
    await dr.close()
    await dr.close()
    expect(() => dr.token()).toThrow(expect.objectContaining({ code: 'E_FENCED' }))
    await expect(storage.volumeInfo('v')).rejects.toMatchObject({ code: 'E_CLOSED' })
  })

  it('resumes workflows a crashed coordinator left unfinished when the next one starts', async () => {
    const state = memoryStateStore()
    const storage = memoryStorage()
    const token = { scope: 'setup', value: 1 }
    await storage.createVolume({ name: 'db', sizeBytes: 65536 }, token)
    const first = await createDrSystem({ state, sites: { east: { storage } } })
    // Crash the snapshot workflow after it reached the storage, before it was catalogued.
    const crashed = first.workflows.run('snapshot.create', 'manual-1', { site: 'east', volume: 'db', name: 'n', labels: {}, schedule: null }, {
      crashAt: (p) => p.index === 1 && p.phase === 'before',
    })
    await expect(crashed).rejects.toBeInstanceOf(InjectedCrash)
    expect(await first.workflows.listRunning()).toEqual(['manual-1'])
    // The first coordinator "dies" here (it is never closed); a second one starts on the same journal and storage.
    const second = await createDrSystem({ state, sites: { east: { storage } } })
    expect((await second.snapshots.list({ site: 'east' })).map((s) => s.name)).toEqual(['n'])
    expect(await second.workflows.listRunning()).toEqual([])
    await second.close()
  })
})
