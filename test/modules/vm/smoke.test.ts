import { describe, expect, it } from 'vitest'
import { addVm, backupAndReplicate, loseEast, openVmSystem, readSeed, standardPlan, vmDurable, writeBlock } from '../../fixtures/vm-world.js'

describe('vm smoke', () => {
  it('backs up, replicates, fails over and restores on west', async () => {
    const d = vmDurable()
    await addVm(d, 'vm1')
    const s = await openVmSystem(d)
    const report = await s.vms.savePlan(standardPlan())
    expect(report.unplaced).toEqual([])
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 3, 7)
    await backupAndReplicate(s, ['vm1'])
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 3, 9)
    loseEast(d)
    const result = await s.vms.failover({ plan: 'p1' })
    expect(result.outcome).toBe('succeeded')
    expect(await readSeed(d.sites.west.rawStorage, 'vm1-disk0', 3)).toBe(7)
    expect((await d.sites.west.rawHost.getVm('vm1'))?.power).toBe('running')
    await s.close()
  })
})
