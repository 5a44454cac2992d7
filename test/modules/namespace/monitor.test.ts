import { describe, expect, it } from 'vitest'
import { namespaceDurable, openNamespace, protectedWorld, token } from '../../fixtures/namespace-world.js'
import type { NamespaceEvent } from '../../../src/modules/namespace/index.js'

const link = { namespace: 'corp', path: '/eng' }

async function stateOf(w: Awaited<ReturnType<typeof protectedWorld>>, path = '/eng') {
  return (await w.ns.get({ namespace: 'corp', path })).protection?.state
}

describe('share-level monitoring', () => {
  it('behaviour 4: a primary share that opens is reported accessible and nothing fails over', async () => {
    const w = await protectedWorld()
    for (let i = 0; i < 5; i++) expect(await w.ns.probeNow()).toMatchObject({ accessible: 1, failed: 0, declared: [], failoversStarted: 0 })
    expect(await stateOf(w)).toBe('protected')
    expect(w.names('namespace.shareInaccessible')).toEqual([])
    expect(w.mirrors.failovers).toEqual([])
  })

  it('behaviour 5: with 3 probes, two failures and then a success do not declare the share inaccessible', async () => {
    const w = await protectedWorld()
    await w.raw['east']!.setOnline('data', false, token)
    await w.ns.probeNow()
    await w.ns.probeNow()
    await w.raw['east']!.setOnline('data', true, token)
    expect(await w.ns.probeNow()).toMatchObject({ failed: 0 })
    await w.raw['east']!.setOnline('data', false, token)
    await w.ns.probeNow()
    await w.ns.probeNow()
    await w.ns.idle()
    expect(await stateOf(w)).toBe('protected')
    expect(w.names('namespace.shareInaccessible')).toEqual([])
    expect(w.names('namespace.failoverStarted')).toEqual([])
  })

  it('behaviour 6: with 3 probes, the third consecutive failure reports the share inaccessible and failover starts', async () => {
    const w = await protectedWorld()
    await w.raw['east']!.deleteShare('eng', token)
    expect(await w.ns.probeNow()).toMatchObject({ failed: 1, declared: [] })
    expect(await w.ns.probeNow()).toMatchObject({ failed: 1, declared: [] })
    expect(await w.ns.probeNow()).toMatchObject({ failed: 1, declared: ['east/eng'], failoversStarted: 1 })
    await w.ns.idle()
    expect(w.names('namespace.shareInaccessible')[0]?.payload).toMatchObject({ site: 'east', share: 'eng', reason: 'deleted', failures: 3, links: ['/eng'] })
    expect(w.names('namespace.failoverStarted')[0]?.payload).toMatchObject({ ...link, manual: false })
    expect(await stateOf(w)).toBe('failedOver')
  })

  it('behaviour 7: a share that never answers within the probe timeout is reported inaccessible (timeout), and so is one past the overall timer', async () => {
    const w = await protectedWorld({ probeTimeout: '1s', failuresBeforeInaccessible: 2 })
    w.faults['east']!.setLatency((call) => (call.method === 'probeShare' ? 60_000 : 0))
    for (let i = 0; i < 2; i++) {
      const pass = w.ns.probeNow()
      await w.clock.advance(1_000)
      await pass
    }
    await w.ns.idle()
    expect(w.names('namespace.shareInaccessible')[0]?.payload).toMatchObject({ reason: 'timeout', failures: 2 })
    expect(await stateOf(w)).toBe('failedOver')

    const t = await protectedWorld({ failuresBeforeInaccessible: 1000, inaccessibleAfter: '5s', automaticFailover: false })
    await t.raw['east']!.setOnline('data', false, token)
    await t.ns.probeNow()
    await t.clock.advance(4_000)
    await t.ns.probeNow()
    expect(await stateOf(t)).toBe('protected')
    await t.clock.advance(1_000)
    await t.ns.probeNow()
    expect(t.names('namespace.shareInaccessible')[0]?.payload).toMatchObject({ reason: 'offline', failures: 3 })
    expect(await stateOf(t)).toBe('failoverRequired')
  })

  it('behaviour 8: a volume taken offline on a healthy server fails the share-level probe and the link fails over', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 1 })
    await w.raw['east']!.setOnline('data', false, token)
    await w.ns.probeNow()
    await w.ns.idle()
    expect(w.names('namespace.shareInaccessible')[0]?.payload).toMatchObject({ reason: 'offline' })
    expect(await stateOf(w)).toBe('failedOver')
    expect((await w.ns.resolve(link)).target).toMatchObject({ site: 'west', share: 'eng_dr' })
  })

  it('behaviour 9: a share deleted on a healthy server and volume fails over once probes run past the count', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 2 })
    await w.raw['east']!.deleteShare('eng', token)
    await w.ns.probeNow()
    expect(await stateOf(w)).toBe('protected')
    await w.ns.probeNow()
    await w.ns.idle()
    expect(await stateOf(w)).toBe('failedOver')
    expect((await w.ns.resolve(link)).target).toMatchObject({ site: 'west', share: 'eng_dr' })
  })

  it('behaviour 10: a share whose permissions changed so it cannot be opened with the policy rights fails over', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 2, access: ['read', 'write'] })
    await w.raw['east']!.setShareAccess('eng', ['read'], token)
    await w.ns.probeNow()
    await w.ns.probeNow()
    await w.ns.idle()
    expect(w.names('namespace.shareInaccessible')[0]?.payload).toMatchObject({ reason: 'accessDenied' })
    expect(await stateOf(w)).toBe('failedOver')
  })

  it('a storage adapter that cannot be reached counts as a failed probe (the server is down)', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 2 })
    w.faults['east']!.crash()
    await w.ns.probeNow()
    await w.ns.probeNow()
    await w.ns.idle()
    expect(w.names('namespace.shareInaccessible')[0]?.payload).toMatchObject({ reason: 'unreachable' })
    expect(await stateOf(w)).toBe('failedOver')
  })

  it('behaviour 17: an inaccessible destination share disables protection with a warning and no automatic failover; it is re-enabled when it returns', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 1 })
    await w.raw['west']!.createShare({ name: 'eng_dr', volume: 'data', path: '/eng', protocol: 'smb', access: ['read', 'write'] }, token)
    await w.raw['west']!.setOnline('data', false, token)
    await w.ns.probeNow()
    expect(await stateOf(w)).toBe('protectionDisabled')
    const disabled = w.names('namespace.protectionDisabled')
    expect(disabled).toHaveLength(1)
    expect(disabled[0]).toMatchObject({ severity: 'warning', payload: { ...link, destination: { site: 'west', share: 'eng_dr' } } })
    await w.ns.probeNow()
    expect(w.names('namespace.protectionDisabled')).toHaveLength(1)
    await w.raw['west']!.setOnline('data', true, token)
    await w.ns.probeNow()
    expect(await stateOf(w)).toBe('protected')
    expect(w.names('namespace.protectionEnabled')).toHaveLength(1)

    await w.raw['west']!.setOnline('data', false, token)
    await w.ns.probeNow()
    await w.raw['east']!.deleteShare('eng', token)
    await w.ns.probeNow()
    await w.ns.idle()
    expect(await stateOf(w)).toBe('failoverRequired')
    expect(w.names('namespace.failoverRequired')[0]?.payload).toMatchObject({ reason: 'the destination share is inaccessible' })
    expect(w.names('namespace.failoverStarted')).toEqual([])
    expect((await w.ns.history({ name: 'namespace.protectionDisabled' })).length).toBe(2)
  })

  it('behaviour 21: a share behind two links under one policy fails over at both links', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 1 })
    await w.ns.createLink({ namespace: 'corp', path: '/mirror-of-eng', targets: [{ site: 'east', share: 'eng' }] })
    await w.ns.protect({ namespace: 'corp', path: '/mirror-of-eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    await w.raw['east']!.deleteShare('eng', token)
    expect(await w.ns.probeNow()).toMatchObject({ failoversStarted: 2 })
    await w.ns.idle()
    expect(await stateOf(w)).toBe('failedOver')
    expect(await stateOf(w, '/mirror-of-eng')).toBe('failedOver')
    expect(w.faults['west']!.count('createShare')).toBe(1)
    expect(w.mirrors.failovers).toHaveLength(1)
    expect(w.names('namespace.shareInaccessible')[0]?.payload).toMatchObject({ links: ['/eng', '/mirror-of-eng'] })
  })

  it('behaviour 24: another inaccessible report for a link already failed over does nothing', async () => {
    const w = await protectedWorld()
    expect(await w.ns.reportInaccessible({ site: 'east', share: 'eng' })).toMatchObject({ failoversStarted: 1 })
    await w.ns.idle()
    expect(await stateOf(w)).toBe('failedOver')
    const before = w.seen.length
    expect(await w.ns.reportInaccessible({ site: 'east', share: 'eng' })).toMatchObject({ failoversStarted: 0, declared: [] })
    await w.ns.probeNow()
    await w.ns.idle()
    expect(w.seen.slice(before).filter((e) => e.name !== 'namespace.pushed')).toEqual([])
    expect(w.faults['west']!.count('createShare')).toBe(1)
    expect(w.mirrors.failovers).toHaveLength(1)
    expect(w.names('namespace.failoverStarted')).toHaveLength(1)
  })

  it('a primary that answers again after being declared inaccessible brings a waiting link back to protected', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 1, automaticFailover: false })
    await w.raw['east']!.setOnline('data', false, token)
    await w.ns.probeNow()
    expect(await stateOf(w)).toBe('failoverRequired')
    await w.raw['east']!.setOnline('data', true, token)
    await w.ns.probeNow()
    expect(await stateOf(w)).toBe('protected')
    expect(w.names('namespace.shareRecovered')[0]?.payload).toMatchObject({ site: 'east', share: 'eng', links: ['/eng'] })
  })

  it('monitors on the policies\' intervals with one timer, however many links there are', async () => {
    const d = await namespaceDurable()
    const w = await openNamespace(d, { monitor: true })
    await w.ns.createNamespace({ namespace: 'corp' })
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 2, probeInterval: '10s' })
    for (let i = 0; i < 50; i++) {
      await w.ns.createLink({ namespace: 'corp', path: `/l${i}`, targets: [{ site: 'east', share: 'eng' }] })
      await w.ns.protect({ namespace: 'corp', path: `/l${i}`, policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    }
    await w.clock.advance(10_000)
    expect(d.clock.pendingTimers).toBeLessThanOrEqual(2)
    await d.raw['east']!.deleteShare('eng', token)
    await w.clock.advance(10_000)
    expect((await w.ns.get({ namespace: 'corp', path: '/l0' })).protection?.state).toBe('protected')
    await w.clock.advance(10_000)
    await w.ns.idle()
    const states = await Promise.all(Array.from({ length: 50 }, (_, i) => w.ns.get({ namespace: 'corp', path: `/l${i}` })))
    expect(states.every((n) => n.protection?.state === 'failedOver')).toBe(true)
    expect(d.faults['east']!.count('probeShare')).toBeLessThanOrEqual(4)
    await w.module.close()
  })
})

