import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { addVm, backupAndReplicate, loseEast, openVmSystem, readSeed, standardPlan, token, vmDurable, writeBlock, crashOnce } from '../../fixtures/vm-world.js'

const FAILBACK_STEPS = 7

async function crashFailback(match: (p: CrashPoint) => boolean): Promise<void> {
  const d = vmDurable()
  await addVm(d, 'vm1')
  const crash = crashOnce(match)
  const first = await openVmSystem(d, { crashAt: crash.crashAt })
  await first.vms.savePlan(standardPlan({ placement: { rule: 'explicit', hosts: { vm1: 'hv-s1' } } }))
  await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 1)
  await backupAndReplicate(first, ['vm1'])
  loseEast(d)
  await first.vms.failover({ plan: 'p1' })
  await writeBlock(d.sites.west.rawStorage, 'vm1-disk0', 1, 55)
  d.sites.east.storage.restart()
  d.sites.east.host.restart()
  d.fabric.healAll()
  await d.sites.east.rawHost.powerOff('vm1', token)
  await expect(first.vms.failback({ plan: 'p1' })).rejects.toBeInstanceOf(InjectedCrash)
  expect(crash.crashed()).toBe(true)
  await first.close()
  const second = await openVmSystem(d)
  await second.mirrors.recover()
  const outcomes = await second.vms.failback({ plan: 'p1' })
  expect(outcomes.map((o) => [o.vmId, o.outcome, o.host])).toEqual([['vm1', 'restored', 'hv-p1']])
  expect((await d.sites.east.rawHost.listVms()).map((v) => [v.id, v.host, v.power])).toEqual([['vm1', 'hv-p1', 'running']])
  expect(await d.sites.west.rawHost.listVms()).toEqual([])
  expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 1)).toBe(55)
  expect((await second.mirrors.list())[0]?.direction).toBe('forward')
  await second.close()
}

describe('vm failback crashes', () => {
  it('a crash before or after every step of a failback, then re-issuing it, returns the VM to its original host once', async () => {
    for (let index = 0; index < FAILBACK_STEPS; index++) {
      for (const phase of ['before', 'after'] as const) {
        await crashFailback((p) => p.workflowId.startsWith('vm.failback') && !p.workflowId.includes('/') && p.index === index && p.phase === phase)
      }
    }
  })
})
