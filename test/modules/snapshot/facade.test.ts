import { describe, expect, it } from 'vitest'
import {
  DrError,
  EventBus,
  InjectedCrash,
  ManualClock,
  WorkflowEngine,
  type CrashPoint,
  type StateStore,
} from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { openSnapshotModule, type SnapshotEvents } from '../../../src/modules/snapshot/index.js'
import type { StoragePort } from '../../../src/ports/storage.js'

const token = { scope: 'test', value: 1 }

async function world(options: { stateStore?: StateStore; storage?: StoragePort; clock?: ManualClock; crashAt?: (p: CrashPoint) => boolean } = {}) {
  const clock = options.clock ?? new ManualClock(Date.UTC(2026, 10, 16, 0, 0))
  const stateStore = options.stateStore ?? memoryStateStore()
  const storage = options.storage ?? memoryStorage()
  const events = new EventBus<SnapshotEvents>(() => clock.now())
  const seen: string[] = []
  events.onAny((e) => seen.push(`${e.name}:${'name' in e.payload ? e.payload.name : ''}`))
  const workflows = new WorkflowEngine({ stateStore, clock, ...(options.crashAt ? { crashAt: options.crashAt } : {}) })
  const module = await openSnapshotModule({
    stateStore,
    workflows,
    storage: (site) => {
      if (site !== 'east') throw new DrError('E_NOT_FOUND', `site "${site}" is not configured`)
      return storage
    },
    events,
    clock,
    token: () => token,
  })
  return { clock, stateStore, storage, events, seen, workflows, snapshots: module.facade, scheduler: module.scheduler }
}

async function withVolume(storage: StoragePort, name = 'db', size = 1024 * 1024) {
  await storage.createVolume({ name, sizeBytes: size, blockSize: 4096 }, token)
  await storage.write(name, 0, new Uint8Array(4096).fill(1), token)
}