describe('the monitor wakes for new work', () => {
  it('a link protected while the monitor sleeps is probed at once and on its policy interval, not after the idle minute', async () => {
    const d = await namespaceDurable()
    const w = await openNamespace(d, { monitor: true })
    await w.clock.advance(1_000)
    await w.ns.createNamespace({ namespace: 'corp' })
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 2, probeInterval: '5s' })
    await w.ns.createLink({ namespace: 'corp', path: '/eng', targets: [{ site: 'east', share: 'eng' }] })
    await w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    await w.clock.advance(0)
    await w.ns.idle()
    expect(d.faults['east']!.count('probeShare')).toBe(1)
    await d.raw['east']!.deleteShare('eng', token)
    await w.clock.advance(5_000)
    await w.clock.advance(5_000)
    await w.ns.idle()
    expect((await w.ns.get(link)).protection?.state).toBe('failedOver')
    await w.module.close()
  })

  it('a policy edit that shortens the probe interval applies from the edit, not after the old interval', async () => {
    const d = await namespaceDurable()
    const w = await openNamespace(d, { monitor: true })
    await w.ns.createNamespace({ namespace: 'corp' })
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 1, probeInterval: '50s' })
    await w.ns.createLink({ namespace: 'corp', path: '/eng', targets: [{ site: 'east', share: 'eng' }] })
    await w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    await w.clock.advance(0)
    await w.ns.idle()
    const probes = d.faults['east']!.count('probeShare')
    await w.ns.updatePolicy({ name: 'gold', probeInterval: '2s' })
    await w.clock.advance(2_000)
    await w.ns.idle()
    expect(d.faults['east']!.count('probeShare')).toBe(probes + 1)
    await w.module.close()
  })
})

