import { afterEach, describe, expect, it } from 'vitest'
import { MemoryHost } from '../../../src/adapters/memory/host.js'
import type { MountInfo } from '../../../src/ports/host.js'
import { token, type GroupsWorld } from '../../fixtures/groups-world.js'
import { serverWorld, trackedServerWorld } from '../../fixtures/groups-server.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

/** A host whose `listMounts` answers only once `parties` calls are waiting: both prevalidations finish before either group reserves. */
class BarrierHost extends MemoryHost {
  #waiting: Array<() => void> = []
  parties = 0

  override async listMounts(): Promise<readonly MountInfo[]> {
    if (this.parties > 0) {
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve)
        if (this.#waiting.length < this.parties) return
        this.parties = 0
        for (const release of this.#waiting.splice(0)) release()
      })
    }
    return super.listMounts()
  }
}

describe('server groups: prevalidation of network identity', () => {
  it('a name record that already points elsewhere is a discrepancy: terminate changes nothing, force leaves that record alone', async () => {
    const { w } = await trackedServerWorld(worlds)
    await w.fabric.identity.setNameRecord('vs1.example', '10.9.9.9', token)
    const found = await w.serverGroups.prevalidate({ name: 'vs1' })
    expect(found.discrepancies).toEqual([{ kind: 'nameRecordInUse', item: 'vs1.example', detail: 'points at 10.9.9.9, set outside drkit', blocksLoad: false }])
    expect(found.available.nameRecords).toEqual([])
    const refused = await w.serverGroups.failover({ name: 'vs1' }).catch((e: unknown) => e)
    expect(refused).toMatchObject({ code: 'E_PRECONDITION', details: { discrepancies: [expect.objectContaining({ kind: 'nameRecordInUse' })] } })
    expect(await w.serverGroups.get({ name: 'vs1' })).toMatchObject({ active: 'east', reservation: null })
    await w.serverGroups.failover({ name: 'vs1', onDiscrepancy: 'force' })
    expect(w.seen.find((e) => e.name === 'serverGroup.reserved')?.payload).toMatchObject({ nameRecords: [], forced: true })
    expect(await w.fabric.identity.getNameRecord('vs1.example')).toBe('10.9.9.9')
    expect(await w.fabric.identity.addressOwner('10.0.0.1')).toBe('west')
  })

  it('a name record another group set is named as that group\'s', async () => {
    const { w } = await trackedServerWorld(worlds)
    await w.serverGroups.define({ name: 'vs2', sites: ['east', 'west'], members: [], nameRecords: [{ name: 'vs1.example', address: '10.7.7.7' }] })
    await w.serverGroups.unload({ name: 'vs1' })
    await w.serverGroups.load({ name: 'vs2', site: 'east' })
    const found = await w.serverGroups.prevalidate({ name: 'vs1', site: 'east' })
    expect(found.discrepancies).toContainEqual(expect.objectContaining({ kind: 'nameRecordInUse', item: 'vs1.example', detail: 'points at 10.7.7.7, set by server group vs2' }))
  })

  it('an address a site holds outside drkit is a discrepancy, found through the NetworkPort\'s identity registry', async () => {
    const { w } = await trackedServerWorld(worlds)
    await w.networks.west.identity.claimAddress('10.0.0.2', 'west', token)
    const found = await w.serverGroups.prevalidate({ name: 'vs1' })
    expect(found.discrepancies).toEqual([{ kind: 'addressInUse', item: '10.0.0.2', detail: 'held by site west outside drkit', blocksLoad: false }])
    expect(found.available.interfaces).toEqual(['cge0', 'cge2'])
  })

  it('C7: two groups failing over at once cannot both reserve an interface — the reservation is decided on the journal as it is', async () => {
    const west = new BarrierHost()
    const { w } = await serverWorld({ hosts: { east: new MemoryHost(), west } })
    worlds.push(w)
    await w.serverGroups.define({ name: 'vs2', sites: ['east', 'west'], members: [], interfaces: [{ name: 'cge1', address: '10.0.2.2' }] })
    await w.serverGroups.load({ name: 'vs2', site: 'east' })
    west.parties = 2
    const outcomes = await Promise.allSettled([w.serverGroups.failover({ name: 'vs1' }), w.serverGroups.failover({ name: 'vs2' })])
    // Both prevalidated west as free; only one reservation was decided.
    const checks = w.seen.filter((e) => e.name === 'serverGroup.checked').map((e) => e.payload as { name: string; discrepancies: readonly unknown[] })
    expect(checks.map((c) => [c.name, c.discrepancies.length]).sort()).toEqual([['vs1', 0], ['vs2', 0]])
    const won = outcomes.findIndex((o) => o.status === 'fulfilled')
    const lost = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')
    expect(won).toBeGreaterThanOrEqual(0)
    expect(lost?.reason).toMatchObject({ code: 'E_CONFLICT', message: expect.stringContaining('interface cge1 at west was taken'), details: { item: 'interface cge1' } })
    const [winner, loser] = won === 0 ? ['vs1', 'vs2'] : ['vs2', 'vs1']
    expect(await w.serverGroups.get({ name: winner })).toMatchObject({ active: 'west', loadedOn: 'west' })
    expect(await w.serverGroups.get({ name: loser })).toMatchObject({ active: 'east', loadedOn: 'east', reservation: null, operation: null })
    expect(w.seen.filter((e) => e.name === 'serverGroup.reserved').map((e) => (e.payload as { name: string }).name)).toEqual([winner])
  })
})
