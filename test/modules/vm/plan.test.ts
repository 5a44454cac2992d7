import { describe, expect, it } from 'vitest'
import { addVm, openVmSystem, plannedWorld, standardPlan, until, vmDurable } from '../../fixtures/vm-world.js'

const HOUR = 3600_000

describe('vm plans', () => {
  it("behaviour 10: a plan derived from a host's agent takes the intervals it reports and says it was derived", async () => {
    const d = vmDurable({ east: [{ name: 'hv-p1', cpus: 32, memoryMb: 131072, policies: { backupEveryMs: 2 * HOUR, replicateEveryMs: 6 * HOUR } }, { name: 'hv-p2', cpus: 8, memoryMb: 8192 }] })
    await addVm(d, 'vm1')
    await addVm(d, 'vm2', { host: 'hv-p2' })
    const s = await openVmSystem(d)
    const report = await s.vms.derivePlan({ id: 'derived', source: 'east', destination: 'west', fromHost: 'hv-p1', placement: { rule: 'capacity', hosts: ['hv-s1', 'hv-s2'] } })
    expect(report.placed.map((p) => p.vmId)).toEqual(['vm1'])
    const [plan] = await s.vms.listPlans()
    expect(plan).toMatchObject({ id: 'derived', backupEveryMs: 2 * HOUR, replicateEveryMs: 6 * HOUR, derivedFromHost: 'hv-p1', protect: { hosts: ['hv-p1'] } })
    expect(s.names('vm.planSaved').map((e) => e.payload)).toEqual([{ planId: 'derived', derivedFromHostApi: true }])
    await d.clock.advance(2 * HOUR)
    await until(() => s.names('vm.backupCompleted').length === 1, 'the derived backup schedule')
    expect(s.names('vm.backupRequested').map((e) => [e.payload['vmId'], e.payload['trigger']])).toEqual([['vm1', 'schedule']])
    await expect(s.vms.derivePlan({ id: 'none', source: 'east', destination: 'west', fromHost: 'hv-p2', placement: { rule: 'capacity', hosts: ['hv-s1'] } })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await expect(s.vms.derivePlan({ id: 'none', source: 'east', destination: 'west', fromHost: 'hv-zz', placement: { rule: 'capacity', hosts: ['hv-s1'] } })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect((await s.vms.listPlans()).map((p) => p.id)).toEqual(['derived'])
    await s.close()
  })

  it('reports vm.planUnplaceable when the plan is saved (an unmapped disk path) and again when the scheduled re-validation finds no host', async () => {
    const d = vmDurable()
    await addVm(d, 'vm1')
    await addVm(d, 'vm2')
    const s = await openVmSystem(d)
    const report = await s.vms.savePlan(standardPlan({ pathMap: { '/vms/vm1/': '/mnt/dr/vm1/' } }))
    expect(report.placed.map((p) => p.vmId)).toEqual(['vm1'])
    expect(report.unplaced.map((u) => [u.vmId, u.reason])).toEqual([['vm2', 'unmapped reference: disk path "/vms/vm2/disk0" has no entry in the plan\'s path map']])
    expect(s.names('vm.planUnplaceable').map((e) => e.payload)).toEqual([{ planId: 'p1', site: 'west', vms: report.unplaced }])
    d.sites.west.rawHost.setHostOnline('hv-s1', false)
    d.sites.west.rawHost.setHostOnline('hv-s2', false)
    await d.clock.advance(HOUR)
    await until(() => s.names('vm.planUnplaceable').length === 2, 'the scheduled re-validation')
    const again = s.names('vm.planUnplaceable')[1]?.payload as { vms: Array<{ vmId: string; reason: string }> }
    expect(again.vms.map((v) => v.vmId).sort()).toEqual(['vm1', 'vm2'])
    expect(again.vms.find((v) => v.vmId === 'vm1')?.reason).toBe('host "hv-s1" is not available; host "hv-s2" is not available')
    await s.close()
  })

  it('warns about anti-affinity groups naming VMs the plan does not protect', async () => {
    const { s } = await plannedWorld(['vm1'], { placement: { rule: 'capacity', hosts: ['hv-s1', 'hv-s2'], antiAffinity: [['vm1', 'vm9']] } })
    expect(s.names('vm.planWarning').map((e) => [e.payload['code'], e.payload['message']])).toEqual([['anti-affinity-unknown-vm', 'anti-affinity names VMs the plan does not protect now: vm9']])
    await s.close()
  })
})
