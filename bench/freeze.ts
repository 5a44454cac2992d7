/**
 * Non-disruptive restore benchmarks, on the local storage adapter (two pools in a temporary directory, no fsync),
 * a memory host, 1 GiB volumes with 64 KiB blocks, and four readers issuing 4 KiB reads through volume handles
 * back to back. Both a restore and its baseline start 50 ms after the data was prepared. Each case is the median of
 * 7 runs, after one warm-up run that is not counted.
 *
 * The freeze window is the time from the first held I/O to the thaw: a read is issued right after each restore is
 * started, so it is held from the moment the volume freezes.
 *
 * - `window-standby`: the freeze window of a standby swap, against the swap alone
 *   (dismount + mount of the standby on the same host port, measured in the same run).
 * - `window-snapshot-1pct`: the freeze window of a snapshot restore with 1% of the blocks changed since the
 *   snapshot, against `restoreSnapshot` alone on the same volume with the same change.
 * - `window-replica-1pct`: the freeze window of a restore from a replica on the other pool that changed 1% of its
 *   blocks since the common snapshot, against the same replica copy (`restoreFrom`) run alone.
 * - `io-p99-<source>`: the p99 latency of the readers' I/O that overlapped the restores of that source (in flight or issued,
 *   held or drained), against the p99 of the same readers with no restore running.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { memoryHost } from '../src/adapters/memory/host.js'
import { openLocalStorage, type LocalStorage } from '../src/adapters/local/local-storage.js'
import { EventBus, WorkflowEngine, systemClock, type Clock, type FenceToken } from '../src/kernel/index.js'
import { memoryStateStore } from '../src/kernel/memory-state-store.js'
import { openFreezeModule, restoreFrom, type FreezeEvents, type RestoreSource, type VolumeHandle } from '../src/modules/freeze/index.js'
import type { Report } from './report.js'

const token: FenceToken = { scope: 'bench', value: 1 }
const BLOCK = 64 * 1024
const SIZE = 1024 ** 3
const BLOCKS = SIZE / BLOCK
const CHANGED = Math.round(BLOCKS / 100)
const READERS = 4
const RUNS = 7

/** Wall time with sub-millisecond resolution, so that short freeze windows are measured, not rounded to 0. */
const preciseClock: Clock = { ...systemClock, now: () => performance.timeOrigin + performance.now() }

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN
}

function median(values: readonly number[]): number {
  return percentile(values, 0.5)
}

/** Writes `count` distinct random blocks of `volume` (deterministic per `seed`). */
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

