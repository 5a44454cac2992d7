import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { MemoryNetworkFabric, createDrSystem, memoryHost, memoryStateStore, memoryStorage, type DrSystem } from '../../../src/index.js'

/** The state store, storages and hosts outlive a coordinator; close() would close them, so each one gets wrappers. */
function keepOpen<T extends object>(port: T): T {
  return new Proxy(port, {
    get: (target, key) => {
      if (key === 'close') return async () => undefined
      const value: unknown = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)

/** What a client reading `volume` at `site` through snapshot-0 handles sees: path → sha256. */
async function readerView(dr: DrSystem, site: string, volume: string): Promise<Record<string, string>> {
  const view: Record<string, string> = {}
  for (const { path } of await dr.volumes.listObjects({ site, volume, snapshot: 0 })) {
    view[path] = createHash('sha256').update(await dr.volumes.readSnapshotObject({ site, volume, snapshot: 0, path })).digest('hex')
  }
  return view
}

describe('dr.evMirrors and dr.serverGroups through createDrSystem', () => {
  it('replicates a server group\'s volumes, keeps a DR series with its definition, fails the group over, survives a coordinator restart and resyncs back', async () => {
    const state = memoryStateStore()
    const storage = { east: memoryStorage(), west: memoryStorage() }
    const hosts = { east: memoryHost(), west: memoryHost() }
    const fabric = new MemoryNetworkFabric()
    const open = (): Promise<DrSystem> =>
      createDrSystem({
        state: keepOpen(state),
        sites: {
          east: { storage: keepOpen(storage.east), network: fabric.port('east'), host: keepOpen(hosts.east) },
          west: { storage: keepOpen(storage.west), network: fabric.port('west'), host: keepOpen(hosts.west) },
        },
      })

    const first = await open()
    const seen: string[] = []
    first.events.onAny((event) => seen.push(event.name))
    for (const fs of ['fs1', 'fs2']) {
      await first.volumes.create({ site: 'east', volume: fs, dataConstituents: 2, size: '256KiB', maxObjects: 64 })
      for (let i = 0; i < 4; i++) await first.volumes.putObject({ site: 'east', volume: fs, path: `/${fs}-${i}`, data: bytes(`${fs} v1 ${i}`) })
      await first.evMirrors.create({ id: fs, source: { site: 'east', volume: fs }, destination: { site: 'west' } })
      await first.evMirrors.transfer({ id: fs })
      expect(await readerView(first, 'west', fs)).toEqual(await readerView(first, 'east', fs))
    }
    for (const site of ['east', 'west']) await first.serverGroups.offerInterfaces({ site, interfaces: ['cge0', 'cge1'] })
    await first.serverGroups.define({
      name: 'vs1',
      sites: ['east', 'west'],
      members: ['fs1', 'fs2'],
      interfaces: [
        { name: 'cge0', address: '10.0.0.1' },
        { name: 'cge1', address: '10.0.0.2' },
      ],
      nameRecords: [{ name: 'vs1.example', address: '10.0.0.1' }],
      mounts: [
        { path: '/vs1/fs1', volume: 'fs1' },
        { path: '/vs1/fs2', volume: 'fs2' },
      ],
      config: { shares: ['home'] },
    })
    await first.serverGroups.load({ name: 'vs1', site: 'east' })
    const series = await first.serverGroups.snapshot({ name: 'vs1' })
    expect(await first.serverGroups.replicatedDefinition({ site: 'west', volume: 'fs1', snapshot: series.name })).toMatchObject({ name: 'vs1', members: ['fs1', 'fs2'], config: { shares: ['home'] } })
    const failedOver = await first.serverGroups.failover({ name: 'vs1' })
    expect(failedOver).toMatchObject({ site: 'west', forced: false, members: ['fs1', 'fs2'] })
    expect(seen).toEqual(expect.arrayContaining(['evMirror.transferStarted', 'serverGroup.seriesSnapshotTaken', 'serverGroup.reserved', 'evMirror.failedOver', 'serverGroup.failedOver']))
    await first.volumes.putObject({ site: 'west', volume: 'fs1', path: '/written-at-dr', data: bytes('dr') })
    await expect(first.volumes.putObject({ site: 'east', volume: 'fs1', path: '/x', data: bytes('x') })).rejects.toMatchObject({ code: 'E_PRECONDITION', details: { reason: 'replica' } })
    await first.close()

    // A new coordinator on the same journal finds the group where the first left it, and resyncs it back.
    const second = await open()
    expect(await second.serverGroups.get({ name: 'vs1' })).toMatchObject({ active: 'west', loadedOn: 'west' })
    expect(await fabric.identity.addressOwner('10.0.0.2')).toBe('west')
    expect((await hosts.west.listMounts()).map((m) => m.volume)).toEqual(['fs1', 'fs2'])
    const resynced = await second.serverGroups.resync({ name: 'vs1' })
    expect(resynced.map((r) => [r.id, r.direction, r.source.site])).toEqual([
      ['fs1', 'reversed', 'west'],
      ['fs2', 'reversed', 'west'],
    ])
    for (const fs of ['fs1', 'fs2']) expect(await readerView(second, 'east', fs)).toEqual(await readerView(second, 'west', fs))
    expect(Object.keys(await readerView(second, 'east', 'fs1'))).toContain('/written-at-dr')
    await second.close()
  })
})
