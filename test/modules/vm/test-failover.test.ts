import { describe, expect, it } from 'vitest'
import { backupAndReplicate, writeBlock, plannedWorld } from '../../fixtures/vm-world.js'

describe('vm test failover', () => {
  it('behaviour 28: a test failover restores renamed copies on an isolated network, never writes the standby replicas or breaks mirrors, and cleans up', async () => {
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
    const report = await s.vms.testFailover({ plan: 'p1', network: 'dr-test-net' })
    expect(d.sites.west.storage.calls.filter((c) => ['write', 'trim', 'setWritable', 'setOnline'].includes(c.method) && String(c.args[0]).startsWith('drvm-')).length).toBe(replicaWritesBefore)
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
    const real = await s.vms.failover({ plan: 'p1' })
    expect(real.outcome).toBe('succeeded')
    await s.close()
  })
})
