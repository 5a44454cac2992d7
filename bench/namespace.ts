/**
 * Namespace data-protection benchmarks, on memory storage and a memory namespace server that each add 5 ms to
 * every call (a slow file server and DFS server; the shape, not the absolute numbers, is the point).
 *
 * - `detect-failover-n<N>`: N link points (N = 1,000 and 10,000), each on its own primary share of one volume,
 *   all protected by one policy (automatic failover, break the mirror, declared after 1 failed probe). The
 *   volume goes offline; measured is the wall time from the monitoring pass that probes every share to the end
 *   of the last failover (every link switched to its own destination share, created on the mirror's
 *   destination; one mirror failover; the namespace pushed). The physical limit in the same run is the adapter
 *   latency × links ÷ concurrency: what one adapter call per link would cost at the configured concurrency.
 * - `memory-per-link-n<N>`: heap bytes per protected link point (catalog, journal and monitor state), against the
 *   size of the link's protection record serialised as JSON.
 */
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { memoryStorage } from '../src/adapters/memory/storage.js'
import { memoryHost } from '../src/adapters/memory/host.js'
import { MemoryNamespaceServer } from '../src/adapters/memory/network.js'
import { DrError, EventBus, WorkflowEngine, systemClock, type FenceToken } from '../src/kernel/index.js'
import { memoryStateStore } from '../src/kernel/memory-state-store.js'
import { openNamespaceModule, type MirrorControl, type MirrorDescription, type NamespaceEvents } from '../src/modules/namespace/index.js'
import type { NamespaceServer } from '../src/ports/network.js'
import { injectFaults } from '../src/testkit/faults.js'
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

/** A mirror stand-in with the adapter latency: failover swaps the sides once. */
function slowMirror(): MirrorControl {
  let rel: MirrorDescription = { id: 'm1', source: { site: 'east', volume: 'data' }, destination: { site: 'west', volume: 'data' }, state: 'replicating', epoch: 1, lastPlayedBack: 1 }
  const pause = (): Promise<void> => systemClock.sleep(LATENCY_MS)
  return {
    async describe(id) {
      await pause()
      if (id !== rel.id) throw new DrError('E_NOT_FOUND', `mirror "${id}" does not exist`)
      return structuredClone(rel)
    },
    async failover() {
      await pause()
      rel = { ...rel, source: rel.destination, destination: rel.source, state: 'failedOver', epoch: rel.epoch + 1 }
      return null
    },
  }
}

async function inBatches<T>(items: readonly T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work))
}

async function scenario(report: Report, links: number): Promise<void> {
  let latency = 0
  const east = memoryStorage({ latencyMs: () => latency })
  const west = memoryStorage({ latencyMs: () => latency })
  const storages: Record<string, typeof east> = { east, west }
  await east.createVolume({ name: 'data', sizeBytes: 1024 * 4096, blockSize: 4096 }, token)
  await west.createVolume({ name: 'data', sizeBytes: 1024 * 4096, blockSize: 4096 }, token)
  const paths = Array.from({ length: links }, (_, i) => `/l${i}`)
  for (let i = 0; i < links; i++) await east.createShare({ name: `s${i}`, volume: 'data', path: `/s${i}`, protocol: 'smb', access: ['read', 'write'] }, token)
  const raw = new MemoryNamespaceServer()
  await raw.writeNamespace({ namespace: 'corp', version: 1, links: paths.map((path, i) => ({ path, targets: [{ site: 'east', share: `s${i}`, state: 'active' as const }] })) }, token)
  const server = injectFaults<NamespaceServer>(raw, { name: 'namespaceServer' })
  server.setLatency(() => latency)
  const stateStore = memoryStateStore()
  const before = heap()
  const module = await openNamespaceModule({
    stateStore,
    workflows: new WorkflowEngine({ stateStore, clock: systemClock }),
    storage: (site) => storages[site] ?? east,
    host: () => memoryHost(),
    namespaceServer: () => server.port,
    mirrors: slowMirror(),
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
  const perLink = (heap() - before) / links
  const record = JSON.stringify((await ns.get({ namespace: 'corp', path: '/l0' })).protection)
  report({ case: `memory-per-link-n${links}`, metric: 'heapPerLink', value: perLink, unit: 'bytes', baseline: 'protection record as JSON', baselineValue: record.length })

  latency = LATENCY_MS
  await east.setOnline('data', false, token)
  const start = performance.now()
  const pass = await ns.probeNow()
  await ns.idle()
  const ms = performance.now() - start
  const failedOver = (await ns.list({ namespace: 'corp' })).filter((node) => node.protection?.state === 'failedOver').length
  if (pass.failoversStarted !== links || failedOver !== links) throw new Error(`only ${failedOver} of ${links} links failed over`)
  const resolved = await raw.resolve('corp', `/l${links - 1}`)
  if (resolved.target.site !== 'west') throw new Error('the last link does not resolve to the destination')
  report({ case: `detect-failover-n${links}`, metric: 'wallTime', value: ms, unit: 'ms', baseline: `physical limit (${LATENCY_MS} ms x links / ${CONCURRENCY})`, baselineValue: (LATENCY_MS * links) / CONCURRENCY })
  await module.close()
}

/** Runs the namespace suite. */
export async function run(report: Report): Promise<void> {
  await scenario(report, 1_000)
  await scenario(report, 10_000)
}
