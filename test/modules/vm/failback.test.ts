import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { backupAndReplicate, loseEast, readSeed, writeBlock, token, plannedWorld, trackConcurrency } from '../../fixtures/vm-world.js'

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

/** A world failed over to west (vm ids on explicit hosts), then east repaired and reachable again, its copies off. */
async function failedOver(vms: string[], plan: Record<string, unknown> = {}) {
  const hosts = Object.fromEntries(vms.map((vm) => [vm, 'hv-s1']))
  const { d, s } = await plannedWorld(vms, { placement: { rule: 'explicit', hosts }, ...plan })
  await backupAndReplicate(s, vms)
  loseEast(d)
  expect((await s.vms.failover({ plan: 'p1' })).outcome).toBe('succeeded')
  return { d, s }
}

function repairEast(d: Awaited<ReturnType<typeof failedOver>>['d']): void {
  d.sites.east.storage.restart()
  d.sites.east.host.restart()
  d.fabric.healAll()
}

describe('vm failback: availability', () => {
  it('a failback while the primary is still down stops nothing and is refused; the VM keeps running where it was failed over to', async () => {
    const { d, s } = await failedOver(['vm1'])
    await expect(s.vms.failback({ plan: 'p1' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(d.sites.west.host.count('powerOff')).toBe(0)
    expect((await d.sites.west.rawHost.getVm('vm1'))?.power).toBe('running')
    await s.close()
  })

  it('keeps the VM running during the reverse resync and stops it only for the final backup', async () => {
    const { d, s } = await failedOver(['vm1'])
    repairEast(d)
    await d.sites.east.rawHost.powerOff('vm1', token)
    const log: string[] = []
    d.sites.west.host.setLatency((call) => (log.push(`west.${call.method}`), 0))
    s.events.onAny((e) => {
      if (e.name === 'mirror.resynced' || e.name === 'vm.backupCompleted') log.push(e.name)
    })
    const outcomes = await s.vms.failback({ plan: 'p1' })
    expect(outcomes.map((o) => o.outcome)).toEqual(['restored'])
    const resynced = log.indexOf('mirror.resynced')
    const stopped = log.indexOf('west.powerOff')
    expect(resynced).toBeGreaterThanOrEqual(0)
    expect(stopped).toBeGreaterThan(resynced)
    expect(log.indexOf('vm.backupCompleted')).toBeGreaterThan(stopped)
    await s.close()
  })

  it('a failure after the VM was stopped powers it on again where it ran; re-issuing the failback completes it', async () => {
    const { d, s } = await failedOver(['vm1'])
    repairEast(d)
    await d.sites.east.rawHost.powerOff('vm1', token)
    const refuse = d.sites.east.host.fail({ method: 'registerVm', error: new DrError('E_ADAPTER', 'hypervisor refused') })
    const first = await s.vms.failback({ plan: 'p1' })
    expect(first.map((o) => [o.vmId, o.outcome])).toEqual([['vm1', 'failed']])
    expect(s.names('vm.failbackCompensated').map((e) => e.payload['vmId'])).toEqual(['vm1'])
    expect((await d.sites.west.rawHost.getVm('vm1'))?.power).toBe('running')
    refuse()
    const second = await s.vms.failback({ plan: 'p1' })
    expect(second.map((o) => [o.vmId, o.outcome, o.host])).toEqual([['vm1', 'restored', 'hv-p1']])
    expect((await d.sites.east.rawHost.getVm('vm1'))?.power).toBe('running')
    expect(await d.sites.west.rawHost.getVm('vm1')).toBeUndefined()
    expect((await s.mirrors.list())[0]?.direction).toBe('forward')
    await s.close()
  })

  it('discarding backups the source took after the failover needs acknowledgeDataLoss; without it the VM is not stopped', async () => {
    const { d, s } = await plannedWorld(['vm1'], { placement: { rule: 'explicit', hosts: { vm1: 'hv-s1' } } })
    await backupAndReplicate(s, ['vm1'])
    await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    loseEast(d)
    await s.vms.failover({ plan: 'p1' })
    repairEast(d)
    await d.sites.east.rawHost.powerOff('vm1', token)
    const refused = await s.vms.failback({ plan: 'p1' })
    expect(refused.map((o) => o.outcome)).toEqual(['failed'])
    expect(refused[0]?.reason).toContain('acknowledgeDataLoss')
    expect(d.sites.west.host.count('powerOff')).toBe(0)
    expect((await d.sites.west.rawHost.getVm('vm1'))?.power).toBe('running')
    const accepted = await s.vms.failback({ plan: 'p1', acknowledgeDataLoss: true })
    expect(accepted.map((o) => [o.outcome, o.host])).toEqual([['restored', 'hv-p1']])
    await s.close()
  })

  it('fails VMs back in parallel, at most maxParallel at once', async () => {
    const { d, s } = await failedOver(['a1', 'a2', 'a3'], { maxParallel: 2 })
    repairEast(d)
    for (const vm of ['a1', 'a2', 'a3']) await d.sites.east.rawHost.powerOff(vm, token)
    const concurrency = trackConcurrency(d.sites.west.rawHost, 'powerOff')
    const outcomes = await s.vms.failback({ plan: 'p1' })
    expect(outcomes.map((o) => o.outcome)).toEqual(['restored', 'restored', 'restored'])
    expect(concurrency.peak()).toBe(2)
    await s.close()
  })
})
