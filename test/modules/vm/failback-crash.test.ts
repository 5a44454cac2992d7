import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { addVm, backupAndReplicate, loseEast, openVmSystem, readSeed, standardPlan, token, vmDurable, writeBlock, crashOnce } from '../../fixtures/vm-world.js'

type Recovery = 'reissue' | 'recover'

/** A VM failed over to west and written there; east repaired; the first coordinator given `crashAt`. */
async function readyToFailBack(crashAt?: (p: CrashPoint) => boolean) {
  const d = vmDurable()
  await addVm(d, 'vm1')
  const first = await openVmSystem(d, crashAt === undefined ? {} : { crashAt })
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
  return { d, first }
}

async function crashFailback(match: (p: CrashPoint) => boolean, recovery: Recovery, what: string): Promise<void> {
  const crash = crashOnce(match)
  const { d, first } = await readyToFailBack(crash.crashAt)
  await expect(first.vms.failback({ plan: 'p1' }), what).rejects.toBeInstanceOf(InjectedCrash)
  expect(crash.crashed(), what).toBe(true)
  await first.close()
  const second = await openVmSystem(d)
  await second.mirrors.recover()
  if (recovery === 'reissue') {
    const outcomes = await second.vms.failback({ plan: 'p1' })
    expect(outcomes.map((o) => [o.vmId, o.outcome, o.host]), what).toEqual([['vm1', 'restored', 'hv-p1']])
  } else {
    await second.vms.recover()
  }
  expect((await d.sites.east.rawHost.listVms()).map((v) => [v.id, v.host, v.power]), what).toEqual([['vm1', 'hv-p1', 'running']])
  expect(await d.sites.west.rawHost.listVms(), what).toEqual([])
  expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 1), what).toBe(55)
  expect((await second.mirrors.list())[0]?.direction, what).toBe('forward')
  expect(second.names('vm.failbackCompensated'), what).toEqual([])
  await second.close()
}

describe('vm failback crashes', () => {
  it('a crash before or after every step of a failback or of its VM failback, recovered by re-issuing it or by recover(), returns the VM to its host once', async () => {
    const { d, first } = await readyToFailBack()
    await first.vms.failback({ plan: 'p1' })
    const runs = (await first.workflows.listRunning()).length
    const ids = (await d.stateStore.listStreams('workflow/vm.failback')).map((stream) => stream.slice('workflow/'.length))
    const parent = ids.find((id) => !id.includes('/')) ?? ''
    const steps = { parent: (await first.workflows.history(parent))?.steps.length ?? 0, child: (await first.workflows.history(`${parent}/vm/vm1`))?.steps.length ?? 0 }
    await first.close()
    expect(runs).toBe(0)
    expect(steps).toEqual({ parent: 3, child: 6 })
    for (const recovery of ['reissue', 'recover'] as const) {
      for (const phase of ['before', 'after'] as const) {
        for (let index = 0; index < steps.parent; index++) {
          await crashFailback((p) => p.workflowId.startsWith('vm.failback.') && !p.workflowId.includes('/') && p.index === index && p.phase === phase, recovery, `failback step ${index} ${phase}, ${recovery}`)
        }
        for (let index = 0; index < steps.child; index++) {
          await crashFailback((p) => p.workflowId.endsWith('/vm/vm1') && p.index === index && p.phase === phase, recovery, `VM failback step ${index} ${phase}, ${recovery}`)
        }
      }
    }
  })
})
