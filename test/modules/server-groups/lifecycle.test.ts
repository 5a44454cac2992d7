import { afterEach, describe, expect, it } from 'vitest'
import { type GroupsWorld } from '../../fixtures/groups-world.js'
import { trackedServerWorld } from '../../fixtures/groups-server.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

const world = (westInterfaces?: readonly string[]) => trackedServerWorld(worlds, westInterfaces)

describe('server groups: lifecycle', () => {
  it('loading mounts the volumes, claims the addresses and points the name records at them', async () => {
    const { w, group } = await world()
    expect(group.loadedOn).toBe('east')
    expect((await w.hosts.east.listMounts()).map((m) => [m.path, m.volume])).toEqual([
      ['/vs1/fs1', 'fs1'],
      ['/vs1/fs2', 'fs2'],
    ])
    expect(await w.networks.east.identity.addressOwner('10.0.0.2')).toBe('east')
    expect(await w.networks.east.identity.getNameRecord('vs1.example')).toBe('10.0.0.1')
  })

  it('behaviour 38: a group loaded on one site cannot be loaded on another', async () => {
    const { w } = await world()
    await expect(w.serverGroups.load({ name: 'vs1', site: 'west' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect((await w.serverGroups.get({ name: 'vs1' })).loadedOn).toBe('east')
    expect(await w.hosts.west.listMounts()).toEqual([])
  })

  it('behaviour 39: loading with an interface another group uses succeeds with a warning naming it', async () => {
    const { w } = await world()
    await w.serverGroups.define({ name: 'vs2', sites: ['east', 'west'], members: [], interfaces: [{ name: 'cge2', address: '10.0.9.9' }] })
    const loaded = await w.serverGroups.load({ name: 'vs2', site: 'east' })
    expect(loaded.warnings.join(' ')).toContain('cge2')
    expect(w.seen.find((e) => e.name === 'serverGroup.loadWarned')?.payload).toMatchObject({ name: 'vs2', interface: 'cge2' })
    expect((await w.serverGroups.get({ name: 'vs2' })).loadedOn).toBe('east')
  })

  it('behaviour 40: a move to a site where an interface is not unused fails and the group stays where it was', async () => {
    const { w } = await world(['cge0', 'cge1'])
    await expect(w.serverGroups.move({ name: 'vs1', site: 'west' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect((await w.serverGroups.get({ name: 'vs1' })).loadedOn).toBe('east')
    expect((await w.hosts.east.listMounts()).length).toBe(2)
    expect(await w.networks.east.identity.addressOwner('10.0.0.1')).toBe('east')
  })

  it('a move to a site that has every interface unloads here and loads there', async () => {
    const { w } = await world()
    await w.serverGroups.move({ name: 'vs1', site: 'west' })
    expect((await w.serverGroups.get({ name: 'vs1' })).loadedOn).toBe('west')
    expect(await w.hosts.east.listMounts()).toEqual([])
    expect(await w.networks.east.identity.addressOwner('10.0.0.1')).toBe('west')
  })

  it('behaviour 41: deleting a group with a mounted data volume is refused', async () => {
    const { w } = await world()
    await expect(w.serverGroups.delete({ name: 'vs1' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await w.serverGroups.get({ name: 'vs1' })).toBeDefined()
    await w.serverGroups.unload({ name: 'vs1' })
    expect(await w.networks.east.identity.getNameRecord('vs1.example')).toBeUndefined()
    await w.serverGroups.delete({ name: 'vs1' })
    expect(await w.serverGroups.list()).toEqual([])
  })

  it('behaviour 54: a DR snapshot is taken before the deletion of a group', async () => {
    const { w } = await world()
    await w.serverGroups.unload({ name: 'vs1' })
    await w.serverGroups.delete({ name: 'vs1' })
    const taken = w.seen.findIndex((e) => e.name === 'serverGroup.seriesSnapshotTaken' && (e.payload as { reason: string }).reason === 'beforeDelete')
    expect(taken).toBeGreaterThanOrEqual(0)
    expect(taken).toBeLessThan(w.seen.findIndex((e) => e.name === 'serverGroup.deleted'))
    for (const fs of ['fs1', 'fs2']) expect((await w.volumes.listSnapshots({ site: 'west', volume: fs })).map((s) => s.name)).toContain('vs1.dr.1')
  })

  it('behaviour 45: a configuration change adding an interface automatically checks the other site for it', async () => {
    const { w } = await world(['cge0', 'cge1', 'cge2'])
    await expect(
      w.serverGroups.changeConfiguration({ name: 'vs1', interfaces: [{ name: 'cge0', address: '10.0.0.1' }, { name: 'cge7', address: '10.0.0.7' }] }),
    ).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    const check = w.seen.find((e) => e.name === 'serverGroup.checked' && (e.payload as { reason: string }).reason === 'configChange')
    expect(check?.payload).toMatchObject({ site: 'west', discrepancies: [expect.objectContaining({ kind: 'insufficientInterfaces', item: 'cge7' })] })
    expect((await w.serverGroups.get({ name: 'vs1' })).interfaces).toHaveLength(3)
    const forced = await w.serverGroups.changeConfiguration({ name: 'vs1', interfaces: [{ name: 'cge0', address: '10.0.0.1' }, { name: 'cge7', address: '10.0.0.7' }], onDiscrepancy: 'force' })
    expect(forced.discrepancies).toHaveLength(1)
    const group = await w.serverGroups.get({ name: 'vs1' })
    expect(group.interfaces.map((i) => i.name)).toEqual(['cge0', 'cge7'])
    expect(group.reservation).toMatchObject({ site: 'west', interfaces: ['cge0'], forced: true, reason: 'configChange' })
  })

  it('a configuration change applied to a loaded group releases, dismounts and deletes what it drops, and claims, mounts and points what it adds', async () => {
    const { w } = await world()
    await w.serverGroups.changeConfiguration({
      name: 'vs1',
      interfaces: [{ name: 'cge0', address: '10.0.0.1' }, { name: 'cge1', address: '10.0.0.9' }],
      nameRecords: [{ name: 'vs1-new.example', address: '10.0.0.9' }],
      mounts: [{ path: '/vs1/fs1', volume: 'fs1' }],
    })
    expect((await w.hosts.east.listMounts()).map((m) => m.path)).toEqual(['/vs1/fs1'])
    expect([await w.fabric.identity.addressOwner('10.0.0.2'), await w.fabric.identity.addressOwner('10.0.0.3'), await w.fabric.identity.addressOwner('10.0.0.9')]).toEqual([undefined, undefined, 'east'])
    expect(await w.fabric.identity.getNameRecord('vs1.example')).toBeUndefined()
    expect(await w.fabric.identity.getNameRecord('vs1-new.example')).toBe('10.0.0.9')
    expect(w.seen.filter((e) => e.name === 'serverGroup.reserved').at(-1)?.payload).toEqual({ name: 'vs1', site: 'west', interfaces: ['cge0', 'cge1'], mounts: ['/vs1/fs1'], nameRecords: ['vs1-new.example'], forced: false })
  })

  it('behaviour 46: replicate info shows an out-of-sync member, and reinitialising just that member leaves the others alone', async () => {
    const { w } = await world()
    w.faults.west.fail({ method: 'createSnapshot', when: (call) => String(call.args[0]).startsWith('fs2.'), times: 50 })
    await expect(w.serverGroups.snapshot({ name: 'vs1' })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    const info = await w.serverGroups.info({ name: 'vs1' })
    expect(info.find((m) => m.id === 'fs2')).toMatchObject({ state: 'replicated', repState: 'out-of-sync' })
    expect(info.find((m) => m.id === 'fs1')).toMatchObject({ repState: 'alive' })
    w.faults.west.reset()
    const fs1Before = (await w.evMirrors.get({ id: 'fs1' })).lastTransferred
    const line = await w.serverGroups.reinitialize({ name: 'vs1', member: 'fs2' })
    expect(line).toMatchObject({ id: 'fs2', repState: 'alive' })
    expect((await w.evMirrors.get({ id: 'fs1' })).lastTransferred).toEqual(fs1Before)
  })
})
