import { afterEach, describe, expect, it } from 'vitest'
import { commonSnapshot } from '../../../src/modules/ev-mirror/index.js'
import { sendMember } from '../../../src/modules/ev-mirror/sender.js'
import { content, groupsWorld, liveView, makeVolume, readerView, volumeHash, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

/** A relationship with two transfers (T1, T2) done, then failed over (with the source cut off when `isolated`). */
async function failedOver(dcs = 2, isolated = false): Promise<{ w: GroupsWorld; id: string; t1: string; t2: string }> {
  const w = await groupsWorld()
  worlds.push(w)
  await makeVolume(w.volumes, 'east', 'db', dcs)
  for (let i = 0; i < 6; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`) })
  const rel = await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
  const t1 = await w.evMirrors.transfer({ id: rel.id })
  await w.volumes.putObject({ site: 'east', volume: 'db', path: '/o1', data: content('v2-1') })
  const t2 = await w.evMirrors.transfer({ id: rel.id })
  if (isolated) w.fabric.partition('east', 'west')
  await w.evMirrors.failover({ id: rel.id })
  w.fabric.heal('east', 'west')
  return { w, id: rel.id, t1: t1.snapshot, t2: t2.snapshot }
}

async function sameBytes(w: GroupsWorld): Promise<void> {
  const east = await w.volumes.get({ site: 'east', volume: 'db' })
  const snapshot = (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.id === east.readRedirect)
  const west = await w.volumes.listSnapshots({ site: 'west', volume: 'db' })
  const twin = west.find((s) => s.name === snapshot?.name)
  for (const m of snapshot?.members ?? []) {
    const other = twin?.members.find((x) => x.volume === m.volume)
    expect(await volumeHash(w.bases.east, m.volume, m.snapshot)).toBe(await volumeHash(w.bases.west, m.volume, other?.snapshot))
  }
}

describe('ev-mirror: failover', () => {
  it('presents the newest complete snapshot read-write at the destination and raises the epoch', async () => {
    const { w, id } = await failedOver()
    const rel = await w.evMirrors.get({ id })
    expect(rel.state).toBe('failedOver')
    expect(rel.epoch).toBe(2)
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).readRedirect).toBeNull()
    expect(await liveView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
    await w.volumes.putObject({ site: 'west', volume: 'db', path: '/dr', data: content('dr') })
    expect(Object.keys(await liveView(w.volumes, 'west', 'db'))).toContain('/dr')
  })

  it('never leaves both sides writable: the destination is read-only until failover, the reachable source read-only after it', async () => {
    const w = await groupsWorld()
    worlds.push(w)
    await makeVolume(w.volumes, 'east', 'db', 1)
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await w.evMirrors.transfer({ id: 'db' })
    const writable = async (site: 'east' | 'west') => Promise.all(['db.ns', 'db.ols', 'db.dc-1'].map(async (v) => (await w.bases[site].volumeInfo(v)).writable))
    expect(await writable('west')).toEqual([false, false, false])
    await expect(w.volumes.putObject({ site: 'west', volume: 'db', path: '/x', data: content('x') })).rejects.toBeDefined()
    await w.evMirrors.failover({ id: 'db' })
    expect(await writable('east')).toEqual([false, false, false])
    expect(await writable('west')).toEqual([true, true, true])
    await w.evMirrors.resync({ id: 'db' })
    expect(await writable('east')).toEqual([false, false, false])
    expect(await writable('west')).toEqual([true, true, true])
  })

  it('refuses a transfer of the old epoch at the failed-over destination (no split brain)', async () => {
    const { w, t2 } = await failedOver()
    const snap = (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === t2)
    const member = snap?.members.find((m) => m.volume === 'db.dc-1')
    const stale = sendMember({
      relationship: 'db',
      epoch: 1,
      source: { storage: w.faults.east.port, network: w.networks.east, volume: 'db.dc-1', snapshot: member?.snapshot ?? '', base: null },
      destination: { site: 'west', volume: 'db.dc-1', base: null },
      chunkBytes: 65536,
      signal: new AbortController().signal,
    })
    await expect(stale).rejects.toMatchObject({ code: 'E_FENCED' })
  })

  it('needs a complete transfer first (E_PRECONDITION)', async () => {
    const w = await groupsWorld()
    worlds.push(w)
    await makeVolume(w.volumes, 'east', 'db', 1)
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await expect(w.evMirrors.failover({ id: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect((await w.evMirrors.get({ id: 'db' })).state).toBe('replicating')
  })
})

describe('ev-mirror: resync (RS)', () => {
  it('behaviour 26: resync picks the latest snapshot valid in both catalogs and restores every old-primary constituent to it', async () => {
    const { w, id, t2 } = await failedOver()
    await w.volumes.putObject({ site: 'west', volume: 'db', path: '/dr', data: content('dr') })
    await w.evMirrors.resync({ id })
    expect(w.seen.find((e) => e.name === 'evMirror.commonSnapshotFound')?.payload).toMatchObject({ snapshot: t2 })
    expect(w.seen.find((e) => e.name === 'evMirror.restoredToCommon')?.payload).toMatchObject({ site: 'east', snapshot: t2 })
    expect(await readerView(w.volumes, 'east', 'db')).toEqual(await liveView(w.volumes, 'west', 'db'))
    await sameBytes(w)
  })

  it('behaviour 27: after resync the relationship is reversed: the remote is the source, the same pairs swapped', async () => {
    const { w, id } = await failedOver()
    const before = await w.evMirrors.memberRelationships({ id })
    const rel = await w.evMirrors.resync({ id })
    expect(rel.direction).toBe('reversed')
    expect(rel.source.site).toBe('west')
    expect(rel.destination.site).toBe('east')
    expect(rel.epoch).toBe(3)
    const after = await w.evMirrors.memberRelationships({ id })
    expect(after.map((m) => [m.key, m.source, m.destination])).toEqual(before.map((m) => [m.key, m.destination, m.source]))
    expect(rel.idMap.every((e) => e.destinationOriginalId === e.sourceId)).toBe(true)
  })

  it('behaviour 28: a data constituent added at the DR site during failover is created on the old primary, with its id and relationship, before data moves', async () => {
    const { w, id } = await failedOver(2)
    await w.volumes.expand({ site: 'west', volume: 'db', add: 1 })
    await w.volumes.putObject({ site: 'west', volume: 'db', path: '/dr3', data: content('dr3') })
    w.seen.length = 0
    await w.evMirrors.resync({ id })
    const order = w.seen.map((e) => e.name)
    const resized = w.seen.findIndex((e) => e.name === 'evMirror.destinationResized' && (e.payload as { site: string }).site === 'east')
    expect((w.seen[resized]?.payload as unknown as { added: number[] }).added).toEqual([3])
    const related = w.seen.findIndex((e) => e.name === 'evMirror.memberRelationshipCreated' && (e.payload as { source: string }).source === 'db.dc-3')
    expect(related).toBeGreaterThan(resized)
    expect(order.indexOf('evMirror.memberTransferred')).toBeGreaterThan(related)
    expect((await w.volumes.get({ site: 'east', volume: 'db' })).members.filter((m) => m.role === 'data' && m.state === 'active').map((m) => m.ordinal)).toEqual([1, 2, 3])
    expect(await readerView(w.volumes, 'east', 'db')).toEqual(await liveView(w.volumes, 'west', 'db'))
  })

  it('behaviour 29: with no common snapshot the resync is a baseline, the restore is skipped, and old-primary data needs an acknowledgement', async () => {
    const { w, id, t1, t2 } = await failedOver()
    for (const name of [t1, t2]) {
      for (const m of (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === name)?.members ?? []) {
        await w.bases.east.releaseSnapshot(m.volume, m.snapshot, 'ev-mirror:db', { scope: 'groups-test', value: 1 })
      }
      await w.volumes.deleteSnapshot({ site: 'east', volume: 'db', name })
    }
    await expect(w.evMirrors.resync({ id })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect((await w.evMirrors.get({ id })).state).toBe('failedOver')
    await w.evMirrors.resync({ id, acknowledgeDataLoss: true })
    expect(w.seen.some((e) => e.name === 'evMirror.commonSnapshotMissing')).toBe(true)
    expect(w.seen.some((e) => e.name === 'evMirror.restoredToCommon')).toBe(false)
    expect(w.seen.find((e) => e.name === 'evMirror.resynced')?.payload).toMatchObject({ mode: 'baseline' })
    expect(await readerView(w.volumes, 'east', 'db')).toEqual(await liveView(w.volumes, 'west', 'db'))
    await sameBytes(w)
  })

  it('behaviour 30: when the resync transfer completes, the receiving side redirects its readers to the newly transferred snapshot', async () => {
    const { w, id } = await failedOver()
    await w.evMirrors.resync({ id, snapshot: 'back' })
    const back = (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === 'back')
    expect((await w.volumes.get({ site: 'east', volume: 'db' })).readRedirect).toBe(back?.id)
    expect(w.seen.filter((e) => e.name === 'evMirror.redirectMoved').at(-1)?.payload).toMatchObject({ site: 'east', to: 'back' })
  })

  it('writes on the old primary after the common snapshot are refused without acknowledgement, or kept in a safety snapshot', async () => {
    const { w, id, t2 } = await failedOver(2, true)
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/lost', data: content('lost') })
    await expect(w.evMirrors.resync({ id })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { common: t2 } })
    expect((await w.evMirrors.get({ id })).operation).toBeNull()
    await w.evMirrors.resync({ id, safetySnapshot: true })
    const safety = (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === 'db.safety.3')
    expect(safety).toBeDefined()
    expect(await w.volumes.listObjects({ site: 'east', volume: 'db', snapshot: safety?.id ?? 0 })).toContainEqual(expect.objectContaining({ path: '/lost' }))
    expect(Object.keys(await readerView(w.volumes, 'east', 'db'))).not.toContain('/lost')
  })

  it('behaviour 36: an invalid catalog entry is never chosen as the common snapshot nor transferred as a redirect target', async () => {
    const at = 1
    const entry = (name: string, valid: boolean) => ({ id: 1, site: 's', volume: 'v', name, createdAt: at, valid, allowedClients: null, members: [] })
    expect(commonSnapshot([entry('a', true), entry('b', false)], [entry('a', true), entry('b', true)])).toBe('a')
    expect(commonSnapshot([entry('a', true)], [entry('a', false)])).toBeNull()
    const w = await groupsWorld()
    worlds.push(w)
    await makeVolume(w.volumes, 'east', 'db', 1)
    const taken = await w.volumes.snapshot({ site: 'east', volume: 'db', name: 'good' })
    await w.volumes.adoptSnapshot({ site: 'east', volume: 'db', name: 'bad', valid: false, members: taken.members.map((m) => ({ volume: m.volume, role: m.role, ordinal: m.ordinal, snapshot: m.snapshot, timestamp: m.timestamp })) })
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await expect(w.evMirrors.transfer({ id: 'db', snapshot: 'bad' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).readRedirect).toBeNull()
  })
})
