import { describe, expect, it } from 'vitest'
import { backupAndReplicate, replicated, until, writeBlock, plannedWorld } from '../../fixtures/vm-world.js'

describe('vm replication', () => {
  it('behaviour 7: the first replication creates a relationship from the backup volume to an identical volume on the destination', async () => {
    const { d, s } = await plannedWorld(['vm1'])
    await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    expect(await s.mirrors.list()).toEqual([])
    await s.vms.replicateNow('p1')
    const [mirror] = await s.mirrors.list()
    expect(mirror?.source).toMatchObject({ site: 'east', volume: 'drvm-vm1' })
    expect(mirror?.destination).toMatchObject({ site: 'west', volume: 'drvm-vm1' })
    expect(s.names('vm.replicationRelationshipCreated').map((e) => e.payload)).toEqual([{ vmId: 'vm1', mirror: mirror?.id }])
    expect((await d.sites.west.rawStorage.volumeInfo('drvm-vm1')).sizeBytes).toBe((await d.sites.east.rawStorage.volumeInfo('drvm-vm1')).sizeBytes)
    await s.close()
  })

  it('behaviour 8: an existing relationship of the backup volume is reused, not created again', async () => {
    const { d, s } = await plannedWorld(['vm1'])
    await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    const existing = await s.mirrors.create({ id: 'preexisting', source: { site: 'east', volume: 'drvm-vm1' }, destination: { site: 'west' } })
    const createdBefore = s.names('mirror.created').length
    await s.vms.replicateNow('p1')
    expect((await s.mirrors.list()).map((m) => m.id)).toEqual([existing.id])
    expect(s.names('mirror.created').length).toBe(createdBefore)
    expect(s.names('vm.replicationRelationshipReused').map((e) => e.payload)).toEqual([{ vmId: 'vm1', mirror: 'preexisting' }])
    expect(s.names('vm.replicationRelationshipCreated')).toEqual([])
    await s.close()
  })

  it('behaviour 9: the replication schedule replicates the backup; the destination metadata equals the primary one', async () => {
    const { d, s } = await plannedWorld(['vm1'], { backupEvery: '1d' })
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 4, 3)
    await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    await d.clock.advance(4 * 3600_000 - 1)
    expect(s.names('vm.replicationRequested')).toEqual([])
    await d.clock.advance(1)
    await until(() => s.names('vm.replicationRequested').length === 1, 'scheduled replication')
    const { mirror, deltaSet } = s.names('vm.replicationRequested')[0]!.payload as { mirror: string; deltaSet: number }
    await replicated(s, mirror, deltaSet)
    const east = await s.vms.listBackups({ vm: 'vm1', site: 'east' })
    const west = await s.vms.listBackups({ vm: 'vm1', site: 'west' })
    expect(west.map((b) => b.metadata)).toEqual(east.map((b) => b.metadata))
    expect(west[0]?.metadata.hostName).toBe('hv-p1')
    await s.close()
  })

  it('a backup replicated after a newer backup started is never seen half written on the destination', async () => {
    const { d, s } = await plannedWorld(['vm1'], { retain: 1 })
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 1)
    await backupAndReplicate(s, ['vm1'])
    const mirror = (await s.mirrors.list())[0]!.id
    let cut: Promise<{ deltaSet: number }> | undefined
    d.sites.east.storage.setLatency((call) => {
      if (call.method === 'write' && call.args[0] === 'drvm-vm1' && cut === undefined && (call.args[2] as Uint8Array).length !== 65536) cut = s.mirrors.cutNow(mirror)
      return 0
    })
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 2)
    await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    const { deltaSet } = await (cut as Promise<{ deltaSet: number }>)
    await replicated(s, mirror, deltaSet)
    expect(await s.vms.listBackups({ vm: 'vm1', site: 'west' })).toEqual([])
    await backupAndReplicate(s, ['vm1'])
    expect((await s.vms.listBackups({ vm: 'vm1', site: 'west' })).map((b) => b.metadata.seq)).toEqual([3])
    await s.close()
  })
})
