import { describe, expect, it } from 'vitest'
import { MemoryNetworkFabric, createDrSystem, memoryHost, memoryStateStore, memoryStorage, type DrSystem } from '../src/index.js'

const BS = 4096

/** Resolves once mirror `id` has played back its initial copy at the destination (told by the mirror's own event). */
function initialCopy(dr: DrSystem, id: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = dr.events.on('mirror.deltaSetApplied', (event) => {
      if (event.payload.id !== id) return
      stop()
      resolve()
    })
    void dr.mirrors.status(id).then((status) => {
      if (status.lastPlayedBack === null) return
      stop()
      resolve()
    })
  })
}

describe('dr.namespace through createDrSystem', () => {
  it('fails a protected link over to the mirrored share through dr.mirrors and publishes it to the namespace server', async () => {
    const fabric = new MemoryNetworkFabric()
    const east = memoryStorage()
    const west = memoryStorage()
    await using dr = await createDrSystem({
      state: memoryStateStore(),
      sites: {
        east: { storage: east, network: fabric.port('east'), host: memoryHost() },
        west: { storage: west, network: fabric.port('west'), host: memoryHost() },
      },
    })
    await east.createVolume({ name: 'projects', sizeBytes: 32 * BS, blockSize: BS }, dr.token())
    await east.write('projects', 3 * BS, new Uint8Array(BS).fill(3), dr.token())
    await east.createShare({ name: 'eng', volume: 'projects', path: '/eng', protocol: 'smb', access: ['read', 'write'] }, dr.token())
    await dr.mirrors.create({ id: 'proj', source: { site: 'east', volume: 'projects' }, destination: { site: 'west' }, cut: { every: '1h' } })
    await initialCopy(dr, 'proj')

    await dr.namespace.createNamespace({ namespace: 'corp' })
    await dr.namespace.createLink({ namespace: 'corp', path: '/eng', targets: [{ site: 'east', share: 'eng' }] })
    await dr.namespace.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 1, mirrorFailoverMode: 'sync' })
    await dr.namespace.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'proj', destinationShare: 'eng_dr' })
    await expect(dr.namespace.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'nope', destinationShare: 'eng_dr' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })

    const failedOver: string[] = []
    dr.events.on('namespace.linkFailedOver', (event) => failedOver.push(event.name))
    await east.deleteShare('eng', dr.token())
    await dr.namespace.probeNow()
    await dr.namespace.idle()

    expect(failedOver).toHaveLength(1)
    expect((await dr.mirrors.status('proj')).state).toBe('failedOver')
    const referral = await fabric.namespaceServer.resolve('corp', '/eng/plan.doc')
    expect(referral.target).toMatchObject({ site: 'west', share: 'eng_dr' })
    const share = await west.getShare('eng_dr')
    expect(Buffer.from(await west.read(share!.volume, 3 * BS, BS)).every((b) => b === 3)).toBe(true)
  })

  it('refuses a namespaceSite that is not a site with a network adapter', async () => {
    await expect(createDrSystem({ state: memoryStateStore(), namespaceSite: 'east', sites: { east: { storage: memoryStorage() } } })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
  })
})
