import { describe, expect, it } from 'vitest'
import { crashEverywhere, type ResumePath } from '../../fixtures/groups-crash.js'
import { groupInvariants } from '../../fixtures/groups-invariants.js'
import { failoverWithEastCutOff } from '../../fixtures/groups-server.js'

const paths: readonly ResumePath[] = ['reissue', 'recover']

describe.each(paths)('server groups: load, unload and move crash at every step and finish by %s', (path) => {
  it('load: after the resume the group is loaded only on east, its identity held there, each mount and claim made once', async () => {
    const points = await crashEverywhere(path, {
      setup: (w) => w.serverGroups.unload({ name: 'vs1' }),
      operation: (w) => w.serverGroups.load({ name: 'vs1', site: 'east' }),
      check: async (w) => {
        await groupInvariants(w, 'vs1', 'east')
        expect(w.seen.filter((e) => e.name === 'serverGroup.loaded').map((e) => e.payload)).toContainEqual({ name: 'vs1', site: 'east', warnings: [] })
      },
      effects: { 'east:mount': 2, 'east:identity.claimAddress': 3, 'east:identity.setNameRecord': 1 },
    })
    // survey, dismount, release, mount, claim, names, record: before and after each.
    expect(points).toBeGreaterThanOrEqual(14)
  }, 120_000)

  it('unload: after the resume the group is loaded nowhere, nothing of it mounted or held, each dismount and release made once', async () => {
    const points = await crashEverywhere(path, {
      operation: (w) => w.serverGroups.unload({ name: 'vs1' }),
      check: async (w) => {
        await groupInvariants(w, 'vs1', null)
        expect(w.seen.map((e) => e.name)).toContain('serverGroup.unloaded')
      },
      effects: { 'east:dismount': 2, 'east:identity.releaseAddress': 3, 'east:identity.deleteNameRecord': 1 },
    })
    // locate, survey, dismount, release, mount, claim, names, record: before and after each.
    expect(points).toBeGreaterThanOrEqual(16)
  }, 120_000)

  it('move: after the resume the group is loaded only on west — never mounted at both sites — and each side effect happened once', async () => {
    const points = await crashEverywhere(path, {
      operation: (w) => w.serverGroups.move({ name: 'vs1', site: 'west' }),
      check: async (w) => {
        await groupInvariants(w, 'vs1', 'west')
        const placed = w.seen.filter((e) => e.name === 'serverGroup.unloaded' || e.name === 'serverGroup.loaded').map((e) => [e.name, (e.payload as { site: string }).site])
        expect(placed.slice(-2)).toEqual([
          ['serverGroup.unloaded', 'east'],
          ['serverGroup.loaded', 'west'],
        ])
      },
      // The name record already points at 10.0.0.1, which moves with its claim: it is not rewritten.
      effects: { 'east:dismount': 2, 'west:mount': 2, 'west:identity.claimAddress': 3 },
    })
    expect(points).toBeGreaterThanOrEqual(14)
  }, 120_000)

  it('finishing a deferred unload: after the resume nothing of the group is left at the old site, its identity stays at the new one', async () => {
    const points = await crashEverywhere(path, {
      setup: failoverWithEastCutOff,
      operation: (w) => w.serverGroups.unload({ name: 'vs1', site: 'east' }),
      check: async (w) => {
        await groupInvariants(w, 'vs1', 'west', 'unsettled')
        expect((await w.serverGroups.get({ name: 'vs1' })).pendingUnload).toBeUndefined()
      },
      // The addresses moved to west with the failover: east holds none, so none is released.
      effects: { 'east:dismount': 2 },
    })
    expect(points).toBeGreaterThanOrEqual(16)
  }, 120_000)
})
