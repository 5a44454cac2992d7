import { afterEach, describe, expect, it } from 'vitest'
import type { InjectedCall } from '../../../src/testkit/faults.js'
import { mutatingCalls } from '../../fixtures/groups-crash.js'
import { groupInvariants } from '../../fixtures/groups-invariants.js'
import { failoverWithEastCutOff, trackedServerWorld } from '../../fixtures/groups-server.js'
import type { GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

/** A world with vs1 loaded on east and the port call counts starting now. */
async function world(): Promise<GroupsWorld> {
  const { w } = await trackedServerWorld(worlds)
  resetCounts(w)
  return w
}

function resetCounts(w: GroupsWorld): void {
  for (const site of ['east', 'west'] as const) for (const injector of [w.portFaults.hosts[site], w.portFaults.networks[site]]) injector.reset()
}

/** Drops two interfaces and a name record, adds another, moves fs1's mount, drops fs2's and changes the configuration. */
const dropping = {
  name: 'vs1',
  interfaces: [{ name: 'cge0', address: '10.0.0.1' }],
  nameRecords: [{ name: 'vs1-b.example', address: '10.0.0.1' }],
  mounts: [{ path: '/vs1/data1', volume: 'fs1' }],
  config: { shares: [] },
}

const failures = (w: GroupsWorld): unknown[] => w.seen.filter((e) => e.name === 'serverGroup.operationFailed').map((e) => e.payload)
const onPath = (path: string) => (call: InjectedCall) => (call.args[0] as { path?: unknown }).path === path || call.args[0] === path

describe('server groups: adapter faults — an operation completes on retry or puts back what it changed, and says so', () => {
  it('load: a claim that fails once is retried and the load completes, each address claimed once', async () => {
    const w = await world()
    await w.serverGroups.unload({ name: 'vs1' })
    resetCounts(w)
    w.portFaults.networks.east.fail({ method: 'identity.claimAddress', nth: 1 })
    expect(await w.serverGroups.load({ name: 'vs1', site: 'east' })).toEqual({ warnings: [] })
    await groupInvariants(w, 'vs1', 'east')
    expect(w.portFaults.networks.east.calls.filter((c) => c.method === 'identity.claimAddress').map((c) => [c.args[0], c.outcome])).toEqual([
      ['10.0.0.1', 'failed'],
      ['10.0.0.1', 'ok'],
      ['10.0.0.2', 'ok'],
      ['10.0.0.3', 'ok'],
    ])
    expect(failures(w)).toEqual([])
  })

  it('load: a mount that keeps failing is compensated — the mount made is undone, nothing claimed — reported, and a later load completes', async () => {
    const w = await world()
    await w.serverGroups.unload({ name: 'vs1' })
    resetCounts(w)
    const remove = w.portFaults.hosts.east.fail({ method: 'mount', when: onPath('/vs1/fs2') })
    await expect(w.serverGroups.load({ name: 'vs1', site: 'east' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    await groupInvariants(w, 'vs1', null)
    expect(failures(w)).toEqual([expect.objectContaining({ name: 'vs1', operation: 'load', code: 'E_ADAPTER', compensated: ['survey'] })])
    // fs1 was mounted and dismounted again; fs2 was tried by every attempt of the step; no address was touched.
    expect(mutatingCalls(w)).toEqual({ 'east:mount': 5, 'east:dismount': 1 })
    remove()
    await w.serverGroups.load({ name: 'vs1', site: 'east' })
    await groupInvariants(w, 'vs1', 'east')
  })

  it('move: a claim at the target that keeps failing puts the group back where it was, loaded and mounted there only', async () => {
    const w = await world()
    const remove = w.portFaults.networks.west.fail({ method: 'identity.claimAddress' })
    await expect(w.serverGroups.move({ name: 'vs1', site: 'west' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    await groupInvariants(w, 'vs1', 'east')
    expect(failures(w)).toEqual([expect.objectContaining({ operation: 'move', compensated: ['survey'] })])
    expect(mutatingCalls(w)).toMatchObject({ 'east:dismount': 2, 'west:mount': 2, 'west:dismount': 2, 'east:mount': 2 })
    remove()
    await w.serverGroups.move({ name: 'vs1', site: 'west' })
    await groupInvariants(w, 'vs1', 'west')
  })

  it('move: a mount whose reply is lost is retried without mounting twice', async () => {
    const w = await world()
    w.portFaults.hosts.west.fail({ method: 'mount', nth: 1, afterEffect: true })
    await w.serverGroups.move({ name: 'vs1', site: 'west' })
    await groupInvariants(w, 'vs1', 'west')
    expect(w.portFaults.hosts.west.calls.filter((c) => c.method === 'mount').map((c) => [(c.args[0] as { path: string }).path, c.outcome])).toEqual([
      ['/vs1/fs1', 'failed'],
      ['/vs1/fs2', 'ok'],
    ])
  })

  it('unload: a dismount that keeps failing remounts what was dismounted; the group stays loaded and serving', async () => {
    const w = await world()
    w.portFaults.hosts.east.fail({ method: 'dismount', when: onPath('/vs1/fs2') })
    await expect(w.serverGroups.unload({ name: 'vs1' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    await groupInvariants(w, 'vs1', 'east')
    expect(failures(w)).toEqual([expect.objectContaining({ operation: 'unload', compensated: ['survey'] })])
    expect(mutatingCalls(w)).toEqual({ 'east:dismount': 5, 'east:mount': 1 })
  })

  it('configuration change: a name record that cannot be set undoes the whole change — definition, reservation, mounts, addresses and records', async () => {
    const w = await world()
    const before = await w.serverGroups.get({ name: 'vs1' })
    w.portFaults.networks.east.fail({ method: 'identity.setNameRecord', when: (call) => call.args[0] === 'vs1-b.example' })
    await expect(w.serverGroups.changeConfiguration(dropping)).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(await w.serverGroups.get({ name: 'vs1' })).toEqual(before)
    await groupInvariants(w, 'vs1', 'east')
    expect(await w.fabric.identity.getNameRecord('vs1-b.example')).toBeUndefined()
    expect(failures(w)).toEqual([expect.objectContaining({ operation: 'change', code: 'E_ADAPTER', compensated: ['survey', 'reserve', 'change'] })])
  })

  it('configuration change: an undo the adapter refuses too leaves the change recorded and resumable; once the adapter is back, recover() finishes the undo and reports it', async () => {
    const w = await world()
    const before = await w.serverGroups.get({ name: 'vs1' })
    const remove = w.portFaults.networks.east.fail({ method: 'identity.setNameRecord' })
    await expect(w.serverGroups.changeConfiguration(dropping)).rejects.toMatchObject({ code: 'E_ADAPTER' })
    // The change dropped vs1.example before failing on vs1-b.example, and putting vs1.example back fails as well.
    expect(await w.fabric.identity.getNameRecord('vs1.example')).toBeUndefined()
    expect((await w.serverGroups.get({ name: 'vs1' })).operation).toMatchObject({ kind: 'change' })
    await expect(w.serverGroups.unload({ name: 'vs1' })).rejects.toMatchObject({ code: 'E_CONFLICT', details: { running: 'change' } })
    expect(failures(w)).toEqual([])
    remove()
    await w.serverGroups.recover()
    expect(await w.serverGroups.get({ name: 'vs1' })).toEqual(before)
    await groupInvariants(w, 'vs1', 'east')
    expect(failures(w)).toEqual([expect.objectContaining({ operation: 'change', compensated: ['survey', 'reserve', 'change'] })])
  })

  it('resync: a deferred unload that cannot finish stops the resync before any member is touched; resyncing again completes it', async () => {
    const w = await world()
    await failoverWithEastCutOff(w)
    const remove = w.portFaults.hosts.east.fail({ method: 'dismount' })
    await expect(w.serverGroups.resync({ name: 'vs1' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(await w.serverGroups.get({ name: 'vs1' })).toMatchObject({ pendingUnload: 'east', operation: null })
    for (const id of ['fs1', 'fs2']) expect(await w.evMirrors.get({ id })).toMatchObject({ state: 'failedOver' })
    expect(failures(w)).toEqual([expect.objectContaining({ operation: 'resync', compensated: [] })])
    remove()
    await w.serverGroups.resync({ name: 'vs1' })
    await groupInvariants(w, 'vs1', 'west')
    expect((await w.serverGroups.get({ name: 'vs1' })).pendingUnload).toBeUndefined()
  })
})
