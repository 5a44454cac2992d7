/**
 * Expandable-volume benchmarks, on memory storage behind a fault injector that adds 1 ms to every storage call
 * (a fast local array; the shape, not the absolute numbers, is the point).
 *
 * - `fence-window-n<N>`: the fence window of a consistency-group snapshot — from the first fence call to the end of
 *   the last unfence — with N = 1, 4, 16, 64 data constituents (median of 5), against a strictly serial
 *   fence → snapshot → unfence of the same members on the same port (the seed's literal procedure), measured in
 *   the same run. The group fences the namespace, then the OLS, then every data constituent in parallel, snapshots
 *   every member in parallel and unfences the data constituents in parallel; it also journals every step.
 * - `write-p50-during-snapshot` / `write-p99-during-snapshot`: the latency of 4 KiB writes to a data constituent
 *   issued while groups run back to back (16 data constituents), against the same writer with no snapshot.
 * - `put-p50-during-snapshot` / `put-p99-during-snapshot`: the same for object puts (five to seven storage calls
 *   through namespace, OLS and a data constituent).
 */
import { performance } from 'node:perf_hooks'
import { memoryStorage } from '../src/adapters/memory/storage.js'
import { EventBus, WorkflowEngine, systemClock, type FenceToken } from '../src/kernel/index.js'
import { memoryStateStore } from '../src/kernel/memory-state-store.js'
import { openVolumeModule, type VolumeEvents, type VolumeFacade } from '../src/modules/volume/index.js'
import type { StoragePort } from '../src/ports/storage.js'
import { injectFaults } from '../src/testkit/faults.js'
import type { Report } from './report.js'

const token: FenceToken = { scope: 'bench', value: 1 }
const site = 'east'
const REPEATS = 5

function median(values: readonly number[]): number {
  return percentile(values, 0.5)
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN
}

/** A port that remembers when the first fence started and the last unfence ended (wall clock, ms). */
function windowed(port: StoragePort): { port: StoragePort; reset(): void; window(): number } {
  let first = Number.NaN
  let last = Number.NaN
  const traced = new Proxy(port, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      const bound = (value as (...a: unknown[]) => Promise<unknown>).bind(target)
      if (property === 'fence') {
        return (...args: unknown[]) => {
          if (Number.isNaN(first)) first = performance.now()
          return bound(...args)
        }
      }
      if (property === 'unfence') return async (...args: unknown[]) => bound(...args).finally(() => (last = performance.now()))
      return bound
    },
  })
  return {
    port: traced,
    reset: () => {
      first = Number.NaN
      last = Number.NaN
    },
    window: () => last - first,
  }
}

async function volumeWorld(dataConstituents: number): Promise<{ volumes: VolumeFacade; port: StoragePort; trace: ReturnType<typeof windowed> }> {
  const faults = injectFaults<StoragePort>(memoryStorage(), { name: site })
  faults.setLatency(1)
  const trace = windowed(faults.port)
  const stateStore = memoryStateStore()
  const workflows = new WorkflowEngine({ stateStore, clock: systemClock })
  const { facade } = await openVolumeModule({
    stateStore,
    workflows,
    storage: () => trace.port,
    events: new EventBus<VolumeEvents>(),
    clock: systemClock,
    token: () => token,
  })
  await facade.create({ site, volume: 'bench', dataConstituents, size: '256KiB', maxObjects: 256 })
  return { volumes: facade, port: trace.port, trace }
}

/** The seed's procedure, strictly serial: fence each member in order, snapshot each, unfence each in reverse. */
async function serialGroup(port: StoragePort, members: readonly string[], name: string): Promise<void> {
  for (const member of members) await port.fence(member, token)
  for (const member of members) await port.createSnapshot(member, name, token)
  for (const member of [...members].reverse()) await port.unfence(member, token)
}

async function fenceWindows(report: Report): Promise<void> {
  for (const n of [1, 4, 16, 64]) {
    const { volumes, port, trace } = await volumeWorld(n)
    const members = (await volumes.get({ site, volume: 'bench' })).members.map((m) => m.volume)
    const group: number[] = []
    const serial: number[] = []
    for (let i = 0; i < REPEATS; i++) {
      trace.reset()
      await volumes.snapshot({ site, volume: 'bench', name: `g${i}` })
      group.push(trace.window())
      trace.reset()
      await serialGroup(port, members, `s${i}`)
      serial.push(trace.window())
    }
    report({
      case: `fence-window-n${n}`,
      metric: `fence window, first fence to last unfence (${n} data constituents, 1 ms per storage call)`,
      value: median(group),
      unit: 'ms',
      baseline: 'strictly serial fence-snapshot-unfence of the same members on the same port',
      baselineValue: median(serial),
    })
  }
}

/**
 * Runs `write` back to back for `durationMs`, optionally while groups run back to back, and returns the latency of
 * the writes issued while a group was running (or of all of them, without groups).
 */
async function writerLatencies(volumes: VolumeFacade, write: (i: number) => Promise<unknown>, withGroups: boolean, durationMs: number): Promise<number[]> {
  const windows: Array<[number, number]> = []
  const samples: Array<[number, number]> = []
  const end = performance.now() + durationMs
  let stop = false
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const start = performance.now()
      await write(i)
      samples.push([start, performance.now() - start])
    }
  })()
  if (withGroups) {
    for (let i = 0; performance.now() < end; i++) {
      const start = performance.now()
      await volumes.snapshot({ site, volume: 'bench', name: `w${Date.now()}-${i}` })
      windows.push([start, performance.now()])
    }
  } else {
    await new Promise((resolve) => setTimeout(resolve, durationMs))
  }
  stop = true
  await writer
  return samples.filter(([start]) => !withGroups || windows.some(([from, to]) => start >= from && start <= to)).map(([, ms]) => ms)
}

async function writerLatency(report: Report): Promise<void> {
  const block = new Uint8Array(4096).fill(7)
  for (const kind of ['write', 'put'] as const) {
    const { volumes, port } = await volumeWorld(16)
    const write =
      kind === 'write'
        ? (i: number): Promise<unknown> => port.write('bench.dc-5', (i % 32) * 4096 + 131072, block, token)
        : (i: number): Promise<unknown> => volumes.putObject({ site, volume: 'bench', path: `obj-${i % 64}`, data: block })
    const quiet = await writerLatencies(volumes, write, false, 2_000)
    const busy = await writerLatencies(volumes, write, true, 3_000)
    for (const [label, p] of [
      ['p50', 0.5],
      ['p99', 0.99],
    ] as const) {
      report({
        case: `${kind}-${label}-during-snapshot`,
        metric: `${label} latency of ${kind === 'write' ? '4 KiB writes to a data constituent' : 'object puts'} issued while a group runs (16 data constituents, ${busy.length} samples)`,
        value: percentile(busy, p),
        unit: 'ms',
        baseline: `${label} of the same writer with no snapshot (${quiet.length} samples)`,
        baselineValue: percentile(quiet, p),
      })
    }
  }
}

/** Runs every case of the suite. */
export async function run(report: Report): Promise<void> {
  await fenceWindows(report)
  await writerLatency(report)
}
