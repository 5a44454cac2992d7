import { afterEach, describe, expect, it } from 'vitest'
import { content, groupsWorld, liveView, makeVolume, readerView, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

async function replicated(dcs: number): Promise<GroupsWorld> {
  const w = await groupsWorld()
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

  it('behaviour 32: a second transfer of the same volume while one runs is rejected, and no constituent is fenced by two groups', async () => {
    const w = await replicated(2)
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/x', data: content('x') })
    w.faults.west.setLatency((call) => (call.method === 'write' ? 5 : 0))
    const first = w.evMirrors.transfer({ id: 'db' })
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await first
    w.faults.west.setLatency(0)
    const both = await Promise.allSettled([w.volumes.snapshot({ site: 'east', volume: 'db', name: 'p' }), w.volumes.snapshot({ site: 'east', volume: 'db', name: 'q' })])
    expect(both.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['E_CONFLICT'])
    for (const v of ['db.ns', 'db.ols', 'db.dc-1', 'db.dc-2']) expect(await w.bases.east.isFenced(v)).toBe(false)
  })

  it('behaviour 34: an object moved to another constituent at the source (stale location) is found at the destination through the OLS at its new place', async () => {
    const w = await replicated(2)
    const before = await w.volumes.resolveHandle({ site: 'west', volume: 'db', snapshot: 0, path: '/o1' })
    const moved = before.ordinal
    await w.volumes.shrink({ site: 'east', volume: 'db', remove: [moved] })
    await w.evMirrors.transfer({ id: 'db' })
    const after = await w.volumes.resolveHandle({ site: 'west', volume: 'db', snapshot: 0, path: '/o1' })
    expect(after.id).toBe(before.id)
    expect(after.ordinal).not.toBe(moved)
    expect(await w.volumes.readSnapshotObject({ site: 'west', volume: 'db', snapshot: 0, path: '/o1' })).toEqual(content('v1-1'))
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
    const transferred = async (n: number) => {
      for (let i = 0; i < 2000 && ((await w.evMirrors.get({ id: 'db' })).lastTransferred?.sequence ?? 0) < n; i++) await new Promise((r) => setTimeout(r, 2))
      return (await w.evMirrors.get({ id: 'db' })).lastTransferred
    }
    for (let tick = 1; tick <= 3; tick++) {
      await w.volumes.putObject({ site: 'east', volume: 'db', path: `/t${tick}`, data: content(`t${tick}`) })
      await clock.advance(30_000)
      expect((await transferred(tick))?.name).toBe(`db.${tick}`)
      expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
    }
    expect(w.seen.filter((e) => e.name === 'evMirror.transferStarted').map((e) => (e.payload as { base: string | null }).base)).toEqual([null, 'db.1', 'db.2'])
    await w.evMirrors.delete({ id: 'db' })
    await clock.advance(30_000)
    expect(w.seen.filter((e) => e.name === 'evMirror.transferStarted')).toHaveLength(3)
  })
})
