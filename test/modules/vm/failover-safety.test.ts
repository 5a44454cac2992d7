import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { SITE_PROBE_TIMEOUT_MS } from '../../../src/modules/vm/index.js'
import { addVm, backupAndReplicate, loseEast, openVmSystem, plannedWorld, readSeed, replicated, settle, standardPlan, TIGHT_WEST, vmDurable, writeBlock, type VmSystem } from '../../fixtures/vm-world.js'

async function protectedWorld(vms: string[], plan: Record<string, unknown> = {}, durable: Parameters<typeof vmDurable>[0] = {}) {
  const { d, s } = await plannedWorld(vms, plan, durable)
  await backupAndReplicate(s, vms)
  return { d, s }
}

describe('vm failover: re-runs and the source', () => {
  it('a re-run after a failure past the registration finishes the VM where it is registered, where capacity is tight', async () => {
    const { d, s } = await protectedWorld(['vm1'], {}, { west: TIGHT_WEST })
    loseEast(d)
    const refuseStart = d.sites.west.host.fail({ method: 'powerOn', error: new DrError('E_ADAPTER', 'hypervisor refused'), times: 1 })
    const refuseUndo = d.sites.west.host.fail({ method: 'unregisterVm', error: new DrError('E_ADAPTER', 'hypervisor busy'), times: 1 })
    const first = await s.vms.failover({ plan: 'p1' })
    expect(first.vms.map((v) => [v.vmId, v.outcome])).toEqual([['vm1', 'failed']])
    expect(s.names('vm.restoreUndoFailed').map((e) => e.payload['step'])).toEqual(['register'])
    expect((await d.sites.west.rawHost.listVms()).map((v) => [v.id, v.host, v.power])).toEqual([['vm1', 'hv-s1', 'off']])
    refuseStart()
    refuseUndo()
    const second = await s.vms.failover({ plan: 'p1' })
    expect(second.vms.map((v) => [v.vmId, v.outcome, v.host])).toEqual([['vm1', 'restored', 'hv-s1']])
    expect((await d.sites.west.rawHost.listVms()).map((v) => [v.id, v.host, v.power])).toEqual([['vm1', 'hv-s1', 'running']])
    expect(d.sites.west.host.calls.filter((c) => c.method === 'registerVm' && c.outcome === 'ok')).toHaveLength(1)
    await s.close()
  })

  it('a VM whose power-on fails is unregistered and its new disks removed; the re-run restores it', async () => {
    const { d, s } = await protectedWorld(['vm1'], {}, { west: TIGHT_WEST })
    loseEast(d)
    const refuse = d.sites.west.host.fail({ method: 'powerOn', error: new DrError('E_ADAPTER', 'reply lost'), afterEffect: true, times: 1 })
    expect((await s.vms.failover({ plan: 'p1' })).outcome).toBe('failed')
    expect(await d.sites.west.rawHost.listVms()).toEqual([])
    expect((await d.sites.west.rawStorage.listVolumes()).map((v) => v.name)).not.toContain('vm1-disk0')
    refuse()
    expect((await s.vms.failover({ plan: 'p1' })).outcome).toBe('succeeded')
    expect((await d.sites.west.rawHost.listVms()).map((v) => [v.id, v.power])).toEqual([['vm1', 'running']])
    await s.close()
  })

  it('an administrator failover while the source answers powers the source VMs off first, so they never run twice', async () => {
    const { d, s } = await protectedWorld(['vm1', 'vm2'])
    const report = await s.vms.failover({ plan: 'p1' })
    expect(report.outcome).toBe('succeeded')
    expect(s.names('vm.sourceFenced').map((e) => e.payload)).toEqual([{ planId: 'p1', runId: report.runId, reachable: true, fenced: ['vm1', 'vm2'], unanswered: [] }])
    expect((await d.sites.east.rawHost.listVms()).map((v) => [v.id, v.power])).toEqual([['vm1', 'off'], ['vm2', 'off']])
    const powerOffs = d.sites.east.host.calls.findIndex((c) => c.method === 'powerOff')
    const breaks = s.seen.findIndex((e) => e.name === 'vm.mirrorBroken')
    expect(powerOffs).toBeGreaterThanOrEqual(0)
    expect(breaks).toBeGreaterThan(s.seen.findIndex((e) => e.name === 'vm.sourceFenced'))
    expect((await d.sites.west.rawHost.listVms()).map((v) => [v.id, v.power])).toEqual([['vm1', 'running'], ['vm2', 'running']])
    await s.close()
  })

  it('a policy failover does not wait forever for a source that hangs: its probes are bounded on the clock', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    d.sites.east.rawHost.listHosts = () => new Promise(() => undefined)
    const failover = s.vms.failover({ plan: 'p1', by: 'dr-services', primaryConfirmedDown: true })
    const report = await settle(d, failover, 20 * SITE_PROBE_TIMEOUT_MS)
    expect(report.outcome).toBe('succeeded')
    expect(s.names('vm.sourceFenced').map((e) => e.payload['reachable'])).toEqual([false])
    await s.close()
  })

  it('restores only the VMs of the plan: a VM another plan protects (and whose mirror it keeps) is left alone', async () => {
    const d = vmDurable()
    await addVm(d, 'vm1')
    await addVm(d, 'vm2')
    const s = await openVmSystem(d)
    await s.vms.savePlan(standardPlan())
    await s.vms.savePlan(standardPlan({ id: 'p2', protect: { vms: ['vm2'] } }))
    await s.vms.backupNow({ plan: 'p2', vm: 'vm2' })
    const other = await s.vms.replicateNow('p2')
    await backupAndReplicate(s, ['vm1'])
    const p2Mirror = (await s.mirrors.list()).find((m) => m.source.volume === 'drvm-vm2')
    await replicated(s, p2Mirror?.id ?? '', other['vm2'] ?? -1)
    loseEast(d)
    const report = await s.vms.failover({ plan: 'p1' })
    expect(report.vms.map((v) => v.vmId)).toEqual(['vm1'])
    expect(await d.sites.west.rawHost.getVm('vm2')).toBeUndefined()
    expect((await s.mirrors.status(p2Mirror?.id ?? '')).state).not.toBe('failedOver')
    await s.close()
  })

  it('every protected VM is in the report: one never replicated fails with no-backup-data', async () => {
    const { d, s } = await protectedWorld(['vm1', 'vm2'].slice(0, 1))
    await addVm(d, 'vm2')
    await s.vms.backupNow({ plan: 'p1', vm: 'vm2' })
    const rehearsal = await s.vms.testFailover({ plan: 'p1', network: 'dr-test' })
    expect(rehearsal.vms.map((v) => [v.vmId, v.outcome, v.reason])).toEqual([['vm1', 'restored', null], ['vm2', 'failed', 'no-backup-data']])
    loseEast(d)
    const report = await s.vms.failover({ plan: 'p1' })
    expect(report.outcome).toBe('partially-succeeded')
    expect(report.vms.map((v) => [v.vmId, v.outcome, v.reason])).toEqual([['vm1', 'restored', null], ['vm2', 'failed', 'no-backup-data']])
    await s.close()
  })

  it('replicateNow is refused while the plan fails over, so the run keeps the mirror set it started with', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    loseEast(d)
    let refused: unknown
    s.events.on('vm.mirrorBroken', () => {
      s.vms.replicateNow('p1').catch((error: unknown) => (refused = error))
    })
    await s.vms.failover({ plan: 'p1' })
    expect(refused).toMatchObject({ code: 'E_CONFLICT' })
    await s.close()
  })
})

