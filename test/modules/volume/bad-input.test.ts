import { describe, expect, it } from 'vitest'
import { bytes, createVolume, memberSnapshots, members, world, type World } from './world.js'

const site = 'east'
const volume = 'db'

async function fingerprint(w: World): Promise<unknown> {
  const streams = await w.stateStore.listStreams('')
  const versions = await Promise.all(streams.map(async (s) => [s, await w.stateStore.version(s)] as const))
  const volumes = (await w.base.listVolumes()).map((v) => [v.name, v.allocatedBytes])
  return { versions, volumes, snapshots: await memberSnapshots(w.base, members()), objects: await w.volumes.listObjects({ site, volume }) }
}

describe('bad input on every facade method', () => {
  it('rejects with E_INVALID_INPUT naming the field, and changes nothing', async () => {
    const w = await world()
    await createVolume(w)
    await w.volumes.putObject({ site, volume, path: 'kept', data: bytes('kept') })
    const snap = await w.volumes.snapshot({ site, volume, name: 'base' })
    const before = await fingerprint(w)
    const v = w.volumes
    const bad: Array<[string, () => Promise<unknown>]> = [
      ['create: no size', () => v.create({ site, volume: 'x', dataConstituents: 1 } as never)],
      ['create: zero data constituents', () => v.create({ site, volume: 'x', dataConstituents: 0, size: '1MiB' })],
      ['create: 2000 data constituents', () => v.create({ site, volume: 'x', dataConstituents: 2000, size: '1MiB' })],
      ['create: size in parsecs', () => v.create({ site, volume: 'x', dataConstituents: 1, size: '12 parsecs' })],
      ['create: size below two blocks', () => v.create({ site, volume: 'x', dataConstituents: 1, size: 4096 })],
      ['create: name too long', () => v.create({ site, volume: 'x'.repeat(101), dataConstituents: 1, size: '1MiB' })],
      ['create: bad name', () => v.create({ site, volume: '../etc', dataConstituents: 1, size: '1MiB' })],
      ['create: zero maxObjects', () => v.create({ site, volume: 'x', dataConstituents: 1, size: '1MiB', maxObjects: 0 })],
      ['create: bad hold time', () => v.create({ site, volume: 'x', dataConstituents: 1, size: '1MiB', maxFenceHoldMs: '3 fortnights' })],
      ['create: null', () => v.create(null as never)],
      ['get: missing volume', () => v.get({ site } as never)],
      ['list: no site', () => v.list({} as never)],
      ['expand: add 0', () => v.expand({ site, volume, add: 0 })],
      ['expand: add a string', () => v.expand({ site, volume, add: '2' } as never)],
      ['shrink: empty ordinal list', () => v.shrink({ site, volume, remove: [] })],
      ['shrink: ordinal 0', () => v.shrink({ site, volume, remove: [0] })],
      ['shrink: negative count', () => v.shrink({ site, volume, remove: -1 })],
      ['delete: volume a number', () => v.delete({ site, volume: 7 } as never)],
      ['putObject: empty path', () => v.putObject({ site, volume, path: '', data: bytes('x') })],
      ['putObject: path too long', () => v.putObject({ site, volume, path: 'p'.repeat(249), data: bytes('x') })],
      ['putObject: control character in path', () => v.putObject({ site, volume, path: 'a\nb', data: bytes('x') })],
      ['putObject: data a string', () => v.putObject({ site, volume, path: 'a', data: 'x' } as never)],
      ['getObject: no path', () => v.getObject({ site, volume } as never)],
      ['deleteObject: path a number', () => v.deleteObject({ site, volume, path: 3 } as never)],
      ['listObjects: negative snapshot', () => v.listObjects({ site, volume, snapshot: -1 })],
      ['listObjects: empty client', () => v.listObjects({ site, volume, snapshot: snap.id, client: '' })],
      ['snapshot: no name', () => v.snapshot({ site, volume } as never)],
      ['snapshot: bad name', () => v.snapshot({ site, volume, name: 'a b' })],
      ['snapshot: allowedClients not an array', () => v.snapshot({ site, volume, name: 'n', allowedClients: 'c1' } as never)],
      ['snapshot: zero hold time', () => v.snapshot({ site, volume, name: 'n', maxFenceHoldMs: 0 })],
      ['snapshot: signal not a signal', () => v.snapshot({ site, volume, name: 'n', signal: {} } as never)],
      ['listSnapshots: site a number', () => v.listSnapshots({ site: 1, volume } as never)],
      ['deleteSnapshot: no name', () => v.deleteSnapshot({ site, volume } as never)],
      ['resolveHandle: fractional snapshot', () => v.resolveHandle({ site, volume, snapshot: 1.5, path: 'kept' })],
      ['readSnapshotObject: no snapshot', () => v.readSnapshotObject({ site, volume, path: 'kept' } as never)],
      ['readSnapshotObject: client too long', () => v.readSnapshotObject({ site, volume, snapshot: snap.id, path: 'kept', client: 'c'.repeat(300) })],
      ['setReadRedirect: snapshot 0', () => v.setReadRedirect({ site, volume, snapshot: 0 })],
      ['setReadRedirect: snapshot missing', () => v.setReadRedirect({ site, volume } as never)],
      ['readObjectById: ordinal 0', () => v.readObjectById({ site, volume, snapshot: 0, id: 1, ordinal: 0 })],
      ['readObjectById: no id', () => v.readObjectById({ site, volume, snapshot: 0, ordinal: 1 } as never)],
      ['setReplica: replicaOf missing', () => v.setReplica({ site, volume } as never)],
      ['setReplica: replicaOf empty', () => v.setReplica({ site, volume, replicaOf: '' })],
      ['adoptSnapshot: bad role', () => v.adoptSnapshot({ site, volume, name: 'a', members: [{ volume: 'db.ns', role: 'boss', ordinal: 0, snapshot: 'base', timestamp: 1 }] } as never)],
      ['adoptSnapshot: valid a string', () => v.adoptSnapshot({ site, volume, name: 'a', members: [], valid: 'yes' } as never)],
    ]
    for (const [what, call] of bad) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error, what).toMatchObject({ code: 'E_INVALID_INPUT' })
      expect((error as { details: { violations: unknown[] } }).details.violations.length, what).toBeGreaterThan(0)
    }
    const violation = await v.create({ site, volume: 'x', dataConstituents: 1, size: '12 parsecs' }).catch((e: unknown) => e)
    expect(violation).toMatchObject({ message: expect.stringContaining('field "size"') })
    expect(await fingerprint(w)).toEqual(before)
  })

  it('rejects unknown sites, volumes, objects and snapshots with E_NOT_FOUND and changes nothing', async () => {
    const w = await world()
    await createVolume(w)
    const before = await fingerprint(w)
    const v = w.volumes
    const missing: Array<() => Promise<unknown>> = [
      () => v.create({ site: 'west', volume: 'x', dataConstituents: 1, size: '1MiB' }),
      () => v.get({ site, volume: 'nope' }),
      () => v.list({ site: 'west' }),
      () => v.expand({ site, volume: 'nope', add: 1 }),
      () => v.shrink({ site, volume: 'nope', remove: 1 }),
      () => v.delete({ site, volume: 'nope' }),
      () => v.putObject({ site, volume: 'nope', path: 'a', data: bytes('a') }),
      () => v.getObject({ site, volume, path: 'nope' }),
      () => v.deleteObject({ site, volume, path: 'nope' }),
      () => v.listObjects({ site, volume, snapshot: 42 }),
      () => v.snapshot({ site, volume: 'nope', name: 'n' }),
      () => v.listSnapshots({ site, volume: 'nope' }),
      () => v.deleteSnapshot({ site, volume, name: 'nope' }),
      () => v.resolveHandle({ site, volume, snapshot: 42, path: 'a' }),
      () => v.readSnapshotObject({ site, volume, snapshot: 0, path: 'nope' }),
      () => v.setReadRedirect({ site, volume, snapshot: 42 }),
      () => v.setReplica({ site, volume: 'nope', replicaOf: 'm' }),
      () => v.readObjectById({ site, volume, snapshot: 0, id: 4000, ordinal: 1 }),
      () => v.adoptSnapshot({ site, volume, name: 'a', members: [{ volume: 'db.ns', role: 'namespace', ordinal: 0, snapshot: 'nope', timestamp: 1 }] }),
    ]
    for (const call of missing) await expect(call()).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect(await fingerprint(w)).toEqual(before)
  })
})
