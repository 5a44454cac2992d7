import { afterEach, describe, expect, it } from 'vitest'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { Gate, content, eventsSeen, groupsWorld, liveView, makeVolume, readerView, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

async function replicated(dcs: number, options: Parameters<typeof groupsWorld>[0] = {}): Promise<GroupsWorld> {
  const w = await groupsWorld(options)
  worlds.push(w)
  await makeVolume(w.volumes, 'east', 'db', dcs)
  for (let i = 0; i < 12; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`) })
  await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
  await w.evMirrors.transfer({ id: 'db' })
  return w
}

const activeData = async (w: GroupsWorld, site: string) =>
  (await w.volumes.get({ site, volume: 'db' })).members.filter((m) => m.role === 'data' && m.state === 'active').map((m) => m.volume)

describe('ev-mirror: membership follows the source', () => {
  it('behaviour 31: an added data constituent appears in the catalogs and the next replicated snapshot; a removed one disappears from both', async () => {
    const w = await replicated(3)
    await w.volumes.expand({ site: 'east', volume: 'db', add: 1 })
    expect(await activeData(w, 'east')).toContain('db.dc-4')
    const added = await w.evMirrors.transfer({ id: 'db' })
    expect((await w.volumes.listSnapshots({ site: 'west', volume: 'db' })).find((s) => s.name === added.snapshot)?.members.map((m) => m.volume)).toContain('db.dc-4')
    await w.volumes.shrink({ site: 'east', volume: 'db', remove: [2] })
    expect(await activeData(w, 'east')).not.toContain('db.dc-2')
    const removed = await w.evMirrors.transfer({ id: 'db' })
    const entry = (await w.volumes.listSnapshots({ site: 'west', volume: 'db' })).find((s) => s.name === removed.snapshot)
    expect(entry?.members.map((m) => m.volume)).not.toContain('db.dc-2')
    expect(await activeData(w, 'west')).toEqual(['db.dc-1', 'db.dc-3', 'db.dc-4'])
    const rel = await w.evMirrors.get({ id: 'db' })
    expect(rel.pairs.find((p) => p.ordinal === 2 && p.role === 'data')?.state).toBe('retired')
    expect((await w.evMirrors.memberRelationships({ id: 'db' })).map((m) => m.source)).not.toContain('db.dc-2')
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
  })

  it('behaviour 32: a second snapshot job (and a second transfer) of the volume while one runs is rejected, and no constituent is fenced by two groups', async () => {
    const gate = new Gate(memoryStorage())
    const w = await replicated(2, { bases: { east: gate.port, west: memoryStorage() } })
    const members = ['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2']
    // The transfer's own consistency-group snapshot is held with every constituent fenced.
    gate.arm((method, args) => method === 'createSnapshot' && args[0] === 'db.dc-2')
    const fencesBefore = w.faults.east.count('fence')
    const first = w.evMirrors.transfer({ id: 'db' })
    await gate.reached
    for (const v of members) expect(await w.bases.east.isFenced(v), `${v} fenced by the first group`).toBe(true)
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await expect(w.volumes.snapshot({ site: 'east', volume: 'db', name: 'second' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    // While both ran, each constituent was fenced once, by the first group: the second never fenced anything.
    expect(w.faults.east.calls.filter((c) => c.method === 'fence').map((c) => c.args[0])).toEqual([...w.faults.east.calls.filter((c) => c.method === 'fence').slice(0, fencesBefore).map((c) => c.args[0]), ...members])
    gate.open()
    await first
    for (const v of members) expect(await w.bases.east.isFenced(v)).toBe(false)
    expect((await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).map((s) => s.name)).not.toContain('second')
  })

  it('behaviour 34: a handle whose location id went stale is read at the new location through the OLS, and comes back with the same global id and the new location', async () => {
    const w = await replicated(2)
    const stale = await w.volumes.resolveHandle({ site: 'west', volume: 'db', snapshot: 0, path: '/o1' })
    const fast = await w.volumes.readObjectById({ site: 'west', volume: 'db', snapshot: 0, id: stale.id, ordinal: stale.ordinal })
    expect(fast).toMatchObject({ relocated: false, handle: { id: stale.id, ordinal: stale.ordinal } })
    // The object's constituent is removed at the source; the next transfer moves it at the destination too.
    await w.volumes.shrink({ site: 'east', volume: 'db', remove: [stale.ordinal] })
    await w.evMirrors.transfer({ id: 'db' })
    const slow = await w.volumes.readObjectById({ site: 'west', volume: 'db', snapshot: 0, id: stale.id, ordinal: stale.ordinal })
    expect(slow.data).toEqual(content('v1-1'))
    expect(slow.relocated).toBe(true)
    expect(slow.handle.id).toBe(stale.id)
    expect(slow.handle.ordinal).not.toBe(stale.ordinal)
    expect(slow.handle.constituent).not.toBe(stale.constituent)
    // The old location is invalid: the handle given back is the one the path resolves to now.
    expect(slow.handle).toEqual(await w.volumes.resolveHandle({ site: 'west', volume: 'db', snapshot: 0, path: '/o1' }))
    expect(await w.volumes.readObjectById({ site: 'west', volume: 'db', snapshot: 0, id: slow.handle.id, ordinal: slow.handle.ordinal })).toMatchObject({ relocated: false })
  })

  it('behaviour 35: the allowed clients of a replicated snapshot are enforced at the destination', async () => {
    const w = await replicated(1)
    await w.volumes.snapshot({ site: 'east', volume: 'db', name: 'restricted', allowedClients: ['c1'] })
    const t = await w.evMirrors.transfer({ id: 'db', snapshot: 'restricted' })
    await expect(w.volumes.readSnapshotObject({ site: 'west', volume: 'db', snapshot: t.id, path: '/o1', client: 'c2' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await w.volumes.readSnapshotObject({ site: 'west', volume: 'db', snapshot: t.id, path: '/o1', client: 'c1' })).toEqual(content('v1-1'))
  })

  it('the relationship configuration can narrow who reads the replicated snapshots', async () => {
    const w = await groupsWorld()
    worlds.push(w)
    await makeVolume(w.volumes, 'east', 'db', 1)
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/a', data: content('a') })
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, config: { authorizedUsers: ['ops'] } })
    const t = await w.evMirrors.transfer({ id: 'db' })
    await expect(w.volumes.readSnapshotObject({ site: 'west', volume: 'db', snapshot: t.id, path: '/a', client: 'guest' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await w.volumes.readSnapshotObject({ site: 'west', volume: 'db', snapshot: t.id, path: '/a', client: 'ops' })).toEqual(content('a'))
  })
})

describe('ev-mirror: continuous mirroring', () => {
  it('a relationship with a schedule transfers a new snapshot on every tick, each an update from the previous one', async () => {
    const { ManualClock } = await import('../../../src/kernel/index.js')
    const clock = new ManualClock()
    const w = await groupsWorld({ mirrorClock: clock })
    worlds.push(w)
    await makeVolume(w.volumes, 'east', 'db', 1)
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, config: { schedule: '30s' } })
    for (let tick = 1; tick <= 3; tick++) {
      await w.volumes.putObject({ site: 'east', volume: 'db', path: `/t${tick}`, data: content(`t${tick}`) })
      const moved = eventsSeen(w, 'evMirror.redirectMoved', tick)
      await clock.advance(30_000)
      await moved
      expect((await w.evMirrors.get({ id: 'db' })).lastTransferred).toMatchObject({ name: `db.${tick}`, sequence: tick })
      expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
    }
    expect(w.seen.filter((e) => e.name === 'evMirror.transferStarted').map((e) => (e.payload as { base: string | null }).base)).toEqual([null, 'db.1', 'db.2'])
    await w.evMirrors.delete({ id: 'db' })
    await clock.advance(30_000)
    expect(w.seen.filter((e) => e.name === 'evMirror.transferStarted')).toHaveLength(3)
  })
})
