import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import type { GroupsWorld } from '../../fixtures/groups-world.js'
import { serverWorld } from '../../fixtures/groups-server.js'
import { relationshipInvariants } from '../../fixtures/groups-invariants.js'

async function recover(w: GroupsWorld): Promise<void> {
  for (const id of await w.workflows.listRunning()) if (!id.startsWith('evMirror.') && !id.startsWith('serverGroup.')) await w.workflows.resume(id).catch(() => undefined)
  await w.evMirrors.recover()
  await w.serverGroups.recover()
}

async function crashEverywhere(operation: (w: GroupsWorld) => Promise<unknown>, check: (w: GroupsWorld) => Promise<void>): Promise<number> {
  for (let k = 0; k < 300; k++) {
    let target = -1
    let seen = 0
    let fired: CrashPoint | null = null
    const { w } = await serverWorld({
      crashAt: (point) => {
        if (target < 0 || point.phase === 'compensate' || seen++ !== target) return false
        fired = point
        target = -1
        return true
      },
    })
    target = k
    const outcome = await operation(w).then(
      () => null,
      (error: unknown) => error,
    )
    if (fired === null) {
      expect(outcome).toBeNull()
      await check(w)
      await w.close()
      return k
    }
    expect(outcome, `crash ${k}`).toBeInstanceOf(InjectedCrash)
    const restarted = await w.restart()
    await recover(restarted)
    await check(restarted)
    await restarted.close()
    await w.close()
  }
  throw new Error('still crashing after 300 points')
}

describe('server groups: crash at every step, resume, invariants hold', () => {
  it('group failover: after recovery every member is failed over, the group is loaded only at the DR site, its identity there', async () => {
    const points = await crashEverywhere(
      (w) => w.serverGroups.failover({ name: 'vs1' }),
      async (w) => {
        const group = await w.serverGroups.get({ name: 'vs1' })
        expect(group).toMatchObject({ active: 'west', loadedOn: 'west', operation: null, reservation: null })
        expect(group.partialFailover).toBeUndefined()
        expect(group.pendingUnload).toBeUndefined()
        for (const id of ['fs1', 'fs2']) {
          expect(await w.evMirrors.get({ id })).toMatchObject({ state: 'failedOver', epoch: 2 })
          await relationshipInvariants(w, id, id)
        }
        expect((await w.hosts.west.listMounts()).length).toBe(2)
        expect(await w.hosts.east.listMounts()).toEqual([])
        for (const address of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) expect(await w.networks.west.identity.addressOwner(address)).toBe('west')
        expect(await w.networks.west.identity.getNameRecord('vs1.example')).toBe('10.0.0.1')
      },
    )
    // 5 group steps and, inside `members`, the 4 steps of each of the 2 member failovers: before and after each.
    expect(points).toBeGreaterThanOrEqual(26)
  }, 120_000)

  it('DR series snapshot: after recovery the series holds it on every member and no actor stays frozen', async () => {
    const points = await crashEverywhere(
      async (w) => {
        w.hosts.east.addActor({ id: 'app', kind: 'process', volumes: ['fs1'] })
        return w.serverGroups.snapshot({ name: 'vs1' })
      },
      async (w) => {
        const group = await w.serverGroups.get({ name: 'vs1' })
        expect(group.operation).toBeNull()
        expect(group.series.taken.map((s) => s.name)).toEqual(['vs1.dr.1'])
        for (const fs of ['fs1', 'fs2']) expect((await w.volumes.listSnapshots({ site: 'west', volume: fs })).map((s) => s.name)).toContain('vs1.dr.1')
        expect((await w.hosts.east.listActors('fs1')).every((a) => !a.frozen)).toBe(true)
        for (const id of ['fs1', 'fs2']) await relationshipInvariants(w, id, id)
      },
    )
    // 5 group steps, and the consistency-group snapshots and the transfers of both members inside them.
    expect(points).toBeGreaterThanOrEqual(50)
  }, 120_000)
})
