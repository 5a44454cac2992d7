import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { openLocalStorage, type LocalStorage } from '../../../src/adapters/local/local-storage.js'
import type { OpenOptions, RestoreSource, VolumeHandle } from '../../../src/modules/freeze/index.js'
import { freezeDurable, openFreezeWorld, token, type FreezeWorld } from '../../fixtures/freeze-world.js'
import { startWriter, syncReplicated, type Writer } from '../../fixtures/freeze-soak.js'

const BS = 4096
const WRITERS = 8
const REGION_BLOCKS = 4
const CYCLES = 200
/** Write-and-verify rounds every writer completes between two restores. */
const ROUNDS_PER_CYCLE = 3
const dirs: string[] = []
const opened: LocalStorage[] = []

afterAll(async () => {
  for (const storage of opened) await storage.close()
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
})

async function local(name: string): Promise<LocalStorage> {
  const dir = await mkdtemp(path.join(tmpdir(), `drkit-freeze-soak-${name}-`))
  dirs.push(dir)
  const storage = await openLocalStorage({ dir, fsync: false })
  opened.push(storage)
  return storage
}

/**
 * How writer `i` caches: write-through (every write on the volume before it is acknowledged), write-back flushed
 * every 5 ms or beyond two dirty blocks, or write-back that only a restore's journal (or the close) flushes.
 */
function cacheOf(i: number): NonNullable<OpenOptions['cache']> {
  switch (i % 3) {
    case 0:
      return { mode: 'writeThrough' }
    case 1:
      return { flushEveryMs: 5, maxDirtyBytes: 2 * BS }
    default:
      return { flushEveryMs: null, maxDirtyBytes: '256MiB' }
  }
}
const flushes = (i: number): boolean => i % 3 !== 2

/** Transient adapter faults, by the source kind whose restore calls the method; each fires once in its cycle. */
const FAULTS = {
  snapshot: [
    { site: 'east', port: 'storage', method: 'restoreSnapshot' },
    { site: 'east', port: 'storage', method: 'snapshotInfo' },
    { site: 'east', port: 'host', method: 'dismount' },
  ],
  replica: [
    { site: 'west', port: 'storage', method: 'read' },
    { site: 'west', port: 'storage', method: 'changedBlocks' },
    { site: 'west', port: 'storage', method: 'volumeInfo' },
    { site: 'east', port: 'host', method: 'getMount' },
  ],
  standby: [
    { site: 'east', port: 'host', method: 'mount' },
    { site: 'east', port: 'host', method: 'freezeActor' },
    { site: 'east', port: 'host', method: 'thawActor' },
    { site: 'east', port: 'host', method: 'listActors' },
  ],
} as const

type Kind = keyof typeof FAULTS

/** The disruption of an unplanned cycle: a damaged block read once, or a backend lost until its restore starts. */
async function disrupt(w: FreezeWorld, active: string, lost: boolean): Promise<void> {
  const detected = w.names('freeze.disruptionDetected').length
  const trigger = lost
    ? w.storageFaults['east']!.fail({ when: (call) => (call.method === 'read' || call.method === 'volumeInfo') && call.args[0] === active, error: new DrError('E_ADAPTER', 'backend lost') })
    : w.storageFaults['east']!.fail({ method: 'read', times: 1, when: (call) => call.args[0] === active, error: new DrError('E_CORRUPT', 'checksum mismatch') })
  await new Promise<void>((resolve) => {
    const stop = w.events.on('freeze.disruptionDetected', () => (stop(), resolve()))
    if (w.names('freeze.disruptionDetected').length > detected) (stop(), resolve())
  })
  trigger()
  await w.freeze.settled({ site: 'east', volume: 'a' })
}

