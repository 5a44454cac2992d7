/**
 * VM recovery benchmarks: the failover of a DR plan protecting N VMs (N = 10, 100, 1000; `VM_BENCH_SIZES=10,100`
 * for fewer), each with one small disk backed up and replicated beforehand, on memory storage and a memory
 * network, with memory hosts behind a fault injector that adds 20 ms to every call to a destination host during
 * the failover (a remote hypervisor API; storage calls are not delayed). The plan restores at most 32 VMs at once.
 * A failover of 10 VMs runs first, unreported, to warm the process up.
 *
 * Each N reports the recovery time — seconds from `vms.failover` to every VM registered and running on an
 * alternate host — twice, against two limits measured in the same run from the host calls the failover made:
 *
 * - `recovery-n<N>`: against host calls × 20 ms ÷ 32, the formula. It assumes every call can overlap 32
 *   ways, which the work does not allow (below N = 32 fewer VMs run at once; one VM's calls are sequential).
 * - `recovery-n<N>-floor`: against the critical path the calls allow: 20 ms (the placement reads the hosts and the
 *   registered VMs, concurrently) + ⌈N ÷ 32⌉ waves × (host calls per VM) × 20 ms. The ratio is the overhead the
 *   host latency does not explain: mirror breaks, the storage cycle, the scan, journaling and CPU.
 *
 * The time split by phase (breaks, cycle and scan, placement, restores) is printed on stderr.
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
/** Host calls the failover makes once, on its critical path, before any restore (listHosts ∥ listVms). */
const PLACEMENT_WAITS = 1

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise<void>((resolve) => setTimeout(resolve, 5))
}

interface Recovery {
  readonly seconds: number
  readonly calls: number
  readonly perVm: number
  readonly phases: Readonly<Record<string, number>>
}

async function recovery(n: number): Promise<Recovery> {
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
    for (const rel of await mirror.facade.list()) {
      const want = cuts[rel.source.volume.slice('drvm-'.length)] ?? 0
      await waitFor(async () => ((await mirror.facade.status(rel.id)).lastPlayedBack ?? 0) >= want)
    }
    fabric.isolate('east')
    westHost.setLatency(LATENCY_MS)
    const before = westHost.calls.length
    const marks: Record<string, number> = {}
    const mark = (name: string) => () => (marks[name] = performance.now())
    events.on('vm.mirrorBroken', mark('breaks'))
    events.on('vm.backupDataDiscovered', mark('scan'))
    events.on('vm.alternateHostSelected', () => (marks['place'] ??= performance.now()))
    const start = performance.now()
    const { ms, result } = await timed(() => vm.facade.failover({ plan: 'p' }))
    if (result.outcome !== 'succeeded') throw new Error(`failover of ${n} VMs ended ${result.outcome}`)
    const made = westHost.calls.slice(before)
    const perVm = made.filter((c) => c.method === 'registerVm' || c.method === 'powerOn' || c.method === 'getVm').length / n
    const at = (name: string): number => ((marks[name] ?? start) - start) / 1000
    const phases = { breaks: at('breaks'), 'cycle+scan': at('scan') - at('breaks'), place: at('place') - at('scan'), restores: ms / 1000 - at('place') }
    return { seconds: ms / 1000, calls: made.length, perVm, phases }
  } finally {
    await vm.close()
    await mirror.close()
  }
}

function sizes(): number[] {
  const given = process.env['VM_BENCH_SIZES']
  return given === undefined ? [10, 100, 1000] : given.split(',').map(Number).filter((n) => Number.isSafeInteger(n) && n > 0)
}

/** Runs the VM recovery cases. */
export async function run(report: Report): Promise<void> {
  await recovery(10)
  for (const n of sizes()) {
    const measured = await recovery(n)
    const formula = (measured.calls * LATENCY_MS) / PARALLEL / 1000
    const floor = ((PLACEMENT_WAITS + Math.ceil(n / PARALLEL) * measured.perVm) * LATENCY_MS) / 1000
    report({ case: `recovery-n${n}`, metric: 'recovery time', value: measured.seconds, unit: 's', baseline: `host calls x ${LATENCY_MS} ms / ${PARALLEL}`, baselineValue: formula })
    report({
      case: `recovery-n${n}-floor`,
      metric: 'recovery time',
      value: measured.seconds,
      unit: 's',
      baseline: `critical path: ${LATENCY_MS} ms + ceil(n/${PARALLEL}) x ${measured.perVm} calls/VM x ${LATENCY_MS} ms`,
      baselineValue: floor,
    })
    const split = Object.entries(measured.phases).map(([phase, seconds]) => `${phase} ${seconds.toFixed(3)} s`)
    process.stderr.write(`vm recovery-n${n}: ${measured.calls} host calls (${measured.perVm} per VM); ${split.join(', ')}\n`)
  }
}
