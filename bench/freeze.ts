/**
 * Non-disruptive restore benchmarks, on the local storage adapter (two pools in a temporary directory, no fsync),
 * a memory host, 1 GiB volumes with 64 KiB blocks (`FREEZE_BENCH_MIB` to change), and each case run twice: with the
 * memory state store, and with the file state store (fsync with group commit: the embedded default), where every
 * durable step of the restore is an fsync'd append.
 *
 * Applications: four readers issuing 4 KiB reads through write-through handles, yielding to the event loop
 * (`setTimeout(0)`) between reads so that they contend with the restore for it, and two writers whose write-back
 * caches hold sixteen 4 KiB writes when each restore starts (so the journal and its replay are in every
 * measurement). Each restore is a detected disruption (`reportDisruption`): the volume's I/O is held from that
 * moment, and a read issued right after it is held for the whole window. `FREEZE_BENCH_RESTORES` restores per case
 * (default 30) after two warm-up restores that are not counted; each is followed by the same restore run alone.
 *
 * - `window-<source>-<store>`: the median freeze window (first held I/O to thaw, as `freeze.thawed` reports it),
 *   against the median of the same restore alone: the swap alone for `standby` (dismount + mount on the same host
 *   port), `restoreSnapshot` alone after the same 1% change for `snapshot-1pct`, the same incremental copy
 *   (`restoreFrom`) for `replica-1pct` (the replica changed 1% of its blocks since the common snapshot).
 * - `held-read-<source>-<store>`: the median latency of the reads issued while the volume was frozen (each timed
 *   from its call to its answer), against the median latency of the same readers with no restore running; the
 *   metric names the number of held reads and their maximum.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { memoryHost } from '../src/adapters/memory/host.js'
import { openLocalStorage, type LocalStorage } from '../src/adapters/local/local-storage.js'
import { openFileStateStore } from '../src/adapters/file/file-state-store.js'
import { EventBus, WorkflowEngine, systemClock, type Clock, type FenceToken, type StateStore } from '../src/kernel/index.js'
import { memoryStateStore } from '../src/kernel/memory-state-store.js'
import { openFreezeModule, restoreFrom, type FreezeEvents, type FreezeFacade, type RestoreSource, type SourceContext, type VolumeHandle } from '../src/modules/freeze/index.js'
import type { Report } from './report.js'

const token: FenceToken = { scope: 'bench', value: 1 }
const MiB = 1024 * 1024
const BLOCK = 64 * 1024
const SIZE = Number(process.env['FREEZE_BENCH_MIB'] ?? 1024) * MiB
const BLOCKS = SIZE / BLOCK
const CHANGED = Math.max(1, Math.round(BLOCKS / 100))
const RESTORES = Math.max(1, Number(process.env['FREEZE_BENCH_RESTORES'] ?? 30))
const WARMUP = 2
const READERS = 4
const WRITERS = 2
const CACHED_WRITES = 8
const MOUNT = '/srv/vol'

/** Wall time with sub-millisecond resolution, so that short freeze windows are measured, not rounded to 0. */
const preciseClock: Clock = { ...systemClock, now: () => performance.timeOrigin + performance.now() }

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

/** Writes `count` distinct pseudo-random blocks of `volume` (deterministic per `seed`). */
async function changeBlocks(storage: LocalStorage, volume: string, count: number, seed: number): Promise<void> {
  const data = new Uint8Array(BLOCK).fill(seed & 0xff)
  const chosen = new Set<number>()
  let x = Math.imul(seed, 2654435761) >>> 0
  while (chosen.size < count) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    chosen.add((x >>> 8) % BLOCKS)
  }
  for (const block of chosen) await storage.write(volume, block * BLOCK, data, token)
}

/** One read: when it was called and how long it took to answer. */
interface ReadSample {
  readonly at: number
  readonly ms: number
}

/** Readers issuing 4 KiB reads one after the other, each yielding to the event loop in between. */
function startReaders(handles: readonly VolumeHandle[]): { samples: ReadSample[]; stop(): Promise<void> } {
  const samples: ReadSample[] = []
  let running = true
  const loops = handles.map(async (handle, i) => {
    for (let n = i; running; n += READERS) {
      const at = preciseClock.now()
      await handle.read(((n * 7919) % BLOCKS) * BLOCK, 4096)
      samples.push({ at, ms: preciseClock.now() - at })
      await new Promise((resolve) => setTimeout(resolve, 0))
    }
  })
  return {
    samples,
    stop: async () => {
      running = false
      await Promise.all(loops)
    },
  }
}

