import { afterEach, describe, expect, it } from 'vitest'
import { InjectedCrash } from '../../../src/kernel/index.js'
import { commonSnapshot } from '../../../src/modules/ev-mirror/index.js'
import { sendMember } from '../../../src/modules/ev-mirror/sender.js'
import { content, groupsWorld, liveView, makeVolume, readerView, token, volumeHash, type GroupsWorld } from '../../fixtures/groups-world.js'

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

/**
 * The snapshot east's readers are redirected to exists on both sides under the same name, with the same members,
 * and each member is byte-identical on the two sides.
 */
async function sameBytes(w: GroupsWorld): Promise<void> {
  const east = await w.volumes.get({ site: 'east', volume: 'db' })
  const snapshot = (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.id === east.readRedirect)
  if (snapshot === undefined) throw new Error(`east has no redirect target (readRedirect ${String(east.readRedirect)})`)
  const twin = (await w.volumes.listSnapshots({ site: 'west', volume: 'db' })).find((s) => s.name === snapshot.name)
  if (twin === undefined) throw new Error(`west has no snapshot "${snapshot.name}"`)
  expect(snapshot.members.map((m) => [m.role, m.ordinal, m.volume])).toEqual(twin.members.map((m) => [m.role, m.ordinal, m.volume]))
  for (const m of snapshot.members) {
    const other = twin.members.find((x) => x.role === m.role && x.ordinal === m.ordinal)
    expect(other, `${m.volume} in west's "${twin.name}"`).toBeDefined()
    expect(await volumeHash(w.bases.east, m.volume, m.snapshot), m.volume).toBe(await volumeHash(w.bases.west, m.volume, other?.snapshot))
  }
}

