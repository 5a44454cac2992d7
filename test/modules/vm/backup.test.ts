import { describe, expect, it } from 'vitest'
import { DrError, InjectedCrash, type CrashPoint } from '../../../src/kernel/index.js'
import { addVm, openVmSystem, readSeed, settle, standardPlan, until, vmDurable, writeBlock, BS, plannedWorld } from '../../fixtures/vm-world.js'

async function world(plan: Record<string, unknown> = {}) {
  const { d, s } = await plannedWorld([['vm1', { disks: 2 }]], plan)
  return { d, s }
}

/** Records, in one global order, every call made through the east host and storage injectors. */
function traceCalls(d: ReturnType<typeof vmDurable>): string[] {
  const log: string[] = []
  d.sites.east.host.setLatency((call) => (log.push(`host.${call.method}`), 0))
  d.sites.east.storage.setLatency((call) => (log.push(`storage.${call.method}`), 0))
  return log
}

describe('vm backup', () => {
  it('behaviour 1: the schedule backs up a protected VM once per backup interval with trigger schedule', async () => {
    const { d, s } = await world()
    await d.clock.advance(59 * 60_000)
    expect(s.names('vm.backupRequested')).toEqual([])
    await d.clock.advance(60_000)
    await until(() => s.names('vm.backupCompleted').length === 1, 'scheduled backup')
    expect(s.names('vm.backupRequested').map((e) => e.payload)).toEqual([{ planId: 'p1', vmId: 'vm1', trigger: 'schedule' }])
    expect(d.sites.east.host.count('quiesce')).toBe(1)
    await s.close()
  })

  it('behaviour 2: backupNow runs at once with trigger administrator and does not reset the schedule', async () => {
    const { d, s } = await world()
    await d.clock.advance(30 * 60_000)
    const metadata = await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    expect(metadata.trigger).toBe('administrator')
    expect(s.names('vm.backupRequested').map((e) => e.payload['trigger'])).toEqual(['administrator'])
    await d.clock.advance(30 * 60_000)
    await until(() => s.names('vm.backupCompleted').length === 2, 'scheduled backup after the on-demand one')
    expect(s.names('vm.backupRequested').map((e) => e.payload['trigger'])).toEqual(['administrator', 'schedule'])
    await s.close()
  })

  it('behaviour 3: quiesce, snapshot, metadata and completion come in order; no snapshot before the writer is consistent', async () => {
    const { d, s } = await world()
    const log = traceCalls(d)
    await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    const order = s.seen.map((e) => e.name).filter((n) => ['vm.applicationsQuiesced', 'vm.snapshotCreated', 'vm.backupMetadataStored', 'vm.backupCompleted'].includes(n))
    expect(order).toEqual(['vm.applicationsQuiesced', 'vm.snapshotCreated', 'vm.backupMetadataStored', 'vm.backupCompleted'])
    expect(log.indexOf('host.quiesce')).toBeGreaterThanOrEqual(0)
    expect(log.indexOf('host.quiesce')).toBeLessThan(log.indexOf('storage.createSnapshot'))
    expect(log.lastIndexOf('host.unquiesce')).toBeGreaterThan(log.lastIndexOf('storage.createSnapshot'))
    await s.close()
  })

  it('behaviour 4: writes that arrive while the snapshot is taken wait, are applied after it and are not in it', async () => {
    const { d, s } = await world()
    await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 1, 11)
    let late: Promise<void> | undefined
    d.sites.east.storage.setLatency((call) => {
      if (call.method === 'createSnapshot' && late === undefined) late = writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 1, 22)
      return 0
    })
    const metadata = await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    await late
    expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 1)).toBe(22)
    expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 1, `drvm-${metadata.backupId}`)).toBe(11)
    const [found] = await s.vms.listBackups({ vm: 'vm1', site: 'east' })
    if (found === undefined) throw new Error('no backup listed')
    const disk = found.metadata.disks[0]
    if (disk === undefined) throw new Error('the backup lists no disk')
    expect(await readSeed(d.sites.east.rawStorage, 'drvm-vm1', (found.start + disk.offset) / BS + 1)).toBe(11)
    await s.close()
  })

  it('behaviour 5: the metadata read back from primary storage names the VM, its host and the time, in the dedicated volume', async () => {
    const { d, s } = await world()
    await d.clock.advance(5_000)
    const at = d.clock.now()
    await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    const backups = await s.vms.listBackups({ vm: 'vm1', site: 'east' })
    expect(backups).toHaveLength(1)
    const { metadata, volume } = backups[0]!
    expect(volume).toBe('drvm-vm1')
    expect({ vmId: metadata.vmId, hostName: metadata.hostName, snapshotTakenAt: metadata.takenAt }).toEqual({ vmId: 'vm1', hostName: 'hv-p1', snapshotTakenAt: at })
    expect(metadata).toMatchObject({ name: 'VM vm1', cpus: 2, memoryMb: 4096, networks: ['prod'], tags: ['app'], config: { owner: 'tests' }, consistency: 'application-consistent' })
    expect(metadata.disks.map((disk) => disk.volume)).toEqual(['vm1-disk0', 'vm1-disk1'])
    await s.close()
  })

  it('behaviour 6: a writer that cannot quiesce fails an app-consistent-only backup: no catalog entry, no replication', async () => {
    const { d, s } = await world({ requireAppConsistent: true })
    d.sites.east.rawHost.setQuiesceBehaviour('vm1', 'fail')
    await expect(s.vms.backupNow({ plan: 'p1', vm: 'vm1' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(s.names('vm.backupFailed').map((e) => e.payload['stage'])).toEqual(['quiesce'])
    expect(await s.vms.listBackups({ vm: 'vm1', site: 'east' })).toEqual([])
    expect(await s.vms.replicateNow('p1')).toEqual({})
    expect(await s.mirrors.list()).toEqual([])
    expect(d.sites.east.rawHost.isQuiesced('vm1')).toBe(false)
    expect(d.sites.east.storage.count('createSnapshot')).toBe(0)
    await s.close()
  })

  it('crash-consistent fallback: a failed quiesce still backs up, flagged crash-consistent in the metadata', async () => {
    const { d, s } = await world()
    d.sites.east.rawHost.setQuiesceBehaviour('vm1', 'fail')
    const metadata = await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    expect(metadata.consistency).toBe('crash-consistent')
    expect((await s.vms.listBackups({ vm: 'vm1', site: 'east' }))[0]?.metadata.consistency).toBe('crash-consistent')
    expect(s.names('vm.applicationsQuiesced')).toEqual([])
    await s.close()
  })

  it('a quiesce that hangs times out after the plan timeout, is released and falls back to crash-consistent', async () => {
    const { d, s } = await world({ quiesceTimeout: '10s' })
    d.sites.east.rawHost.setQuiesceBehaviour('vm1', 'hang')
    const backup = s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    await until(() => d.sites.east.host.count('quiesce') === 1, 'quiesce call')
    await d.clock.advance(10_000)
    expect((await backup).consistency).toBe('crash-consistent')
    expect(d.sites.east.rawHost.isQuiesced('vm1')).toBe(false)
    expect(d.sites.east.host.count('unquiesce')).toBeGreaterThanOrEqual(1)
    await s.close()
  })

  it('a host that never answers the quiesce (ignoring its own timeout) does not hang the backup: it goes on crash-consistent', async () => {
    const { d, s } = await world({ quiesceTimeout: '10s' })
    d.sites.east.rawHost.quiesce = () => new Promise(() => undefined)
    const metadata = await settle(d, s.vms.backupNow({ plan: 'p1', vm: 'vm1' }))
    expect(metadata.consistency).toBe('crash-consistent')
    expect(s.names('vm.backupCompleted')).toHaveLength(1)
    await s.close()
  })

  it('an unquiesce that fails is retried; when every try fails vm.unquiesceFailed says the VM may still hold its writes', async () => {
    const { d, s } = await world()
    d.sites.east.host.fail({ method: 'unquiesce', error: new DrError('E_ADAPTER', 'agent busy'), times: 1 })
    await settle(d, s.vms.backupNow({ plan: 'p1', vm: 'vm1' }))
    expect(d.sites.east.host.count('unquiesce')).toBe(2)
    expect(d.sites.east.rawHost.isQuiesced('vm1')).toBe(false)
    expect(s.names('vm.unquiesceFailed')).toEqual([])
    d.sites.east.host.fail({ method: 'unquiesce', error: new DrError('E_ADAPTER', 'agent gone'), times: 3 })
    const second = await settle(d, s.vms.backupNow({ plan: 'p1', vm: 'vm1' }))
    expect(second.consistency).toBe('application-consistent')
    expect(d.sites.east.host.count('unquiesce')).toBe(5)
    expect(s.names('vm.unquiesceFailed').map((e) => e.payload)).toEqual([{ vmId: 'vm1', attempts: 3, reason: 'agent gone' }])
    expect(d.sites.east.rawHost.isQuiesced('vm1')).toBe(true)
    await s.close()
  })

  it('unquiesce and unfence always happen, also when the snapshot fails; nothing is catalogued', async () => {
    const { d, s } = await world()
    d.sites.east.storage.fail({ method: 'createSnapshot', error: new DrError('E_ADAPTER', 'array busy') })
    await expect(s.vms.backupNow({ plan: 'p1', vm: 'vm1' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(s.names('vm.backupFailed').map((e) => e.payload['stage'])).toEqual(['snapshot'])
    expect(d.sites.east.rawHost.isQuiesced('vm1')).toBe(false)
    expect(await d.sites.east.rawStorage.isFenced('vm1-disk0')).toBe(false)
    expect(await d.sites.east.rawStorage.isFenced('vm1-disk1')).toBe(false)
    expect(await s.vms.listBackups({ vm: 'vm1', site: 'east' })).toEqual([])
    await s.close()
  })

  it('a failed metadata store removes the orphan snapshots', async () => {
    const { d, s } = await world()
    d.sites.east.storage.fail({ method: 'write', when: (call) => call.args[0] === 'drvm-vm1' && call.args[1] !== 0 && (call.args[2] as Uint8Array).length === 65536 })
    await expect(s.vms.backupNow({ plan: 'p1', vm: 'vm1' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(s.names('vm.backupFailed').map((e) => e.payload['stage'])).toEqual(['store'])
    expect(await d.sites.east.rawStorage.listSnapshots('vm1-disk0')).toEqual([])
    expect(await s.vms.listBackups({ vm: 'vm1', site: 'east' })).toEqual([])
    await s.close()
  })

  it('keeps the plan retention: slots are reused round robin and retired snapshots are deleted', async () => {
    const { d, s } = await world({ retain: 2 })
    for (let i = 1; i <= 3; i++) {
      await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 0, i)
      await s.vms.backupNow({ plan: 'p1', vm: 'vm1' })
    }
    const backups = await s.vms.listBackups({ vm: 'vm1', site: 'east' })
    expect(backups.map((b) => b.metadata.seq)).toEqual([2, 3])
    expect((await d.sites.east.rawStorage.listSnapshots('vm1-disk0')).map((x) => x.name)).toEqual(['drvm-vm1-east-2', 'drvm-vm1-east-3'])
    await s.close()
  })

  it('a crash at every step of a backup resumes to exactly one complete backup, never leaving the VM quiesced or a disk fenced', async () => {
    for (let index = 0; index < 6; index++) {
      for (const phase of ['before', 'after'] as const) {
        const d = vmDurable()
        await addVm(d, 'vm1', { disks: 2 })
        const crashAt = (p: CrashPoint): boolean => p.workflowId.startsWith('vm.backup') && p.index === index && p.phase === phase
        const first = await openVmSystem(d, { crashAt })
        await first.vms.savePlan(standardPlan())
        await writeBlock(d.sites.east.rawStorage, 'vm1-disk0', 2, 5)
        await expect(first.vms.backupNow({ plan: 'p1', vm: 'vm1' })).rejects.toBeInstanceOf(InjectedCrash)
        await first.close()
        const second = await openVmSystem(d)
        await second.vms.recover()
        const backups = await second.vms.listBackups({ vm: 'vm1', site: 'east' })
        expect(backups, `crash ${phase} step ${index}`).toHaveLength(1)
        expect((await d.sites.east.rawStorage.listSnapshots('vm1-disk0')).map((x) => x.name)).toEqual(['drvm-vm1-east-1'])
        expect(d.sites.east.rawHost.isQuiesced('vm1')).toBe(false)
        expect(await d.sites.east.rawStorage.isFenced('vm1-disk0')).toBe(false)
        expect(await d.sites.east.rawStorage.isFenced('vm1-disk1')).toBe(false)
        expect(await readSeed(d.sites.east.rawStorage, 'vm1-disk0', 2, 'drvm-vm1-east-1')).toBe(5)
        await second.close()
      }
    }
  })

  it('a storage call refused for a stale fence token is not a failed backup: nothing is reported, the run stays resumable', async () => {
    const { d, s } = await world()
    // Another coordinator took the scope over: the adapter refuses this one's token.
    d.sites.east.storage.fail({ method: 'createSnapshot', error: new DrError('E_FENCED', 'stale token', { scope: 'vm-test', token: 1, current: 2 }) })
    await expect(s.vms.backupNow({ plan: 'p1', vm: 'vm1' })).rejects.toMatchObject({ code: 'E_FENCED' })
    expect(s.names('vm.backupFailed')).toEqual([])
    const running = await s.workflows.listRunning()
    expect(running).toHaveLength(1)
    expect((await s.workflows.history(running[0] ?? ''))?.steps.some((step) => !step.outcome.ok || step.compensated)).toBe(false)
    await s.close()
  })

  it('refuses a backup of a VM the plan does not protect', async () => {
    const { d, s } = await world()
    await addVm(d, 'other', { tags: ['db'] })
    await expect(s.vms.backupNow({ plan: 'p1', vm: 'other' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(s.vms.backupNow({ plan: 'nope', vm: 'vm1' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(d.sites.east.host.count('quiesce')).toBe(0)
    expect(d.sites.east.storage.count('createSnapshot')).toBe(0)
    await s.close()
  })
})

describe('vm backup schedule', () => {
  it('an interval longer than a timer can hold fires once, at its end', async () => {
    const { d, s } = await plannedWorld(['vm1'], { backupEvery: '30d', replicateEvery: '60d' })
    await d.clock.advance(30 * 86_400_000 - 1)
    expect(s.names('vm.backupRequested')).toEqual([])
    await d.clock.advance(1)
    await until(() => s.names('vm.backupCompleted').length === 1, 'the 30-day backup')
    expect(s.names('vm.backupRequested')).toHaveLength(1)
    await s.close()
  })
})
