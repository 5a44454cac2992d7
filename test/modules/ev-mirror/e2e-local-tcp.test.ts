import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { DrError, EventBus, WorkflowEngine, systemClock } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { localStorage, type LocalStorage } from '../../../src/adapters/local/local-storage.js'
import { tcpNetwork, type TcpNetwork } from '../../../src/adapters/tcp/tcp-network.js'
import { openVolumeModule, type VolumeEvents, type VolumeFacade } from '../../../src/modules/volume/index.js'
import { openEvMirrorModule, type EvMirrorEvents } from '../../../src/modules/ev-mirror/index.js'
import { content, liveView, readerView, token, volumeHash } from '../../fixtures/groups-world.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

/** Every object of one overall snapshot (path → sha256): what a reader that resolved the redirect once sees. */
async function snapshotView(volumes: VolumeFacade, site: string, volume: string, snapshot: number): Promise<Record<string, string>> {
  const view: Record<string, string> = {}
  for (const object of await volumes.listObjects({ site, volume, snapshot })) {
    view[object.path] = createHash('sha256').update(await volumes.readSnapshotObject({ site, volume, snapshot, path: object.path })).digest('hex')
  }
  return view
}

async function realWorld() {
  const dir = await mkdtemp(join(tmpdir(), 'drkit-ev-e2e-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const storages: Record<string, LocalStorage> = { east: localStorage({ dir: join(dir, 'east'), fsync: false }), west: localStorage({ dir: join(dir, 'west'), fsync: false }) }
  cleanups.push(async () => {
    await storages['east']!.close()
    await storages['west']!.close()
  })
  const networks: Record<string, TcpNetwork> = {
    east: tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true }),
    west: tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true }),
  }
  networks['east']!.setPeer('west', await networks['west']!.address())
  networks['west']!.setPeer('east', await networks['east']!.address())
  cleanups.push(async () => {
    await networks['east']!.close()
    await networks['west']!.close()
  })
  const stateStore = memoryStateStore()
  const workflows = new WorkflowEngine({ stateStore, clock: systemClock })
  const events = new EventBus<VolumeEvents & EvMirrorEvents>()
  const seen: string[] = []
  events.onAny((e) => seen.push(e.name))
  const storage = (site: string) => {
    const s = storages[site]
    if (s === undefined) throw new DrError('E_NOT_FOUND', `site "${site}" is not configured`)
    return s
  }
  const volumes = (await openVolumeModule({ stateStore, workflows, storage, events, clock: systemClock, token: () => token })).facade
  const module = await openEvMirrorModule({
    stateStore,
    workflows,
    volumes,
    sites: (site) => {
      const network = networks[site]
      if (network === undefined) throw new DrError('E_NOT_FOUND', `site "${site}" is not configured`)
      return { storage: storage(site), network }
    },
    events,
    clock: systemClock,
    token: () => token,
    chunkBytes: 16 * 1024,
  })
  cleanups.push(() => module.close())
  return { storages, volumes, evMirrors: module.facade, seen }
}

describe('ev-mirror end to end: local storage (real files) over TCP on loopback', () => {
  it('replicates 4 data constituents, expands to 6, replicates again (destination resized first), fails over, writes, resyncs back: byte-identical; readers never see a mix', async () => {
    const w = await realWorld()
    await w.volumes.create({ site: 'east', volume: 'db', dataConstituents: 4, size: '1MiB', maxObjects: 256 })
    for (let i = 0; i < 40; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`, 6000) })
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await w.evMirrors.transfer({ id: 'db' })
    const first = await readerView(w.volumes, 'west', 'db')
    expect(first).toEqual(await liveView(w.volumes, 'east', 'db'))

    await w.volumes.expand({ site: 'east', volume: 'db', add: 2 })
    for (let i = 0; i < 40; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v2-${i}`, 6000) })
    for (let i = 40; i < 60; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v2-${i}`, 6000) })
    const second = await liveView(w.volumes, 'east', 'db')
    let done = false
    const transfer = w.evMirrors.transfer({ id: 'db' }).finally(() => {
      done = true
    })
    const observed: string[] = []
    while (!done) {
      const pinned = (await w.volumes.get({ site: 'west', volume: 'db' })).readRedirect ?? 0
      const view = JSON.stringify(await snapshotView(w.volumes, 'west', 'db', pinned))
      expect([JSON.stringify(first), JSON.stringify(second)]).toContain(view)
      observed.push(view)
    }
    await transfer
    expect(observed.length).toBeGreaterThan(0)
    expect(w.seen.indexOf('evMirror.destinationResized')).toBeLessThan(w.seen.lastIndexOf('evMirror.memberTransferred'))
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).members.filter((m) => m.role === 'data' && m.state === 'active')).toHaveLength(6)
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(second)

    await w.evMirrors.failover({ id: 'db' })
    for (let i = 0; i < 10; i++) await w.volumes.putObject({ site: 'west', volume: 'db', path: `/dr${i}`, data: content(`dr-${i}`, 6000) })
    await w.volumes.deleteObject({ site: 'west', volume: 'db', path: '/o3' })
    const rel = await w.evMirrors.resync({ id: 'db' })
    expect(rel.direction).toBe('reversed')
    expect(await readerView(w.volumes, 'east', 'db')).toEqual(await liveView(w.volumes, 'west', 'db'))
    const members = (await w.volumes.get({ site: 'west', volume: 'db' })).members.filter((m) => m.state !== 'retired').map((m) => m.volume)
    expect(members).toHaveLength(8)
    for (const volume of members) expect(await volumeHash(w.storages['east']!, volume), volume).toBe(await volumeHash(w.storages['west']!, volume))
  }, 120_000)
})
