import { afterEach, describe, expect, it } from 'vitest'
import { DrError, InjectedCrash } from '../../../src/kernel/index.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { EPOCH_KEY } from '../../../src/modules/ev-mirror/epoch.js'
import { sendMember } from '../../../src/modules/ev-mirror/sender.js'
import { Gate, content, eventsSeen, groupsWorld, liveView, makeVolume, readerView, type GroupsWorld } from '../../fixtures/groups-world.js'

const worlds: GroupsWorld[] = []
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.close()
})

async function world(options: Parameters<typeof groupsWorld>[0] = {}, dcs = 2): Promise<GroupsWorld> {
  const w = await groupsWorld(options)
  worlds.push(w)
  await makeVolume(w.volumes, 'east', 'db', dcs)
  for (let i = 0; i < 8; i++) await w.volumes.putObject({ site: 'east', volume: 'db', path: `/o${i}`, data: content(`v1-${i}`) })
  await w.evMirrors.create({ id: 'db', source: { site: 'east', volume: 'db' }, destination: { site: 'west' } })
  return w
}

/** The storage-level writability of every non-retired constituent of db at `site`. */
async function writability(w: GroupsWorld, site: 'east' | 'west'): Promise<Record<string, boolean>> {
  const record = await w.volumes.get({ site, volume: 'db' })
  const out: Record<string, boolean> = {}
  for (const m of record.members.filter((x) => x.state !== 'retired')) out[m.volume] = (await w.bases[site].volumeInfo(m.volume)).writable
  return out
}

const notConsistent = { code: 'E_UNAVAILABLE', details: { reason: 'replicaNotConsistent', replicaOf: 'db' } }

describe('ev-mirror: a replica is written by its replicator only', () => {
  it('clients can neither write a replica nor read it around its redirect', async () => {
    const w = await world()
    await w.evMirrors.transfer({ id: 'db' })
    const replica = { code: 'E_PRECONDITION', message: expect.stringContaining('replica of "db"'), details: { site: 'west', volume: 'db', replicaOf: 'db', reason: 'replica' } }
    await expect(w.volumes.putObject({ site: 'west', volume: 'db', path: '/x', data: content('x') })).rejects.toMatchObject(replica)
    await expect(w.volumes.deleteObject({ site: 'west', volume: 'db', path: '/o1' })).rejects.toMatchObject(replica)
    await expect(w.volumes.getObject({ site: 'west', volume: 'db', path: '/o1' })).rejects.toMatchObject(replica)
    await expect(w.volumes.listObjects({ site: 'west', volume: 'db' })).rejects.toMatchObject(replica)
    expect(await w.volumes.readSnapshotObject({ site: 'west', volume: 'db', snapshot: 0, path: '/o1' })).toEqual(content('v1-1'))
  })

  it('a member receive that fails leaves every destination constituent read-only', async () => {
    const w = await world()
    await w.evMirrors.transfer({ id: 'db' })
    await w.volumes.putObject({ site: 'east', volume: 'db', path: '/o1', data: content('v2-1') })
    w.faults.west.fail({ method: 'write', when: (call) => call.args[0] === 'db.dc-1', error: new DrError('E_PRECONDITION', 'disk full') })
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    // The receiver had made db.dc-1 writable to apply the update; it is read-only again.
    expect(w.faults.west.calls.some((c) => c.method === 'setWritable' && c.args[0] === 'db.dc-1' && c.args[1] === true)).toBe(true)
    expect(Object.values(await writability(w, 'west'))).toEqual([false, false, false, false])
  })

  it('a resize that fails leaves the destination read-only', async () => {
    const w = await world()
    await w.evMirrors.transfer({ id: 'db' })
    await w.volumes.expand({ site: 'east', volume: 'db', add: 1 })
    w.faults.west.fail({ method: 'createVolume', error: new DrError('E_PRECONDITION', 'no capacity') })
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(w.faults.west.calls.some((c) => c.method === 'setWritable' && c.args[1] === true)).toBe(true)
    expect(Object.values(await writability(w, 'west')).every((v) => !v)).toBe(true)
    expect((await w.volumes.get({ site: 'west', volume: 'db' })).replicaOf).toBe('db')
  })
})

