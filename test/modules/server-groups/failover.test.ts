import { afterEach, describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { liveView, readerView, type GroupsWorld } from '../../fixtures/groups-world.js'
import { trackedServerWorld } from '../../fixtures/groups-server.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

async function world(westInterfaces?: readonly string[]): Promise<GroupsWorld> {
  return (await trackedServerWorld(worlds, westInterfaces)).w
}

const index = (w: GroupsWorld, name: string) => w.seen.findIndex((e) => e.name === name)

describe('server groups: failover', () => {
  it('behaviour 42: with every interface and mount at the DR site, all are reserved without a prompt before the failover starts', async () => {
    const w = await world()
    w.seen.length = 0
    const result = await w.serverGroups.failover({ name: 'vs1' })
    expect(result).toMatchObject({ site: 'west', forced: false, members: ['fs1', 'fs2'] })
    const reserved = w.seen.find((e) => e.name === 'serverGroup.reserved')
    expect(reserved?.payload).toMatchObject({ site: 'west', interfaces: ['cge0', 'cge1', 'cge2'], mounts: ['/vs1/fs1', '/vs1/fs2'], forced: false })
    expect(index(w, 'serverGroup.reserved')).toBeLessThan(index(w, 'evMirror.failedOver'))
  })

  it('members fail over in parallel, the group loads at the DR site only once every member is writable, and is unloaded at the source', async () => {
    const w = await world()
    w.seen.length = 0
    w.faults.west.setLatency((call) => (call.method === 'restoreSnapshot' ? 5 : 0))
    await w.serverGroups.failover({ name: 'vs1' })
    const restores = w.faults.west.calls.filter((c) => c.method === 'restoreSnapshot').map((c) => String(c.args[0]))
    const firstFs2 = restores.findIndex((v) => v.startsWith('fs2.'))
    const lastFs1 = restores.map((v) => v.startsWith('fs1.')).lastIndexOf(true)
    expect(firstFs2).toBeGreaterThanOrEqual(0)
    expect(firstFs2).toBeLessThan(lastFs1)
    const loaded = index(w, 'serverGroup.loaded')
    const members = w.seen.map((e, i) => (e.name === 'evMirror.failedOver' ? i : -1)).filter((i) => i >= 0)
    expect(members).toHaveLength(2)
    expect(Math.max(...members)).toBeLessThan(loaded)
    expect((await w.hosts.west.listMounts()).map((m) => m.volume)).toEqual(['fs1', 'fs2'])
    expect(await w.hosts.east.listMounts()).toEqual([])
    expect(await w.networks.west.identity.addressOwner('10.0.0.1')).toBe('west')
    expect(await w.networks.west.identity.getNameRecord('vs1.example')).toBe('10.0.0.1')
    const group = await w.serverGroups.get({ name: 'vs1' })
    expect(group).toMatchObject({ active: 'west', loadedOn: 'west', reservation: null, forced: false })
    expect(await liveView(w.volumes, 'west', 'fs1')).toEqual(await readerView(w.volumes, 'east', 'fs1'))
  })

  it('a member that cannot fail over keeps the group from loading at the DR site; the partial failover is recorded and reported, and a later failover finishes it', async () => {
    const w = await world()
    const remove = w.faults.west.fail({ method: 'restoreSnapshot', when: (call) => String(call.args[0]).startsWith('fs2.'), error: new DrError('E_PRECONDITION', 'disk gone') })
    const refused = await w.serverGroups.failover({ name: 'vs1' }).catch((e: unknown) => e)
    expect(refused).toMatchObject({
      code: 'E_PRECONDITION',
      message: expect.stringContaining('stopped part-way'),
      details: { failedOver: ['fs1'], failed: [expect.objectContaining({ member: 'fs2', code: 'E_PRECONDITION' })] },
    })
    expect(await w.hosts.west.listMounts()).toEqual([])
    const group = await w.serverGroups.get({ name: 'vs1' })
    expect(group).toMatchObject({ active: 'east', loadedOn: 'east', reservation: null, operation: null, partialFailover: { target: 'west', failedOver: ['fs1'], failed: [expect.objectContaining({ member: 'fs2' })] } })
    expect(w.seen.find((e) => e.name === 'serverGroup.partiallyFailedOver')).toMatchObject({ severity: 'critical', payload: { failedOver: ['fs1'] } })
    expect(await w.networks.east.identity.addressOwner('10.0.0.1')).toBe('east')
    // fs1 did fail over: west is its primary now, east its read-only replica; fs2 is still east's.
    expect(await w.evMirrors.get({ id: 'fs1' })).toMatchObject({ state: 'failedOver', epoch: 2 })
    expect((await w.volumes.get({ site: 'east', volume: 'fs1' })).replicaOf).toBe('fs1')
    expect(await w.evMirrors.get({ id: 'fs2' })).toMatchObject({ state: 'replicating', epoch: 1, operation: null })
    expect((await w.volumes.get({ site: 'east', volume: 'fs2' })).replicaOf).toBeUndefined()
    remove()
    const finished = await w.serverGroups.failover({ name: 'vs1' })
    expect(finished).toMatchObject({ site: 'west', members: ['fs1', 'fs2'] })
    const after = await w.serverGroups.get({ name: 'vs1' })
    expect(after).toMatchObject({ active: 'west', loadedOn: 'west' })
    expect(after.partialFailover).toBeUndefined()
    expect(await w.evMirrors.get({ id: 'fs1' })).toMatchObject({ epoch: 2 })
  })

  it('an unreachable source is not unloaded; the failover still completes, and the pending unload is finished later', async () => {
    const w = await world()
    w.fabric.partition('east', 'west')
    await w.serverGroups.failover({ name: 'vs1' })
    expect(w.seen.find((e) => e.name === 'serverGroup.unloadDeferred')?.payload).toMatchObject({ site: 'east' })
    expect(await w.serverGroups.get({ name: 'vs1' })).toMatchObject({ loadedOn: 'west', pendingUnload: 'east' })
    expect((await w.hosts.east.listMounts()).length).toBe(2)
    w.fabric.heal('east', 'west')
    await w.serverGroups.unload({ name: 'vs1', site: 'east' })
    expect(await w.hosts.east.listMounts()).toEqual([])
    const group = await w.serverGroups.get({ name: 'vs1' })
    expect(group).toMatchObject({ loadedOn: 'west' })
    expect(group.pendingUnload).toBeUndefined()
    expect((await w.hosts.west.listMounts()).length).toBe(2)
    expect(await w.networks.west.identity.getNameRecord('vs1.example')).toBe('10.0.0.1')
  })

  it('a resync finishes an unload a failover had to defer', async () => {
    const w = await world()
    w.fabric.partition('east', 'west')
    await w.serverGroups.failover({ name: 'vs1' })
    w.fabric.heal('east', 'west')
    await w.serverGroups.resync({ name: 'vs1' })
    expect(await w.hosts.east.listMounts()).toEqual([])
    expect((await w.serverGroups.get({ name: 'vs1' })).pendingUnload).toBeUndefined()
    expect(w.seen.filter((e) => e.name === 'serverGroup.unloaded').map((e) => (e.payload as { site: string }).site)).toEqual(['east'])
  })

  it('behaviour 43: one of three interfaces missing — terminate changes and reserves nothing; force reserves the two and proceeds, forced', async () => {
    const w = await world(['cge0', 'cge1'])
    const refused = await w.serverGroups.failover({ name: 'vs1' }).catch((e: unknown) => e)
    expect(refused).toMatchObject({ code: 'E_PRECONDITION', details: { discrepancies: [expect.objectContaining({ kind: 'insufficientInterfaces', item: 'cge2' })] } })
    const untouched = await w.serverGroups.get({ name: 'vs1' })
    expect(untouched).toMatchObject({ active: 'east', reservation: null })
    expect((await w.evMirrors.get({ id: 'fs1' })).state).toBe('replicating')
    expect(await w.serverGroups.failover({ name: 'vs1', onDiscrepancy: 'terminate' }).catch((e: unknown) => e)).toMatchObject({ code: 'E_PRECONDITION' })
    const forced = await w.serverGroups.failover({ name: 'vs1', onDiscrepancy: 'force' })
    expect(forced.forced).toBe(true)
    expect(w.seen.find((e) => e.name === 'serverGroup.reserved')?.payload).toMatchObject({ interfaces: ['cge0', 'cge1'], forced: true })
    expect((await w.serverGroups.get({ name: 'vs1' })).forced).toBe(true)
    expect(await w.networks.west.identity.addressOwner('10.0.0.3')).not.toBe('west')
    expect(await w.networks.west.identity.addressOwner('10.0.0.1')).toBe('west')
  })

  it('behaviour 44: a data volume already mounted by another group at the DR site is a blocking discrepancy, even forced', async () => {
    const w = await world()
    await w.serverGroups.define({ name: 'other', sites: ['west', 'east'], members: [], mounts: [{ path: '/other/fs1', volume: 'fs1' }] })
    await w.serverGroups.load({ name: 'other', site: 'west' })
    const found = await w.serverGroups.prevalidate({ name: 'vs1' })
    expect(found.discrepancies).toContainEqual(expect.objectContaining({ kind: 'fsMountedInOtherGroup', item: '/vs1/fs1', blocksLoad: true }))
    await expect(w.serverGroups.failover({ name: 'vs1', onDiscrepancy: 'force' })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { blocking: true } })
    expect((await w.serverGroups.get({ name: 'vs1' })).active).toBe('east')
  })

  it('after a failover, resync and a second failover the group is back where it started, with its identity', async () => {
    const w = await world()
    await w.serverGroups.failover({ name: 'vs1' })
    await w.serverGroups.resync({ name: 'vs1' })
    const back = await w.serverGroups.failover({ name: 'vs1' })
    expect(back.site).toBe('east')
    expect(await w.networks.east.identity.addressOwner('10.0.0.2')).toBe('east')
    expect((await w.hosts.east.listMounts()).length).toBe(2)
    expect(await w.hosts.west.listMounts()).toEqual([])
  })
})
