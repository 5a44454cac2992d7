import { describe, expect, it } from 'vitest'
import { DrError, InjectedCrash } from '../../../src/kernel/index.js'
import { addVm, backupAndReplicate, crashOnce, loseEast, openVmSystem, readSeed, standardPlan, until, vmDurable, writeBlock, type VmSystem, plannedWorld, TIGHT_WEST, trackConcurrency } from '../../fixtures/vm-world.js'

async function protectedWorld(vms: string[], plan: Record<string, unknown> = {}, west?: Parameters<typeof vmDurable>[0]) {
  const d = vmDurable(west)
  for (const vm of vms) await addVm(d, vm)
  const s = await openVmSystem(d)
  await s.vms.savePlan(standardPlan(plan))
  for (const [i, vm] of vms.entries()) await writeBlock(d.sites.east.rawStorage, `${vm}-disk0`, 0, 10 + i)
  await backupAndReplicate(s, vms)
  return { d, s }
}

function westCalls(s: VmSystem): string[] {
  const log: string[] = []
  s.sites.west.storage.setLatency((call) => (log.push(`storage.${call.method}`), 0))
  s.sites.west.host.setLatency((call) => (log.push(`host.${call.method}`), 0))
  s.events.onAny((e) => {
    if (e.name === 'vm.mirrorBroken') log.push('event.mirrorBroken')
  })
  return log
}

