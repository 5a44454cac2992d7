import { describe, expect, it } from 'vitest'
import { readSeed, token, writeBlock, plannedWorld } from '../../fixtures/vm-world.js'

async function withBackups() {
  const { d, s } = await plannedWorld(['vm1'], {}, { east: [{ name: 'hv-p1', cpus: 32, memoryMb: 131072 }, { name: 'hv-p2', cpus: 32, memoryMb: 131072 }] })
  const ids: string[] = []
  for (let i = 1; i <= 3; i++) {
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, i)
    ids.push((await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })).backupId)
  }
  return { d, s, ids }
}

describe('vm single restore', () => {
  it('behaviour 17: an original-host restore targets the host named in the metadata', async () => {
    const { d, s } = await withBackups()
    await d.sites.east.rawHost.powerOff('vm1', token)
    await d.sites.east.rawHost.unregisterVm('vm1', token)
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 99)
    const outcome = await s.vms.restore({ vm: 'vm1', site: 'east', mode: 'original-host', overwrite: true })
    expect(outcome).toMatchObject({ vmId: 'vm1', outcome: 'restored', host: 'hv-p1' })
    expect(s.names('vm.restoreStarted').map((e) => e.payload['hostNameSource'])).toEqual(['metadata'])
    expect((await d.sites.east.rawHost.getVm('vm1'))?.host).toBe('hv-p1')
    expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 0)).toBe(3)
    await s.close()
  })

  it('behaviour 20: an alternate-host restore without a host is rejected before any side effect', async () => {
    const { d, s } = await withBackups()
    const before = d.sites.east.host.calls.length
    const writes = d.sites.east.storage.count('write')
    await expect(s.vms.restore({ vm: 'vm1', site: 'east', mode: 'alternate-host' })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect(d.sites.east.host.calls.length).toBe(before)
    expect(d.sites.east.storage.count('write')).toBe(writes)
    await s.close()
  })

  it('restores any backup (pinned) to any host, replacing the registered VM only with overwrite', async () => {
    const { d, s, ids } = await withBackups()
    await expect(s.vms.restore({ vm: 'vm1', site: 'east', mode: 'alternate-host', host: 'hv-p2', backup: ids[0] as string })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect((await d.sites.east.rawHost.getVm('vm1'))?.host).toBe('hv-p1')
    const outcome = await s.vms.restore({ vm: 'vm1', site: 'east', mode: 'alternate-host', host: 'hv-p2', backup: ids[0] as string, overwrite: true })
    expect(outcome).toMatchObject({ host: 'hv-p2', backupId: ids[0] })
    expect((await d.sites.east.rawHost.getVm('vm1'))?.host).toBe('hv-p2')
    expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 0)).toBe(1)
    const [first] = await s.vms.listBackups({ vm: 'vm1', site: 'east' })
    expect(first?.metadata.hostName).toBe('hv-p1')
    await expect(s.vms.restore({ vm: 'vm1', site: 'east', mode: 'original-host', backup: 'no-such-backup' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await s.close()
  })
})
