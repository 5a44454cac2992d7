import { describe, expect, it } from 'vitest'
import { openVmSystem, standardPlan, plannedWorld } from '../../fixtures/vm-world.js'

async function world() {
  const { d, s } = await plannedWorld(['vm1'])
  const version = async () => (await d.stateStore.read('vm/catalog')).length
  const calls = () => d.sites.east.host.calls.length + d.sites.west.host.calls.length + d.sites.east.storage.calls.length + d.sites.west.storage.calls.length
  return { d, s, version, calls }
}

const badPlans: Array<[string, unknown]> = [
  ['not an object', 42],
  ['missing id', { ...standardPlan(), id: undefined }],
  ['bad id', { ...standardPlan(), id: '../p' }],
  ['empty protect', { ...standardPlan(), protect: {} }],
  ['zero backup interval', { ...standardPlan(), backupEvery: 0 }],
  ['bad replication interval', { ...standardPlan(), replicateEvery: 'soon' }],
  ['unknown placement rule', { ...standardPlan(), placement: { rule: 'random', hosts: [] } }],
  ['explicit host not a name', { ...standardPlan(), placement: { rule: 'explicit', hosts: { vm1: '' } } }],
  ['retain out of range', { ...standardPlan(), retain: 17 }],
  ['maxParallel zero', { ...standardPlan(), maxParallel: 0 }],
  ['same source and destination', { ...standardPlan(), destination: 'east' }],
  ['a tertiary site that is the destination', { ...standardPlan(), tertiary: [{ site: 'west', placement: { rule: 'capacity', hosts: ['hv-s1'] } }] }],
  ['a placement host that is no host name', { ...standardPlan(), placement: { rule: 'capacity', hosts: ['a/b/c'] } }],
]

describe('vm bad input', () => {
  it.each(badPlans)('savePlan rejects %s with E_INVALID_INPUT and changes nothing', async (_, options) => {
    const { s, version, calls } = await world()
    const [before, callsBefore] = [await version(), calls()]
    await expect(s.vms.savePlan(options as never)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect(await version()).toBe(before)
    expect(calls()).toBe(callsBefore)
    await s.close()
  })

  it('savePlan names the bad field in the message and details', async () => {
    const { s } = await world()
    const error = await s.vms.savePlan({ ...standardPlan(), backupEvery: 'often' } as never).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'E_INVALID_INPUT' })
    expect((error as Error).message).toContain('backupEvery')
    await s.close()
  })

  it('savePlan refuses an unknown site with E_NOT_FOUND and changes nothing', async () => {
    const { s, version } = await world()
    const before = await version()
    await expect(s.vms.savePlan(standardPlan({ destination: 'mars' }))).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(await version()).toBe(before)
    await s.close()
  })

  it('every other entry point rejects bad input with E_INVALID_INPUT and changes nothing', async () => {
    const { s, version, calls } = await world()
    const [before, callsBefore] = [await version(), calls()]
    const attempts: Array<() => Promise<unknown>> = [
      () => s.vms.backupNow({ plan: 'p1' } as never),
      () => s.vms.backupNow({ plan: 'p1', vm: '' }),
      () => s.vms.backupNow(null as never),
      () => s.vms.failover({ plan: 'p1', by: 'robot' } as never),
      () => s.vms.failover({} as never),
      () => s.vms.failover({ plan: 'p1', failedHosts: 'hv-p1' } as never),
      () => s.vms.testFailover({ plan: 'p1' } as never),
      () => s.vms.testFailover({ plan: 'p1', network: '' }),
      () => s.vms.failover({ plan: 'p1', site: 7 } as never),
      () => s.vms.failback({ plan: 'p1', acknowledgeDataLoss: 'yes' } as never),
      () => s.vms.restore({ vm: 'vm1', site: 'east', mode: 'original-host', backup: '' }),
      () => s.vms.derivePlan({ ...standardPlan(), fromHost: undefined } as never),
      () => s.vms.derivePlan({ id: 'p2', source: 'east', destination: 'west', fromHost: '', placement: { rule: 'capacity', hosts: ['hv-s1'] } }),
      () => s.vms.failback({ plan: 7 } as never),
      () => s.vms.restore({ vm: 'vm1', site: 'east', mode: 'sideways' } as never),
      () => s.vms.restore({ vm: 'vm1', site: 'east', mode: 'alternate-host' }),
      () => s.vms.restore({ vm: 'vm1', mode: 'original-host' } as never),
      () => s.vms.validatePlan('bad id'),
      () => s.vms.deletePlan(''),
      () => s.vms.replicateNow('*'),
      () => s.vms.listBackups({ vm: '', site: 'east' }),
    ]
    for (const attempt of attempts) await expect(attempt()).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect(await version()).toBe(before)
    expect(calls()).toBe(callsBefore)
    await s.close()
  })

  it('unknown plans are E_NOT_FOUND', async () => {
    const { s } = await world()
    await expect(s.vms.failover({ plan: 'nope' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(s.vms.failback({ plan: 'nope' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(s.vms.validatePlan('nope')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(s.vms.deletePlan('nope')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await s.close()
  })

  it('a damaged catalog journal is detected on open, not trusted', async () => {
    const { d, s, version } = await world()
    await s.close()
    await d.stateStore.append('vm/catalog', await version(), [{ type: 'vm.planSaved', data: { id: 'p2' } }])
    await expect(openVmSystem(d)).rejects.toMatchObject({ code: 'E_CORRUPT' })
  })

  it('plans survive a restart; deletePlan stops the schedule', async () => {
    const { d, s } = await world()
    await s.close()
    const again = await openVmSystem(d)
    expect((await again.vms.listPlans()).map((p) => p.id)).toEqual(['p1'])
    await again.vms.deletePlan('p1')
    await d.clock.advance(2 * 3600_000)
    expect(again.names('vm.backupRequested')).toEqual([])
    expect(await again.vms.listPlans()).toEqual([])
    await again.close()
  })
})