describe('snapshot facility', () => {
  it('creates, gets and lists catalogued snapshots with labels, emitting snapshot.created', async () => {
    const w = await world()
    await withVolume(w.storage)
    const created = await w.snapshots.create({ site: 'east', volume: 'db', name: 'before-upgrade', labels: { app: 'pg' } })
    expect(created).toMatchObject({ site: 'east', volume: 'db', name: 'before-upgrade', labels: { app: 'pg' }, schedule: null, holds: [] })
    await w.clock.advance(1000)
    await w.snapshots.create({ site: 'east', volume: 'db', name: 'later' })
    expect((await w.snapshots.list({ site: 'east' })).map((s) => s.name)).toEqual(['before-upgrade', 'later'])
    expect((await w.snapshots.list({ site: 'east', volume: 'other' })).length).toBe(0)
    expect(w.seen).toEqual(['snapshot.created:before-upgrade', 'snapshot.created:later'])
  })

  it('rejects bad input on every entry point with E_INVALID_INPUT and changes nothing', async () => {
    const w = await world()
    await withVolume(w.storage)
    const bad: Array<() => Promise<unknown>> = [
      () => w.snapshots.create({ site: 'east', volume: 'db', name: '' }),
      () => w.snapshots.create({ site: 'east', volume: 'db', name: 'x', labels: { a: 1 } } as never),
      () => w.snapshots.create({ site: 'east' } as never),
      () => w.snapshots.get({ site: 'east', volume: 'db', name: '../etc' }),
      () => w.snapshots.list({} as never),
      () => w.snapshots.delete({ site: 'east', volume: 7, name: 'x' } as never),
      () => w.snapshots.restore(null as never),
      () => w.snapshots.clone({ site: 'east', volume: 'db', name: 'x' } as never),
      () => w.snapshots.hold({ site: 'east', volume: 'db', name: 'x', tag: '' }),
      () => w.snapshots.release({ site: 'east', volume: 'db', name: 'x' } as never),
      () => w.snapshots.addSchedule({ id: 's', site: 'east', volume: 'db', spec: { every: '10 parsecs' }, retention: { keepLast: 1, buckets: [] } }),
      () => w.snapshots.addSchedule({ id: 's', site: 'east', volume: 'db', spec: { every: '1h' }, retention: { keepLast: 0, buckets: [] } }),
      () => w.snapshots.addSchedule({ id: 's', site: 'east', volume: 'db', spec: { daily: '25:00' }, retention: { keepLast: 1, buckets: [] } }),
      () => w.snapshots.removeSchedule({ id: 5 } as never),
    ]
    for (const call of bad) await expect(call()).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect(await w.storage.listSnapshots('db')).toEqual([])
    expect(await w.stateStore.listStreams('')).toEqual([])
  })

  it('refuses duplicates, unknown volumes, unknown sites and unknown snapshots with stable codes', async () => {
    const w = await world()
    await withVolume(w.storage)
    await w.snapshots.create({ site: 'east', volume: 'db', name: 'a' })
    await expect(w.snapshots.create({ site: 'east', volume: 'db', name: 'a' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.snapshots.create({ site: 'east', volume: 'nope', name: 'a' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.snapshots.create({ site: 'west', volume: 'db', name: 'a' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.snapshots.get({ site: 'east', volume: 'db', name: 'zz' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.snapshots.delete({ site: 'east', volume: 'db', name: 'zz' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect((await w.storage.listSnapshots('db')).map((s) => s.name)).toEqual(['a'])
  })

  it('restores a volume to a snapshot and clones a snapshot into an independent volume', async () => {
    const w = await world()
    await withVolume(w.storage)
    await w.snapshots.create({ site: 'east', volume: 'db', name: 'one' })
    await w.storage.write('db', 0, new Uint8Array(4096).fill(2), token)
    const clone = await w.snapshots.clone({ site: 'east', volume: 'db', name: 'one', clone: 'db-copy' })
    expect(clone.name).toBe('db-copy')
    await w.snapshots.restore({ site: 'east', volume: 'db', name: 'one' })
    expect((await w.storage.read('db', 0, 4))).toEqual(new Uint8Array([1, 1, 1, 1]))
    await w.storage.write('db-copy', 0, new Uint8Array(4).fill(9), token)
    expect((await w.storage.read('db', 0, 4))).toEqual(new Uint8Array([1, 1, 1, 1]))
    expect(w.seen).toContain('snapshot.cloned:one')
    expect(w.seen).toContain('snapshot.restored:one')
  })

  it('a held snapshot cannot be deleted; after release it can, and snapshot.deleted is emitted', async () => {
    const w = await world()
    await withVolume(w.storage)
    await w.snapshots.create({ site: 'east', volume: 'db', name: 'base' })
    await w.snapshots.hold({ site: 'east', volume: 'db', name: 'base', tag: 'mirror-m1' })
    expect((await w.snapshots.get({ site: 'east', volume: 'db', name: 'base' })).holds).toEqual(['mirror-m1'])
    await expect(w.snapshots.delete({ site: 'east', volume: 'db', name: 'base' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await w.snapshots.release({ site: 'east', volume: 'db', name: 'base', tag: 'mirror-m1' })
    await w.snapshots.delete({ site: 'east', volume: 'db', name: 'base' })
    expect(await w.snapshots.list({ site: 'east' })).toEqual([])
    expect(await w.storage.listSnapshots('db')).toEqual([])
    expect(w.seen).toContain('snapshot.deleted:base')
  })

  it('the catalog survives a restart (replayed from the journal)', async () => {
    const first = await world()
    await withVolume(first.storage)
    await first.snapshots.create({ site: 'east', volume: 'db', name: 'kept' })
    const second = await world({ stateStore: first.stateStore, storage: first.storage })
    expect((await second.snapshots.list({ site: 'east' })).map((s) => s.name)).toEqual(['kept'])
  })

  for (const phase of ['before', 'after'] as const) {
    for (const index of [0, 1]) {
      it(`crash ${phase} step ${index} of snapshot create, restart: snapshot taken and catalogued exactly once`, async () => {
        const storage = memoryStorage()
        await withVolume(storage)
        const stateStore = memoryStateStore()
        const crashing = await world({ stateStore, storage, crashAt: (p) => p.index === index && p.phase === phase })
        await expect(crashing.snapshots.create({ site: 'east', volume: 'db', name: 'c' })).rejects.toBeInstanceOf(InjectedCrash)
        const restarted = await world({ stateStore, storage })
        const running = await restarted.workflows.listRunning()
        expect(running.length).toBe(1)
        for (const id of running) await restarted.workflows.resume(id)
        expect((await storage.listSnapshots('db')).map((s) => s.name)).toEqual(['c'])
        expect((await restarted.snapshots.list({ site: 'east' })).map((s) => s.name)).toEqual(['c'])
        expect([...crashing.seen, ...restarted.seen].filter((e) => e === 'snapshot.created:c')).toHaveLength(1)
      })
    }
  }

  for (const phase of ['before', 'after'] as const) {
    for (const index of [0, 1]) {
      it(`crash ${phase} step ${index} of snapshot delete, restart: deleted from storage and catalog`, async () => {
        const storage = memoryStorage()
        await withVolume(storage)
        const stateStore = memoryStateStore()
        const setup = await world({ stateStore, storage })
        await setup.snapshots.create({ site: 'east', volume: 'db', name: 'd' })
        const crashing = await world({ stateStore, storage, crashAt: (p) => p.index === index && p.phase === phase })
        await expect(crashing.snapshots.delete({ site: 'east', volume: 'db', name: 'd' })).rejects.toBeInstanceOf(InjectedCrash)
        const restarted = await world({ stateStore, storage })
        for (const id of await restarted.workflows.listRunning()) await restarted.workflows.resume(id)
        expect(await storage.listSnapshots('db')).toEqual([])
        expect(await restarted.snapshots.list({ site: 'east' })).toEqual([])
      })
    }
  }

  it('an adapter failure during create leaves no catalog entry and reports E_ADAPTER', async () => {
    const { injectFaults } = await import('../../../src/testkit/faults.js')
    const faulty = injectFaults(memoryStorage(), { name: 'memory' })
    await withVolume(faulty.port)
    faulty.fail({ method: 'createSnapshot', times: 1 })
    const w = await world({ storage: faulty.port })
    await expect(w.snapshots.create({ site: 'east', volume: 'db', name: 'x' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(await w.snapshots.list({ site: 'east' })).toEqual([])
    await expect(w.snapshots.create({ site: 'east', volume: 'db', name: 'x' })).resolves.toMatchObject({ name: 'x' })
  })
})

describe('snapshot schedules and retention', () => {
  it('takes snapshots on the clock, expires by the grid, emits snapshot.expired, and never expires a held one', async () => {
    const w = await world()
    await withVolume(w.storage)
    await w.snapshots.addSchedule({ id: 'q', site: 'east', volume: 'db', spec: { every: '15m' }, retention: { keepLast: 2, buckets: [] } })
    w.scheduler.start()
    await w.clock.advance(15 * 60_000)
    const first = (await w.snapshots.list({ site: 'east' }))[0]
    expect(first?.schedule).toBe('q')
    await w.snapshots.hold({ site: 'east', volume: 'db', name: first?.name ?? '', tag: 'mirror-base' })
    await w.clock.advance(4 * 15 * 60_000)
    const names = (await w.snapshots.list({ site: 'east' })).map((s) => s.name)
    expect(names).toHaveLength(3)
    expect(names[0]).toBe(first?.name)
    expect(w.seen.filter((e) => e.startsWith('snapshot.expired'))).toHaveLength(2)
    await w.scheduler.stop()
  })

  it('reports each finished run as snapshot.scheduleRan with the snapshot taken and the ones its grid expired', async () => {
    const w = await world()
    await withVolume(w.storage)
    await w.snapshots.addSchedule({ id: 'q', site: 'east', volume: 'db', spec: { every: '15m' }, retention: { keepLast: 2, buckets: [] } })
    const runs: Array<{ snapshot: string; expired: readonly string[]; at: number }> = []
    w.events.on('snapshot.scheduleRan', (e) => runs.push({ snapshot: e.payload.snapshot, expired: e.payload.expired, at: e.payload.at }))
    w.scheduler.start()
    for (let run = 0; run < 4; run++) await w.clock.advance(15 * 60_000)
    await w.scheduler.stop()
    expect(runs).toHaveLength(4)
    expect(runs.map((run) => run.expired)).toEqual([[], [], [runs[0]?.snapshot], [runs[1]?.snapshot]])
    expect(runs.map((run) => run.at)).toEqual([1, 2, 3, 4].map((n) => Date.UTC(2026, 10, 16, 0, 0) + n * 15 * 60_000))
    expect((await w.snapshots.list({ site: 'east' })).map((s) => s.name)).toEqual(runs.slice(2).map((run) => run.snapshot))
  })

  it('a schedule that missed runs while the system was down takes one snapshot, not one per missed run', async () => {
    const w = await world()
    await withVolume(w.storage)
    await w.snapshots.addSchedule({ id: 'h', site: 'east', volume: 'db', spec: { every: '1h' }, retention: { keepLast: 100, buckets: [] } })
    await w.clock.advance(7 * 24 * 3_600_000) // scheduler not running: the system is "down"
    expect(await w.scheduler.runDue()).toEqual(['h'])
    expect(await w.scheduler.runDue()).toEqual([])
    expect(await w.snapshots.list({ site: 'east' })).toHaveLength(1)
  })

  it('reports a failing scheduled snapshot as snapshot.scheduleFailed without stopping the scheduler', async () => {
    const w = await world()
    await withVolume(w.storage)
    await w.snapshots.addSchedule({ id: 'gone', site: 'east', volume: 'db', spec: { every: '1m' }, retention: { keepLast: 1, buckets: [] } })
    await w.storage.deleteVolume('db', token)
    const failures: string[] = []
    w.events.on('snapshot.scheduleFailed', (e) => failures.push(e.payload.code))
    w.scheduler.start()
    await w.clock.advance(3 * 60_000)
    expect(failures.length).toBeGreaterThanOrEqual(2)
    expect(failures[0]).toBe('E_NOT_FOUND')
    await w.scheduler.stop()
  })

  it('refuses a duplicate schedule and removing an unknown one', async () => {
    const w = await world()
    await withVolume(w.storage)
    const spec = { every: '1h' }
    await w.snapshots.addSchedule({ id: 'd', site: 'east', volume: 'db', spec, retention: { keepLast: 1, buckets: [] } })
    await expect(w.snapshots.addSchedule({ id: 'd', site: 'east', volume: 'db', spec, retention: { keepLast: 1, buckets: [] } })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.snapshots.removeSchedule({ id: 'unknown' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await w.snapshots.removeSchedule({ id: 'd' })
    expect(w.snapshots.listSchedules()).toEqual([])
  })
})