describe('vm failover: idempotent host calls (behaviour 22)', () => {
  it('behaviour 22: a register and a power-on whose replies time out are retried with the same idempotency key and act once', async () => {
    const { d, s } = await protectedWorld(['vm1'])
    loseEast(d)
    d.sites.west.host.fail({ method: 'registerVm', error: new DrError('E_TIMEOUT', 'no reply'), afterEffect: true, times: 1 })
    d.sites.west.host.fail({ method: 'powerOn', error: new DrError('E_TIMEOUT', 'no reply'), afterEffect: true, times: 1 })
    const report = await settle(d, s.vms.failover({ plan: 'p1' }))
    expect(report.outcome).toBe('succeeded')
    for (const method of ['registerVm', 'powerOn']) {
      const calls = d.sites.west.host.calls.filter((c) => c.method === method)
      expect(calls.map((c) => c.outcome)).toEqual(['failed', 'ok'])
      const keys = calls.map((c) => (c.args[method === 'registerVm' ? 3 : 2] as { idempotencyKey: string }).idempotencyKey)
      expect(keys[0]).toBeTruthy()
      expect(keys[1]).toBe(keys[0])
    }
    expect((await d.sites.west.rawHost.listVms()).map((v) => [v.id, v.power])).toEqual([['vm1', 'running']])
    expect((await d.sites.west.rawHost.hostInfo((await d.sites.west.rawHost.getVm('vm1'))?.host ?? '')).allocatedMemoryMb).toBe(4096)
    await s.close()
  })
})

