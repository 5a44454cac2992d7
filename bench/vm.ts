/**
 * VM recovery benchmarks: the failover of a DR plan protecting N VMs (N = 10, 100, 1000), each with one small disk
 * backed up and replicated beforehand, on memory storage and a memory network, with memory hosts behind a fault
 * injector that adds 20 ms to every host call during the failover (a remote hypervisor API; storage calls are not
 * delayed). The plan restores at most 32 VMs at once.
 *
 * - `recovery-n<N>`: seconds from `vms.failover` to every VM registered and running on an alternate host, against
 *   the limit the host calls allow, measured in the same run: the number of host calls the failover made × 20 ms
 *   ÷ 32 (the concurrency). The ratio is the overhead over that limit: mirror breaks, storage cycles, the scan and
 *   the journal, which the limit does not count.
 */
import { memoryHost } from '../src/adapters/memory/host.js'
import { MemoryNetworkFabric } from '../src/adapters/memory/network.js'
import { memoryStorage } from '../src/adapters/memory/storage.js'
import { EventBus, WorkflowEngine, systemClock, type FenceToken } from '../src/kernel/index.js'
import { memoryStateStore } from '../src/kernel/memory-state-store.js'
import { openMirrorModule, type MirrorEvents } from '../src/modules/mirror/index.js'
import { openVmModule, type VmEvents } from '../src/modules/vm/index.js'
import type { HostPort } from '../src/ports/host.js'
import type { StoragePort } from '../src/ports/storage.js'
import { injectFaults } from '../src/testkit/faults.js'
import { timed, type Report } from './report.js'

const token: FenceToken = { scope: 'bench', value: 1 }
const LATENCY_MS = 20
const PARALLEL = 32

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise<void>((resolve) => setTimeout(resolve, 5))
}

async function recovery(n: number): Promise<{ seconds: number; limitSeconds: number }> {
  const clock = systemClock
  const storages = { east: memoryStorage({ clock }), west: memoryStorage({ clock }) }
  const eastHost = memoryHost({ clock, hosts: [{ name: 'hv-p1', cpus: 4 * n, memoryMb: 1024 * n }] })
  const westHosts = Array.from({ length: 8 }, (_, i) => ({ name: `hv-s${i + 1}`, cpus: n, memoryMb: 256 * n }))
  const westHost = injectFaults<HostPort>(memoryHost({ clock, hosts: westHosts }), { name: 'west.host' })
  const fabric = new MemoryNetworkFabric({ clock })
  const sites: Record<string, { storage: StoragePort; host: HostPort }> = { east: { storage: storages.east, host: eastHost }, west: { storage: storages.west, host: westHost.port } }
  const stateStore = memoryStateStore()
  const events = new EventBus<VmEvents & MirrorEvents>()
  const workflows = new WorkflowEngine({ stateStore, clock })
  const mirror = await openMirrorModule({ stateStore, workflows, sites: (name) => ({ storage: sites[name]!.storage, network: fabric.port(name) }), events, clock, token: () => token })
  const vm = await openVmModule({ stateStore, workflows, sites: (name) => sites[name]!, mirrors: mirror.facade, events, clock, token: () => token })
  try {
    for (let i = 0; i < n; i++) {
      const id = `vm${i}`
      await storages.east.createVolume({ name: `${id}-disk`, sizeBytes: 16 * 4096, blockSize: 4096 }, token)
      await storages.east.write(`${id}-disk`, 0, new Uint8Array(4096).fill(i & 0xff), token)
      await eastHost.registerVm('hv-p1', { id, name: id, cpus: 1, memoryMb: 128, disks: [{ volume: `${id}-disk`, mountPath: `/${id}` }], networks: ['prod'], tags: ['app'], config: null }, token)
      await eastHost.powerOn(id, token)
    }
    await vm.facade.savePlan({ id: 'p', source: 'east', destination: 'west', protect: { tags: ['app'] }, backupEvery: '1d', replicateEvery: '1d', placement: { rule: 'capacity', hosts: westHosts.map((h) => h.name) }, maxParallel: PARALLEL })
    for (let i = 0; i < n; i++) await vm.facade.backupNow({ plan: 'p', vm: `vm${i}` })
    const cuts = await vm.facade.replicateNow('p')
    const relationships = await mirror.facade.list()
    for (const rel of relationships) {
      const want = cuts[rel.source.volume.slice('drvm-'.length)] ?? 0
      await waitFor(async () => ((await mirror.facade.status(rel.id)).lastPlayedBack ?? 0) >= want)
    }
    fabric.isolate('east')
    westHost.setLatency(LATENCY_MS)
    const before = westHost.count()
    const { ms, result } = await timed(() => vm.facade.failover({ plan: 'p' }))
    if (result.outcome !== 'succeeded') throw new Error(`failover of ${n} VMs ended ${result.outcome}`)
    const calls = westHost.count() - before
    return { seconds: ms / 1000, limitSeconds: (calls * LATENCY_MS) / PARALLEL / 1000 }
  } finally {
    await vm.close()
    await mirror.close()
  }
}

/** Runs the VM recovery cases. */
export async function run(report: Report): Promise<void> {
  for (const n of [10, 100, 1000]) {
    const { seconds, limitSeconds } = await recovery(n)
    report({ case: `recovery-n${n}`, metric: 'recovery time', value: seconds, unit: 's', baseline: `host calls x ${LATENCY_MS} ms / ${PARALLEL}`, baselineValue: limitSeconds })
  }
}
