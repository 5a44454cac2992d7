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
  MemoryLeaseManager,
  type DrError as DrErrorType,
} from '../src/index.js'
import { injectFaults } from '../src/testkit/index.js'

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

  it('a coordinator that takes over presents its token to every port, so the deposed one is refused everywhere at once', async () => {
    const leaseClock = new ManualClock()
    const leases = new MemoryLeaseManager(leaseClock)
    const state = memoryStateStore()
    const fabric = new MemoryNetworkFabric()
    const east = { storage: memoryStorage(), network: fabric.port('east'), host: memoryHost({ hosts: [{ name: 'h1', cpus: 4, memoryMb: 4096 }] }) }
    const west = injectFaults(memoryStorage(), { name: 'west-storage' })
    // The first coordinator's own clock never moves: it stops renewing, as a paused or partitioned process would.
    const first = await createDrSystem({ state, leases, leaseTtlMs: 1_000, clock: new ManualClock(), coordinator: 'first', sites: { east, west: { storage: west.port } } })
    const deposed = first.token()
    await east.storage.createVolume({ name: 'untouched', sizeBytes: 65536 }, deposed)
    await leaseClock.advance(1_500)
    west.fail({ method: 'presentToken', times: 1, error: new DrError('E_UNAVAILABLE', 'west is down') })
    const second = await createDrSystem({ state, leases, leaseTtlMs: 1_000, clock: new ManualClock(), coordinator: 'second', sites: { east, west: { storage: west.port } } })
    expect(second.token().value).toBeGreaterThan(deposed.value)
    // Nothing the second coordinator did touched volume "untouched", the host or the identity registry, yet:
    await expect(east.storage.write('untouched', 0, new Uint8Array([1]), deposed)).rejects.toMatchObject({ code: 'E_FENCED' })
    await expect(east.host.mount({ path: '/m', volume: 'untouched', identity: 'id', options: {}, readOnly: false }, deposed)).rejects.toMatchObject({ code: 'E_FENCED' })
    await expect(east.network.identity.claimAddress('10.0.0.1', 'east', deposed)).rejects.toMatchObject({ code: 'E_FENCED' })
    // West could not be reached: reported, and the start went on; west learns the token from its first call.
    expect(second.takeover.ports.filter((port) => port.outcome === 'unreached')).toEqual([
      { site: 'west', port: 'storage', outcome: 'unreached', code: 'E_UNAVAILABLE', message: 'west is down' },
    ])
    expect(second.takeover.ports.filter((port) => port.outcome === 'presented').map((port) => `${port.site}.${port.port}`)).toEqual([
      'east.storage',
      'east.network',
      'east.host',
    ])
    await west.port.createVolume({ name: 'w', sizeBytes: 65536 }, second.token())
    await expect(west.port.write('w', 0, new Uint8Array([1]), deposed)).rejects.toMatchObject({ code: 'E_FENCED' })
    await second.close()
  })

  it('a facade workflow whose coordinator loses its lease mid-step stops resumable: nothing recorded as failed, nothing compensated; the next coordinator completes it', async () => {
    const leaseClock = new ManualClock()
    const leases = new MemoryLeaseManager(leaseClock)
    const state = memoryStateStore()
    const storage = memoryStorage()
    await storage.createVolume({ name: 'db', sizeBytes: 65536 }, { scope: 'setup', value: 1 })
    let pauseAfterSnapshot = true
    // The first coordinator is paused past its lease right after the storage took the snapshot.
    const pausing = new Proxy(storage, {
      get: (target, key) => {
        const value: unknown = Reflect.get(target, key, target)
        if (key !== 'createSnapshot' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value
        return async (...args: unknown[]) => {
          const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
          if (pauseAfterSnapshot) await leaseClock.advance(1_500)
          return result
        }
      },
    })
    const sites = { east: { storage: pausing } }
    const first = await createDrSystem({ state, leases, leaseTtlMs: 1_000, clock: new ManualClock(), coordinator: 'first', sites })
    await expect(first.snapshots.create({ site: 'east', volume: 'db', name: 'n' })).rejects.toMatchObject({ code: 'E_FENCED', details: { scope: 'drkit/system' } })
    const [run] = await state.listStreams('workflow/')
    const journaled = async () => (await state.read(run ?? 'none')).map((r) => r.type)
    expect(await journaled()).toEqual(['workflow.started'])
    expect((await storage.listSnapshots('db')).map((s) => s.name)).toEqual(['n'])
    pauseAfterSnapshot = false
    const second = await createDrSystem({ state, leases, leaseTtlMs: 1_000, clock: new ManualClock(), coordinator: 'second', sites })
    expect(await journaled()).toEqual(['workflow.started', 'step.completed', 'step.completed', 'workflow.completed'])
    expect((await second.snapshots.list({ site: 'east' })).map((s) => s.name)).toEqual(['n'])
    expect((await storage.listSnapshots('db')).map((s) => s.name)).toEqual(['n'])
    await second.close()
  })

  it('binds the journal to its lease before anything else: a journal that refuses the token refuses the start, and the lease is released', async () => {
    const state = memoryStateStore()
    const leases = new MemoryLeaseManager(new ManualClock())
    await state.fence({ scope: 'drkit/system', value: 5 })
    await expect(createDrSystem({ state, leases, sites: { east: { storage: memoryStorage() } } })).rejects.toMatchObject({ code: 'E_FENCED' })
    expect(await state.listStreams('')).toEqual([])
    await expect(leases.acquire('drkit/system', 'next')).resolves.toMatchObject({ holder: 'next' })
  })

  it('leads the configured scope: coordinators of different scopes act side by side on a shared adapter, while one scope has one leader', async () => {
    const storage = memoryStorage()
    const leaseClock = new ManualClock()
    const leases = new MemoryLeaseManager(leaseClock)
    const bad = await rejection({ state: memoryStateStore(), scope: '', sites: { east: { storage } } })
    expect(bad).toMatchObject({ code: 'E_INVALID_INPUT' })
    expect(bad.message).toContain('field "scope"')
    // The coordinators' own clocks never move (they never renew): leases end when the lease clock passes their TTL.
    const start = (scope: string, leaseTtlMs: number) => createDrSystem({ state: memoryStateStore(), leases, scope, leaseTtlMs, clock: new ManualClock(), sites: { east: { storage } } })
    const a = await start('drkit/east-west', 1_000)
    const b = await start('drkit/north-south', 60_000)
    expect([a.scope, a.token().scope, b.scope, b.token().scope]).toEqual(['drkit/east-west', 'drkit/east-west', 'drkit/north-south', 'drkit/north-south'])
    // Each acts with its own token on the adapter both use: neither fences the other.
    await storage.createVolume({ name: 'a', sizeBytes: 65536 }, a.token())
    await storage.createVolume({ name: 'b', sizeBytes: 65536 }, b.token())
    await storage.write('a', 0, new Uint8Array([1]), a.token())
    await expect(start('drkit/east-west', 1_000)).rejects.toMatchObject({ code: 'E_CONFLICT' })
    const deposed = a.token()
    await leaseClock.advance(1_500)
    // The next leader of east-west presents a higher token of that scope: the old token is refused, the other scope's is not.
    const next = await start('drkit/east-west', 1_000)
    expect(next.token().value).toBeGreaterThan(deposed.value)
    await expect(storage.write('a', 0, new Uint8Array([2]), deposed)).rejects.toMatchObject({ code: 'E_FENCED' })
    await storage.write('b', 0, new Uint8Array([3]), b.token())
    await Promise.all([next.close(), b.close()])
  })

  it('names each coordinator uniquely by default, so two on one host never take each other\'s lease', async () => {
    const leases = new MemoryLeaseManager(new ManualClock())
    const one = await createDrSystem({ state: memoryStateStore(), leases, scope: 'one', sites: { east: { storage: memoryStorage() } } })
    const two = await createDrSystem({ state: memoryStateStore(), leases, scope: 'two', sites: { east: { storage: memoryStorage() } } })
    expect(one.coordinator).toMatch(new RegExp(`-${process.pid}-[0-9a-f]{8}$`))
    expect(two.coordinator).not.toBe(one.coordinator)
    await Promise.all([one.close(), two.close()])
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
