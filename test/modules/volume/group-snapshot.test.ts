import { describe, expect, it } from 'vitest'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { bytes, createVolume, fenceCalls, fencedVolumes, members, memberSnapshots, names, pathOn, recording, text, token, world } from './world.js'

const site = 'east'
const volume = 'db'

describe('consistency-group snapshot of an expandable volume', () => {
  it('behaviour 1: fences the namespace, then the OLS, then the data constituents (Vd1..Vd4 issued once the OLS fence resolved)', async () => {
    const traced = recording(memoryStorage())
    const w = await world({ base: traced.port })
    await createVolume(w)
    traced.log.length = 0
    await w.volumes.snapshot({ site, volume, name: 'nightly' })
    const fences = traced.log.filter((l) => l.includes(' fence '))
    expect(fences.filter((l) => l.startsWith('start'))).toEqual(members().map((m) => `start fence ${m}`))
    const at = (line: string): number => traced.log.indexOf(line)
    expect(at('end fence db.ns')).toBeLessThan(at('start fence db.ols'))
    for (const dc of members().slice(2)) expect(at('end fence db.ols')).toBeLessThan(at(`start fence ${dc}`))
    for (const dc of members().slice(2)) expect(at(`end fence ${dc}`)).toBeLessThan(at('start createSnapshot db.ns'))
  })

  it('behaviour 2: on success unfences Vd4, Vd3, Vd2, Vd1 (in parallel), then Vols, and Vn last', async () => {
    const traced = recording(memoryStorage())
    const w = await world({ base: traced.port })
    await createVolume(w)
    traced.log.length = 0
    await w.volumes.snapshot({ site, volume, name: 'nightly' })
    const unfences = traced.log.filter((l) => l.startsWith('start unfence'))
    expect(unfences).toEqual(['db.dc-4', 'db.dc-3', 'db.dc-2', 'db.dc-1', 'db.ols', 'db.ns'].map((m) => `start unfence ${m}`))
    const at = (line: string): number => traced.log.indexOf(line)
    for (const dc of members().slice(2)) expect(at(`end unfence ${dc}`)).toBeLessThan(at('start unfence db.ols'))
    expect(at('end unfence db.ols')).toBeLessThan(at('start unfence db.ns'))
    expect(traced.log[traced.log.length - 1]).toBe('end unfence db.ns')
    expect(await fencedVolumes(w.base, members())).toEqual([])
  })

  it('behaviour 7: I/O arriving after a fence waits, is not in the snapshot, and runs after the unfence in arrival order', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.putObject({ site, volume, path: 'kept', data: bytes('before') })
    const late: Array<Promise<unknown>> = []
    w.events.on('volume.constituentFenced', (e) => {
      if (e.payload.constituent === 'db.ns') {
        late.push(w.volumes.putObject({ site, volume, path: 'late', data: bytes('first') }))
        late.push(w.volumes.putObject({ site, volume, path: 'late', data: bytes('second') }))
      }
      if (e.payload.constituent === 'db.dc-1') {
        late.push(w.faults.port.write('db.dc-1', 200_000, bytes('AAAA'), token))
        late.push(w.faults.port.write('db.dc-1', 200_000, bytes('BBBB'), token))
      }
    })
    const snap = await w.volumes.snapshot({ site, volume, name: 'nightly' })
    await Promise.all(late)
    expect((await w.volumes.listObjects({ site, volume, snapshot: snap.id })).map((o) => o.path)).toEqual(['kept'])
    expect(text(await w.volumes.getObject({ site, volume, path: 'late' }))).toBe('second')
    expect(text(await w.base.read('db.dc-1', 200_000, 4))).toBe('BBBB')
    expect(await w.base.read('db.dc-1', 200_000, 4, { snapshot: 'nightly' })).toEqual(new Uint8Array(4))
  })

  it('behaviour 8: a write completed before the fence is in the snapshot', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.putObject({ site, volume, path: 'a', data: bytes('alpha') })
    await w.faults.port.write('db.dc-2', 100_000, bytes('done'), token)
    const snap = await w.volumes.snapshot({ site, volume, name: 'nightly' })
    await w.volumes.putObject({ site, volume, path: 'a', data: bytes('changed') })
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: snap.id, path: 'a' }))).toBe('alpha')
    expect(text(await w.base.read('db.dc-2', 100_000, 4, { snapshot: 'nightly' }))).toBe('done')
  })

  it('behaviours 9 and 10: the first snapshot creates the catalog, with one entry "nightly" of 6 member rows', async () => {
    const w = await world()
    await createVolume(w)
    expect(await w.volumes.listSnapshots({ site, volume })).toEqual([])
    const snap = await w.volumes.snapshot({ site, volume, name: 'nightly' })
    const catalog = await w.volumes.listSnapshots({ site, volume })
    expect(catalog).toHaveLength(1)
    expect(catalog[0]).toEqual(snap)
    expect(snap).toMatchObject({ site, volume, name: 'nightly', valid: true, allowedClients: null })
    expect(snap.id).toBeGreaterThan(0)
    expect(snap.members.map((m) => m.volume)).toEqual(members())
    for (const member of snap.members) {
      expect(member.snapshot).toBe('nightly')
      expect(typeof member.timestamp).toBe('number')
    }
    expect(await memberSnapshots(w.base, members())).toEqual(Object.fromEntries(members().map((m) => [m, ['nightly']])))
    const again = await w.restart()
    expect(await again.volumes.listSnapshots({ site, volume })).toEqual(catalog)
  })

  it('behaviour 11: the catalog entry is written (and announced) before the call reports success', async () => {
    const w = await world()
    await createVolume(w)
    let catalogued: unknown
    w.events.on('volume.groupCommitted', () => {
      catalogued = w.volumes.listSnapshots({ site, volume })
    })
    const snap = await w.volumes.snapshot({ site, volume, name: 'nightly' })
    expect(await catalogued).toEqual([snap])
    const order = names(w)
    expect(order.indexOf('volume.catalogUpdated')).toBeLessThan(order.indexOf('volume.groupCommitted'))
    expect(order.slice(-2)).toEqual(['volume.catalogUpdated', 'volume.groupCommitted'])
    const committed = w.seen.find((e) => e.name === 'volume.groupCommitted')
    expect(committed?.payload).toMatchObject({ snapshot: 'nightly', id: snap.id, order: members() })
  })

  it('behaviour 12: an unknown volume or site fails before any fence call and starts no job', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    await expect(w.volumes.snapshot({ site, volume: 'nope', name: 'n' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.volumes.snapshot({ site: 'west', volume, name: 'n' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(fenceCalls(w.faults)).toEqual([])
    expect((await w.stateStore.listStreams('workflow/volume.snapshot')).length).toBe(0)
  })

  it('behaviour 13: a handle to snapshot S is served by the data constituent with its own snapshot id in S', async () => {
    const w = await world()
    await createVolume(w)
    const path = pathOn(2, 4)
    const placed = await w.volumes.putObject({ site, volume, path, data: bytes('v1') })
    expect(placed.constituent).toBe('db.dc-2')
    const snap = await w.volumes.snapshot({ site, volume, name: 'S' })
    await w.volumes.putObject({ site, volume, path, data: bytes('v2') })
    const handle = await w.volumes.resolveHandle({ site, volume, snapshot: snap.id, path })
    const dc2 = snap.members.find((m) => m.volume === 'db.dc-2')
    expect(handle).toMatchObject({ constituent: 'db.dc-2', ordinal: 2, snapshot: dc2?.snapshot, snapshotId: snap.id, id: placed.id, offset: placed.offset, length: 2 })
    w.faults.calls.length = 0
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: snap.id, path }))).toBe('v1')
    const dataRead = w.faults.calls.filter((c) => c.method === 'read' && c.args[0] === 'db.dc-2')
    expect(dataRead.map((c) => c.args[3])).toEqual([{ snapshot: 'S' }])
    expect(await w.volumes.resolveHandle({ site, volume, snapshot: 0, path })).toMatchObject({ snapshot: null, snapshotId: 0 })
  })

  it('behaviour 14: snapshot 0 without a redirect reads the active file system unchanged', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.putObject({ site, volume, path: 'f', data: bytes('old') })
    await w.volumes.snapshot({ site, volume, name: 'T' })
    await w.volumes.putObject({ site, volume, path: 'f', data: bytes('new') })
    w.faults.calls.length = 0
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: 0, path: 'f' }))).toBe('new')
    expect(w.faults.calls.filter((c) => c.method === 'read').every((c) => c.args[3] === undefined)).toBe(true)
  })

  it('behaviour 15: snapshot 0 with an AFS redirect to T is served from T on every constituent it touches', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.putObject({ site, volume, path: 'f', data: bytes('at T') })
    const t = await w.volumes.snapshot({ site, volume, name: 'T' })
    await w.volumes.putObject({ site, volume, path: 'f', data: bytes('after T') })
    await w.volumes.putObject({ site, volume, path: 'g', data: bytes('only live') })
    await w.volumes.setReadRedirect({ site, volume, snapshot: t.id })
    expect((await w.volumes.get({ site, volume })).readRedirect).toBe(t.id)
    w.faults.calls.length = 0
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: 0, path: 'f' }))).toBe('at T')
    const reads = w.faults.calls.filter((c) => c.method === 'read')
    expect(reads.length).toBeGreaterThanOrEqual(3)
    expect(reads.every((c) => (c.args[3] as { snapshot?: string } | undefined)?.snapshot === 'T')).toBe(true)
    await expect(w.volumes.readSnapshotObject({ site, volume, snapshot: 0, path: 'g' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect((await w.volumes.listObjects({ site, volume, snapshot: 0 })).map((o) => o.path)).toEqual(['f'])
    expect(w.seen.find((e) => e.name === 'volume.readRedirected')?.payload).toEqual({ site, volume, from: null, to: t.id })
    await w.volumes.setReadRedirect({ site, volume, snapshot: null })
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: 0, path: 'f' }))).toBe('after T')
  })

  it('behaviour 16: a non-zero snapshot id skips the redirect check and reads that snapshot', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.putObject({ site, volume, path: 'f', data: bytes('one') })
    const first = await w.volumes.snapshot({ site, volume, name: 'first' })
    await w.volumes.putObject({ site, volume, path: 'f', data: bytes('two') })
    const second = await w.volumes.snapshot({ site, volume, name: 'second' })
    await w.volumes.setReadRedirect({ site, volume, snapshot: second.id })
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: first.id, path: 'f' }))).toBe('one')
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: 0, path: 'f' }))).toBe('two')
    await expect(w.volumes.readSnapshotObject({ site, volume, snapshot: 99, path: 'f' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
  })

  it('behaviour 35: a snapshot that lists allowed clients [c1] denies c2 (and anonymous) with E_PRECONDITION accessDenied', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.putObject({ site, volume, path: 'f', data: bytes('secret') })
    const snap = await w.volumes.snapshot({ site, volume, name: 'private', allowedClients: ['c1'] })
    expect(snap.allowedClients).toEqual(['c1'])
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: snap.id, path: 'f', client: 'c1' }))).toBe('secret')
    await expect(w.volumes.readSnapshotObject({ site, volume, snapshot: snap.id, path: 'f', client: 'c2' })).rejects.toMatchObject({
      code: 'E_PRECONDITION',
      details: { reason: 'accessDenied', client: 'c2' },
    })
    await expect(w.volumes.readSnapshotObject({ site, volume, snapshot: snap.id, path: 'f' })).rejects.toMatchObject({ details: { reason: 'accessDenied' } })
    await expect(w.volumes.listObjects({ site, volume, snapshot: snap.id, client: 'c2' })).rejects.toMatchObject({ details: { reason: 'accessDenied' } })
  })

  it('behaviour 36: an entry with valid=false is never a redirect target and is never read', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.putObject({ site, volume, path: 'f', data: bytes('x') })
    const good = await w.volumes.snapshot({ site, volume, name: 'good' })
    for (const m of members()) await w.base.createSnapshot(m, 'partial', token)
    const bad = await w.volumes.adoptSnapshot({
      site,
      volume,
      name: 'partial',
      valid: false,
      members: good.members.map((m) => ({ volume: m.volume, role: m.role, ordinal: m.ordinal, snapshot: 'partial', timestamp: m.timestamp })),
    })
    expect(bad.valid).toBe(false)
    await expect(w.volumes.setReadRedirect({ site, volume, snapshot: bad.id })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'invalid' } })
    expect((await w.volumes.get({ site, volume })).readRedirect).toBeNull()
    await expect(w.volumes.readSnapshotObject({ site, volume, snapshot: bad.id, path: 'f' })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'invalid' } })
    await w.volumes.setReadRedirect({ site, volume, snapshot: good.id })
    await expect(w.volumes.deleteSnapshot({ site, volume, name: 'good' })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'redirectTarget' } })
  })

  it('a data constituent that is not a member of the snapshot (added after it) is E_NOT_FOUND on the access path', async () => {
    const w = await world()
    await createVolume(w, 'db', 2)
    await w.volumes.putObject({ site, volume, path: 'a', data: bytes('on one of two') })
    const placed = await w.volumes.putObject({ site, volume, path: 'b', data: bytes('on the other') })
    const full = await w.volumes.snapshot({ site, volume, name: 'full' })
    const missing = full.members.filter((m) => m.role !== 'data' || m.ordinal !== placed.ordinal)
    for (const m of missing) await w.base.createSnapshot(m.volume, 'short', token)
    const short = await w.volumes.adoptSnapshot({ site, volume, name: 'short', members: missing.map((m) => ({ ...m, snapshot: 'short' })) })
    await expect(w.volumes.readSnapshotObject({ site, volume, snapshot: short.id, path: 'b' })).rejects.toMatchObject({ code: 'E_NOT_FOUND', details: { ordinal: placed.ordinal } })
  })

  it('deleting a snapshot deletes every member snapshot, then the entry; a held member refuses', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.snapshot({ site, volume, name: 'one' })
    await w.base.holdSnapshot('db.dc-3', 'one', 'mirror', token)
    await expect(w.volumes.deleteSnapshot({ site, volume, name: 'one' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(await w.volumes.listSnapshots({ site, volume })).toHaveLength(1)
    await w.base.releaseSnapshot('db.dc-3', 'one', 'mirror', token)
    await w.volumes.deleteSnapshot({ site, volume, name: 'one' })
    expect(await w.volumes.listSnapshots({ site, volume })).toEqual([])
    expect(await memberSnapshots(w.base, members())).toEqual(Object.fromEntries(members().map((m) => [m, []])))
    await expect(w.volumes.deleteSnapshot({ site, volume, name: 'one' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(w.seen.filter((e) => e.name === 'volume.catalogUpdated').map((e) => e.payload.change)).toEqual(['added', 'invalidated', 'removed'])
  })

  it('a second snapshot with the same name is refused with E_CONFLICT before any fence', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.snapshot({ site, volume, name: 'n' })
    w.faults.calls.length = 0
    await expect(w.volumes.snapshot({ site, volume, name: 'n' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect(fenceCalls(w.faults)).toEqual([])
  })

  it('emits the group events in order, with fence order and timestamps, and persists the fence record', async () => {
    const w = await world()
    await createVolume(w)
    w.seen.length = 0
    await w.volumes.snapshot({ site, volume, name: 'nightly' })
    const order = names(w)
    expect(order[0]).toBe('volume.groupStarted')
    expect(order.filter((n) => n === 'volume.constituentFenced')).toHaveLength(6)
    expect(order.filter((n) => n === 'volume.constituentSnapshotted')).toHaveLength(6)
    expect(order.filter((n) => n === 'volume.constituentUnfenced')).toHaveLength(6)
    const fenced = w.seen.flatMap((e) => (e.name === 'volume.constituentFenced' ? [e.payload] : []))
    expect(fenced.map((f) => [f.constituent, f.order])).toEqual(members().map((m, i) => [m, i + 1]))
    const record = await w.volumes.get({ site, volume })
    expect(record.group).toBeNull()
    expect(record.lastGroup).toMatchObject({ snapshotName: 'nightly', outcome: 'committed', code: null })
    const journal = await w.stateStore.read('volume/catalog')
    const fences = journal.filter((r) => r.type === 'volume.groupFenced').flatMap((r) => (r.data as { fences: Array<{ volume: string }> }).fences.map((f) => f.volume))
    expect(fences).toEqual(members())
  })
})