describe('threshold monitors and the event daemon', () => {
  it('behaviour 18: used space above 50 % raises an out-of-space event with its severity, recorded in the store and sent to the notifier', async () => {
    const d = await namespaceDurable()
    const notified: NamespaceEvent[] = []
    const w = await openNamespace(d, { notify: (e) => void notified.push(e) })
    await w.ns.addThreshold({ name: 'space', site: 'east', volume: 'data', metric: 'usedPercent', above: 50, severity: 'warning', every: '1m' })
    for (let b = 0; b < 33; b++) await d.raw['east']!.write('data', b * 4096, new Uint8Array(4096).fill(1), token)
    await w.ns.probeNow()
    const expected = { name: 'namespace.outOfSpace', severity: 'warning', payload: { threshold: 'space', site: 'east', volume: 'data', above: 50 } }
    expect(w.names('namespace.outOfSpace')).toMatchObject([expected])
    expect(notified).toMatchObject([expected])
    expect(await w.ns.history({ name: 'namespace.outOfSpace' })).toMatchObject([expected])
    expect((w.names('namespace.outOfSpace')[0]?.payload as { usedPercent: number }).usedPercent).toBeCloseTo(51.56, 1)
    await w.clock.advance(60_000)
    await w.ns.probeNow()
    expect(w.names('namespace.outOfSpace')).toHaveLength(1)
    const reopened = await openNamespace(d)
    expect(await reopened.ns.history({ minSeverity: 'warning' })).toHaveLength(1)
  })

  it('behaviour 19: a volume at exactly 50 % raises no out-of-space event (strictly greater than)', async () => {
    const d = await namespaceDurable()
    const w = await openNamespace(d)
    await w.ns.addThreshold({ name: 'space', site: 'east', metric: 'usedPercent', above: 50, severity: 'critical' })
    for (let b = 0; b < 32; b++) await d.raw['east']!.write('data', b * 4096, new Uint8Array(4096).fill(1), token)
    await w.ns.probeNow()
    expect(w.names('namespace.outOfSpace')).toEqual([])
    await d.raw['east']!.write('data', 32 * 4096, new Uint8Array(4096).fill(1), token)
    await w.clock.advance(60_000)
    await w.ns.probeNow()
    expect(w.names('namespace.outOfSpace')).toHaveLength(1)
    expect(w.names('namespace.outOfSpace')[0]?.severity).toBe('critical')
  })

  it('thresholds are validated, unique and removable; a site that cannot be read is reported', async () => {
    const d = await namespaceDurable()
    const w = await openNamespace(d)
    for (const bad of [
      { name: 't', site: 'east', metric: 'usedPercent', above: 101, severity: 'warning' },
      { name: 't', site: 'east', metric: 'freeBytes', above: 50, severity: 'warning' },
      { name: 't', site: 'east', metric: 'usedPercent', above: 50, severity: 'loud' },
      { name: 't', site: 'east', metric: 'usedPercent', above: 50, severity: 'warning', every: '1ms' },
    ]) {
      await expect(w.ns.addThreshold(bad as never)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    }
    await w.ns.addThreshold({ name: 't', site: 'east', metric: 'usedPercent', above: 50, severity: 'warning' })
    await expect(w.ns.addThreshold({ name: 't', site: 'east', metric: 'usedPercent', above: 50, severity: 'warning' })).rejects.toMatchObject({ code: 'E_CONFLICT' })
    await w.ns.addThreshold({ name: 'nowhere', site: 'south', metric: 'usedPercent', above: 50, severity: 'warning' })
    await w.ns.probeNow()
    expect(w.names('namespace.thresholdFailed')[0]?.payload).toMatchObject({ threshold: 'nowhere', site: 'south', code: 'E_NOT_FOUND' })
    await w.ns.removeThreshold({ name: 't' })
    await expect(w.ns.removeThreshold({ name: 't' })).rejects.toMatchObject({ code: 'E_NOT_FOUND' })
    expect((await w.ns.listThresholds()).map((t) => t.name)).toEqual(['nowhere'])
  })

  it('a notifier that throws or rejects never stops monitoring', async () => {
    const d = await namespaceDurable()
    const w = await openNamespace(d, {
      notify: () => {
        throw new Error('smtp down')
      },
    })
    await w.ns.addThreshold({ name: 'space', site: 'east', metric: 'usedPercent', above: 0, severity: 'warning' })
    await d.raw['east']!.write('data', 0, new Uint8Array(4096).fill(1), token)
    await w.ns.probeNow()
    expect(w.names('namespace.outOfSpace')).toHaveLength(1)
  })
})
