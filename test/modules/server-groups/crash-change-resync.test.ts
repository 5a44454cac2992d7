import { describe, expect, it } from 'vitest'
import { crashEverywhere, type ResumePath } from '../../fixtures/groups-crash.js'
import { groupInvariants } from '../../fixtures/groups-invariants.js'
import { failoverWithEastCutOff } from '../../fixtures/groups-server.js'

const paths: readonly ResumePath[] = ['reissue', 'recover']

/** Drops interface cge2 (10.0.0.3), adds a name record, moves fs2 to another mount path and changes the configuration. */
const change = {
  name: 'vs1',
  interfaces: [
    { name: 'cge0', address: '10.0.0.1' },
    { name: 'cge1', address: '10.0.0.2' },
  ],
  nameRecords: [
    { name: 'vs1.example', address: '10.0.0.1' },
    { name: 'vs1-b.example', address: '10.0.0.2' },
  ],
  mounts: [
    { path: '/vs1/fs1', volume: 'fs1' },
    { path: '/vs1/data2', volume: 'fs2' },
  ],
  config: { shares: ['home', 'scratch'] },
}

describe.each(paths)('server groups: configuration change and resync crash at every step and finish by %s', (path) => {
  it('configuration change of a loaded group: the new definition, reservation and identity, and nothing of what it dropped, each side effect once', async () => {
    const points = await crashEverywhere(path, {
      operation: (w) => w.serverGroups.changeConfiguration(change),
      check: async (w) => {
        const group = await w.serverGroups.get({ name: 'vs1' })
        expect(group).toMatchObject({ interfaces: change.interfaces, nameRecords: change.nameRecords, mounts: change.mounts, config: change.config })
        expect(group.reservation).toMatchObject({ site: 'west', interfaces: ['cge0', 'cge1'], mounts: ['/vs1/fs1', '/vs1/data2'], forced: false, reason: 'configChange' })
        await groupInvariants(w, 'vs1', 'east')
        expect(await w.fabric.identity.addressOwner('10.0.0.3')).toBeUndefined()
        expect(w.seen.map((e) => e.name)).toContain('serverGroup.changed')
      },
      effects: { 'east:dismount': 1, 'east:mount': 1, 'east:identity.releaseAddress': 1, 'east:identity.setNameRecord': 1 },
    })
    // survey, reserve, change, dismount, release, mount, claim, names, record: before and after each.
    expect(points).toBeGreaterThanOrEqual(18)
  }, 120_000)

  it('resync after a failover that could not reach the old site: the deferred unload finished, every member reversed, each dismount once', async () => {
    const points = await crashEverywhere(path, {
      setup: failoverWithEastCutOff,
      operation: (w) => w.serverGroups.resync({ name: 'vs1' }),
      check: async (w) => {
        const group = await w.serverGroups.get({ name: 'vs1' })
        expect(group.pendingUnload).toBeUndefined()
        for (const id of ['fs1', 'fs2']) expect(await w.evMirrors.get({ id })).toMatchObject({ state: 'replicating', direction: 'reversed', source: { site: 'west' } })
        await groupInvariants(w, 'vs1', 'west')
        expect(w.seen.find((e) => e.name === 'serverGroup.resynced')?.payload).toEqual({ name: 'vs1', site: 'west', members: ['fs1', 'fs2'] })
      },
      effects: { 'east:dismount': 2 },
    })
    // check, the 8 steps of the deferred unload, members and record — and inside members every step of both member resyncs.
    expect(points).toBeGreaterThanOrEqual(60)
  }, 300_000)
})
