import { afterEach, describe, expect, it } from 'vitest'
import { DrError, InjectedCrash } from '../../../src/kernel/index.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { Gate, content, eventsSeen, groupsWorld, liveView, makeVolume, readerView, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

const CONSTITUENTS = ['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2']

async function replicated(options: Parameters<typeof groupsWorld>[0] = {}): Promise<GroupsWorld> {
  const w = await groupsWorld(options)
  worlds.push(w)
  await makeVolume(w.volumes, 'east', 'db', 2)
  for (let i = 0; i < 8; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`) })
  await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
  await w.evMirrors.transfer({ id: 'db' })
  return w
}

const writable = async (w: GroupsWorld, site: 'east' | 'west') => Promise.all(CONSTITUENTS.map(async (v) => (await w.bases[site].volumeInfo(v)).writable))

describe('ev-mirror failover: the source', () => {
  it('a source that answers but cannot be made read-only stops the failover, changing nothing', async () => {
    const w = await replicated()
    w.faults.east.fail({ method: 'setWritable', when: (call) => call.args[0] === 'db.dc-2' && call.args[1] === false, error: new DrError('E_ADAPTER', 'controller busy') })
    const refused = await w.evMirrors.failover({ id: 'db' }).catch((e: unknown) => e)
    expect(refused).toMatchObject({ code: 'E_PRECONDITION', message: expect.stringContaining('force: true'), details: { id: 'db', site: 'east', cause: 'E_ADAPTER' } })
    expect(await w.evMirrors.get({ id: 'db' })).toMatchObject({ state: 'replicating', epoch: 1, operation: null })
    expect(await writable(w, 'east')).toEqual([true, true, true, true])
    expect(await writable(w, 'west')).toEqual([false, false, false, false])
    expect((await w.volumes.get({ site: 'east', volume: 'db' })).replicaOf).toBeUndefined()
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).replicaOf).toBe('db')
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/still-primary', data: content('x') })
  })

  it('forced, the failover goes on, reports the source left writable, and drkit still refuses writes to it', async () => {
    const w = await replicated()
    w.faults.east.fail({ method: 'setWritable', when: (call) => call.args[0] === 'db.dc-2' && call.args[1] === false, error: new DrError('E_ADAPTER', 'controller busy') })
    const result = await w.evMirrors.failover({ id: 'db', force: true })
    expect(result).toMatchObject({ epoch: 2, sourceReadOnly: false })
    const left = w.seen.find((e) => e.name === 'evMirror.sourceLeftWritable')
    expect(left).toMatchObject({ severity: 'critical', payload: { id: 'db', site: 'east', reason: 'readOnlyFailed' } })
    expect(w.seen.find((e) => e.name === 'evMirror.failedOver')?.payload).toMatchObject({ sourceReadOnly: false })
    await expect(w.volumes.putObject({ site: 'east', volume: 'db', path: '/x', data: content('x') })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'replica' } })
    await w.volumes.putObject({ site: 'west', volume: 'db', path: '/x', data: content('x') })
  })

  it('an unreachable source is reported, marked a replica (readers there see the presented snapshot), and the failover completes', async () => {
    const w = await replicated()
    w.fabric.partition('east', 'west')
    const result = await w.evMirrors.failover({ id: 'db' })
    w.fabric.heal('east', 'west')
    expect(result.sourceReadOnly).toBe(false)
    expect(w.seen.find((e) => e.name === 'evMirror.sourceLeftWritable')).toMatchObject({ severity: 'warning', payload: { reason: 'unreachable' } })
    expect((await w.volumes.get({ site: 'east', volume: 'db' })).replicaOf).toBe('db')
    await expect(w.volumes.deleteObject({ site: 'east', volume: 'db', path: '/o1' })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'replica' } })
    expect(await readerView(w.volumes, 'east', 'db')).toEqual(await liveView(w.volumes, 'west', 'db'))
  })

  it('a failover that fails after the source step gives the source back to its clients (never zero primaries)', async () => {
    const w = await replicated()
    w.faults.west.fail({ method: 'restoreSnapshot', error: new DrError('E_PRECONDITION', 'disk gone') })
    await expect(w.evMirrors.failover({ id: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await writable(w, 'east')).toEqual([true, true, true, true])
    expect(await writable(w, 'west')).toEqual([false, false, false, false])
    expect((await w.volumes.get({ site: 'east', volume: 'db' })).replicaOf).toBeUndefined()
    expect((await w.volumes.get({ site: 'east', volume: 'db' })).readRedirect).toBeNull()
    expect(await w.evMirrors.get({ id: 'db' })).toMatchObject({ state: 'replicating', operation: null })
  })
})

describe('ev-mirror failover preempts a transfer', () => {
  it('with a transfer in flight and the source gone, the failover aborts it and presents the previous complete snapshot', async () => {
    const gate = new Gate(memoryStorage())
    const w = await replicated({ bases: { east: memoryStorage(), west: gate.port } })
    const t1 = (await w.evMirrors.get({ id: 'db' })).lastTransferred?.name
    const before = await readerView(w.volumes, 'west', 'db')
    for (let i = 0; i < 8; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v2-${i}`) })
    gate.arm((method, args) => method === 'write' && args[0] === 'db.dc-2')
    const inFlight = w.evMirrors.transfer({ id: 'db' }).catch((e: unknown) => e)
    await gate.reached
    await eventsSeen(w, 'evMirror.memberTransferred', 3)
    w.fabric.partition('east', 'west')
    // The held write belongs to the transfer the failover aborts. It is let go only once the transfer has given up
    // (the receiver is still in it then): the failover must not present dc-2 until that write is over.
    void eventsSeen(w, 'evMirror.transferPreempted', 1).then(() => gate.open())
    const failover = w.evMirrors.failover({ id: 'db' })
    const result = await failover
    expect(await inFlight).toBeInstanceOf(DrError)
    expect(w.seen.find((e) => e.name === 'evMirror.transferPreempted')?.payload).toMatchObject({ id: 'db', by: 'failover' })
    expect(result.presented).toBe(t1)
    expect(await liveView(w.volumes, 'west', 'db')).toEqual(before)
    expect((await w.volumes.listSnapshots({ site: 'west', volume: 'db' })).map((s) => s.name)).toEqual([t1])
    expect(await w.evMirrors.get({ id: 'db' })).toMatchObject({ state: 'failedOver', operation: null })
  })

  it('a transfer a crash interrupted is aborted by the failover after the restart: its compensation runs, T-1 is presented', async () => {
    let crashInMembers = false
    const w = await replicated({ crashAt: (point) => crashInMembers && point.step === 'config' && point.phase === 'before' })
    const t1 = (await w.evMirrors.get({ id: 'db' })).lastTransferred?.name
    const before = await readerView(w.volumes, 'west', 'db')
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/late', data: content('late') })
    crashInMembers = true
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
    const restarted = await w.restart()
    worlds.push(restarted)
    expect((await restarted.evMirrors.get({ id: 'db' })).operation?.kind).toBe('transfer')
    restarted.fabric.partition('east', 'west')
    const result = await restarted.evMirrors.failover({ id: 'db' })
    restarted.fabric.heal('east', 'west')
    expect(result.presented).toBe(t1)
    expect(await liveView(restarted.volumes, 'west', 'db')).toEqual(before)
    // The member snapshots the aborted transfer had made at the destination were dropped by its compensation.
    for (const v of CONSTITUENTS) expect((await restarted.bases.west.listSnapshots(v)).map((s) => s.name)).toHaveLength(1)
  })
})