/** What one state store variant needs: the facade, the handles, and the windows `freeze.thawed` reports. */
interface Variant {
  readonly store: string
  readonly freeze: FreezeFacade
  readonly readers: readonly VolumeHandle[]
  readonly writers: readonly VolumeHandle[]
  readonly windows: Array<{ readonly at: number; readonly ms: number }>
  readonly idleMedian: number
}

/** A restore case: what to restore from in round `i`, and the same restore alone (its duration in ms). */
interface RestoreCase {
  readonly name: string
  readonly prepare: (i: number) => Promise<RestoreSource>
  readonly alone: (i: number) => Promise<number>
}

/** Runs `RESTORES` (+ warm-up) detected restores of one case on one variant, and reports them. */
async function measure(report: Report, variant: Variant, restoreCase: RestoreCase): Promise<void> {
  const { freeze } = variant
  const windows: number[] = []
  const solo: number[] = []
  const held: number[] = []
  const readers = startReaders(variant.readers)
  let seed = 0
  for (let i = 0; i < WARMUP + RESTORES; i++) {
    const source = await restoreCase.prepare(2 * i)
    await freeze.protect({ site: 'east', volume: 'vol', mountPath: MOUNT, identity: 'vol-uuid', sources: [source], freezeTimeoutMs: null, allowRollback: true, autoRestoreLimit: { restores: 10_000, windowMs: '1h' } })
    for (const writer of variant.writers) for (let w = 0; w < CACHED_WRITES; w++) await writer.write((seed++ % BLOCKS) * BLOCK, new Uint8Array(4096).fill(seed & 0xff))
    const thawed = variant.windows.length
    const detectedAt = preciseClock.now()
    await freeze.reportDisruption({ site: 'east', volume: 'vol' })
    // Issued right after the detection: held from the freeze to the thaw.
    const first = variant.readers[0]?.read(0, 4096).then(() => preciseClock.now() - detectedAt)
    const after = await freeze.settled({ site: 'east', volume: 'vol' })
    const firstMs = await first
    const thaw = variant.windows[thawed]
    if (thaw === undefined || firstMs === undefined) throw new Error(`freeze bench: restore ${i} of ${restoreCase.name} did not thaw: ${after.lastRestore?.message ?? 'no outcome'}`)
    const soloMs = await restoreCase.alone(2 * i + 1)
    if (i < WARMUP) continue
    windows.push(thaw.ms)
    solo.push(soloMs)
    held.push(firstMs, ...readers.samples.filter((s) => s.at >= detectedAt && s.at <= thaw.at).map((s) => s.ms))
  }
  await readers.stop()
  report({
    case: `window-${restoreCase.name}-${variant.store}`,
    metric: `median freeze window, first held I/O to thaw (${SIZE / MiB} MiB volume, ${READERS} readers, ${WRITERS * CACHED_WRITES} journaled writes, ${windows.length} restores, max ${Math.max(...windows).toFixed(2)} ms)`,
    value: median(windows),
    unit: 'ms',
    baseline: 'median of the same restore alone, without freeze/capture/journal/lock/remount/replay/thaw',
    baselineValue: median(solo),
  })
  report({
    case: `held-read-${restoreCase.name}-${variant.store}`,
    metric: `median latency of the 4 KiB reads issued while the volume was frozen (${held.length} reads, max ${Math.max(...held).toFixed(2)} ms)`,
    value: median(held),
    unit: 'ms',
    baseline: 'median latency of the same readers with no restore running',
    baselineValue: variant.idleMedian,
  })
}

