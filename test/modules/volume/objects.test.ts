import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { bytes, createVolume, members, memberSnapshots, names, pathOn, text, token, world } from './world.js'

const site = 'east'
const volume = 'db'

describe('expandable volume lifecycle and objects', () => {
  it('creates namespace, OLS and N data constituents as storage volumes, catalogued with roles and ordinals', async () => {
    const w = await world()
    const created = await w.volumes.create({ site, volume, dataConstituents: 3, size: '1MiB' })
    expect(created.members.map((m) => [m.volume, m.role, m.ordinal, m.state])).toEqual([
      ['db.ns', 'namespace', 0, 'active'],
      ['db.ols', 'ols', 0, 'active'],
      ['db.dc-1', 'data', 1, 'active'],
      ['db.dc-2', 'data', 2, 'active'],
      ['db.dc-3', 'data', 3, 'active'],
    ])
    expect(created).toMatchObject({ status: 'ready', maxFenceHoldMs: 30_000, group: null, change: null, readRedirect: null, nextOrdinal: 4 })
    expect((await w.base.listVolumes()).map((v) => v.name)).toEqual(['db.dc-1', 'db.dc-2', 'db.dc-3', 'db.ns', 'db.ols'])
    expect((await w.base.volumeInfo('db.dc-1')).sizeBytes).toBe(1024 * 1024)
    expect(await w.base.getConfig('db.dc-2', 'drkit.volume.member')).toMatchObject({ volume, role: 'data', ordinal: 2 })
    expect(await w.volumes.list({ site })).toEqual([created])
    expect(names(w)).toEqual([...Array.from({ length: 5 }, () => 'volume.constituentAdded'), 'volume.created'])
    await expect(w.volumes.create({ site, volume, dataConstituents: 1, size: '1MiB' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
  })

  it('refuses to create over storage volumes that already exist, and rolls back a create that fails half-way', async () => {
    const w = await world()
    await w.base.createVolume({ name: 'taken.dc-2', sizeBytes: 65536 }, token)
    await expect(w.volumes.create({ site, volume: 'taken', dataConstituents: 2, size: '1MiB' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    w.faults.fail({ method: 'createVolume', when: (c) => (c.args[0] as { name: string }).name === 'db.dc-3', times: 1 })
    await expect(w.volumes.create({ site, volume, dataConstituents: 4, size: '1MiB' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect((await w.base.listVolumes()).map((v) => v.name)).toEqual(['taken.dc-2'])
    await expect(w.volumes.get({ site, volume })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await createVolume(w)
  })

  it('puts, gets, replaces, lists and deletes objects; the global object id survives a replace', async () => {
    const w = await world()
    await createVolume(w)
    const first = await w.volumes.putObject({ site, volume, path: 'dir/a.txt', data: bytes('alpha') })
    await w.volumes.putObject({ site, volume, path: 'b', data: new Uint8Array(0) })
    const replaced = await w.volumes.putObject({ site, volume, path: 'dir/a.txt', data: bytes('alpha 2') })
    expect(replaced.id).toBe(first.id)
    expect(text(await w.volumes.getObject({ site, volume, path: 'dir/a.txt' }))).toBe('alpha 2')
    expect(await w.volumes.getObject({ site, volume, path: 'b' })).toEqual(new Uint8Array(0))
    expect(await w.volumes.listObjects({ site, volume })).toEqual([
      { path: 'b', id: 2 },
      { path: 'dir/a.txt', id: first.id },
    ])
    await w.volumes.deleteObject({ site, volume, path: 'dir/a.txt' })
    await expect(w.volumes.getObject({ site, volume, path: 'dir/a.txt' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    await expect(w.volumes.deleteObject({ site, volume, path: 'dir/a.txt' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect((await w.volumes.listObjects({ site, volume })).map((o) => o.path)).toEqual(['b'])
    const again = await w.restart()
    expect(await again.volumes.getObject({ site, volume, path: 'b' })).toEqual(new Uint8Array(0))
  })

  it('writes a put in the order data constituent → OLS → namespace, and a delete namespace → OLS', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.calls.length = 0
    await w.volumes.putObject({ site, volume, path: 'x', data: bytes('x') })
    const writes = (): string[] => w.faults.calls.filter((c) => c.method === 'write').map((c) => String(c.args[0]).replace(/dc-\d/, 'dc'))
    expect(writes()).toEqual(['db.ols', 'db.dc', 'db.dc', 'db.ols', 'db.ns'])
    w.faults.calls.length = 0
    await w.volumes.deleteObject({ site, volume, path: 'x' })
    expect(writes()).toEqual(['db.ns', 'db.ols'])
  })

  it('places objects by path hash over the active data constituents', async () => {
    const w = await world()
    await createVolume(w)
    for (let ordinal = 1; ordinal <= 4; ordinal++) {
      expect((await w.volumes.putObject({ site, volume, path: pathOn(ordinal, 4), data: bytes('p') })).constituent).toBe(`db.dc-${ordinal}`)
    }
  })

  it('reports a full namespace, exhausted space, and reuses freed object ids', async () => {
    const w = await world()
    await w.volumes.create({ site, volume, dataConstituents: 1, size: '8KiB', maxObjects: 2 })
    await w.volumes.putObject({ site, volume, path: 'a', data: bytes('a') })
    await expect(w.volumes.putObject({ site, volume, path: 'big', data: new Uint8Array(5000) })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'noSpace' } })
    const other = await world()
    await other.volumes.create({ site, volume, dataConstituents: 1, size: '1MiB', maxObjects: 2 })
    for (const path of ['1', '2', '3', '4']) await other.volumes.putObject({ site, volume, path, data: bytes(path) })
    await expect(other.volumes.putObject({ site, volume, path: '5', data: bytes('5') })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'full' } })
    for (let round = 0; round < 6; round++) {
      await other.volumes.deleteObject({ site, volume, path: '1' })
      const placed = await other.volumes.putObject({ site, volume, path: '1', data: bytes(`round ${round}`) })
      expect(placed.id).toBeLessThanOrEqual(4)
    }
    expect(text(await other.volumes.getObject({ site, volume, path: '1' }))).toBe('round 5')
    expect((await other.volumes.listObjects({ site, volume })).map((o) => o.path)).toEqual(['1', '2', '3', '4'])
  })

  it('detects a damaged object with E_CORRUPT instead of serving it', async () => {
    const w = await world()
    await createVolume(w)
    const placed = await w.volumes.putObject({ site, volume, path: 'x', data: bytes('precious') })
    await w.base.write(placed.constituent, placed.offset + 16, bytes('P'), token)
    await expect(w.volumes.getObject({ site, volume, path: 'x' })).rejects.toMatchObject({ code: 'E_CORRUPT' })
  })

  it('behaviour 31: an added data constituent joins the catalog and later snapshots; a removed one leaves both', async () => {
    const w = await world()
    await createVolume(w)
    const paths = Array.from({ length: 12 }, (_, i) => `obj-${i}`)
    for (const path of paths) await w.volumes.putObject({ site, volume, path, data: bytes(`v-${path}`) })
    const expanded = await w.volumes.expand({ site, volume, add: 1 })
    expect(expanded.members.map((m) => m.volume)).toContain('db.dc-5')
    const onFive = pathOn(5, 5, 'new')
    expect((await w.volumes.putObject({ site, volume, path: onFive, data: bytes('five') })).constituent).toBe('db.dc-5')
    const withFive = await w.volumes.snapshot({ site, volume, name: 'with-five' })
    expect(withFive.members.map((m) => m.volume)).toEqual(members('db', 5))

    const shrunk = await w.volumes.shrink({ site, volume, remove: [5] })
    expect(shrunk.members.find((m) => m.volume === 'db.dc-5')?.state).toBe('retired')
    expect(text(await w.volumes.getObject({ site, volume, path: onFive }))).toBe('five')
    const withoutFive = await w.volumes.snapshot({ site, volume, name: 'without-five' })
    expect(withoutFive.members.map((m) => m.volume)).toEqual(members('db', 4))
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: withFive.id, path: onFive }))).toBe('five')
    expect(text(await w.volumes.readSnapshotObject({ site, volume, snapshot: withoutFive.id, path: onFive }))).toBe('five')

    await w.volumes.deleteSnapshot({ site, volume, name: 'with-five' })
    const after = await w.volumes.get({ site, volume })
    expect(after.members.map((m) => m.volume)).toEqual(members('db', 4))
    expect((await w.base.listVolumes()).map((v) => v.name)).not.toContain('db.dc-5')
    for (const path of paths) expect(text(await w.volumes.getObject({ site, volume, path }))).toBe(`v-${path}`)
    expect(names(w)).toEqual(expect.arrayContaining(['volume.expanded', 'volume.shrunk', 'volume.constituentRemoved']))
  })

  it('shrink evacuates objects to the remaining data constituents and deletes the unreferenced ones', async () => {
    const w = await world()
    await createVolume(w)
    const paths = Array.from({ length: 16 }, (_, i) => `obj-${i}`)
    for (const path of paths) await w.volumes.putObject({ site, volume, path, data: bytes(`v-${path}`) })
    const shrunk = await w.volumes.shrink({ site, volume, remove: 2 })
    expect(shrunk.members.filter((m) => m.role === 'data').map((m) => m.ordinal)).toEqual([1, 2])
    expect((await w.base.listVolumes()).map((v) => v.name)).toEqual(['db.dc-1', 'db.dc-2', 'db.ns', 'db.ols'])
    for (const path of paths) expect(text(await w.volumes.getObject({ site, volume, path }))).toBe(`v-${path}`)
    const shrinkEvent = w.seen.find((e) => e.name === 'volume.shrunk')
    expect(shrinkEvent?.payload).toMatchObject({ removed: [3, 4] })
    await expect(w.volumes.shrink({ site, volume, remove: 2 })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await expect(w.volumes.shrink({ site, volume, remove: [7] })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    const expanded = await w.volumes.expand({ site, volume, add: 1 })
    expect(expanded.members.filter((m) => m.role === 'data').map((m) => m.ordinal)).toEqual([1, 2, 5])
  })

  it('deletes a volume (refused while it has snapshots) and all its constituents', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.snapshot({ site, volume, name: 's' })
    await expect(w.volumes.delete({ site, volume })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await w.volumes.deleteSnapshot({ site, volume, name: 's' })
    await w.volumes.delete({ site, volume })
    expect(await w.base.listVolumes()).toEqual([])
    expect(await w.volumes.list({ site })).toEqual([])
    await expect(w.volumes.putObject({ site, volume, path: 'x', data: bytes('x') })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(names(w).slice(-1)).toEqual(['volume.deleted'])
  })

  it('a delete that fails half-way leaves the volume deleting; a new delete finishes it', async () => {
    const w = await world()
    await createVolume(w)
    w.faults.fail({ method: 'deleteVolume', when: (c) => c.args[0] === 'db.dc-2', error: new DrError('E_UNAVAILABLE', 'node down') })
    await expect(w.volumes.delete({ site, volume })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    expect((await w.volumes.get({ site, volume })).status).toBe('deleting')
    await expect(w.volumes.putObject({ site, volume, path: 'x', data: bytes('x') })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await w.faults.reset()
    await w.volumes.delete({ site, volume })
    expect(await w.base.listVolumes()).toEqual([])
  })

  it('a failed expand deletes only the constituents it created and leaves the volume as it was; a foreign name is refused', async () => {
    const w = await world()
    await createVolume(w)
    await w.base.createVolume({ name: 'db.dc-5', sizeBytes: 65536 }, token)
    await expect(w.volumes.expand({ site, volume, add: 1 })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await w.base.deleteVolume('db.dc-5', token)
    w.faults.fail({ method: 'putConfig', when: (c) => c.args[0] === 'db.dc-6' })
    await expect(w.volumes.expand({ site, volume, add: 2 })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    const record = await w.volumes.get({ site, volume })
    expect(record.members.map((m) => m.volume)).toEqual(members())
    expect(record.change).toBeNull()
    expect((await w.base.listVolumes()).map((v) => v.name).sort()).toEqual(members().sort())
    expect(await memberSnapshots(w.base, members())).toEqual(Object.fromEntries(members().map((m) => [m, []])))
  })
})