describe('ev-mirror: a replica is never read before its first complete snapshot', () => {
  it('during the first baseline, readers at the destination are refused (E_UNAVAILABLE), never served half-written constituents', async () => {
    const gate = new Gate(memoryStorage())
    const w = await world({ bases: { east: memoryStorage(), west: gate.port } })
    await expect(w.volumes.listObjects({ site: 'west', volume: 'db', snapshot: 0 })).rejects.toMatchObject(notConsistent)
    gate.arm((method, args) => method === 'write' && args[0] === 'db.dc-2')
    const baseline = w.evMirrors.transfer({ id: 'db' })
    await gate.reached
    await eventsSeen(w, 'evMirror.memberTransferred', 3)
    await expect(w.volumes.listObjects({ site: 'west', volume: 'db', snapshot: 0 })).rejects.toMatchObject(notConsistent)
    await expect(w.volumes.readSnapshotObject({ site: 'west', volume: 'db', snapshot: 0, path: '/o1' })).rejects.toMatchObject(notConsistent)
    gate.open()
    await baseline
    expect(await readerView(w.volumes, 'west', 'db')).toEqual(await liveView(w.volumes, 'east', 'db'))
  })

  it('during a resync by baseline (no common snapshot), the old primary\'s readers are refused until it is complete', async () => {
    const gate = new Gate(memoryStorage())
    const w = await world({ bases: { east: gate.port, west: memoryStorage() } })
    const t1 = await w.evMirrors.transfer({ id: 'db' })
    await w.evMirrors.failover({ id: 'db' })
    await w.volumes.setReadRedirect({ site: 'east', volume: 'db', snapshot: null })
    for (const m of (await w.volumes.listSnapshots({ site: 'east', volume: 'db' })).find((s) => s.name === t1.snapshot)?.members ?? []) {
      await w.bases.east.releaseSnapshot(m.volume, m.snapshot, 'ev-mirror:db', { scope: 'groups-test', value: 1 })
    }
    await w.volumes.deleteSnapshot({ site: 'east', volume: 'db', name: t1.snapshot })
    await w.volumes.putObject({ site: 'west', volume: 'db', path: '/dr', data: content('dr') })
    gate.arm((method, args) => method === 'write' && args[0] === 'db.dc-2')
    const resync = w.evMirrors.resync({ id: 'db', acknowledgeDataLoss: true })
    await gate.reached
    await eventsSeen(w, 'evMirror.memberTransferred', 3)
    expect(w.seen.some((e) => e.name === 'evMirror.commonSnapshotNotFound')).toBe(true)
    await expect(w.volumes.listObjects({ site: 'east', volume: 'db', snapshot: 0 })).rejects.toMatchObject(notConsistent)
    gate.open()
    await resync
    expect(await readerView(w.volumes, 'east', 'db')).toEqual(await liveView(w.volumes, 'west', 'db'))
  })
})

describe('ev-mirror: epochs on every destination constituent', () => {
  it('a constituent added by a resize carries the relationship\'s epoch before its first transfer, so an older epoch is refused there', async () => {
    let stop = false
    const w = await world({ crashAt: (point) => stop && point.step === 'members' && point.phase === 'before' })
    await w.evMirrors.transfer({ id: 'db' })
    await w.evMirrors.failover({ id: 'db' })
    await w.evMirrors.resync({ id: 'db' })
    const rel = await w.evMirrors.get({ id: 'db' })
    expect(rel.epoch).toBe(3)
    await w.volumes.expand({ site: 'west', volume: 'db', add: 1 })
    stop = true
    await expect(w.evMirrors.transfer({ id: 'db' })).rejects.toBeInstanceOf(InjectedCrash)
    // db.dc-3 was just created at east by the resize, and nothing was sent to it yet.
    expect((await w.bases.east.listSnapshots('db.dc-3')).length).toBe(0)
    expect(await w.bases.east.getConfig('db.dc-3', EPOCH_KEY)).toEqual({ epoch: 3 })
    const stale = sendMember({
      relationship: 'db',
      epoch: 2,
      source: { storage: w.faults.west.port, network: w.networks.west, volume: 'db.dc-1', snapshot: (await w.bases.west.listSnapshots('db.dc-1'))[0]?.name ?? '', base: null },
      destination: { site: 'east', volume: 'db.dc-3', base: null },
      chunkBytes: 65536,
      signal: new AbortController().signal,
    })
    await expect(stale).rejects.toMatchObject({ code: 'E_FENCED' })
  })
})
