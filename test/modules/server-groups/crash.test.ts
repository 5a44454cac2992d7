import { describe, expect, it } from 'vitest'
import { crashEverywhere, type ResumePath } from '../../fixtures/groups-crash.js'
import { groupInvariants } from '../../fixtures/groups-invariants.js'

const paths: readonly ResumePath[] = ['reissue', 'recover']

describe('server groups: crash at every step, resume, invariants hold', () => {
  it.each(paths)('group failover, finished by %s: every member is failed over, the group is loaded only at the DR site, its identity there, each side effect once', async (path) => {
    const points = await crashEverywhere(path, {
      operation: (w) => w.serverGroups.failover({ name: 'vs1' }),
      check: async (w) => {
        const group = await w.serverGroups.get({ name: 'vs1' })
        expect(group).toMatchObject({ active: 'west', loadedOn: 'west', operation: null, reservation: null })
        expect(group.partialFailover).toBeUndefined()
        expect(group.pendingUnload).toBeUndefined()
        for (const id of ['fs1', 'fs2']) expect(await w.evMirrors.get({ id })).toMatchObject({ state: 'failedOver', epoch: 2 })
        await groupInvariants(w, 'vs1', 'west')
      },
      // The addresses move to west with their claims, so east has none left to release; the name record already points at 10.0.0.1.
      effects: { 'west:mount': 2, 'west:identity.claimAddress': 3, 'east:dismount': 2 },
    })
    // 5 group steps and, inside `members`, the 4 steps of each of the 2 member failovers: before and after each.
    expect(points).toBeGreaterThanOrEqual(26)
  }, 120_000)

  it('DR series snapshot: after recovery the series holds it on every member and no actor stays frozen', async () => {
    const points = await crashEverywhere('recover', {
      operation: async (w) => {
        w.hosts.east.addActor({ id: 'app', kind: 'process', volumes: ['fs1'] })
        return w.serverGroups.snapshot({ name: 'vs1' })
      },
      check: async (w) => {
        const group = await w.serverGroups.get({ name: 'vs1' })
        expect(group.series.taken.map((s) => s.name)).toEqual(['vs1.dr.1'])
        for (const fs of ['fs1', 'fs2']) expect((await w.volumes.listSnapshots({ site: 'west', volume: fs })).map((s) => s.name)).toContain('vs1.dr.1')
        await groupInvariants(w, 'vs1', 'east')
      },
    })
    // 5 group steps, and the consistency-group snapshots and the transfers of both members inside them.
    expect(points).toBeGreaterThanOrEqual(50)
  }, 120_000)
})
