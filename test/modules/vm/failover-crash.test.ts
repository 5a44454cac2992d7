import { describe, expect, it } from 'vitest'
import { InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { addVm, backupAndReplicate, loseEast, openVmSystem, readSeed, standardPlan, vmDurable, writeBlock, crashOnce, type VmDurable } from '../../fixtures/vm-world.js'

type Recovery = 'reissue' | 'recover'
const RECOVERIES: readonly Recovery[] = ['reissue', 'recover']

/** A world with vm1 and vm2 backed up and replicated to west, east lost; `crashAt` given to the first coordinator. */
async function lostEast(crashAt?: (p: CrashPoint) => boolean) {
  const d = vmDurable()
  for (const vm of ['vm1', 'vm2']) await addVm(d, vm)
  const first = await openVmSystem(d, crashAt === undefined ? {} : { crashAt })
  await first.vms.savePlan(standardPlan())
  await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, 41)
  await writeBlock(d.sites.east.rawStorage, 'vm2-disk0', 0, 42)
  await backupAndReplicate(first, ['vm1', 'vm2'])
  loseEast(d)
  return { d, first }
}

/** A second coordinator finishes the failover by `recovery`; then every VM was restored exactly once. */
async function finishAndCheck(d: VmDurable, recovery: Recovery, what: string): Promise<void> {
  const second = await openVmSystem(d)
  await second.mirrors.recover()
  if (recovery === 'reissue') expect((await second.vms.failover({ plan: 'p1' })).outcome, what).toBe('succeeded')
  else await second.vms.recover()
  for (const vm of ['vm1', 'vm2']) {
    const keys = d.sites.west.host.calls.filter((c) => c.method === 'registerVm' && c.outcome === 'ok' && (c.args[1] as { id: string }).id === vm).map((c) => (c.args[3] as { idempotencyKey: string }).idempotencyKey)
    expect(keys.length, `${what}: ${vm} registered`).toBeGreaterThanOrEqual(1)
    expect(new Set(keys).size, `${what}: every registration of ${vm} is a retry of one request`).toBe(1)
  }
  const vms = await d.sites.west.rawHost.listVms()
  expect(vms.map((v) => [v.id, v.power]), what).toEqual([['vm1', 'running'], ['vm2', 'running']])
  const allocated = (await d.sites.west.rawHost.listHosts()).reduce((sum, h) => sum + h.allocatedMemoryMb, 0)
  expect(allocated, `${what}: no VM counted twice`).toBe(2 * 4096)
  expect(await readSeed(d.sites.west.rawStorage, 'vm1-disk0', 0)).toBe(41)
  expect(await readSeed(d.sites.west.rawStorage, 'vm2-disk0', 0)).toBe(42)
  const [backup] = await second.vms.listBackups({ vm: 'vm1', site: 'west' })
  expect(backup?.metadata.hostName).toBe('hv-p1')
  expect(second.names('vm.failoverCompleted').map((e) => e.payload['outcome']), what).toEqual(['succeeded'])
  await second.close()
}

async function crashThenFinish(match: (p: CrashPoint) => boolean, recovery: Recovery, what: string): Promise<void> {
  const crash = crashOnce(match)
  const { d, first } = await lostEast(crash.crashAt)
  await expect(first.vms.failover({ plan: 'p1' }), what).rejects.toBeInstanceOf(InjectedCrash)
  expect(crash.crashed(), what).toBe(true)
  await first.close()
  await finishAndCheck(d, recovery, what)
}

/** How many steps a clean failover records in its own workflow and in one VM's restore. */
async function stepCounts(): Promise<{ parent: number; child: number }> {
  const { d, first } = await lostEast()
  const report = await first.vms.failover({ plan: 'p1' })
  const parent = (await first.workflows.history(report.runId))?.steps.length ?? 0
  const child = (await first.workflows.history(`${report.runId}/vm1`))?.steps.length ?? 0
  await first.close()
  expect(d.sites.west.host.count('registerVm')).toBe(2)
  return { parent, child }
}

describe('vm failover crashes', () => {
  it('a crash before or after every step of the failover, recovered by re-issuing it or by recover(), restores every VM exactly once', async () => {
    const { parent } = await stepCounts()
    expect(parent).toBe(8)
    for (let index = 0; index < parent; index++) {
      for (const phase of ['before', 'after'] as const) {
        for (const recovery of RECOVERIES) {
          await crashThenFinish((p) => p.workflowId.startsWith('vm.failover') && p.index === index && p.phase === phase, recovery, `failover step ${index} ${phase}, ${recovery}`)
        }
      }
    }
  })

  it("a crash before or after every step of each VM's restore, recovered either way, restores every VM exactly once", async () => {
    const { child } = await stepCounts()
    expect(child).toBe(3)
    for (const vm of ['vm1', 'vm2']) {
      for (let index = 0; index < child; index++) {
        for (const phase of ['before', 'after'] as const) {
          for (const recovery of RECOVERIES) {
            await crashThenFinish((p) => p.workflowId.endsWith(`/${vm}`) && p.index === index && p.phase === phase, recovery, `${vm} restore step ${index} ${phase}, ${recovery}`)
          }
        }
      }
    }
  })

  it('a crash before or after every step of a mirror break resumes through the mirror module and completes the failover', async () => {
    for (let index = 0; index < 4; index++) {
      for (const phase of ['before', 'after'] as const) {
        for (const recovery of RECOVERIES) {
          await crashThenFinish((p) => p.workflowId.startsWith('mirror.failover') && p.index === index && p.phase === phase, recovery, `mirror break step ${index} ${phase}, ${recovery}`)
        }
      }
    }
  })

  it('a coordinator that stopped after recording a failover but before its workflow started leaves nothing wedged', async () => {
    for (const recovery of RECOVERIES) {
      const { d, first } = await lostEast()
      await first.close()
      const version = (await d.stateStore.read('vm/catalog')).length
      const runId = 'vm.failover.p1.interrupted'
      const input = { planId: 'p1', runId, by: 'administrator', test: false, network: null, failedHosts: null, site: 'west' }
      await d.stateStore.append('vm/catalog', version, [{ type: 'vm.failoverBegun', data: { planId: 'p1', runId, by: 'administrator', input } }])
      await finishAndCheck(d, recovery, `never started, ${recovery}`)
    }
  })

  it('a run recorded by an older version without its input is closed as failed, and the plan can fail over again', async () => {
    const { d, first } = await lostEast()
    await first.close()
    const version = (await d.stateStore.read('vm/catalog')).length
    await d.stateStore.append('vm/catalog', version, [{ type: 'vm.failoverBegun', data: { planId: 'p1', runId: 'vm.failover.p1.old', by: 'administrator' } }])
    const second = await openVmSystem(d)
    await expect(second.vms.replicateNow('p1')).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await second.vms.recover()
    expect(await second.vms.replicateNow('p1')).toEqual({ vm1: null, vm2: null })
    await second.close()
    await finishAndCheck(d, 'reissue', 'old record without input')
  })
})