/** Readers issuing 4 KiB reads back to back; each latency is kept with its start time. */
function startReaders(handles: readonly VolumeHandle[]): { samples: Array<{ at: number; ms: number }>; stop(): Promise<void> } {
  const samples: Array<{ at: number; ms: number }> = []
  let running = true
  const loops = handles.map(async (handle, i) => {
    let n = i
    while (running) {
      const at = preciseClock.now()
      await handle.read(((n * 7919) % BLOCKS) * BLOCK, 4096)
      samples.push({ at, ms: preciseClock.now() - at })
      n += READERS
      await new Promise((resolve) => setImmediate(resolve))
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

/** Runs every case and reports it. */
export async function run(report: Report): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drkit-bench-freeze-'))
  const east = await openLocalStorage({ dir: path.join(dir, 'east'), fsync: false })
  const west = await openLocalStorage({ dir: path.join(dir, 'west'), fsync: false })
  try {
    const host = memoryHost()
    for (const name of ['vol', 'standby']) await east.createVolume({ name, sizeBytes: SIZE, blockSize: BLOCK }, token)
    await west.createVolume({ name: 'replica', sizeBytes: SIZE, blockSize: BLOCK }, token)
    await changeBlocks(east, 'vol', CHANGED * 5, 1)
    const stateStore = memoryStateStore()
    const events = new EventBus<FreezeEvents>(preciseClock.now)
    const windows: number[] = []
    events.on('freeze.thawed', (e) => windows.push(e.payload.freezeWindowMs ?? Number.NaN))
    const storages: Record<string, LocalStorage> = { east, west }
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
    await freeze.protect({ site: 'east', volume: 'vol', mountPath: '/srv/vol', identity: 'vol-uuid', sources: [], freezeTimeoutMs: null })
    const handles: VolumeHandle[] = []
    for (let i = 0; i < READERS; i++) handles.push(await freeze.open({ site: 'east', volume: 'vol', cache: { mode: 'writeThrough' } }))
    const quiet = startReaders(handles)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await quiet.stop()
    const baselineP99 = percentile(
      quiet.samples.map((s) => s.ms),
      0.99,
    )

    const measure = async (kind: string, prepare: (i: number) => Promise<RestoreSource>, alone: (i: number, settle: () => Promise<unknown>) => Promise<number>): Promise<void> => {
      const frozen: number[] = []
      const solo: number[] = []
      const during: number[] = []
      for (let i = 0; i <= RUNS; i++) {
        const source = await prepare(2 * i)
        const readers = startReaders(handles)
        await new Promise((resolve) => setTimeout(resolve, 50))
        const startedAt = preciseClock.now()
        const restored = freeze.restore({ site: 'east', volume: 'vol', source })
        const first = handles[0]?.read(0, 4096)
        await restored
        const endedAt = preciseClock.now()
        await first
        readers.samples.push({ at: startedAt, ms: endedAt - startedAt })
        await readers.stop()
        const soloMs = await alone(2 * i + 1, () => new Promise((resolve) => setTimeout(resolve, 50)))
        if (i === 0) continue
        frozen.push(windows.at(-1) ?? Number.NaN)
        during.push(...readers.samples.filter((s) => s.at <= endedAt && s.at + s.ms >= startedAt).map((s) => s.ms))
        solo.push(soloMs)
      }
      report({
        case: `window-${kind}`,
        metric: `freeze window, first held I/O to thaw (1 GiB volume, ${READERS} readers)`,
        value: median(frozen),
        unit: 'ms',
        baseline: `the same restore alone, without freeze/capture/journal/lock/remount/thaw`,
        baselineValue: median(solo),
      })
      report({
        case: `io-p99-${kind.split('-')[0] ?? kind}`,
        metric: `p99 latency of 4 KiB reads that overlapped a restore (${during.length} samples)`,
        value: percentile(during, 0.99),
        unit: 'ms',
        baseline: `p99 of the same readers with no restore running (${quiet.samples.length} samples)`,
        baselineValue: baselineP99,
      })
    }

    await measure(
      'standby',
      async () => {
        const active = (await freeze.get({ site: 'east', volume: 'vol' })).activeVolume
        return { kind: 'standby', volume: active === 'vol' ? 'standby' : 'vol' }
      },
      async (_i, settle) => {
        await settle()
        const started = performance.now()
        await host.dismount('/bench/swap', token)
        await host.mount({ path: '/bench/swap', volume: 'standby', identity: 'swap', options: {}, readOnly: false }, token)
        return performance.now() - started
      },
    )

    const snapshotRound = async (i: number): Promise<string> => {
      const active = (await freeze.get({ site: 'east', volume: 'vol' })).activeVolume
      await east.createSnapshot(active, `base-${i}`, token)
      await changeBlocks(east, active, CHANGED, 100 + i)
      return active
    }
    await measure(
      'snapshot-1pct',
      async (i) => {
        await snapshotRound(i)
        return { kind: 'snapshot', snapshot: `base-${i}` }
      },
      async (i, settle) => {
        const active = await snapshotRound(i)
        await settle()
        const started = performance.now()
        await east.restoreSnapshot(active, `base-${i}`, token)
        return performance.now() - started
      },
    )

    const replicaRound = async (i: number): Promise<string> => {
      const active = (await freeze.get({ site: 'east', volume: 'vol' })).activeVolume
      await restoreFrom(sourceContext(active), { kind: 'replica', ref: 'replica' })
      await east.createSnapshot(active, `common-${i}`, token)
      await west.createSnapshot('replica', `common-${i}`, token)
      await changeBlocks(west, 'replica', CHANGED, 200 + i)
      return active
    }
    const sourceContext = (volume: string) => ({
      site: 'east',
      volume,
      readOnly: false,
      storage: (site: string) => storages[site] as LocalStorage,
      token: () => token,
      resolveReplica: async (ref: string) => ({ site: 'west', volume: ref }),
      clock: preciseClock,
      signal: new AbortController().signal,
    })
    await measure(
      'replica-1pct',
      async (i) => {
        await replicaRound(i)
        return { kind: 'replica', ref: 'replica' }
      },
      async (i, settle) => {
        const active = await replicaRound(i)
        await settle()
        const started = performance.now()
        await restoreFrom(sourceContext(active), { kind: 'replica', ref: 'replica' })
        return performance.now() - started
      },
    )
    for (const handle of handles) await handle.close()
    await module.close()
  } finally {
    await east.close()
    await west.close()
    await rm(dir, { recursive: true, force: true })
  }
}
