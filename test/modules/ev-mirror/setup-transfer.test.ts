import { afterEach, describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { SOURCE_ID_KEY } from '../../../src/modules/ev-mirror/resize.js'
import { snapshotConfigKey } from '../../../src/modules/ev-mirror/transfer-steps.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { Gate, content, eventsSeen, groupsWorld, liveView, makeVolume, readerView, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

async function seeded(dcs = 2, objects = 8, options: Parameters<typeof groupsWorld>[0] = {}): Promise<GroupsWorld> {
  const w = await groupsWorld(options)
  worlds.push(w)
  await makeVolume(w.volumes, 'east', 'db', dcs)
  for (let i = 0; i < objects; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`) })
  return w
}

const names = (w: GroupsWorld) => w.seen.map((e) => e.name)

describe('ev-mirror: mirroring setup (MIR)', () => {
  it('behaviour 17: each destination constituent carries its source id, the id map keeps the original ids, one relationship per pair', async () => {
    const w = await seeded(2)
    const rel = await w.evMirrors.create({ id: 'db-west', source: { site: 'east', volume: 'db' }, destination: { site: 'west', volume: 'dbcopy' } })
    const sources = ['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2']
    const destinations = ['dbcopy.ns', 'dbcopy.ols', 'dbcopy.dc-1', 'dbcopy.dc-2']
    for (const [i, dst] of destinations.entries()) expect(await w.bases.west.getConfig(dst, SOURCE_ID_KEY)).toBe(sources[i])
    expect(rel.idMap).toEqual(destinations.map((d, i) => ({ destinationOriginalId: d, sourceId: sources[i] })))
    const members = await w.evMirrors.memberRelationships({ id: 'db-west' })
    expect(members).toHaveLength(4)
    expect(members.map((m) => [m.source, m.destination]).sort()).toEqual(sources.map((s, i) => [s, destinations[i]]).sort())
  })

  it('behaviour 18: the relationship holds both sides (cluster, volume, repository, vserver), type mirror and a config with schedule and access control', async () => {
    const w = await seeded(1)
    const rel = await w.evMirrors.create({
      source: { site: 'east', volume: 'db', vserver: 'vs1' },
      destination: { site: 'west', vserver: 'vs2' },
      config: { schedule: '15m', authorizedUsers: ['alice'] },
    })
    expect(rel.type).toBe('mirror')
    expect(rel.source).toEqual({ site: 'east', volume: 'db', repository: 'east/db', vserver: 'vs1' })
    expect(rel.destination).toEqual({ site: 'west', volume: 'db', repository: 'west/db', vserver: 'vs2' })
    expect(rel.config).toEqual({ scheduleMs: 15 * 60_000, authorizedUsers: ['alice'], extra: null })
    expect(rel.direction).toBe('forward')
  })

  it('refuses a second relationship over the same volume with E_CONFLICT, changing nothing', async () => {
    const w = await seeded(1)
    await w.evMirrors.create({ id: 'one', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await expect(w.evMirrors.create({ id: 'two', source: { site: 'east', volume: 'db' }, destination: { site: 'west', volume: 'other' } })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect((await w.evMirrors.list()).map((r) => r.id)).toEqual(['one'])
    await expect(w.volumes.get({ site: 'west', volume: 'other' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
  })
})

describe('ev-mirror: transfer (XFER)', () => {
  it('behaviour 19: a source constituent added since the last transfer gets a destination constituent, its id and its relationship before any data moves', async () => {
    const w = await seeded(4)
    const rel = await w.evMirrors.create({ source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await w.evMirrors.transfer({ id: rel.id })
    await w.volumes.expand({ site: 'east', volume: 'db', add: 1 })
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/new', data: content('new') })
    w.seen.length = 0
    await w.evMirrors.transfer({ id: rel.id })
    const order = names(w)
    const resized = order.indexOf('evMirror.destinationResized')
    const related = w.seen.findIndex((e) => e.name === 'evMirror.memberRelationshipCreated' && (e.payload as { destination: string }).destination === 'db.dc-5')
    const firstData = order.indexOf('evMirror.memberTransferred')
    expect(resized).toBeGreaterThanOrEqual(0)
    expect(related).toBeGreaterThan(resized)
    expect(firstData).toBeGreaterThan(related)
    expect(await w.bases.west.getConfig('db.dc-5', SOURCE_ID_KEY)).toBe('db.dc-5')
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
  })

  it('behaviour 20: a deleted member relationship record is recreated by the confirm step before the data transfer', async () => {
    const w = await seeded(2)
    const rel = await w.evMirrors.create({ id: 'db-west', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    const stream = 'ev-mirror/relationships'
    const version = (await w.stateStore.read(stream)).at(-1)?.version ?? 0
    await w.stateStore.append(stream, version, [{ type: 'evMirror.memberRelationshipDropped', data: { key: 'db-west/data-2' } }])
    const w2 = await w.restart()
    worlds.push(w2)
    expect(await w2.evMirrors.memberRelationships({ id: rel.id })).toHaveLength(3)
    await w2.evMirrors.transfer({ id: rel.id })
    const recreated = w2.seen.findIndex((e) => e.name === 'evMirror.memberRelationshipCreated' && (e.payload as { recreated: boolean }).recreated)
    expect(recreated).toBeGreaterThanOrEqual(0)
    expect(recreated).toBeLessThan(w2.seen.findIndex((e) => e.name === 'evMirror.memberTransferred'))
    expect(await w2.evMirrors.memberRelationships({ id: rel.id })).toHaveLength(4)
  })

  it('behaviour 21: while one member of T is still transferring, readers at the destination are served T-1 on every constituent, never a mix', async () => {
    const gate = new Gate(memoryStorage())
    const w = await seeded(2, 8, { bases: { east: memoryStorage(), west: gate.port } })
    const rel = await w.evMirrors.create({ source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await w.evMirrors.transfer({ id: rel.id })
    const before = await readerView(w.volumes, 'west', 'db')
    for (let i = 0; i < 8; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v2-${i}`) })
    w.seen.length = 0
    gate.arm((method, args) => method === 'write' && args[0] === 'db.dc-2')
    const held = w.evMirrors.transfer({ id: rel.id })
    await gate.reached
    await eventsSeen(w, 'evMirror.memberTransferred', 3)
    const transferred = (c: string): boolean => w.seen.some((e) => e.name === 'evMirror.memberTransferred' && (e.payload as { constituent: string }).constituent === c)
    expect(['db.ns', 'db.ols', 'db.dc-1'].every(transferred)).toBe(true)
    expect(transferred('db.dc-2')).toBe(false)
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(before)
    gate.open()
    await held
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
  })

  it('behaviour 22: once every pair transferred and config and catalog succeeded, the redirect moves from T-1 to T (after the configuration)', async () => {
    const w = await seeded(2)
    const rel = await w.evMirrors.create({ source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    const t1 = await w.evMirrors.transfer({ id: rel.id })
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/later', data: content('later') })
    w.seen.length = 0
    const t2 = await w.evMirrors.transfer({ id: rel.id })
    const moved = w.seen.find((e) => e.name === 'evMirror.redirectMoved')
    expect(moved?.payload).toMatchObject({ from: t1.snapshot, to: t2.snapshot })
    expect(names(w).indexOf('evMirror.configurationReplicated')).toBeLessThan(names(w).indexOf('evMirror.redirectMoved'))
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).readRedirect).toBe(t2.id)
  })

  it('behaviour 23: when the configuration copy fails after the data arrived, T has no catalog entry and the redirect stays on T-1', async () => {
    const w = await seeded(2)
    const rel = await w.evMirrors.create({ source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    const t1 = await w.evMirrors.transfer({ id: rel.id })
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/later', data: content('later') })
    w.faults.west.fail({ method: 'putConfig', when: (call) => String(call.args[1]).startsWith('ev-mirror.snapshot.'), error: new DrError('E_PRECONDITION', 'config store refused') })
    await expect(w.evMirrors.transfer({ id: rel.id })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    const catalog = await w.volumes.listSnapshots({ site: 'west', volume: 'db' })
    expect(catalog.map((s) => s.name)).toEqual([t1.snapshot])
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).readRedirect).toBe(t1.id)
    expect((await w.evMirrors.get({ id: rel.id })).lastTransferred?.name).toBe(t1.snapshot)
    expect((await w.bases.west.listSnapshots('db.dc-1')).map((s) => s.name)).toEqual([catalog[0]?.members.find((m) => m.volume === 'db.dc-1')?.snapshot])
    expect(w.seen.some((e) => e.name === 'evMirror.transferFailed')).toBe(true)
  })

  it('behaviour 24: the replicated configuration holds vserver, volume, snapshot id, volume count, name, allowed clients, valid flag, the volumes and the timestamp', async () => {
    const w = await seeded(4)
    const rel = await w.evMirrors.create({ source: { site: 'east', volume: 'db', vserver: 'vs1' }, destination: { site: 'west' } })
    const snap = await w.volumes.snapshot({ site: 'east', volume: 'db', name: 'nightly', allowedClients: ['c1'] })
    await w.evMirrors.transfer({ id: rel.id, snapshot: 'nightly', attachment: { shares: ['home'] } })
    const config = await w.evMirrors.snapshotConfiguration({ id: rel.id, snapshot: 'nightly' })
    expect(config).toEqual({
      vserver: 'vs1',
      volume: 'db',
      snapshotId: snap.id,
      volumeCount: 6,
      snapshotName: 'nightly',
      allowedClients: ['c1'],
      valid: true,
      volumes: ['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2', 'db.dc-3', 'db.dc-4'],
      createdAt: snap.createdAt,
      extra: null,
      attachment: { shares: ['home'] },
    })
    expect(await w.bases.west.getConfig('db.ns', snapshotConfigKey('nightly'))).toEqual(config)
    expect(await w.evMirrors.replicatedConfiguration({ site: 'west', volume: 'db', snapshot: 'nightly' })).toEqual(config)
  })

  it('behaviour 25: the first transfer is a baseline, the next an update from T-1 that sends only what changed', async () => {
    const w = await seeded(2, 16)
    const rel = await w.evMirrors.create({ source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    const t1 = await w.evMirrors.transfer({ id: rel.id })
    const baseline = w.seen.filter((e) => e.name === 'evMirror.memberTransferred').map((e) => e.payload as { bytes: number })
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/o0', data: content('changed') })
    w.seen.length = 0
    const t2 = await w.evMirrors.transfer({ id: rel.id })
    const update = w.seen.filter((e) => e.name === 'evMirror.memberTransferred').map((e) => e.payload as { bytes: number })
    expect(t1.base).toBeNull()
    expect(t2.base).toBe(t1.snapshot)
    expect(w.seen.find((e) => e.name === 'evMirror.transferStarted')?.payload).toMatchObject({ base: t1.snapshot })
    const sum = (xs: Array<{ bytes: number }>) => xs.reduce((n, x) => n + x.bytes, 0)
    expect(sum(update)).toBeLessThan(sum(baseline))
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
  })
})
