import { describe, expect, it } from 'vitest'
import { backupAndReplicate, loseEast, readSeed, writeBlock, token, plannedWorld } from '../../fixtures/vm-world.js'

describe('vm failback', () => {
  it('behaviour 35: failback reverses replication before restoring on the original host, overriding the new metadata host', async () => {
    const { d, s } = await plannedWorld(['vm1'], { placement: { rule: 'explicit', hosts: { vm1: 'hv-s1' } } })
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 1)
    await backupAndReplicate(s, ['vm1'])
    loseEast(d)
    expect((await s.vms.failover({ plan: 'p1' })).outcome).toBe('succeeded')
    await writeBlock(d.sites.west.rawStorage, 'vm1-disk0', 1, 77)
    d.sites.east.storage.restart()
    d.sites.east.host.restart()
    d.fabric.healAll()
    await d.sites.east.rawHost.powerOff('vm1', token)
    const log: string[] = []
    s.events.onAny((e) => {
      if (e.name === 'mirror.resynced' || e.name === 'mirror.failedBack' || e.name === 'vm.restoreStarted' || e.name === 'vm.vmRegistered') log.push(e.name)
    })
    const outcomes = await s.vms.failback({ plan: 'p1' })
    expect(outcomes.map((o) => [o.vmId, o.outcome, o.host])).toEqual([['vm1', 'restored', 'hv-p1']])
    expect(log.indexOf('vm.restoreStarted')).toBeGreaterThan(Math.max(log.indexOf('mirror.resynced'), log.indexOf('mirror.failedBack')))
    const started = s.names('vm.restoreStarted').at(-1)?.payload
    expect(started).toMatchObject({ metadataHostName: 'hv-s1', designatedHostName: 'hv-p1', hostNameSource: 'dr-plan' })
    expect((await d.sites.east.rawHost.getVm('vm1'))?.power).toBe('running')
    expect(await d.sites.west.rawHost.getVm('vm1')).toBeUndefined()
    expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 0)).toBe(1)
    expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 1)).toBe(77)
    const [mirror] = await s.mirrors.list()
    expect(mirror?.direction).toBe('forward')
    expect(s.names('vm.failbackCompleted').map((e) => e.payload)).toEqual([{ planId: 'p1', restored: ['vm1'], failed: [] }])
    await s.close()
  })
})
