import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DrError, EventBus, WorkflowEngine, systemClock } from '../../../src/kernel/index.js'
import { memoryStateStore } from '../../../src/kernel/memory-state-store.js'
import { localStorage, type LocalStorage } from '../../../src/adapters/local/local-storage.js'
import { tcpNetwork, type TcpNetwork } from '../../../src/adapters/tcp/tcp-network.js'
import { MemoryNamespaceServer } from '../../../src/adapters/memory/network.js'
import { memoryHost } from '../../../src/adapters/memory/host.js'
import { openMirrorModule, type MirrorEvents, type MirrorFacade } from '../../../src/modules/mirror/index.js'
import { mirrorControlFrom, openNamespaceModule, type NamespaceEvents } from '../../../src/modules/namespace/index.js'
import { token } from '../../fixtures/mirror-world.js'

const BLOCK = 64 * 1024
const BLOCKS = 64

/** Resolves once mirror `id` has played back delta set `deltaSet` at its destination (told by the mirror's own event). */
function playedBack(events: EventBus<MirrorEvents>, mirrors: MirrorFacade, id: string, deltaSet: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = events.on('mirror.deltaSetApplied', (event) => {
      if (event.payload.id !== id || event.payload.deltaSet < deltaSet) return
      stop()
      resolve()
    })
    void mirrors.status(id).then((status) => {
      if ((status.lastPlayedBack ?? 0) < deltaSet) return
      stop()
      resolve()
    })
  })
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

describe('namespace end to end: local storage (real files) and a real mirror over TCP on loopback', () => {
  it('the primary share is deleted on a healthy server, the link fails over, and a client resolving the unchanged path reads the mirrored data at the destination', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drkit-namespace-e2e-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const storages: Record<string, LocalStorage> = { east: localStorage({ dir: join(dir, 'east'), fsync: false }), west: localStorage({ dir: join(dir, 'west'), fsync: false }) }
    cleanups.push(async () => {
      await storages['east']!.close()
      await storages['west']!.close()
    })
    const namespaceServer = new MemoryNamespaceServer()
    const networks: Record<string, TcpNetwork> = {
      east: tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true, namespaceServer }),
      west: tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true, namespaceServer }),
    }
    networks['east']!.setPeer('west', await networks['west']!.address())
    networks['west']!.setPeer('east', await networks['east']!.address())
    cleanups.push(async () => {
      await networks['east']!.close()
      await networks['west']!.close()
    })
    const east = storages['east']!
    const west = storages['west']!
    await east.createVolume({ name: 'projects', sizeBytes: BLOCKS * BLOCK, blockSize: BLOCK }, token)
    const file = new Uint8Array(randomBytes(3 * BLOCK))
    await east.write('projects', 5 * BLOCK, file, token)
    await east.createShare({ name: 'eng', volume: 'projects', path: '/', protocol: 'smb', access: ['read', 'write'] }, token)

    const stateStore = memoryStateStore()
    const workflows = new WorkflowEngine({ stateStore, clock: systemClock })
    const site = (name: string) => {
      const storage = storages[name]
      const network = networks[name]
      if (storage === undefined || network === undefined) throw new DrError('E_NOT_FOUND', `site "${name}" is not configured`)
      return { storage, network }
    }
    const mirrorEvents = new EventBus<MirrorEvents>()
    const mirrorModule = await openMirrorModule({ stateStore, workflows, sites: site, events: mirrorEvents, clock: systemClock, token: () => token })
    cleanups.push(() => mirrorModule.close())
    const mirrors = mirrorModule.facade
    await mirrors.create({ id: 'proj', source: { site: 'east', volume: 'projects' }, destination: { site: 'west' }, cut: { every: '1h' }, transfer: { chunkSize: '1MiB' } })
    await playedBack(mirrorEvents, mirrors, 'proj', 1)

    const events = new EventBus<NamespaceEvents>()
    const seen: string[] = []
    events.onAny((e) => seen.push(e.name))
    const hosts = { east: memoryHost(), west: memoryHost() }
    const namespace = await openNamespaceModule({
      stateStore,
      workflows,
      storage: (name) => site(name).storage,
      host: (name) => hosts[name as 'east' | 'west'],
      namespaceServer: () => networks['east']!.namespaceServer,
      mirrors: mirrorControlFrom(mirrors),
      events,
      clock: systemClock,
      token: () => token,
      monitor: false,
    })
    cleanups.push(() => namespace.close())
    const ns = namespace.facade
    await ns.createNamespace({ namespace: 'corp' })
    await ns.createLink({ namespace: 'corp', path: '/eng', targets: [{ site: 'east', share: 'eng' }] })
    await ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 2, mirrorFailoverMode: 'sync' })
    await ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'proj', destinationShare: 'eng_dr' })
    await expect(ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'nope', destinationShare: 'eng_dr' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })

    const update = new Uint8Array(randomBytes(BLOCK))
    await east.write('projects', 6 * BLOCK, update, token)
    file.set(update, BLOCK)
    const { deltaSet } = await mirrors.cutNow('proj')
    await playedBack(mirrorEvents, mirrors, 'proj', deltaSet)

    const client = networks['west']!.namespaceServer
    expect((await client.resolve('corp', '/eng/plans.doc')).target).toMatchObject({ site: 'east', share: 'eng' })
    await east.deleteShare('eng', token)
    expect((await east.volumeInfo('projects')).online).toBe(true)
    await ns.probeNow()
    expect((await ns.get({ namespace: 'corp', path: '/eng' })).protection?.state).toBe('protected')
    await ns.probeNow()
    await ns.idle()

    expect((await ns.get({ namespace: 'corp', path: '/eng' })).protection?.state).toBe('failedOver')
    expect(seen).toContain('namespace.linkFailedOver')
    expect((await mirrors.status('proj')).state).toBe('failedOver')
    const referral = await client.resolve('corp', '/eng/plans.doc')
    expect(referral).toEqual({ link: '/eng', target: { site: 'west', share: 'eng_dr', state: 'active' }, remainder: '/plans.doc' })
    const share = await storages[referral.target.site]!.getShare(referral.target.share)
    expect(share).toMatchObject({ volume: 'projects', path: '/' })
    // The storage port has no files below a share: the share the client was referred to exports the root of the
    // mirrored volume, so the client reads that volume's blocks — the mirrored data, byte for byte.
    const read = await storages[referral.target.site]!.read(share!.volume, 5 * BLOCK, 3 * BLOCK)
    expect(Buffer.from(read).equals(Buffer.from(file))).toBe(true)
    expect((await west.probeShare('eng_dr', ['read', 'write'])).state).toBe('online')
  }, 60_000)
})
