import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import { memoryStorage } from '../../../src/adapters/memory/storage.js'
import { injectFaults } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { NAMESPACE_STREAM } from '../../../src/modules/namespace/catalog.js'
import type { MirrorControl } from '../../../src/modules/namespace/index.js'
import { BS, createdShares, namespaceDurable, openNamespace, protectedWorld, rejects, serverTargets, settled, token } from '../../fixtures/namespace-world.js'

const link = { namespace: 'corp', path: '/eng' }
const ops = { namespace: 'corp', path: '/ops' }

async function withOps(w: Awaited<ReturnType<typeof protectedWorld>>): Promise<void> {
  await w.ns.createLink({ ...ops, targets: [{ site: 'east', share: 'ops' }] })
  await w.ns.protect({ ...ops, policy: 'gold', mirrorId: 'm1', destinationShare: 'ops_dr' })
}

describe('a promoted mirror is never undone by a link', () => {
  it('a failover aborted after its mirror was promoted keeps the link on its destination (failedOver, with the error)', async () => {
    const w = await protectedWorld({ postFailoverHook: { script: 'post' } })
    const controller = new AbortController()
    w.mirrors.onFailover = async () => controller.abort()
    expect(await settled(w.ns.failover({ ...link, signal: controller.signal }))).toMatchObject({ code: 'E_ABORTED' })
    const node = await w.ns.get(link)
    expect(node.targets).toEqual([{ site: 'west', share: 'eng_dr', state: 'active' }])
    expect(node.protection).toMatchObject({ state: 'failedOver', lastError: expect.stringMatching(/aborted/) })
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['west/eng_dr:active'] })
    expect(w.names('namespace.failoverFailed')[0]?.payload).toMatchObject({ ...link, code: 'E_ABORTED', state: 'failedOver' })
    expect(w.mirrors.failovers).toHaveLength(1)
  })

  it('a link whose mirror another link promoted keeps retrying its push past the retry policy instead of going back to its old primary', async () => {
    const w = await protectedWorld()
    await withOps(w)
    await w.ns.failover(link)
    w.serverFaults.fail({ method: 'patchNamespace', times: 6 })
    const done = settled(w.ns.failover(ops))
    for (let i = 0; i < 20; i++) await w.clock.advance(2_000)
    expect(await done).toBeUndefined()
    expect(w.serverFaults.count('patchNamespace')).toBeGreaterThanOrEqual(7)
    expect((await w.ns.get(ops)).protection?.state).toBe('failedOver')
    expect(await serverTargets(w.server, 'corp')).toMatchObject({ '/ops': ['west/ops_dr:active'] })
    const switches = (await w.stateStore.read(NAMESPACE_STREAM)).filter((r) => r.type === 'link.switched' && (r.data as { path: string }).path === '/ops')
    expect(switches).toHaveLength(1)
    expect(w.names('namespace.failoverFailed')).toEqual([])
  })

  it('when the mirror cannot be asked whether the switch may be undone, the link stays failingOver and recover() finishes the compensation', async () => {
    const d = await namespaceDurable()
    let unreachable = false
    const mirrors: MirrorControl = {
      describe: (id) => (unreachable ? Promise.reject(new DrError('E_UNAVAILABLE', 'the mirror module does not answer')) : d.mirrors.describe(id)),
      failover: (id, options) => d.mirrors.failover(id, options),
    }
    const w = await openNamespace(d, { mirrors })
    await w.ns.createNamespace({ namespace: 'corp' })
    await w.ns.createLink({ ...link, targets: [{ site: 'east', share: 'eng' }] })
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true })
    await w.ns.protect({ ...link, policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    d.serverFaults.fail({ method: 'patchNamespace' })
    const controller = new AbortController()
    const failing = settled(w.ns.failover({ ...link, signal: controller.signal }))
    unreachable = true
    for (let i = 0; i < 5; i++) await d.clock.advance(2_000)
    controller.abort()
    expect(await failing).toMatchObject({ code: 'E_UNAVAILABLE' })
    expect((await w.ns.get(link)).protection?.state).toBe('failingOver')
    unreachable = false
    d.serverFaults.reset()
    const restarted = await openNamespace(d, { mirrors })
    expect(await restarted.ns.recover()).toEqual({ resumed: 0, failed: 1 })
    expect((await restarted.ns.get(link)).protection?.state).toBe('failoverError')
    expect(await serverTargets(d.server, 'corp')).toEqual({ '/eng': ['east/eng:active'] })
    expect(d.mirrors.failovers).toEqual([])
  })

  it('a waiting link whose primary answers again is protected again only while its mirror still replicates from that primary', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 1, automaticFailover: false })
    await w.raw['east']!.setOnline('data', false, token)
    await w.ns.probeNow()
    expect((await w.ns.get(link)).protection?.state).toBe('failoverRequired')
    await w.mirrors.failover('m1', { mode: 'default' })
    await w.raw['east']!.setOnline('data', true, token)
    expect(await w.ns.probeNow()).toMatchObject({ accessible: 1 })
    expect(w.names('namespace.shareRecovered')).toHaveLength(1)
    expect((await w.ns.get(link)).protection?.state).toBe('failoverRequired')
    w.mirrors.returnTo('m1', { site: 'east', volume: 'data' })
    await w.ns.probeNow()
    expect((await w.ns.get(link)).protection?.state).toBe('protected')
    expect(w.names('namespace.shareRecovered')).toHaveLength(1)
  })

  it('of the links failing over together with one mirror, exactly the one whose call promoted it reports mirrorFailedOver', async () => {
    const w = await protectedWorld()
    await w.ns.createLink({ namespace: 'corp', path: '/eng-alias', targets: [{ site: 'east', share: 'eng' }] })
    await w.ns.protect({ namespace: 'corp', path: '/eng-alias', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    await withOps(w)
    await w.raw['east']!.setOnline('data', false, token)
    await w.ns.updatePolicy({ name: 'gold', failuresBeforeInaccessible: 1 })
    expect(await w.ns.probeNow()).toMatchObject({ failoversStarted: 3 })
    await w.ns.idle()
    const reports = w.names('namespace.linkFailedOver').map((e) => (e.payload as { mirrorFailedOver: boolean }).mirrorFailedOver)
    expect(reports.sort()).toEqual([false, false, true])
    expect(w.mirrors.failovers).toHaveLength(1)
    expect(createdShares(w.faults['west']!)).toBe(2)
  })
})