describe('ev-mirror: failover', () => {
  it('presents the newest complete snapshot read-write at the destination and raises the epoch', async () => {
    const { w, id } = await failedOver()
    const rel = await w.evMirrors.get({ id })
    expect(rel.state).toBe('failedOver')
    expect(rel.epoch).toBe(2)
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).readRedirect).toBeNull()
    // The old primary's readers see the presented snapshot: the same objects as the new primary's live view.
    expect(await liveView(w.volumes, 'west', 'db')).toEqual(await readerView(w.volumes, 'east', 'db'))
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
    const refused = { code: 'E_PRECONDITION', details: { reason: 'replica', replicaOf: 'db' } }
    await expect(w.volumes.putObject({ site: 'west', volume: 'db', path: '/x', data: content('x') })).rejects.toMatchObject(refused)
    await w.evMirrors.failover({ id: 'db' })
    expect(await writable('east')).toEqual([false, false, false])
    expect(await writable('west')).toEqual([true, true, true])
    await expect(w.volumes.putObject({ site: 'east', volume: 'db', path: '/x', data: content('x') })).rejects.toMatchObject(refused)
    await w.volumes.putObject({ site: 'west', volume: 'db', path: '/x', data: content('x') })
    await w.evMirrors.resync({ id: 'db' })
    expect(await writable('east')).toEqual([false, false, false])
    expect(await writable('west')).toEqual([true, true, true])
    expect((await w.volumes.get({ site: 'east', volume: 'db' })).replicaOf).toBe('db')
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).replicaOf).toBeUndefined()
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
    let stopBeforeReverse = false
    const w = await groupsWorld({ crashAt: (point) => stopBeforeReverse && point.step === 'reverse' && point.phase === 'before' })
    worlds.push(w)
    await makeVolume(w.volumes, 'east', 'db', 2)
    for (let i = 0; i < 6; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`) })
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    const t1 = await w.evMirrors.transfer({ id: 'db' })
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/o1', data: content('v2-1') })
    const t2 = await w.evMirrors.transfer({ id: 'db' })
    expect(t1.snapshot).not.toBe(t2.snapshot)
    // East keeps writing after T2 (cut off when the failover happens): every constituent then differs from T2.
    w.fabric.partition('east', 'west')
    await w.evMirrors.failover({ id: 'db' })
    w.fabric.heal('east', 'west')
    const entry = (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === t2.snapshot)
    if (entry === undefined) throw new Error('east lost T2')
    for (const m of entry.members) await w.bases.east.write(m.volume, 0, content(`late-${m.volume}`, 4096), token)
    for (const m of entry.members) expect(await volumeHash(w.bases.east, m.volume), m.volume).not.toBe(await volumeHash(w.bases.east, m.volume, m.snapshot))
    stopBeforeReverse = true
    await expect(w.evMirrors.resync({ id: 'db', acknowledgeDataLoss: true })).rejects.toBeInstanceOf(InjectedCrash)
    expect(w.seen.find((e) => e.name === 'evMirror.commonSnapshotFound')?.payload).toMatchObject({ snapshot: t2.snapshot })
    expect(w.seen.find((e) => e.name === 'evMirror.restoredToCommon')?.payload).toMatchObject({ site: 'east', snapshot: t2.snapshot })
    // Before anything is transferred back, each old-primary constituent holds exactly its member of T2.
    expect(entry.members).toHaveLength(4)
    for (const m of entry.members) expect(await volumeHash(w.bases.east, m.volume), m.volume).toBe(await volumeHash(w.bases.east, m.volume, m.snapshot))
    const restarted = await w.restart()
    worlds.push(restarted)
    await restarted.evMirrors.recover()
    expect((await restarted.evMirrors.get({ id: 'db' })).direction).toBe('reversed')
    expect(await readerView(restarted.volumes, 'east', 'db')).toEqual(await liveView(restarted.volumes, 'west', 'db'))
    await sameBytes(restarted)
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
    await w.volumes.setReadRedirect({ site: 'east', volume: 'db', snapshot: null })
    for (const name of [t1, t2]) {
      for (const m of (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === name)?.members ?? []) {
        await w.bases.east.releaseSnapshot(m.volume, m.snapshot, 'ev-mirror:db', { scope: 'groups-test', value: 1 })
      }
      await w.volumes.deleteSnapshot({ site: 'east', volume: 'db', name })
    }
    await expect(w.evMirrors.resync({ id })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect((await w.evMirrors.get({ id })).state).toBe('failedOver')
    await w.evMirrors.resync({ id, acknowledgeDataLoss: true })
    expect(w.seen.some((e) => e.name === 'evMirror.commonSnapshotNotFound')).toBe(true)
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
    // The failover marked the cut-off source a replica, so drkit refuses its clients' writes…
    await expect(w.volumes.putObject({ site: 'east', volume: 'db', path: '/lost', data: content('lost') })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'replica' } })
    // …but an application writing around drkit (here: with the mark lifted) could not be stopped while east was cut off.
    await w.volumes.setReplica({ site: 'east', volume: 'db', replicaOf: null })
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/lost', data: content('lost') })
    await expect(w.evMirrors.resync({ id })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { common: t2 } })
    expect((await w.evMirrors.get({ id })).operation).toBeNull()
    await w.evMirrors.resync({ id, safetySnapshot: true })
    const safety = (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === 'db.safety.3')
    expect(safety).toBeDefined()
    expect(await w.volumes.listObjects({ site: 'east', volume: 'db', snapshot: safety?.id ?? 0 })).toContainEqual(expect.objectContaining({ path: '/lost' }))
    expect(Object.keys(await readerView(w.volumes, 'east', 'db'))).not.toContain('/lost')
  })

  it('writes that reach the old primary after the early check are still caught: the workflow re-checks once the old primary is read-only', async () => {
    let stopAtDemote = false
    const w = await groupsWorld({ crashAt: (point) => stopAtDemote && point.step === 'demote' && point.phase === 'before' })
    worlds.push(w)
    await makeVolume(w.volumes, 'east', 'db', 1)
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/a', data: content('a') })
    await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
    await w.evMirrors.transfer({ id: 'db' })
    w.fabric.partition('east', 'west')
    await w.evMirrors.failover({ id: 'db' })
    w.fabric.heal('east', 'west')
    // Nothing changed on east yet: the facade's early check lets the resync start; it stops before the old primary is read-only.
    stopAtDemote = true
    await expect(w.evMirrors.resync({ id: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
    // In that window a writer outside drkit reaches the old primary's storage.
    await w.bases.east.write('db.dc-1', 0, content('late', 4096), token)
    const late = await volumeHash(w.bases.east, 'db.dc-1')
    const restarted = await w.restart()
    worlds.push(restarted)
    await restarted.evMirrors.recover()
    const rel = await restarted.evMirrors.get({ id: 'db' })
    expect(rel).toMatchObject({ state: 'failedOver', direction: 'forward', operation: null })
    expect(await volumeHash(restarted.bases.east, 'db.dc-1')).toBe(late)
    expect((await restarted.bases.east.volumeInfo('db.dc-1')).writable).toBe(false)
    await restarted.evMirrors.resync({ id: 'db', safetySnapshot: true })
    const safety = (await restarted.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((x) => x.name === 'db.safety.3')
    const kept = safety?.members.find((m) => m.volume === 'db.dc-1')
    if (kept === undefined) throw new Error('no safety snapshot of db.dc-1')
    expect(await volumeHash(restarted.bases.east, 'db.dc-1', kept.snapshot)).toBe(late)
    await sameBytes(restarted)
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