/** Opens the freeze module on `stateStore`, protects the volume, opens the handles and measures idle reads. */
async function openVariant(store: string, stateStore: StateStore, storages: Record<string, LocalStorage>, host: ReturnType<typeof memoryHost>): Promise<Variant & { close(): Promise<void> }> {
  const events = new EventBus<FreezeEvents>(preciseClock.now)
  const windows: Array<{ at: number; ms: number }> = []
  events.on('freeze.thawed', (e) => windows.push({ at: preciseClock.now(), ms: e.payload.freezeWindowMs ?? Number.NaN }))
  const module = await openFreezeModule({
    stateStore,
    workflows: new WorkflowEngine({ stateStore, clock: preciseClock }),
    storage: (site) => storages[site] as LocalStorage,
    host: () => host,
    events,
    clock: preciseClock,
    token: () => token,
    resolveReplica: async (ref) => ({ site: 'west', volume: ref }),
  })
  const freeze = module.facade
  await freeze.protect({ site: 'east', volume: 'vol', mountPath: MOUNT, identity: 'vol-uuid', sources: [], freezeTimeoutMs: null })
  const readers: VolumeHandle[] = []
  for (let i = 0; i < READERS; i++) readers.push(await freeze.open({ site: 'east', volume: 'vol', cache: { mode: 'writeThrough' } }))
  const writers: VolumeHandle[] = []
  for (let i = 0; i < WRITERS; i++) writers.push(await freeze.open({ site: 'east', volume: 'vol', cache: { flushEveryMs: null, maxDirtyBytes: '64MiB' } }))
  const idle = startReaders(readers)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  await idle.stop()
  return {
    store,
    freeze,
    readers,
    writers,
    windows,
    idleMedian: median(idle.samples.map((s) => s.ms)),
    close: async () => {
      for (const handle of [...readers, ...writers]) await handle.close()
      await module.close()
      await host.dismount(MOUNT, token)
    },
  }
}

/** Runs every case and reports it. */
export async function run(report: Report): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drkit-bench-freeze-'))
  const east = await openLocalStorage({ dir: path.join(dir, 'east'), fsync: false })
  const west = await openLocalStorage({ dir: path.join(dir, 'west'), fsync: false })
  const storages: Record<string, LocalStorage> = { east, west }
  try {
    const host = memoryHost()
    for (const name of ['vol', 'standby']) await east.createVolume({ name, sizeBytes: SIZE, blockSize: BLOCK }, token)
    await west.createVolume({ name: 'replica', sizeBytes: SIZE, blockSize: BLOCK }, token)
    await changeBlocks(east, 'vol', CHANGED * 5, 1)
    const sourceContext = (volume: string): SourceContext => ({
      site: 'east',
      volume,
      readOnly: false,
      storage: (site: string) => storages[site] as LocalStorage,
      token: () => token,
      resolveReplica: async (ref: string) => ({ site: 'west', volume: ref }),
      clock: preciseClock,
      signal: new AbortController().signal,
    })
    const fileState = await openFileStateStore({ dir: path.join(dir, 'state') })
    for (const [store, stateStore] of [['memory', memoryStateStore()], ['file', fileState]] as const) {
      const variant = await openVariant(store, stateStore, storages, host)
      const active = async (): Promise<string> => (await variant.freeze.get({ site: 'east', volume: 'vol' })).activeVolume
      const timedAlone = async (work: () => Promise<unknown>): Promise<number> => {
        const started = performance.now()
        await work()
        return performance.now() - started
      }
      await measure(report, variant, {
        name: 'standby',
        prepare: async () => ({ kind: 'standby', volume: (await active()) === 'vol' ? 'standby' : 'vol' }),
        alone: async () =>
          timedAlone(async () => {
            await host.dismount('/bench/swap', token)
            await host.mount({ path: '/bench/swap', volume: 'standby', identity: 'swap', options: {}, readOnly: false }, token)
          }),
      })
      const snapshotRound = async (i: number): Promise<string> => {
        const volume = await active()
        await east.createSnapshot(volume, `${store}-base-${i}`, token)
        await changeBlocks(east, volume, CHANGED, 100 + i)
        return volume
      }
      await measure(report, variant, {
        name: 'snapshot-1pct',
        prepare: async (i) => (await snapshotRound(i), { kind: 'snapshot', snapshot: `${store}-base-${i}` }),
        alone: async (i) => {
          const volume = await snapshotRound(i)
          return timedAlone(() => east.restoreSnapshot(volume, `${store}-base-${i}`, token))
        },
      })
      const replicaRound = async (i: number): Promise<string> => {
        const volume = await active()
        await restoreFrom(sourceContext(volume), { kind: 'replica', ref: 'replica' })
        await east.createSnapshot(volume, `${store}-common-${i}`, token)
        await west.createSnapshot('replica', `${store}-common-${i}`, token)
        await changeBlocks(west, 'replica', CHANGED, 200 + i)
        return volume
      }
      await measure(report, variant, {
        name: 'replica-1pct',
        prepare: async (i) => (await replicaRound(i), { kind: 'replica', ref: 'replica' }),
        alone: async (i) => {
          const volume = await replicaRound(i)
          return timedAlone(() => restoreFrom(sourceContext(volume), { kind: 'replica', ref: 'replica' }))
        },
      })
      await variant.close()
    }
    await fileState.close()
  } finally {
    await east.close()
    await west.close()
    await rm(dir, { recursive: true, force: true })
  }
}