describe('refusals and damage the monitor and the publisher survive', () => {
  it('a site without a storage adapter fails only its own probes: the rest of the pass still runs', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 1, automaticFailover: false })
    const north = memoryStorage({ clock: w.clock })
    await north.createVolume({ name: 'data', sizeBytes: 16 * BS, blockSize: BS }, token)
    await north.createShare({ name: 'n1', volume: 'data', path: '/n1', protocol: 'nfs', access: ['read'] }, token)
    w.faults['north'] = injectFaults<StoragePort>(north, { name: 'storage.north', clock: w.clock })
    w.mirrors.add('m2', { site: 'north', volume: 'data' }, { site: 'west', volume: 'data' })
    await w.ns.createLink({ namespace: 'corp', path: '/north', targets: [{ site: 'north', share: 'n1' }] })
    await w.ns.protect({ namespace: 'corp', path: '/north', policy: 'gold', mirrorId: 'm2', destinationShare: 'n1_dr' })
    delete w.faults['north']
    await w.raw['east']!.deleteShare('eng', token)
    const pass = await w.ns.probeNow()
    expect(pass).toMatchObject({ failed: 2, accessible: 0 })
    expect([...pass.declared].sort()).toEqual(['east/eng', 'north/n1'])
    expect(w.names('namespace.shareInaccessible').map((e) => e.payload)).toEqual(
      expect.arrayContaining([expect.objectContaining({ site: 'north', reason: 'unreachable' }), expect.objectContaining({ site: 'east', reason: 'deleted' })]),
    )
    expect((await w.ns.get(link)).protection?.state).toBe('failoverRequired')
  })

  it('a mirror that has not completed its initial copy is not failed over to: the link needs an operator, and says why', async () => {
    const d = await namespaceDurable()
    d.mirrors.add('m0', { site: 'east', volume: 'data' }, { site: 'west', volume: 'data' }, false)
    const w = await openNamespace(d)
    await w.ns.createNamespace({ namespace: 'corp' })
    await w.ns.createLink({ ...link, targets: [{ site: 'east', share: 'eng' }] })
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true })
    await w.ns.protect({ ...link, policy: 'gold', mirrorId: 'm0', destinationShare: 'eng_dr' })
    await w.ns.reportInaccessible({ site: 'east', share: 'eng' })
    await w.ns.idle()
    expect((await w.ns.get(link)).protection).toMatchObject({ state: 'failoverRequired', lastError: expect.stringMatching(/initial copy/) })
    expect(w.names('namespace.failoverRequired')[0]?.payload).toMatchObject({ ...link, reason: expect.stringMatching(/initial copy/) })
    await rejects(w.ns.failover(link), 'E_PRECONDITION')
    expect(createdShares(d.faults['west']!)).toBe(0)
    expect(d.mirrors.failovers).toEqual([])
    expect(await serverTargets(d.server, 'corp')).toEqual({ '/eng': ['east/eng:active'] })
    const rel = d.mirrors.relationships.get('m0')!
    d.mirrors.relationships.set('m0', { ...rel, state: 'replicating', lastPlayedBack: 1 })
    expect((await w.ns.failover(link)).protection?.state).toBe('failedOver')
  })

  it('an edit made on the namespace server outside drkit is reported as drift and left alone; push rewrites it from drkit\'s copy', async () => {
    const w = await protectedWorld()
    await w.ns.createLink({ ...ops, targets: [{ site: 'east', share: 'ops' }] })
    const doc = await w.server.readNamespace('corp')
    const edited = doc.links.map((l) => (l.path === '/ops' ? { path: '/ops', targets: [{ site: 'west', share: 'rogue', state: 'active' as const }] } : l))
    await w.server.writeNamespace({ namespace: 'corp', version: doc.version + 1, links: edited }, token)
    await w.ns.failover(link)
    expect(w.names('namespace.driftDetected').map((e) => e.payload)).toEqual([{ namespace: 'corp', version: doc.version + 1, links: 1, paths: ['/ops'] }])
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['west/eng_dr:active'], '/ops': ['west/rogue:active'] })
    await w.ns.push({ namespace: 'corp' })
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['west/eng_dr:active'], '/ops': ['east/ops:active'] })
  })
})
