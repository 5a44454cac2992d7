import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { EventBus, WorkflowEngine, systemClock, type FenceToken } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { localStorage } from '../../../src/adapters/local/local-storage.js'
import { DiskSync } from '../../../src/adapters/process/disk-sync.js'
import { processHost, type GuestCommand } from '../../../src/adapters/process/process-host.js'
import { MemoryNetworkFabric } from '../../../src/adapters/memory/network.js'
import type { HostPort } from '../../../src/ports/host.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { injectFaults } from '../../../src/testkit/faults.js'
import { openMirrorModule, type MirrorEvents } from '../../../src/modules/mirror/index.js'
import { openVmModule, type VmEvents } from '../../../src/modules/vm/index.js'

const token: FenceToken = { scope: 'vm-e2e', value: 1 }
const guest: GuestCommand = { command: process.execPath, args: ['--import', 'tsx', fileURLToPath(new URL('../../fixtures/vm-guest.ts', import.meta.url))] }
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '')
}

async function records(file: string): Promise<string[]> {
  return lines(await readFile(file, 'utf8').catch(() => ''))
}

/** Polls `check` every 20 ms until it holds, failing after `limitMs` (a guard, not a measurement). */
async function poll(what: string, check: () => Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('vm end to end (process hosts giving guests their disks, local storage)', () => {
  it('a VM writing its disk on east is restored and running on an alternate host at west with exactly what it had written up to the last replicated backup', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'drkit-vm-e2e-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const roots = { east: path.join(dir, 'east-root'), west: path.join(dir, 'west-root') }
    const storage = { east: localStorage({ dir: path.join(dir, 'east'), fsync: false }), west: localStorage({ dir: path.join(dir, 'west'), fsync: false }) }
    const hosts = {
      east: processHost({ workDir: path.join(dir, 'east-host'), rootDir: roots.east, guest, hosts: [{ name: 'hv-p1', cpus: 8, memoryMb: 8192 }], stopGraceMs: 1000, disks: { storage: storage.east } }),
      west: processHost({
        workDir: path.join(dir, 'west-host'),
        rootDir: roots.west,
        guest,
        hosts: [{ name: 'hv-s1', cpus: 4, memoryMb: 4096 }, { name: 'hv-s2', cpus: 8, memoryMb: 8192 }],
        stopGraceMs: 1000,
        disks: { storage: storage.west },
      }),
    }
    cleanups.push(async () => {
      await hosts.east.close()
      await hosts.west.close()
      await storage.east.close()
      await storage.west.close()
    })
    const eastStorage = injectFaults<StoragePort>(storage.east, { name: 'east.storage' })
    const eastHost = injectFaults<HostPort>(hosts.east, { name: 'east.host' })
    const fabric = new MemoryNetworkFabric({ clock: systemClock })
    const sites: Record<string, { storage: StoragePort; host: HostPort }> = { east: { storage: eastStorage.port, host: eastHost.port }, west: { storage: storage.west, host: hosts.west } }
    const stateStore = memoryStateStore()
    const events = new EventBus<VmEvents & MirrorEvents>()
    const workflows = new WorkflowEngine({ stateStore, clock: systemClock })
    const mirror = await openMirrorModule({ stateStore, workflows, sites: (name) => ({ storage: sites[name]!.storage, network: fabric.port(name) }), events, clock: systemClock, token: () => token })
    const vm = await openVmModule({ stateStore, workflows, sites: (name) => sites[name]!, mirrors: mirror.facade, events, clock: systemClock, token: () => token })
    cleanups.push(async () => {
      await vm.close()
      await mirror.close()
    })

    await storage.east.createVolume({ name: 'vm1-disk0', sizeBytes: 1024 * 1024, blockSize: 4096 }, token)
    await eastHost.port.registerVm('hv-p1', { id: 'vm1', name: 'app server', cpus: 2, memoryMb: 2048, disks: [{ volume: 'vm1-disk0', mountPath: '/vm1/disk0' }], networks: ['prod'], tags: ['app'], config: { role: 'app' } }, token)
    await eastHost.port.powerOn('vm1', token)
    const eastFile = path.join(roots.east, 'vm1', 'disk0', 'data.log')
    await poll('the VM writing on east', async () => (await records(eastFile)).length >= 5)

    const report = await vm.facade.savePlan({ id: 'p1', source: 'east', destination: 'west', protect: { vms: ['vm1'] }, backupEvery: '1h', replicateEvery: '1h', placement: { rule: 'capacity', hosts: ['hv-s1', 'hv-s2'] } })
    expect(report.placed).toEqual([{ vmId: 'vm1', host: 'hv-s2', skipped: [] }])
    const replicatedBackup = await vm.facade.backupNow({ plan: 'p1', vm: 'vm1' })
    expect(replicatedBackup.consistency).toBe('application-consistent')
    const cuts = await vm.facade.replicateNow('p1')
    const mirrorId = (await mirror.facade.list())[0]!.id
    await poll('replication to west', async () => ((await mirror.facade.status(mirrorId)).lastPlayedBack ?? 0) >= (cuts['vm1'] ?? Infinity))

    await poll('more writes on east', async () => (await records(eastFile)).length > 15)
    const unreplicated = await vm.facade.backupNow({ plan: 'p1', vm: 'vm1' })
    expect(unreplicated.seq).toBe(2)

    // East is lost with its VM still running (not stopped first): its storage and hypervisor stop answering.
    eastStorage.crash()
    eastHost.crash()
    fabric.isolate('east')
    const result = await vm.facade.failover({ plan: 'p1' })
    expect(result.outcome).toBe('succeeded')
    expect(result.vms).toEqual([{ vmId: 'vm1', outcome: 'restored', host: 'hv-s2', backupId: replicatedBackup.backupId, restoredPointInTime: replicatedBackup.takenAt, reason: null }])
    expect(await hosts.west.getVm('vm1')).toMatchObject({ host: 'hv-s2', power: 'running', config: { role: 'app' } })

    // What the restored disk holds: every record the guest wrote before the replicated backup, contiguous, nothing
    // after it — and what the guest on east wrote next (it is still running) continues exactly from there.
    const view = path.join(dir, 'restored-view')
    await new DiskSync(storage.west).materialise('vm1-disk0', view)
    const restored = await records(path.join(view, 'data.log'))
    expect(restored.length).toBeGreaterThanOrEqual(5)
    expect(restored).toEqual(Array.from({ length: restored.length }, (_, i) => String(i + 1)))
    const east = await records(eastFile)
    expect(east.slice(0, restored.length)).toEqual(restored)
    expect(east.length).toBeGreaterThan(restored.length + 10)
    expect((await hosts.east.getVm('vm1'))?.power).toBe('running')

    // The restored VM runs on west from its restored disk and carries on from the last record it holds.
    const westFile = path.join(roots.west, 'vm1', 'disk0', 'data.log')
    await poll('the restored VM writing on west', async () => (await records(westFile)).length > restored.length + 3)
    const west = await records(westFile)
    expect(west.slice(0, restored.length)).toEqual(restored)
    expect(west[restored.length]).toBe(String(restored.length + 1))
    const [metadataAtWest] = (await vm.facade.listBackups({ vm: 'vm1', site: 'west' })).slice(-1)
    expect(metadataAtWest?.metadata.hostName).toBe('hv-p1')
  }, 60_000)
})
