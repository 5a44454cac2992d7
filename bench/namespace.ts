/**
 * Namespace data-protection benchmarks, on memory storage and a memory namespace server behind fault injectors
 * that add 5 ms to every call once the measurement starts (a slow file server and DFS server), and a mirror
 * stand-in with the same latency. N link points (N = 1,000 and 10,000), each on its own primary share of one
 * volume, all protected by one policy (automatic failover, break the mirror, declared after 1 failed probe),
 * 64 probes and 64 failovers at once. The journal is the file journal (the embedded default), and the failover
 * case is also run on the memory journal.
 *
 * - `detect-failover-n<N>` (file journal) and `detect-failover-n<N>-memory-journal`: wall time from the monitoring
 *   pass that finds every share's volume offline to the end of the last failover (every link switched to its own
 *   destination share, created on the mirror's destination; one mirror failover; the namespace pushed), against
 *   the floor the adapter calls that run really made allow, counted in the same run: storage and mirror calls ×
 *   5 ms ÷ 64, plus the namespace-server calls × 5 ms (they are versioned writes to one namespace, one at a time).
 * - `detect-failover-n<N>-limit`: the same time against the physical limit of one 5 ms call per link at 64 at
 *   once (5 ms × N ÷ 64), which no design that probes, exports and switches can reach.
 * - `memory-per-link-n<N>`: heap bytes per protected link point held by the coordinator after set-up and one
 *   monitoring pass (catalog, indexes, monitor state; the file journal keeps the records on disk), against the
 *   heap of link records parsed from JSON and held in an array: what any process needs to hold them.
 *
 * `NAMESPACE_BENCH_LINKS` (comma-separated) replaces the sizes, for a scaled-down run.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { fileStateStore } from '../src/adapters/file/file-state-store.js'
import { memoryStorage } from '../src/adapters/memory/storage.js'
import { memoryHost } from '../src/adapters/memory/host.js'
import { MemoryNamespaceServer } from '../src/adapters/memory/network.js'
import { DrError, EventBus, WorkflowEngine, systemClock, type FenceToken, type StateStore } from '../src/kernel/index.js'
import { memoryStateStore } from '../src/kernel/memory-state-store.js'
import { openNamespaceModule, type MirrorControl, type MirrorDescription, type NamespaceEvents } from '../src/modules/namespace/index.js'
import type { NamespaceServer } from '../src/ports/network.js'
import type { StoragePort } from '../src/ports/storage.js'
import { injectFaults, type FaultInjector } from '../src/testkit/faults.js'
import type { Report } from './report.js'

const token: FenceToken = { scope: 'bench', value: 1 }
const LATENCY_MS = 5
const CONCURRENCY = 64

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heap(): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** A mirror stand-in with the adapter latency that counts its calls: failover swaps the sides once. */
function slowMirror(latency: () => number): MirrorControl & { calls: number } {
  let rel: MirrorDescription = { id: 'm1', source: { site: 'east', volume: 'data' }, destination: { site: 'west', volume: 'data' }, state: 'replicating', epoch: 1, lastPlayedBack: 1 }
  const pause = async (): Promise<void> => {
    control.calls += 1
    const ms = latency()
    if (ms > 0) await systemClock.sleep(ms)
  }
  const control = {
    calls: 0,
    async describe(id: string): Promise<MirrorDescription> {
      await pause()
      if (id !== rel.id) throw new DrError('E_NOT_FOUND', `mirror "${id}" does not exist`)
      return structuredClone(rel)
    },
    async failover(): Promise<unknown> {
      await pause()
      rel = { ...rel, source: rel.destination, destination: rel.source, state: 'failedOver', epoch: rel.epoch + 1 }
      return null
    },
  }
  return control
}

async function inBatches<T>(items: readonly T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work))
}

/**
 * Heap bytes per link record (what `namespace.get` returns for a link) parsed from JSON and held, measured over at
 * least 20,000 records so that the collector's noise does not matter.
 */
function parsedRecordsPerLink(sample: unknown): number {
  const text = JSON.stringify(sample)
  const count = 20_000
  const texts = Array.from({ length: count }, (_, i) => text.replaceAll('/l0', `/l${i}`).replaceAll('"s0', `"s${i}`))
  const before = heap()
  const held = texts.map((t) => JSON.parse(t) as unknown)
  const perLink = (heap() - before) / count
  if (held.length !== count) throw new Error('lost records')
  return perLink
}

interface Outcome {
  readonly ms: number
  readonly floorMs: number
  readonly calls: { readonly storage: number; readonly mirror: number; readonly server: number }
  readonly heapPerLink: number
  readonly peerPerLink: number
}

