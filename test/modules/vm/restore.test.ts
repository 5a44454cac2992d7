import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { backupAndReplicate, readSeed, token, writeBlock, plannedWorld } from '../../fixtures/vm-world.js'

const MUTATING = new Set(['registerVm', 'unregisterVm', 'powerOn', 'powerOff', 'write', 'trim', 'createVolume', 'deleteVolume', 'createSnapshot', 'deleteSnapshot', 'restoreSnapshot', 'putConfig', 'setWritable', 'holdSnapshot'])

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
    expect((await d.sites.east.rawStorage.listSnapshots('drvm-vm1')).map((x) => x.name)).toEqual([])
    await s.close()
  })

  it('a restore to an unknown, offline or too small host is refused before anything changes; the VM keeps running', async () => {
    const { d, s, ids } = await withBackups()
    d.sites.east.rawHost.setHostOnline('hv-p2', false)
    d.sites.east.rawHost.addHost({ name: 'tiny', cpus: 1, memoryMb: 1024 })
    const acted = (): number => [...d.sites.east.host.calls, ...d.sites.east.storage.calls].filter((c) => MUTATING.has(c.method)).length
    const before = acted()
    const restore = (host: string) => s.vms.restore({ vm: 'vm1', site: 'east', mode: 'alternate-host', host, backup: ids[0] as string, overwrite: true })
    await expect(restore('typo')).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(restore('hv-p2')).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await expect(restore('tiny')).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(acted()).toBe(before)
    expect(await d.sites.east.rawHost.getVm('vm1')).toMatchObject({ host: 'hv-p1', power: 'running' })
    await s.close()
  })

  it('a failure after the VM was evicted puts it back: registered and running on its host, its disk as it was', async () => {
    const { d, s, ids } = await withBackups()
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 77)
    d.sites.east.host.fail({ method: 'registerVm', when: (c) => c.args[0] === 'hv-p2', error: new DrError('E_ADAPTER', 'hypervisor refused') })
    await expect(s.vms.restore({ vm: 'vm1', site: 'east', mode: 'alternate-host', host: 'hv-p2', backup: ids[0] as string, overwrite: true })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(await d.sites.east.rawHost.getVm('vm1')).toMatchObject({ host: 'hv-p1', power: 'running' })
    expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 0)).toBe(77)
    expect((await d.sites.east.rawStorage.listSnapshots('vm1-disk0')).map((x) => x.name).filter((name) => !name.startsWith('drvm-vm1-east-'))).toEqual([])
    expect((await d.sites.east.rawStorage.listSnapshots('drvm-vm1')).map((x) => x.name)).toEqual([])
    await s.close()
  })

  it('a restore from a live replica reads the newest replicated snapshot, held while it is read, not the volume replication writes', async () => {
    const { d, s } = await plannedWorld(['vm1'])
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 9)
    await backupAndReplicate(s, ['vm1'])
    const mirror = (await s.mirrors.list())[0]
    const point = (await s.mirrors.status(mirror?.id ?? '')).recoveryPoint?.snapshot
    expect(point).toBeDefined()
    const calls = d.sites.west.storage.calls.length
    const outcome = await s.vms.restore({ vm: 'vm1', site: 'west', mode: 'alternate-host', host: 'hv-s1' })
    expect(outcome).toMatchObject({ outcome: 'restored', host: 'hv-s1' })
    expect(await readSeed(d.sites.west.rawStorage, 'vm1-disk0', 0)).toBe(9)
    const made = d.sites.west.storage.calls.slice(calls)
    const reads = made.filter((c) => c.method === 'read' && c.args[0] === 'drvm-vm1')
    expect(reads.length).toBeGreaterThan(0)
    expect(reads.every((c) => (c.args[3] as { snapshot?: string } | undefined)?.snapshot === point)).toBe(true)
    const hold = made.findIndex((c) => c.method === 'holdSnapshot' && c.args[1] === point)
    const release = made.findIndex((c) => c.method === 'releaseSnapshot' && c.args[1] === point)
    const restoreReads = made.map((c, i) => (c.method === 'read' && c.args[0] === 'drvm-vm1' && i > hold ? i : -1)).filter((i) => i >= 0)
    expect(hold).toBeGreaterThanOrEqual(0)
    expect(release).toBeGreaterThan(Math.max(...restoreReads))
    expect((await d.sites.west.rawStorage.snapshotInfo('drvm-vm1', point ?? '')).holds.filter((h) => h.startsWith('drkit.vm.restore'))).toEqual([])
    await s.close()
  })
})
