import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/kernel/index.js'
import { openSnapshotModule } from '../../../src/modules/snapshot/index.js'
import { WorkflowEngine } from '../../../src/kernel/index.js'
import { EventBus } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { BS, block, blockHashes, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem } from '../../fixtures/mirror-system.js'

async function system() {
  const d = await durable({ clock: new ManualClock(), sizeBlocks: 128 })
  const s = await openSystem(d)
  await d.raw['east']!.write('db', 0, block(1), token)
  return { d, s, east: d.raw['east']!, west: d.raw['west']! }
}

const create = { id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h' } } as const

describe('mirror facade: create, start, stop, status, list, delete', () => {
  it('rejects bad input on every entry point with E_INVALID_INPUT and changes nothing', async () => {
    const { d, s } = await system()
    const bad: Array<() => Promise<unknown>> = [
      () => s.mirrors.create({} as never),
      () => s.mirrors.create({ ...create, id: 'bad id!' }),
      () => s.mirrors.create({ ...create, source: { site: 'east', volume: '' } }),
      () => s.mirrors.create({ ...create, cut: { every: '10 parsecs' } }),
      () => s.mirrors.create({ ...create, cut: { highWaterMark: '-1MiB' } }),
      () => s.mirrors.create({ ...create, transfer: { chunkSize: '1B' } }),
      () => s.mirrors.create({ ...create, transfer: { retries: -1 } }),
      () => s.mirrors.start(7 as never),
      () => s.mirrors.stop('../x'),
      () => s.mirrors.status(''),
      () => s.mirrors.list({ site: '' }),
      () => s.mirrors.failover('m', { mode: 'fast' } as never),
      () => s.mirrors.failover('m', { mode: 'sync', signal: 'abort' } as never),
      () => s.mirrors.failover('m', { mode: 'default', timeout: '0s' }),
      () => s.mirrors.resync('m', { acknowledgeDataLoss: false } as never),
      () => s.mirrors.failback('m', { timeout: 'soon' } as never),
      () => s.mirrors.swap('m', null as never),
      () => s.mirrors.cutNow({} as never),
      () => s.mirrors.delete(null as never),
    ]
    for (const call of bad) await expect(call()).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect(await d.stateStore.listStreams('')).toEqual([])
    expect((await d.raw['west']!.listVolumes()).length).toBe(0)
    await s.module.close()
  })

  it('rejects bad input against a replicating relationship with E_INVALID_INPUT naming the field (io-ts path in details) and changes nothing', async () => {
    const { d, s } = await system()
    await s.mirrors.create(create)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    const journal = async () => (await d.stateStore.read('mirror/relationships')).length
    const snapshot = async () => {
      const status = await s.mirrors.status('m')
      return { length: await journal(), state: status.state, epoch: status.epoch, direction: status.direction, writable: await d.writableNow(), bandwidth: status.transfer.bandwidthBytesPerSecond, played: status.lastPlayedBack }
    }
    const before = await snapshot()
    const bad: Array<[() => Promise<unknown>, string]> = [
      [() => s.mirrors.failover('m', { mode: 'fast' } as never), 'mode'],
      [() => s.mirrors.failover('m', { mode: 'default', timeout: '0s' }), 'timeout'],
      [() => s.mirrors.failover('m', { mode: 'sync', signal: 'abort' } as never), 'signal'],
      [() => s.mirrors.resync('m', { acknowledgeDataLoss: false } as never), 'acknowledgeDataLoss'],
      [() => s.mirrors.resync('m', { safetySnapshot: 'yes' } as never), 'safetySnapshot'],
      [() => s.mirrors.failback('m', { timeout: 'soon' } as never), 'timeout'],
      [() => s.mirrors.swap('m', { timeout: -5 } as never), 'timeout'],
      [() => s.mirrors.setBandwidth('m', { bandwidth: 'fast' } as never), 'bandwidth'],
      [() => s.mirrors.setBandwidth('m', {} as never), 'bandwidth'],
      [() => s.mirrors.create({ ...create, transfer: { bandwidth: '-1MiB' } } as never), 'bandwidth'],
      [() => s.mirrors.create({ ...create, transfer: { backlogMax: 'lots' } } as never), 'backlogMax'],
      [() => s.mirrors.create({ ...create, cut: { every: '10 parsecs' } }), 'every'],
      [() => s.mirrors.list({ site: 'no site!' }), 'site'],
    ]
    for (const [call, field] of bad) {
      const error = await call().then(
        () => undefined,
        (rejected: unknown) => rejected as { code: string; message: string; details: { violations?: Array<{ path: string }> } },
      )
      expect(error, `a call with a bad ${field} was accepted`).toMatchObject({ code: 'E_INVALID_INPUT' })
      expect(error!.message).toContain(field)
      expect(error!.details.violations?.some((v) => v.path.split('.').includes(field)), `details name the io-ts path of ${field}`).toBe(true)
    }
    expect(await snapshot()).toEqual(before)
    expect(before).toMatchObject({ state: 'replicating', epoch: 1, writable: ['east'] })
    await s.module.close()
  })

  it('validates sites, volumes, conflicts and destination contents before changing anything', async () => {
    const { d, s, west } = await system()
    await expect(s.mirrors.create({ ...create, source: { site: 'north', volume: 'db' } })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(s.mirrors.create({ ...create, destination: { site: 'north' } })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(s.mirrors.create({ ...create, source: { site: 'east', volume: 'nope' } })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(s.mirrors.create({ ...create, destination: { site: 'east', volume: 'db' } })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await west.createVolume({ name: 'db', sizeBytes: 16 * BS, blockSize: BS }, token)
    await west.write('db', 0, block(9), token)
    await expect(s.mirrors.create(create)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await west.createVolume({ name: 'big', sizeBytes: 16 * 8192, blockSize: 8192 }, token)
    await expect(s.mirrors.create({ ...create, destination: { site: 'west', volume: 'big' } })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await d.stateStore.listStreams('mirror/')).toEqual([])
    const created = await s.mirrors.create({ ...create, destination: { site: 'west', overwrite: true } })
    expect(created).toMatchObject({ id: 'm', state: 'replicating', epoch: 1, direction: 'forward' })
    expect((await west.volumeInfo('db')).sizeBytes).toBe(128 * BS)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'copy')
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
    await d.raw['east']!.createVolume({ name: 'other', sizeBytes: 16 * BS, blockSize: BS }, token)
    await expect(s.mirrors.create({ ...create, id: 'n', source: { site: 'east', volume: 'other' }, destination: { site: 'west', volume: 'db', overwrite: true } })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(s.mirrors.create({ ...create })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(s.mirrors.status('zz')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await s.module.close()
  })

  it('creates a destination of matching size, read-only; status reports lag, recovery point and RPO; stop and start resume without a full copy; events for every change', async () => {
    const { d, s, east, west } = await system()
    const created = await s.mirrors.create({ ...create, start: false })
    expect(created).toMatchObject({ state: 'stopped', destination: { site: 'west', volume: 'db', writable: false }, source: { writable: true } })
    await s.mirrors.start('m')
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'copy')
    await east.write('db', 5 * BS, block(5), token)
    const pending = await s.mirrors.status('m')
    expect(pending.lagBytes).toBe(BS)
    await d.clock.advance(30_000)
    const aged = await s.mirrors.status('m')
    expect(aged.recoveryPoint).toMatchObject({ deltaSet: 1, ageSeconds: 30, snapshot: 'drkit.m.m.ds-1' })
    expect(aged.lagSeconds).toBe(30)
    await s.mirrors.stop('m')
    await east.write('db', 6 * BS, block(6), token)
    expect((await s.mirrors.status('m')).state).toBe('stopped')
    await expect(s.mirrors.cutNow('m')).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await s.mirrors.start('m')
    const { deltaSet } = await s.mirrors.cutNow('m')
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === deltaSet, 'after restart')
    const status = await s.mirrors.status('m')
    expect(status).toMatchObject({ lagBytes: 0, lagSeconds: 0, lastSent: deltaSet, lastReceived: deltaSet })
    expect(s.names('mirror.deltaSetSent').map((e) => e.payload['full'])).toEqual([true, false])
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(east, 'db'))
    expect((await s.mirrors.list()).map((m) => m.id)).toEqual(['m'])
    expect(await s.mirrors.list({ site: 'north' })).toEqual([])
    const names = new Set(s.seen.map((e) => e.name))
    for (const name of ['mirror.created', 'mirror.started', 'mirror.stopped', 'mirror.deltaSetCut', 'mirror.deltaSetSent', 'mirror.deltaSetApplied']) expect(names).toContain(name)
    await s.module.close()
  })

  it('the relationship survives a coordinator restart and replication continues where it stopped', async () => {
    const { d, s, east, west } = await system()
    await s.mirrors.create(create)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'copy')
    await s.module.close()
    await east.write('db', 8 * BS, block(8), token)
    const again = await openSystem(d)
    const { deltaSet } = await again.mirrors.cutNow('m')
    await until(async () => (await again.mirrors.status('m')).lastPlayedBack === deltaSet, 'after restart')
    expect(again.names('mirror.deltaSetSent').map((e) => e.payload)).toEqual([expect.objectContaining({ full: false, bytes: BS })])
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(east, 'db'))
    await again.module.close()
  })

  it('delete removes the mirror\'s snapshots, staging and records on both sites but keeps the volumes; a new relationship needs overwrite to reuse the data', async () => {
    const { d, s, east, west } = await system()
    await s.mirrors.create(create)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'copy')
    await s.mirrors.delete('m')
    expect(s.names('mirror.deleted')).toHaveLength(1)
    await expect(s.mirrors.status('m')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(await east.listSnapshots('db')).toEqual([])
    expect(await west.listSnapshots('db')).toEqual([])
    expect((await west.listVolumes()).map((v) => v.name)).toEqual(['db'])
    expect(await east.listConfig('db')).toEqual([])
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(east, 'db'))
    await expect(s.mirrors.create(create)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await s.mirrors.create({ ...create, destination: { site: 'west', overwrite: true } })
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'copy again')
    void d
    await s.module.close()
  })

  it('the retention guard protects the mirror\'s snapshots from the snapshot scheduler and nothing else', async () => {
    const { s, east } = await system()
    await s.mirrors.create(create)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    const guard = s.module.retentionGuard
    expect(guard('east', 'db', 'drkit.m.m.ds-1')).toBe(true)
    expect(guard('west', 'db', 'drkit.m.m.rp-2')).toBe(true)
    expect(guard('east', 'db', 'hourly-1')).toBe(false)
    expect(guard('east', 'other', 'drkit.m.m.ds-1')).toBe(false)
    const clock = s.clock
    const stateStore = memoryStateStore()
    const snapshots = await openSnapshotModule({ stateStore, workflows: new WorkflowEngine({ stateStore, clock }), storage: () => s.storages['east']!, events: new EventBus(), clock, token: () => token })
    snapshots.scheduler.addGuard(guard)
    // Two schedules with the tightest grid: one names its snapshots inside the mirror's namespace, one outside it.
    const retention = { keepLast: 1, buckets: [] }
    await snapshots.facade.addSchedule({ id: 'inside', site: 'east', volume: 'db', spec: { every: '1h' }, retention, prefix: 'drkit.m.m.hourly' })
    await snapshots.facade.addSchedule({ id: 'outside', site: 'east', volume: 'db', spec: { every: '1h' }, retention, prefix: 'hourly' })
    for (let hour = 0; hour < 3; hour++) {
      await clock.advance(3_600_000)
      await snapshots.scheduler.runDue()
    }
    const names = (await east.listSnapshots('db')).map((x) => x.name)
    expect(names.filter((n) => n.startsWith('drkit.m.m.hourly')), 'guarded: none expired').toHaveLength(3)
    expect(names.filter((n) => n.startsWith('hourly')), 'unguarded: the grid kept only the newest').toHaveLength(1)
    expect(names).toContain('drkit.m.m.ds-1')
    await s.module.close()
  })
})