async function scenario(links: number, stateStore: StateStore): Promise<Outcome> {
  let latency = 0
  const raw = { east: memoryStorage(), west: memoryStorage() }
  await raw.east.createVolume({ name: 'data', sizeBytes: 1024 * 4096, blockSize: 4096 }, token)
  await raw.west.createVolume({ name: 'data', sizeBytes: 1024 * 4096, blockSize: 4096 }, token)
  const paths = Array.from({ length: links }, (_, i) => `/l${i}`)
  for (let i = 0; i < links; i++) await raw.east.createShare({ name: `s${i}`, volume: 'data', path: `/s${i}`, protocol: 'smb', access: ['read', 'write'] }, token)
  const storages: Record<string, FaultInjector<StoragePort>> = {
    east: injectFaults<StoragePort>(raw.east, { name: 'storage.east' }),
    west: injectFaults<StoragePort>(raw.west, { name: 'storage.west' }),
  }
  const server = new MemoryNamespaceServer()
  await server.writeNamespace({ namespace: 'corp', version: 1, links: paths.map((path, i) => ({ path, targets: [{ site: 'east', share: `s${i}`, state: 'active' as const }] })) }, token)
  const namespaceServer = injectFaults<NamespaceServer>(server, { name: 'namespaceServer' })
  for (const injector of [storages['east']!, storages['west']!, namespaceServer]) injector.setLatency(() => latency)
  const mirror = slowMirror(() => latency)
  const before = heap()
  const module = await openNamespaceModule({
    stateStore,
    workflows: new WorkflowEngine({ stateStore, clock: systemClock }),
    storage: (site) => (storages[site] ?? storages['east']!).port,
    host: () => memoryHost(),
    namespaceServer: () => namespaceServer.port,
    mirrors: mirror,
    events: new EventBus<NamespaceEvents>(),
    clock: systemClock,
    token: () => token,
    monitor: false,
    probeConcurrency: CONCURRENCY,
    failoverConcurrency: CONCURRENCY,
  })
  const ns = module.facade
  await ns.createNamespace({ namespace: 'corp' })
  await ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 1 })
  await inBatches(paths, CONCURRENCY, (path) => ns.protect({ namespace: 'corp', path, policy: 'gold', mirrorId: 'm1', destinationShare: `${path.slice(2)}_dr` }))
  await ns.probeNow()
  // The injectors log every call; what they hold is the benchmark's, not the coordinator's.
  for (const injector of [storages['east']!, storages['west']!, namespaceServer]) {
    injector.reset()
    injector.setLatency(() => latency)
  }
  const heapPerLink = (heap() - before) / links
  const peerPerLink = parsedRecordsPerLink(await ns.get({ namespace: 'corp', path: '/l0' }))

  const calls = () => ({ storage: storages['east']!.count() + storages['west']!.count(), mirror: mirror.calls, server: namespaceServer.count() })
  await raw.east.setOnline('data', false, token)
  latency = LATENCY_MS
  const start = calls()
  const began = performance.now()
  const pass = await ns.probeNow()
  await ns.idle()
  const ms = performance.now() - began
  const end = calls()
  latency = 0
  const failedOver = (await ns.list({ namespace: 'corp' })).filter((node) => node.protection?.state === 'failedOver').length
  if (pass.failoversStarted !== links || failedOver !== links) throw new Error(`only ${failedOver} of ${links} links failed over`)
  const resolved = await server.resolve('corp', `/l${links - 1}`)
  if (resolved.target.site !== 'west') throw new Error('the last link does not resolve to the destination')
  await module.close()
  const made = { storage: end.storage - start.storage, mirror: end.mirror - start.mirror, server: end.server - start.server }
  const floorMs = ((made.storage + made.mirror) * LATENCY_MS) / CONCURRENCY + made.server * LATENCY_MS
  return { ms, floorMs, calls: made, heapPerLink, peerPerLink }
}

async function onFileJournal(links: number): Promise<Outcome> {
  const dir = await mkdtemp(join(tmpdir(), 'drkit-bench-namespace-'))
  const stateStore = fileStateStore({ dir })
  try {
    return await scenario(links, stateStore)
  } finally {
    await stateStore.close()
    await rm(dir, { recursive: true, force: true })
  }
}

function floorName(calls: Outcome['calls']): string {
  return `adapter calls made (${calls.storage} storage + ${calls.mirror} mirror) x ${LATENCY_MS} ms / ${CONCURRENCY} + ${calls.server} namespace-server calls x ${LATENCY_MS} ms`
}

/** Runs the namespace suite. */
export async function run(report: Report): Promise<void> {
  const sizes = (process.env['NAMESPACE_BENCH_LINKS'] ?? '1000,10000').split(',').map(Number)
  for (const links of sizes) {
    const file = await onFileJournal(links)
    report({ case: `detect-failover-n${links}`, metric: 'wallTime', value: file.ms, unit: 'ms', baseline: floorName(file.calls), baselineValue: file.floorMs })
    report({ case: `detect-failover-n${links}-limit`, metric: 'wallTime', value: file.ms, unit: 'ms', baseline: `physical limit (${LATENCY_MS} ms x links / ${CONCURRENCY})`, baselineValue: (LATENCY_MS * links) / CONCURRENCY })
    report({ case: `memory-per-link-n${links}`, metric: 'heapPerLink', value: file.heapPerLink, unit: 'bytes', baseline: 'heap of a link record parsed from JSON', baselineValue: file.peerPerLink })
    const memory = await scenario(links, memoryStateStore())
    report({ case: `detect-failover-n${links}-memory-journal`, metric: 'wallTime', value: memory.ms, unit: 'ms', baseline: floorName(memory.calls), baselineValue: memory.floorMs })
  }
}