describe('soak: 8 writers, 200 restore cycles on the local adapter', () => {
  it('mixes snapshot, replica and standby restores, planned and detected, under write-through, flushing and journal-only writers with injected faults: no writer error, no lost acknowledged write, no freeze timeout, every freeze window recorded', async () => {
    const eastRaw = await local('east')
    const westRaw = await local('west')
    const size = WRITERS * REGION_BLOCKS * BS
    for (const name of ['a', 'b']) await eastRaw.createVolume({ name, sizeBytes: size, blockSize: BS }, token)
    await westRaw.createVolume({ name: 'replica', sizeBytes: size, blockSize: BS }, token)
    const east = syncReplicated(eastRaw, ['a', 'b'], { storage: westRaw, volume: 'replica' })
    const d = freezeDurable({ storages: { east, west: westRaw } })
    const w = await openFreezeWorld(d, { resolveReplica: async (ref) => ({ site: 'west', volume: ref }) })
    for (let i = 0; i < WRITERS; i++) w.host().addActor({ id: `app-${i}`, kind: 'process', volumes: ['a', 'b'] })
    // A freeze timeout that a restore of this size never reaches: it must not fire.
    const protection = { site: 'east', volume: 'a', mountPath: '/srv/data', identity: 'fs-uuid-a', freezeTimeoutMs: '10m', autoRestoreLimit: { restores: CYCLES, windowMs: '1h' } }
    await w.freeze.protect({ ...protection, sources: [] })
    const handles: VolumeHandle[] = []
    for (let i = 0; i < WRITERS; i++) handles.push(await w.freeze.open({ site: 'east', volume: 'a', actor: `app-${i}`, cache: cacheOf(i) }))
    const writers: Writer[] = handles.map((handle, i) => startWriter(handle, i, REGION_BLOCKS, BS))
    const kinds: string[] = []
    const faults = { snapshot: 0, replica: 0, standby: 0 }
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      await Promise.all(writers.map((writer) => writer.progress(ROUNDS_PER_CYCLE)))
      const active = (await w.freeze.get({ site: 'east', volume: 'a' })).activeVolume
      const planned = cycle % 2 === 0
      // A rollback is legitimate only in a planned restore to a snapshot that holds every write on the volume:
      // the writers that flush are parked (and flushed) before it is taken, and stay so until it is restored.
      const kind: Kind = planned ? (['snapshot', 'replica', 'standby'] as const)[(cycle / 2) % 3]! : (['replica', 'standby'] as const)[((cycle - 1) / 2) % 2]!
      const source: RestoreSource =
        kind === 'snapshot' ? { kind, snapshot: `c${cycle}` } : kind === 'replica' ? { kind, ref: 'replica' } : { kind, volume: active === 'a' ? 'b' : 'a' }
      await w.freeze.protect({ ...protection, sources: [source] })
      const parked = kind === 'snapshot' ? writers.filter((_, i) => flushes(i)) : []
      await Promise.all(parked.map((writer) => writer.pause()))
      if (source.kind === 'snapshot') {
        for (const [i, handle] of handles.entries()) if (flushes(i)) await handle.flush()
        // Flush and snapshot times are whole milliseconds: the snapshot must come strictly after the last flush.
        await new Promise((resolve) => setTimeout(resolve, 2))
        await eastRaw.createSnapshot(active, source.snapshot, token)
      }
      const fault = FAULTS[kind][faults[kind]++ % FAULTS[kind].length]!
      const injector = fault.port === 'host' ? w.hostFaults[fault.site]! : w.storageFaults[fault.site]!
      const removeFault = injector.fail({ method: fault.method, times: 1, error: new DrError('E_ADAPTER', `injected ${fault.method} fault`) })
      if (planned) await w.freeze.restore({ site: 'east', volume: 'a' })
      else await disrupt(w, active, cycle % 4 === 1)
      removeFault()
      for (const writer of parked) writer.resume()
      const after = await w.freeze.get({ site: 'east', volume: 'a' })
      expect(after.lastRestore?.outcome, `cycle ${cycle}: ${after.lastRestore?.message ?? ''}`).toBe('restored')
      kinds.push(`${planned ? 'planned' : 'detected'} ${after.lastRestore?.source?.kind ?? 'none'}`)
      if (source.kind === 'snapshot') await eastRaw.deleteSnapshot(active, source.snapshot, token)
    }
    for (const writer of writers) await writer.stop()
    for (const handle of handles) await handle.close()
    const reports = writers.map((writer) => writer.report)
    expect(reports.flatMap((report) => report.errors)).toEqual([])
    const active = (await w.freeze.get({ site: 'east', volume: 'a' })).activeVolume
    for (let i = 0; i < WRITERS; i++) {
      expect(reports[i]!.verified, `writer ${i} verified reads`).toBeGreaterThanOrEqual(CYCLES * ROUNDS_PER_CYCLE)
      const stored = await eastRaw.read(active, i * REGION_BLOCKS * BS, REGION_BLOCKS * BS)
      expect(Buffer.compare(Buffer.from(stored), Buffer.from(reports[i]!.model)), `writer ${i} region`).toBe(0)
    }
    expect(new Set(kinds)).toEqual(new Set(['planned snapshot', 'planned replica', 'planned standby', 'detected replica', 'detected standby']))
    const channels = w.names('freeze.disruptionDetected').map((e) => `${e.payload.channel} ${e.payload.code ?? ''}`)
    expect(channels.filter((c) => c === 'io-error E_CORRUPT').length, 'restores started by a damaged block').toBe(CYCLES / 4)
    expect(channels.filter((c) => c === 'io-error E_ADAPTER').length, 'restores started by a lost backend').toBe(CYCLES / 4)
    expect(w.names('freeze.timedOut'), 'freeze timeouts').toEqual([])
    expect(w.names('freeze.rollbackRefused')).toEqual([])
    const snapshotRestores = w.names('freeze.restored').filter((e) => e.payload.source.kind === 'snapshot')
    expect(snapshotRestores.map((e) => e.payload.consistencyWarning)).toEqual(snapshotRestores.map(() => false))
    expect(w.names('freeze.thawed').reduce((sum, e) => sum + e.payload.replayedWrites, 0), 'journaled writes replayed').toBeGreaterThan(CYCLES)
    const thawed = w.names('freeze.thawed')
    expect(thawed).toHaveLength(CYCLES)
    expect(thawed.every((e) => typeof e.payload.freezeWindowMs === 'number' && e.payload.freezeWindowMs >= 0)).toBe(true)
    for (const kind of Object.keys(FAULTS) as Kind[]) {
      for (const fault of FAULTS[kind]) {
        const injector = fault.port === 'host' ? w.hostFaults[fault.site]! : w.storageFaults[fault.site]!
        const fired = injector.calls.filter((c) => c.method === fault.method && c.outcome === 'failed').length
        expect(fired, `${fault.site} ${fault.port}.${fault.method} fault fired`).toBeGreaterThan(0)
      }
    }
    expect((await w.host().listActors('a')).filter((a) => a.frozen)).toEqual([])
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'a' })).toBeNull()
    await w.module.close()
  }, 180_000)
})
