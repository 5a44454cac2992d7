import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { addVm, backupAndReplicate, loseEast, openVmSystem, readSeed, standardPlan, vmDurable, writeBlock, crashOnce } from '../../fixtures/vm-world.js'

const PARENT_STEPS = 6
const CHILD_STEPS = 6

async function failoverAfterCrash(match: (p: CrashPoint) => boolean, reissue: boolean): Promise<void> {
  const d = vmDurable()
  for (const vm of ['vm1', 'vm2']) await addVm(d, vm)
  const crash = crashOnce(match)
  const first = await openVmSystem(d, { crashAt: crash.crashAt })
  await first.vms.savePlan(standardPlan())
  await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 41)
  await writeBlock(d.sites.east.rawStorage, 'vm2-disk0', 0, 42)
  await backupAndReplicate(first, ['vm1', 'vm2'])
  loseEast(d)
  await expect(first.vms.failover({ plan: 'p1' })).rejects.toBeInstanceOf(InjectedCrash)
  expect(crash.crashed()).toBe(true)
  await first.close()
  const second = await openVmSystem(d)
  await second.mirrors.recover()
  if (reissue) {
    expect((await second.vms.failover({ plan: 'p1' })).outcome).toBe('succeeded')
  } else {
    await second.vms.recover()
  }
  const registered = d.sites.west.host.calls.filter((c) => c.method === 'registerVm' && c.outcome === 'ok').map((c) => (c.args[1] as { id: string }).id)
  expect(registered.sort()).toEqual(['vm1', 'vm2'])
  const vms = await d.sites.west.rawHost.listVms()
  expect(vms.map((v) => [v.id, v.power])).toEqual([['vm1', 'running'], ['vm2', 'running']])
  expect(await readSeed(d.sites.west.rawStorage, 'vm1-disk0', 0)).toBe(41)
  expect(await readSeed(d.sites.west.rawStorage, 'vm2-disk0', 0)).toBe(42)
  const [backup] = await second.vms.listBackups({ vm: 'vm1', site: 'west' })
  expect(backup?.metadata.hostName).toBe('hv-p1')
  await second.close()
}

describe('vm failover crashes', () => {
  it('a crash before or after every step of the failover, then a re-run, restores every VM exactly once', async () => {
    for (let index = 0; index < PARENT_STEPS; index++) {
      for (const phase of ['before', 'after'] as const) {
        await failoverAfterCrash((p) => p.workflowId.startsWith('vm.failover') && p.index === index && p.phase === phase, index % 2 === 0)
      }
    }
  })

  it('a crash before or after every step of a VM restore, then a re-run, restores every VM exactly once', async () => {
    for (let index = 0; index < CHILD_STEPS; index++) {
      for (const phase of ['before', 'after'] as const) {
        await failoverAfterCrash((p) => p.workflowId.endsWith('/vm2') && p.index === index && p.phase === phase, index % 2 === 1)
      }
    }
  })

  it('a crash inside the mirror break resumes through the mirror module and completes the failover', async () => {
    for (let index = 0; index < 4; index++) {
      await failoverAfterCrash((p) => p.workflowId.startsWith('mirror.failover') && p.index === index && p.phase === 'after', true)
    }
  })
})
