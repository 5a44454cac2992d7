import { describe, expect, it } from 'vitest'
import { backupAndReplicate, loseEast, readSeed, writeBlock, plannedWorld } from '../../fixtures/vm-world.js'

describe('vm test failover', () => {
  it('behaviour 28: while the primary is reachable no DR flow writes the standby replicas (a test failover reads held snapshots); once it is lost, the VMs are served from them', async () => {
    const { d, s } = await plannedWorld(['vm1', 'vm2'])
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 5)
    await backupAndReplicate(s, ['vm1', 'vm2'])
    const registered: Array<{ id: string; networks: readonly string[]; host: string }> = []
    const rawPowerOn = d.sites.west.rawHost.powerOn.bind(d.sites.west.rawHost)
    d.sites.west.rawHost.powerOn = async (vmId, fence) => {
      await rawPowerOn(vmId, fence)
      const info = await d.sites.west.rawHost.getVm(vmId)
      if (info !== undefined) registered.push({ id: info.id, networks: info.networks, host: info.host })
      const disk = info?.disks[0]?.volume
      if (disk !== undefined) expect((await d.sites.west.rawStorage.read(disk, 0, 1))[0]).toBe(vmId.endsWith('vm1') ? 5 : 0)
    }
    const replicaWritesBefore = d.sites.west.storage.calls.filter((c) => ['write', 'trim', 'setWritable', 'setOnline'].includes(c.method) && String(c.args[0]).startsWith('drvm-')).length
    const callsBefore = d.sites.west.storage.calls.length
    const report = await s.vms.testFailover({ plan: 'p1', network: 'dr-test-net' })
    expect(d.sites.west.storage.calls.filter((c) => ['write', 'trim', 'setWritable', 'setOnline'].includes(c.method) && String(c.args[0]).startsWith('drvm-')).length).toBe(replicaWritesBefore)
    const rehearsal = d.sites.west.storage.calls.slice(callsBefore)
    expect(rehearsal.filter((c) => c.method === 'read' && String(c.args[0]).startsWith('drvm-')).every((c) => (c.args[3] as { snapshot?: string } | undefined)?.snapshot !== undefined)).toBe(true)
    expect(rehearsal.filter((c) => c.method === 'holdSnapshot').map((c) => c.args[0])).toEqual(['drvm-vm1', 'drvm-vm2'])
    expect(rehearsal.filter((c) => c.method === 'releaseSnapshot').map((c) => c.args[0])).toEqual(['drvm-vm1', 'drvm-vm2'])
    d.sites.west.rawHost.powerOn = rawPowerOn
    expect(report.outcome).toBe('succeeded')
    expect(registered.map((r) => r.networks)).toEqual([['dr-test-net'], ['dr-test-net']])
    expect(registered.every((r) => r.id !== 'vm1' && r.id !== 'vm2')).toBe(true)
    expect(s.names('vm.mirrorBroken')).toEqual([])
    expect(s.names('vm.storageOffline')).toEqual([])
    for (const m of await s.mirrors.list()) expect(m.state).toBe('replicating')
    expect((await d.sites.west.rawStorage.volumeInfo('drvm-vm1')).writable).toBe(false)
    expect(await d.sites.west.rawHost.listVms()).toEqual([])
    expect((await d.sites.west.rawStorage.listVolumes()).map((v) => v.name).filter((name) => !name.startsWith('drvm-'))).toEqual([])
    expect(s.names('vm.testFailoverCleanedUp')).toHaveLength(1)
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 6)
    await backupAndReplicate(s, ['vm1'])
    const [newest] = (await s.vms.listBackups({ vm: 'vm1', site: 'west' })).slice(-1)
    expect(newest?.metadata.seq).toBe(2)
    loseEast(d)
    const real = await s.vms.failover({ plan: 'p1' })
    expect(real.outcome).toBe('succeeded')
    expect((await d.sites.west.rawStorage.volumeInfo('drvm-vm1')).writable).toBe(true)
    expect(await readSeed(d.sites.west.rawStorage, 'vm1-disk0', 0)).toBe(6)
    expect((await d.sites.west.rawHost.getVm('vm1'))?.power).toBe('running')
    await s.close()
  })
})
