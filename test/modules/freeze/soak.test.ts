import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { openLocalStorage, type LocalStorage } from '../../../src/adapters/local/local-storage.js'
import type { RestoreSource, VolumeHandle } from '../../../src/modules/freeze/index.js'
import { freezeDurable, openFreezeWorld, pause, token } from '../../fixtures/freeze-world.js'
import { startWriter, syncReplicated } from '../../fixtures/freeze-soak.js'

const BS = 4096
const WRITERS = 8
const REGION_BLOCKS = 4
const CYCLES = 200
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

/** Adapter faults injected during the restores, one per cycle, in turn. Each is transient (retried). */
const FAULTS = [
  { site: 'east', port: 'storage', method: 'restoreSnapshot' },
  { site: 'east', port: 'host', method: 'dismount' },
  { site: 'west', port: 'storage', method: 'read' },
  { site: 'east', port: 'host', method: 'mount' },
  { site: 'east', port: 'storage', method: 'snapshotInfo' },
  { site: 'east', port: 'host', method: 'freezeActor' },
  { site: 'east', port: 'host', method: 'getMount' },
  { site: 'west', port: 'storage', method: 'volumeInfo' },
] as const

describe('soak: 8 writers, 200 restore cycles on the local adapter', () => {
  it('mixes snapshot, replica and standby restores with injected adapter faults: no writer error, no lost acknowledged write, every freeze window recorded', async () => {
    const eastRaw = await local('east')
    const westRaw = await local('west')
    const size = WRITERS * REGION_BLOCKS * BS
    for (const name of ['a', 'b']) await eastRaw.createVolume({ name, sizeBytes: size, blockSize: BS }, token)
    await westRaw.createVolume({ name: 'replica', sizeBytes: size, blockSize: BS }, token)
    const east = syncReplicated(eastRaw, ['a', 'b'], westRaw, 'replica')
    const d = freezeDurable({ storages: { east, west: westRaw } })
    const w = await openFreezeWorld(d, { resolveReplica: async (ref) => ({ site: 'west', volume: ref }) })
    for (let i = 0; i < WRITERS; i++) w.host().addActor({ id: `app-${i}`, kind: 'process', volumes: ['a', 'b'] })
    await w.freeze.protect({ site: 'east', volume: 'a', mountPath: '/srv/data', identity: 'fs-uuid-a', sources: [], freezeTimeoutMs: null, autoRestoreLimit: { restores: CYCLES, windowMs: '1h' } })
    await eastRaw.createSnapshot('a', 'c0', token)
    const handles: VolumeHandle[] = []
    for (let i = 0; i < WRITERS; i++) {
      handles.push(await w.freeze.open({ site: 'east', volume: 'a', actor: `app-${i}`, cache: { flushEveryMs: null, maxDirtyBytes: '256MiB' } }))
    }
    const writers = handles.map((handle, i) => startWriter(handle, i, REGION_BLOCKS, BS))
    let snapshot = { volume: 'a', name: 'c0' }
    const kinds: string[] = []
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const record = await w.freeze.get({ site: 'east', volume: 'a' })
      const active = record.activeVolume
      const kind = (['snapshot', 'replica', 'standby'] as const)[cycle % 3]!
      const source: RestoreSource =
        kind === 'snapshot' ? { kind, snapshot: snapshot.name } : kind === 'replica' ? { kind, ref: 'replica' } : { kind, volume: active === 'a' ? 'b' : 'a' }
      await w.freeze.protect({ site: 'east', volume: 'a', mountPath: '/srv/data', identity: 'fs-uuid-a', sources: [source], freezeTimeoutMs: null, autoRestoreLimit: { restores: CYCLES, windowMs: '1h' } })
      const fault = FAULTS[cycle % FAULTS.length]!
      const injector = fault.port === 'host' ? w.hostFaults[fault.site]! : w.storageFaults[fault.site]!
      const removeFault = injector.fail({ method: fault.method, times: 1, error: new DrError('E_ADAPTER', `injected ${fault.method} fault`) })
      const detected = w.names('freeze.disruptionDetected').length
      if (cycle % 2 === 0) {
        await w.freeze.restore({ site: 'east', volume: 'a' })
      } else {
        const removeTrigger = w.storageFaults['east']!.fail({ method: 'read', times: 1, when: (call) => call.args[0] === active, error: new DrError('E_CORRUPT', 'checksum mismatch') })
        for (let i = 0; i < 50 && w.names('freeze.disruptionDetected').length === detected; i++) await pause(2)
        removeTrigger()
        if (w.names('freeze.disruptionDetected').length === detected) await w.freeze.reportDisruption({ site: 'east', volume: 'a' })
        await w.freeze.settled({ site: 'east', volume: 'a' })
      }
      removeFault()
      const after = await w.freeze.get({ site: 'east', volume: 'a' })
      expect(after.lastRestore?.outcome, `cycle ${cycle}: ${after.lastRestore?.message ?? ''}`).toBe('restored')
      kinds.push(after.lastRestore?.source?.kind ?? 'none')
      const next = { volume: after.activeVolume, name: `c${cycle}` }
      await eastRaw.createSnapshot(next.volume, next.name, token)
      await eastRaw.deleteSnapshot(snapshot.volume, snapshot.name, token)
      snapshot = next
    }
    for (const writer of writers) await writer.stop()
    for (const handle of handles) await handle.close()
    const reports = writers.map((writer) => writer.report)
    expect(reports.flatMap((report) => report.errors)).toEqual([])
    const active = (await w.freeze.get({ site: 'east', volume: 'a' })).activeVolume
    for (let i = 0; i < WRITERS; i++) {
      expect(reports[i]!.acknowledged).toBeGreaterThan(0)
      const stored = await eastRaw.read(active, i * REGION_BLOCKS * BS, REGION_BLOCKS * BS)
      expect(Buffer.compare(Buffer.from(stored), Buffer.from(reports[i]!.model)), `writer ${i} region`).toBe(0)
    }
    const channels = w.names('freeze.disruptionDetected').map((e) => e.payload.channel)
    expect(channels.filter((c) => c === 'io-error').length, 'restores started by an intercepted I/O error').toBeGreaterThan(CYCLES / 4)
    expect(w.names('freeze.thawed').reduce((sum, e) => sum + e.payload.replayedWrites, 0), 'journaled writes replayed').toBeGreaterThan(0)
    const thawed = w.names('freeze.thawed')
    expect(thawed).toHaveLength(CYCLES)
    expect(thawed.every((e) => typeof e.payload.freezeWindowMs === 'number' && e.payload.freezeWindowMs >= 0)).toBe(true)
    expect(new Set(kinds)).toEqual(new Set(['snapshot', 'replica', 'standby']))
    expect(w.hostFaults['east']!.calls.filter((c) => c.outcome === 'failed').length + w.storageFaults['west']!.calls.filter((c) => c.outcome === 'failed').length).toBeGreaterThan(0)
    expect((await w.host().listActors('a')).filter((a) => a.frozen)).toEqual([])
    expect(await w.freeze.lockHolder({ site: 'east', volume: 'a' })).toBeNull()
    await w.module.close()
  }, 120_000)
})
