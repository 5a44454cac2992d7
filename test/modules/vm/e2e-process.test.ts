import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { EventBus, WorkflowEngine, systemClock, type FenceToken } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { localStorage } from '../../../src/adapters/local/local-storage.js'
import { processHost, type GuestCommand } from '../../../src/adapters/process/process-host.js'
import { MemoryNetworkFabric } from '../../../src/adapters/memory/network.js'
import type { HostPort } from '../../../src/ports/host.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { injectFaults } from '../../../src/testkit/faults.js'
import { openMirrorModule, type MirrorEvents } from '../../../src/modules/mirror/index.js'
import { openVmModule, type VmEvents } from '../../../src/modules/vm/index.js'
import { bridgedHost, bridgedStorage, diskFile } from '../../fixtures/vm-disk-bridge.js'
import { until } from '../../fixtures/vm-world.js'

const token: FenceToken = { scope: 'vm-e2e', value: 1 }
const guest: GuestCommand = { command: process.execPath, args: ['--import', 'tsx', fileURLToPath(new URL('../../fixtures/vm-guest.ts', import.meta.url))] }
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

async function records(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '')
}

describe('vm end to end (process hosts, local storage)', () => {
  it('a VM writing on east is restored and running on an alternate host at west with everything up to the last replicated backup', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'drkit-vm-e2e-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const roots = { east: path.join(dir, 'east-root'), west: path.join(dir, 'west-root') }
    const rawStorage = { east: localStorage({ dir: path.join(dir, 'east'), fsync: false }), west: localStorage({ dir: path.join(dir, 'west'), fsync: false }) }
    const rawHosts = {
      east: processHost({ workDir: path.join(dir, 'east-host'), rootDir: roots.east, guest, hosts: [{ name: 'hv-p1', cpus: 8, memoryMb: 8192 }], stopGraceMs: 1000 }),
      west: processHost({ workDir: path.join(dir, 'west-host'), rootDir: roots.west, guest, hosts: [{ name: 'hv-s1', cpus: 4, memoryMb: 4096 }, { name: 'hv-s2', cpus: 8, memoryMb: 8192 }], stopGraceMs: 1000 }),
    }
    cleanups.push(async () => {
      await rawHosts.east.close()
      await rawHosts.west.close()
      await rawStorage.east.close()
      await rawStorage.west.close()
    })
    const eastFile = path.join(roots.east, 'vm1', 'disk0', 'data.log')
    const eastStorage = injectFaults<StoragePort>(bridgedStorage(rawStorage.east, (volume) => (volume === 'vm1-disk0' ? eastFile : undefined)), { name: 'east.storage' })
    const eastHost = injectFaults<HostPort>(bridgedHost(rawHosts.east, rawStorage.east, roots.east), { name: 'east.host' })
    const westHost = bridgedHost(rawHosts.west, rawStorage.west, roots.west)
    const fabric = new MemoryNetworkFabric({ clock: systemClock })
    const sites: Record<string, { storage: StoragePort; host: HostPort }> = { east: { storage: eastStorage.port, host: eastHost.port }, west: { storage: rawStorage.west, host: westHost } }
    const stateStore = memoryStateStore()
    const events = new EventBus<VmEvents & MirrorEvents>()
    const workflows = new WorkflowEngine({ stateStore, clock: systemClock })
    const mirror = await openMirrorModule({ stateStore, workflows, sites: (name) => ({ storage: sites[name]!.storage, network: fabric.port(name) }), events, clock: systemClock, token: () => token })
    const vm = await openVmModule({ stateStore, workflows, sites: (name) => sites[name]!, mirrors: mirror.facade, events, clock: systemClock, token: () => token })
    cleanups.push(async () => {
      await vm.close()
      await mirror.close()
    })

    await rawStorage.east.createVolume({ name: 'vm1-disk0', sizeBytes: 1024 * 1024, blockSize: 4096 }, token)
    await eastHost.port.registerVm('hv-p1', { id: 'vm1', name: 'app server', cpus: 2, memoryMb: 2048, disks: [{ volume: 'vm1-disk0', mountPath: '/vm1/disk0' }], networks: ['prod'], tags: ['app'], config: { role: 'app' } }, token)
    await eastHost.port.powerOn('vm1', token)
    await until(async () => (await records(eastFile)).length >= 5, 'the VM writing on east', 200_000)

    const report = await vm.facade.savePlan({ id: 'p1', source: 'east', destination: 'west', protect: { vms: ['vm1'] }, backupEvery: '1h', replicateEvery: '1h', placement: { rule: 'capacity', hosts: ['hv-s1', 'hv-s2'] } })
    expect(report.placed).toEqual([{ vmId: 'vm1', host: 'hv-s2', skipped: [] }])
    const replicatedBackup = await vm.facade.backupNow({ plan: 'p1', vm: 'vm1' })
    expect(replicatedBackup.consistency).toBe('application-consistent')
    const cuts = await vm.facade.replicateNow('p1')
    const mirrorId = (await mirror.facade.list())[0]!.id
    await until(async () => ((await mirror.facade.status(mirrorId)).lastPlayedBack ?? 0) >= (cuts['vm1'] ?? Infinity), 'replication to west', 200_000)
    const atBackup = (await diskFile(rawStorage.east, 'vm1-disk0', `drvm-${replicatedBackup.backupId}`)).split('\n').filter((l) => l !== '')
    expect(atBackup.length).toBeGreaterThanOrEqual(5)

    await until(async () => (await records(eastFile)).length > atBackup.length + 5, 'more writes on east', 200_000)
    const unreplicated = await vm.facade.backupNow({ plan: 'p1', vm: 'vm1' })
    expect(unreplicated.seq).toBe(2)

    await rawHosts.east.powerOff('vm1', token)
    eastStorage.crash()
    eastHost.crash()
    fabric.isolate('east')

    const result = await vm.facade.failover({ plan: 'p1' })
    expect(result.outcome).toBe('succeeded')
    expect(result.vms).toEqual([{ vmId: 'vm1', outcome: 'restored', host: 'hv-s2', backupId: replicatedBackup.backupId, restoredPointInTime: replicatedBackup.takenAt, reason: null }])
    const restored = await rawHosts.west.getVm('vm1')
    expect(restored).toMatchObject({ host: 'hv-s2', power: 'running', config: { role: 'app' } })
    const westFile = path.join(roots.west, 'vm1', 'disk0', 'data.log')
    await until(async () => (await records(westFile)).length > atBackup.length + 3, 'the restored VM writing on west', 200_000)
    const westRecords = await records(westFile)
    expect(westRecords.slice(0, atBackup.length)).toEqual(atBackup)
    expect(westRecords[atBackup.length]).toBe(String(Number(atBackup[atBackup.length - 1]) + 1))
    const [metadataAtWest] = (await vm.facade.listBackups({ vm: 'vm1', site: 'west' })).slice(-1)
    expect(metadataAtWest?.metadata.hostName).toBe('hv-p1')
  }, 60_000)
})
