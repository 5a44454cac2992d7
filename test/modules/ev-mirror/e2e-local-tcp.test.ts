import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { DrError, EventBus, WorkflowEngine, systemClock } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { localStorage, type LocalStorage } from '../../../src/adapters/local/local-storage.js'
import { tcpNetwork, type TcpNetwork } from '../../../src/adapters/tcp/tcp-network.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { openVolumeModule, type VolumeEvents, type VolumeFacade } from '../../../src/modules/volume/index.js'
import { openEvMirrorModule, type EvMirrorEvents } from '../../../src/modules/ev-mirror/index.js'
import { Gate, content, liveView, readerView, token, volumeHash } from '../../fixtures/groups-world.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

type Site = 'east' | 'west'

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
  const storages: Record<Site, LocalStorage> = { east: localStorage({ dir: join(dir, 'east'), fsync: false }), west: localStorage({ dir: join(dir, 'west'), fsync: false }) }
  cleanups.push(async () => {
    await storages.east.close()
    await storages.west.close()
  })
  // Every storage call of the modules goes through a gate, so a test can hold one constituent's transfer exactly.
  const gates: Record<Site, Gate<StoragePort>> = { east: new Gate<StoragePort>(storages.east), west: new Gate<StoragePort>(storages.west) }
  const networks: Record<Site, TcpNetwork> = {
    east: tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true }),
    west: tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true }),
  }
  networks.east.setPeer('west', await networks.west.address())
  networks.west.setPeer('east', await networks.east.address())
  cleanups.push(async () => {
    await networks.east.close()
    await networks.west.close()
  })
  const stateStore = memoryStateStore()
  const workflows = new WorkflowEngine({ stateStore, clock: systemClock })
  const events = new EventBus<VolumeEvents & EvMirrorEvents>()
  const seen: Array<{ name: string; payload: Record<string, unknown> }> = []
  events.onAny((e) => seen.push({ name: e.name, payload: e.payload as Record<string, unknown> }))
  const site = (name: string): Site => {
    if (name === 'east' || name === 'west') return name
    throw new DrError('E_NOT_FOUND', `site "${name}" is not configured`)
  }
  const volumes = (await openVolumeModule({ stateStore, workflows, storage: (name) => gates[site(name)].port, events, clock: systemClock, token: () => token })).facade
  const module = await openEvMirrorModule({
    stateStore,
    workflows,
    volumes,
    sites: (name) => ({ storage: gates[site(name)].port, network: networks[site(name)] }),
    events,
    clock: systemClock,
    token: () => token,
    chunkBytes: 16 * 1024,
  })
  cleanups.push(() => module.close())
  /** Resolves once `count` more `evMirror.memberTransferred` events than now have been seen. */
  const membersMoved = (count: number): Promise<void> => {
    const target = seen.filter((e) => e.name === 'evMirror.memberTransferred').length + count
    return new Promise((resolve) => {
      const check = (): void => {
        if (seen.filter((e) => e.name === 'evMirror.memberTransferred').length >= target) resolve()
      }
      events.onAny(check)
      check()
    })
  }
  return { storages, gates, volumes, evMirrors: module.facade, seen, membersMoved }
}

type World = Awaited<ReturnType<typeof realWorld>>

/**
 * Reads what a client at `site` sees (the snapshot the redirect names, resolved once) over and over until
 * `done` settles, each time checking it is one of `allowed`; `overlapped` is called after each read made entirely
 * while `during()` held.
 */