describe('vm failover', () => {
  it('behaviour 11: break, offline, online, scan, then restores — no restore before the mirror is broken', async () => {
    const { d, s } = await protectedWorld(['vm1', 'vm2'])
    const log = westCalls(s)
    loseEast(d)
    await s.vms.failover({ plan: 'p1' })
    const firstOffline = log.indexOf('storage.setOnline')
    const broken = log.lastIndexOf('event.mirrorBroken')
    const scan = log.indexOf('storage.listVolumes', firstOffline)
    const register = log.indexOf('host.registerVm')
    expect(broken).toBeGreaterThanOrEqual(0)
    expect(broken).toBeLessThan(firstOffline)
    expect(firstOffline).toBeLessThan(scan)
    expect(scan).toBeLessThan(register)
    for (const volume of ['drvm-vm1', 'drvm-vm2']) {
      const cycle = s.seen.filter((e) => (e.name === 'vm.storageOffline' || e.name === 'vm.storageOnline') && e.payload['volume'] === volume).map((e) => e.name)
      expect(cycle).toEqual(['vm.storageOffline', 'vm.storageOnline'])
      const calls = d.sites.west.storage.calls.filter((c) => c.method === 'setOnline' && c.args[0] === volume).map((c) => c.args[1])
      expect(calls).toEqual([false, true])
    }
    expect(log.lastIndexOf('storage.setOnline')).toBeLessThan(scan)
    await s.close()
  })

  it('behaviour 12: an administrator-initiated failover runs the same workflow and says who started it', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    loseEast(d)
    const result = await s.vms.failover({ plan: 'p1', by: 'administrator' })
    expect(result.outcome).toBe('succeeded')
    expect(s.names('vm.failoverInitiated').map((e) => e.payload['by'])).toEqual(['administrator'])
    await s.close()
  })

  it('a policy failover needs the primary confirmed down and unreachable from the coordinator; then it runs as dr-services', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    await expect(s.vms.failover({ plan: 'p1', by: 'dr-services' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await expect(s.vms.failover({ plan: 'p1', by: 'dr-services', primaryConfirmedDown: true })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(s.names('vm.failoverInitiated')).toEqual([])
    expect(s.names('vm.mirrorBroken')).toEqual([])
    loseEast(d)
    await s.vms.failover({ plan: 'p1', by: 'dr-services', primaryConfirmedDown: true })
    expect(s.names('vm.failoverInitiated').map((e) => e.payload['by'])).toEqual(['dr-services'])
    await s.close()
  })

  it('behaviour 13: no backup data on the destination means no restore and FailoverFailed no-backup-data', async () => {
    const { d, s } = await plannedWorld(['vm1'])
    await expect(s.vms.failover({ plan: 'p1' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(s.names('vm.failoverFailed').map((e) => e.payload['reason'])).toEqual(['no-backup-data'])
    expect(d.sites.west.host.count('registerVm')).toBe(0)
    await s.close()
  })

  it('behaviour 14 and 31: every VM with backup data is restored, registered and powered on on its alternate host', async () => {
    const { d, s } = await protectedWorld(['vm1', 'vm2'])
    loseEast(d)
    const result = await s.vms.failover({ plan: 'p1' })
    expect(result.vms.map((v) => [v.vmId, v.outcome])).toEqual([['vm1', 'restored'], ['vm2', 'restored']])
    for (const vm of ['vm1', 'vm2']) {
      const info = await d.sites.west.rawHost.getVm(vm)
      expect(info?.power).toBe('running')
      expect(s.names('vm.vmRegistered').some((e) => e.payload['vmId'] === vm && e.payload['hostName'] === info?.host)).toBe(true)
      expect(s.names('vm.vmPoweredOn').some((e) => e.payload['vmId'] === vm && e.payload['hostName'] === info?.host)).toBe(true)
    }
    expect(await readSeed(d.sites.west.rawStorage, 'vm1-disk0', 0)).toBe(10)
    expect(await readSeed(d.sites.west.rawStorage, 'vm2-disk0', 0)).toBe(11)
    await s.close()
  })

  it('behaviour 15 and 16: the restore overrides the metadata host, never calls it, and never rewrites the metadata', async () => {
    const { d, s } = await protectedWorld(['vm1'], { placement: { rule: 'explicit', hosts: { vm1: 'hv-s1' } } })
    const header = async (): Promise<Uint8Array> => {
      const [found] = await s.vms.listBackups({ vm: 'vm1', site: 'west' })
      return d.sites.west.rawStorage.read('drvm-vm1', found?.start ?? -1, 65536)
    }
    const before = await header()
    loseEast(d)
    const eastCallsBefore = d.sites.east.host.calls.length
    let broken = -1
    s.events.on('vm.mirrorBroken', () => (broken = d.sites.west.storage.calls.length))
    await s.vms.failover({ plan: 'p1' })
    expect((await d.sites.west.rawHost.getVm('vm1'))?.host).toBe('hv-s1')
    expect(d.sites.west.host.calls.some((c) => c.args.includes('hv-p1'))).toBe(false)
    expect(d.sites.east.host.calls.slice(eastCallsBefore).map((c) => c.method)).toEqual(['listHosts'])
    expect(s.names('vm.restoreStarted').map((e) => e.payload)).toEqual([
      { vmId: 'vm1', backupId: 'vm1-east-1', metadataHostName: 'hv-p1', designatedHostName: 'hv-s1', hostNameSource: 'dr-plan' },
    ])
    expect(broken).toBeGreaterThan(0)
    const writes = d.sites.west.storage.calls.slice(broken).filter((c) => ['write', 'trim', 'writeRanges'].includes(c.method) && String(c.args[0]).startsWith('drvm-'))
    expect(writes).toEqual([])
    expect(await header()).toEqual(before)
    const [backup] = await s.vms.listBackups({ vm: 'vm1', site: 'west' })
    expect(backup?.metadata.hostName).toBe('hv-p1')
    await s.close()
  })

  it('behaviour 18: an unavailable alternate host is skipped and the next available one selected', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    d.sites.west.rawHost.setHostOnline('hv-s1', false)
    loseEast(d)
    await s.vms.failover({ plan: 'p1' })
    expect(s.names('vm.alternateHostSelected').map((e) => e.payload)).toEqual([{ vmId: 'vm1', hostName: 'hv-s2', skipped: ['hv-s1'], source: 'dr-plan' }])
    expect((await d.sites.west.rawHost.getVm('vm1'))?.host).toBe('hv-s2')
    await s.close()
  })

  it('behaviour 19: with no alternate host available a VM is not restored, and the others still are', async () => {
    const { d, s } = await protectedWorld(['vm1', 'vm2'], { placement: { rule: 'explicit', hosts: { vm1: 'hv-s1', vm2: 'hv-s2' } } })
    d.sites.west.rawHost.setHostOnline('hv-s2', false)
    loseEast(d)
    const result = await s.vms.failover({ plan: 'p1' })
    expect(s.names('vm.noAlternateHostAvailable').map((e) => e.payload['vmId'])).toEqual(['vm2'])
    expect(d.sites.west.host.calls.filter((c) => c.method === 'registerVm').map((c) => (c.args[1] as { id: string }).id)).toEqual(['vm1'])
    expect(result.outcome).toBe('partially-succeeded')
    await s.close()
  })

  it('behaviour 21: the failed original host is never selected even when the plan lists it', async () => {
    const west = { west: [{ name: 'hv-p1', cpus: 64, memoryMb: 262144 }, { name: 'hv-s1', cpus: 16, memoryMb: 65536 }] }
    const { d, s } = await protectedWorld(['vm1'], { placement: { rule: 'capacity', hosts: ['east/hv-p1', 'hv-s1'] } }, west)
    loseEast(d)
    await s.vms.failover({ plan: 'p1' })
    expect((await d.sites.west.rawHost.getVm('vm1'))?.host).toBe('hv-s1')
    expect(s.names('vm.alternateHostSelected').map((e) => e.payload)).toEqual([{ vmId: 'vm1', hostName: 'hv-s1', skipped: ['east/hv-p1'], source: 'dr-plan' }])
    await s.close()
  })

  it('host names are compared with their site: a destination host named like the failed source host is used', async () => {
    const west = { west: [{ name: 'hv-p1', cpus: 64, memoryMb: 262144 }, { name: 'hv-s1', cpus: 16, memoryMb: 65536 }] }
    const { d, s } = await protectedWorld(['vm1'], { placement: { rule: 'capacity', hosts: ['hv-p1', 'hv-s1'] } }, west)
    expect((await s.vms.validatePlan('p1')).placed).toEqual([{ vmId: 'vm1', host: 'hv-p1', skipped: [] }])
    loseEast(d)
    await s.vms.failover({ plan: 'p1' })
    expect((await d.sites.west.rawHost.getVm('vm1'))?.host).toBe('hv-p1')
    await s.close()
  })

  it('behaviour 23: the newest replicated backup is restored and its time reported', async () => {
    const { d, s } = await plannedWorld(['vm1'])
    const times: number[] = []
    for (let i = 1; i <= 3; i++) {
      await d.clock.advance(60_000)
      await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, i)
      await backupAndReplicate(s, ['vm1'])
      times.push((await s.vms.listBackups({ vm: 'vm1', site: 'east' })).at(-1)?.metadata.takenAt ?? 0)
    }
    loseEast(d)
    const result = await s.vms.failover({ plan: 'p1' })
    expect(result.vms[0]?.restoredPointInTime).toBe(times[2])
    expect(s.names('vm.restoreCompleted')[0]?.payload['restoredPointInTime']).toBe(times[2])
    expect(await readSeed(d.sites.west.rawStorage, 'vm1-disk0', 0)).toBe(3)
    await s.close()
  })

  it('behaviour 24: one VM failing does not stop the others; the outcome lists each; a re-run completes only the failed one', async () => {
    const { d, s } = await protectedWorld(['vm1', 'vm2'])
    const remove = d.sites.west.host.fail({ method: 'registerVm', when: (c) => (c.args[1] as { id: string }).id === 'vm2', error: new DrError('E_ADAPTER', 'hypervisor refused') })
    loseEast(d)
    const first = await s.vms.failover({ plan: 'p1' })
    expect(first.outcome).toBe('partially-succeeded')
    expect(s.names('vm.failoverCompleted').map((e) => e.payload)).toEqual([
      { planId: 'p1', runId: first.runId, outcome: 'partially-succeeded', restored: ['vm1'], failed: ['vm2'] },
    ])
    remove()
    const registersBefore = d.sites.west.host.calls.filter((c) => c.method === 'registerVm').length
    const second = await s.vms.failover({ plan: 'p1' })
    expect(second.outcome).toBe('succeeded')
    expect(second.vms.map((v) => [v.vmId, v.outcome])).toEqual([['vm1', 'already-restored'], ['vm2', 'restored']])
    const registers = d.sites.west.host.calls.filter((c) => c.method === 'registerVm').slice(registersBefore)
    expect(registers.map((c) => (c.args[1] as { id: string }).id)).toEqual(['vm2'])
    await s.close()
  })

  it('behaviour 25: the mirror break succeeds from the destination alone while the primary does not answer', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    loseEast(d)
    const result = await s.vms.failover({ plan: 'p1' })
    expect(result.outcome).toBe('succeeded')
    expect(s.names('vm.mirrorBroken')).toHaveLength(1)
    expect((await d.sites.west.rawStorage.volumeInfo('drvm-vm1')).writable).toBe(true)
    await s.close()
  })

  it('behaviour 32: a VM registered by the same restore before a crash is not registered twice, even where capacity is tight', async () => {
    const d = vmDurable({ west: TIGHT_WEST })
    await addVm(d, 'vm1')
    const crash = crashOnce((p) => p.workflowId.endsWith('/vm1') && p.step === 'register' && p.phase === 'after')
    const first = await openVmSystem(d, { crashAt: crash.crashAt })
    await first.vms.savePlan(standardPlan())
    await backupAndReplicate(first, ['vm1'])
    loseEast(d)
    await expect(first.vms.failover({ plan: 'p1' })).rejects.toBeInstanceOf(InjectedCrash)
    await first.close()
    const second = await openVmSystem(d)
    await second.mirrors.recover()
    expect((await second.vms.failover({ plan: 'p1' })).outcome).toBe('succeeded')
    const registers = d.sites.west.host.calls.filter((c) => c.method === 'registerVm')
    expect(registers).toHaveLength(2)
    expect(new Set(registers.map((c) => (c.args[3] as { idempotencyKey: string }).idempotencyKey)).size).toBe(1)
    expect((await d.sites.west.rawHost.listVms()).map((v) => [v.id, v.host, v.power])).toEqual([['vm1', 'hv-s1', 'running']])
    expect((await d.sites.west.rawHost.hostInfo('hv-s1')).allocatedMemoryMb).toBe(4096)
    await second.close()
  })

  it('behaviour 33: a second failover request for a plan while one runs is refused and breaks nothing more', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    loseEast(d)
    const first = s.vms.failover({ plan: 'p1' })
    await expect(s.vms.failover({ plan: 'p1' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect((await first).outcome).toBe('succeeded')
    expect(s.names('mirror.failedOver')).toHaveLength(1)
    expect(s.names('vm.mirrorBroken')).toHaveLength(1)
    expect(s.names('vm.failoverInitiated')).toHaveLength(1)
    await s.close()
  })

  it('behaviour 34: disk paths are translated by the plan path map; an unmapped path fails that VM before it is registered', async () => {
    const { d, s } = await protectedWorld(['vm1', 'vm2'], { pathMap: { '/vms/vm1/': '/mnt/dr/vm1/' } })
    loseEast(d)
    const result = await s.vms.failover({ plan: 'p1' })
    expect(result.outcome).toBe('partially-succeeded')
    expect((await d.sites.west.rawHost.getVm('vm1'))?.disks.map((disk) => disk.mountPath)).toEqual(['/mnt/dr/vm1/disk0'])
    const vm2 = result.vms.find((v) => v.vmId === 'vm2')
    expect(vm2?.outcome).toBe('failed')
    expect(vm2?.reason).toContain('unmapped reference: disk path "/vms/vm2/disk0"')
    expect(d.sites.west.host.calls.filter((c) => c.method === 'registerVm').map((c) => (c.args[1] as { id: string }).id)).toEqual(['vm1'])
    expect((await d.sites.west.rawStorage.listVolumes()).map((v) => v.name)).not.toContain('vm2-disk0')
    await s.close()
  })

  it('behaviour 26: when only one source host failed, only its VMs fail over; the others and their mirrors are untouched', async () => {
    const { d, s } = await plannedWorld([['vm1', { host: 'p-A' }], ['vm2', { host: 'p-B' }]], {}, { east: [{ name: 'p-A', cpus: 16, memoryMb: 65536 }, { name: 'p-B', cpus: 16, memoryMb: 65536 }] })
    await backupAndReplicate(s, ['vm1', 'vm2'])
    d.sites.east.rawHost.setHostOnline('p-A', false)
    const result = await s.vms.failover({ plan: 'p1', failedHosts: ['p-A'] })
    expect(result.vms.map((v) => [v.vmId, v.outcome])).toEqual([['vm1', 'restored']])
    expect(s.names('vm.mirrorBroken').map((e) => e.payload['vmId'])).toEqual(['vm1'])
    expect(await d.sites.west.rawHost.getVm('vm2')).toBeUndefined()
    const vm2Mirror = (await s.mirrors.list()).find((m) => m.source.volume === 'drvm-vm2')
    expect(vm2Mirror?.state).toBe('replicating')
    expect((await d.sites.east.rawHost.getVm('vm2'))?.power).toBe('running')
    await s.close()
  })

  it('after a failover the schedule stops backing up the failed-over VMs on the old primary', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    loseEast(d)
    await s.vms.failover({ plan: 'p1' })
    d.sites.east.storage.restart()
    d.sites.east.host.restart()
    const quiesces = d.sites.east.host.count('quiesce')
    const listings = d.sites.east.host.count('listVms')
    await d.clock.advance(3600_000)
    await until(() => d.sites.east.host.count('listVms') >= listings + 2, 'the scheduled job to look at the VMs')
    expect(s.names('vm.backupRequested').filter((e) => e.payload['trigger'] === 'schedule')).toEqual([])
    expect(d.sites.east.host.count('quiesce')).toBe(quiesces)
    await s.close()
  })

  it('restores at most maxParallel VMs at once', async () => {
    const vms = ['a1', 'a2', 'a3', 'a4', 'a5']
    const { d, s } = await protectedWorld(vms, { maxParallel: 2 })
    loseEast(d)
    const concurrency = trackConcurrency(d.sites.west.rawHost, 'registerVm')
    const result = await s.vms.failover({ plan: 'p1' })
    expect(result.outcome).toBe('succeeded')
    expect(concurrency.peak()).toBe(2)
    await s.close()
  })
})