describe('vm tertiary sites (behaviours 27 and 29)', () => {
  const southPlan = { tertiary: [{ site: 'south', placement: { rule: 'explicit', hosts: { vm1: 'hv-t1' } } }] }

  /** Backs vm1 up and replicates it to west, then cascades what west holds on to south; waits for both. */
  async function cascaded(s: VmSystem): Promise<void> {
    await backupAndReplicate(s, ['vm1'])
    const cuts = await s.vms.replicateNow('p1')
    const south = (await s.mirrors.list()).find((m) => m.destination.site === 'south')
    await replicated(s, south?.id ?? '', cuts['vm1@south'] ?? -1)
  }

  it('behaviour 27: the primary backup volume is mirrored to a second-cluster site, which cascades it to a tertiary site, each holding the backups', async () => {
    const { d, s } = await plannedWorld(['vm1'], southPlan)
    await cascaded(s)
    const mirrors = await s.mirrors.list()
    expect(mirrors.map((m) => [`${m.source.site}/${m.source.volume}`, `${m.destination.site}/${m.destination.volume}`]).sort()).toEqual([
      ['east/drvm-vm1', 'west/drvm-vm1'],
      ['west/drvmc-vm1', 'south/drvm-vm1'],
    ])
    const east = (await s.vms.listBackups({ vm: 'vm1', site: 'east' })).map((b) => b.metadata)
    expect(east).toHaveLength(1)
    expect((await s.vms.listBackups({ vm: 'vm1', site: 'west' })).map((b) => b.metadata)).toEqual(east)
    expect((await s.vms.listBackups({ vm: 'vm1', site: 'south' })).map((b) => b.metadata)).toEqual(east)
    expect((await s.vms.validatePlan('p1')).tertiary).toEqual([{ site: 'south', placed: [{ vmId: 'vm1', host: 'hv-t1', skipped: [] }], unplaced: [] }])
    expect(d.sites.south.host.count('registerVm')).toBe(0)
    await s.close()
  })

  it('behaviour 29: with the primary and the secondary site both lost, the backup is discovered on the tertiary site and the VM restored there', async () => {
    const { d, s } = await plannedWorld(['vm1'], southPlan)
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 2, 29)
    await cascaded(s)
    loseEast(d)
    loseEast(d, 'west')
    const report = await s.vms.failover({ plan: 'p1', site: 'south' })
    expect(report).toMatchObject({ site: 'south', outcome: 'succeeded' })
    expect(s.names('vm.backupDataDiscovered').map((e) => [e.payload['site'], e.payload['vms']])).toEqual([['south', ['vm1']]])
    expect(await d.sites.south.rawHost.getVm('vm1')).toMatchObject({ host: 'hv-t1', power: 'running' })
    expect(await readSeed(d.sites.south.rawStorage, 'vm1-disk0', 2)).toBe(29)
    expect((await s.vms.listBackups({ vm: 'vm1', site: 'south' }))[0]?.metadata.hostName).toBe('hv-p1')
    await expect(s.vms.failover({ plan: 'p1', site: 'mars' })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await s.close()
  })
})