async function watchReaders(volumes: VolumeFacade, site: Site, allowed: ReadonlyArray<Record<string, string>>, done: Promise<unknown>, during: () => boolean, overlapped: () => void): Promise<void> {
  let settled = false
  void done.then(
    () => (settled = true),
    () => (settled = true),
  )
  const whole = allowed.map((v) => JSON.stringify(v))
  while (!settled) {
    const held = during()
    const pinned = (await volumes.get({ site, volume: 'db' })).readRedirect
    if (pinned !== null) {
      expect(whole, `a reader at ${site} saw a mix`).toContain(JSON.stringify(await snapshotView(volumes, site, 'db', pinned)))
      if (held && during()) overlapped()
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * Runs `operation` (a transfer into `site`) with the write of one member, `constituent`, held until the `others`
 * other members have arrived and a background reader at `site` has read during that window; then `whileHeld`
 * runs (some but not all members are there), and the member is let go. Readers at `site` are checked to see
 * one of `allowed` whole from start to end.
 */
async function withOneMemberHeld<T>(w: World, site: Site, constituent: string, others: number, allowed: ReadonlyArray<Record<string, string>>, operation: () => Promise<T>, whileHeld: () => Promise<void>): Promise<T> {
  let held = false
  w.gates[site].arm((method, args) => method === 'write' && args[0] === constituent)
  const arrived = w.membersMoved(others)
  const running = operation()
  let observed = (): void => undefined
  const overlap = new Promise<void>((resolve) => (observed = resolve))
  const readers = watchReaders(w.volumes, site, allowed, running, () => held, () => observed())
  await w.gates[site].reached
  held = true
  await arrived
  await overlap
  await whileHeld()
  held = false
  w.gates[site].open()
  const result = await running
  await readers
  return result
}

describe('ev-mirror end to end: local storage (real files) over TCP on loopback', () => {
  it('replicates 4 data constituents, expands to 6, replicates again (destination resized first), fails over, writes, resyncs back: byte-identical; readers never see a mix', async () => {
    const w = await realWorld()
    await w.volumes.create({ site: 'east', volume: 'db', dataConstituents: 4, size: '1MiB', maxObjects: 256 })
    for (let i = 0; i < 40; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`, 6000) })
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })

    // Baseline: while dc-4 is held and the 5 other members have arrived, readers at west are refused, not served a mix.
    w.gates.west.arm((method, args) => method === 'write' && args[0] === 'db.dc-4')
    const othersFirst = w.membersMoved(5)
    const baseline = w.evMirrors.transfer({ id: 'db' })
    await w.gates.west.reached
    await othersFirst
    await expect(w.volumes.listObjects({ site: 'west', volume: 'db', snapshot: 0 })).rejects.toMatchObject({ code: 'E_UNAVAILABLE', details: { reason: 'replicaNotConsistent' } })
    w.gates.west.open()
    await baseline
    const first = await readerView(w.volumes, 'west', 'db')
    expect(first).toEqual(await liveView(w.volumes, 'east', 'db'))

    // Update after an expansion to 6: dc-2 is held; the 7 other members (two of them new) arrive first.
    await w.volumes.expand({ site: 'east', volume: 'db', add: 2 })
    for (let i = 0; i < 40; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v2-${i}`, 6000) })
    for (let i = 40; i < 60; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v2-${i}`, 6000) })
    const second = await liveView(w.volumes, 'east', 'db')
    const from = w.seen.length
    await withOneMemberHeld(w, 'west', 'db.dc-2', 7, [first, second], () => w.evMirrors.transfer({ id: 'db' }), async () => {
      // Some but not all members of T have arrived: a reader is served T-1, whole.
      expect(await readerView(w.volumes, 'west', 'db')).toEqual(first)
    })
    const names = w.seen.slice(from).map((e) => e.name)
    const resized = names.indexOf('evMirror.destinationResized')
    expect(resized).toBeGreaterThan(names.indexOf('evMirror.transferStarted'))
    expect(resized).toBeLessThan(names.indexOf('evMirror.memberTransferred'))
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).members.filter((m) => m.role === 'data' && m.state === 'active')).toHaveLength(6)
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(second)

    await w.evMirrors.failover({ id: 'db' })
    for (let i = 0; i < 10; i++) await w.volumes.putObject({ site: 'west', volume: 'db', path: `/dr${i}`, data: content(`dr-${i}`, 6000) })
    await w.volumes.deleteObject({ site: 'west', volume: 'db', path: '/o3' })
    const final = await liveView(w.volumes, 'west', 'db')

    // Resync back: the namespace constituent of east (every put changed it) is held while the 7 others arrive;
    // east's readers meanwhile see the common snapshot whole.
    const rel = await withOneMemberHeld(w, 'east', 'db.ns', 7, [second, final], () => w.evMirrors.resync({ id: 'db' }), async () => {
      expect(await readerView(w.volumes, 'east', 'db')).toEqual(second)
    })
    expect(rel.direction).toBe('reversed')
    expect(await readerView(w.volumes, 'east', 'db')).toEqual(final)
    const members = (await w.volumes.get({ site: 'west', volume: 'db' })).members.filter((m) => m.state !== 'retired').map((m) => m.volume)
    expect(members).toHaveLength(8)
    for (const volume of members) expect(await volumeHash(w.storages.east, volume), volume).toBe(await volumeHash(w.storages.west, volume))
  }, 120_000)
})
