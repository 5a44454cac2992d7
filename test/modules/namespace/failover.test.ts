import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import type { HookRequest } from '../../../src/ports/host.js'
import { createdShares, protectedWorld, serverTargets, token, settled } from '../../fixtures/namespace-world.js'

const link = { namespace: 'corp', path: '/eng' }

async function stateOf(w: Awaited<ReturnType<typeof protectedWorld>>, path = '/eng') {
  return (await w.ns.get({ namespace: 'corp', path })).protection
}

describe('link-point failover', () => {
  it('behaviour 11: with no destination share yet, a share named destinationShareName is exported on the mirror destination volume before linking', async () => {
    const w = await protectedWorld()
    expect(await w.raw['west']!.getShare('eng_dr')).toBeUndefined()
    await w.ns.reportInaccessible({ site: 'east', share: 'eng' })
    await w.ns.idle()
    expect(await w.raw['west']!.getShare('eng_dr')).toMatchObject({ name: 'eng_dr', volume: 'data', path: '/eng', protocol: 'smb', access: ['read', 'write'] })
    const order = w.seen.map((e) => e.name).filter((n) => n === 'namespace.destinationShareCreated' || n === 'namespace.linkFailedOver')
    expect(order).toEqual(['namespace.destinationShareCreated', 'namespace.linkFailedOver'])
  })

  it('behaviour 12: an existing destination share is linked and no second share is created', async () => {
    const w = await protectedWorld()
    await w.raw['west']!.createShare({ name: 'eng_dr', volume: 'data', path: '/eng', protocol: 'smb', access: ['read'] }, token)
    await w.ns.reportInaccessible({ site: 'east', share: 'eng' })
    await w.ns.idle()
    expect(createdShares(w.faults['west']!)).toBe(0)
    expect(w.names('namespace.destinationShareCreated')).toEqual([])
    expect((await stateOf(w))?.state).toBe('failedOver')
    expect(await w.raw['west']!.getShare('eng_dr')).toMatchObject({ volume: 'data', path: '/eng', access: ['read', 'write'] })
  })

  it('behaviour 13: the primary target is removed, the destination share is the link\'s target, and the unchanged path resolves to it', async () => {
    const w = await protectedWorld()
    await w.ns.addTarget({ ...link, site: 'east', share: 'ops' })
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['east/eng:active', 'east/ops:standby'] })
    await w.ns.reportInaccessible({ site: 'east', share: 'eng' })
    await w.ns.idle()
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['west/eng_dr:active', 'east/ops:standby'] })
    expect(await w.server.resolve('corp', '\\eng\\docs\\a.txt')).toEqual({ link: '/eng', target: { site: 'west', share: 'eng_dr', state: 'active' }, remainder: '/docs/a.txt' })
    expect(w.names('namespace.linkFailedOver')[0]?.payload).toMatchObject({ ...link, from: { site: 'east', share: 'eng' }, to: { site: 'west', share: 'eng_dr' }, mirrorFailedOver: true })
  })

  it('behaviour 14: without automatic failover the namespace is not changed, failoverRequired is raised, and the operator\'s failover does the same switch', async () => {
    const w = await protectedWorld({ automaticFailover: false })
    await w.raw['east']!.deleteShare('eng', token)
    for (let i = 0; i < 3; i++) await w.ns.probeNow()
    await w.ns.idle()
    expect((await stateOf(w))?.state).toBe('failoverRequired')
    expect(w.names('namespace.failoverRequired')[0]).toMatchObject({ severity: 'critical', payload: { ...link, primary: { site: 'east', share: 'eng' } } })
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['east/eng:active'] })
    expect(w.mirrors.failovers).toEqual([])
    const node = await w.ns.failover(link)
    expect(node.protection?.state).toBe('failedOver')
    expect(node.targets).toEqual([{ site: 'west', share: 'eng_dr', state: 'active' }])
    expect(w.names('namespace.failoverStarted')[0]?.payload).toMatchObject({ manual: true })
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['west/eng_dr:active'] })
  })

  it('behaviour 15: breakMirror breaks (fails over) the mirror once the switch is on the server, the destination share read-only until then; without it the mirror is left alone', async () => {
    const w = await protectedWorld({ mirrorFailoverMode: 'now' })
    let atBreak: { targets: Record<string, string[]>; access: readonly string[] | undefined } | undefined
    w.mirrors.onFailover = async () => {
      atBreak = { targets: await serverTargets(w.server, 'corp'), access: (await w.raw['west']!.getShare('eng_dr'))?.access }
    }
    await w.ns.failover(link)
    expect(atBreak).toEqual({ targets: { '/eng': ['west/eng_dr:active'] }, access: ['read'] })
    expect(w.mirrors.failovers).toEqual([{ id: 'm1', mode: 'now' }])
    expect((await w.mirrors.describe('m1')).state).toBe('failedOver')
    expect((await w.raw['west']!.getShare('eng_dr'))?.access).toEqual(['read', 'write'])
    expect(w.names('namespace.linkFailedOver')[0]?.payload).toMatchObject({ mirrorFailedOver: true })

    const k = await protectedWorld({ breakMirror: false })
    await k.ns.failover(link)
    expect(k.mirrors.failovers).toEqual([])
    expect((await k.mirrors.describe('m1')).state).toBe('replicating')
    expect((await stateOf(k))?.state).toBe('failedOver')
    expect(k.names('namespace.linkFailedOver')[0]?.payload).toMatchObject({ mirrorFailedOver: false })
    expect((await k.raw['west']!.getShare('eng_dr'))?.access).toEqual(['read'])
  })

  it('behaviour 16: the hooks run once before and once after the namespace switch, in that order, with the failover context', async () => {
    const w = await protectedWorld({ preFailoverHook: { script: '/opt/dr/pre.sh', args: ['x'] }, postFailoverHook: { script: '/opt/dr/post.sh', timeout: '10s' } })
    const runs: Array<{ request: HookRequest; targets: Record<string, string[]> }> = []
    w.hosts['west']!.setHookHandler(async (request) => {
      runs.push({ request, targets: await serverTargets(w.server, 'corp') })
      return { exitCode: 0, stdout: '', stderr: '', timedOut: false }
    })
    await w.ns.failover(link)
    expect(runs.map((r) => r.request.script)).toEqual(['/opt/dr/pre.sh', '/opt/dr/post.sh'])
    expect(runs[0]?.targets).toEqual({ '/eng': ['east/eng:active'] })
    expect(runs[1]?.targets).toEqual({ '/eng': ['west/eng_dr:active'] })
    expect(runs[0]?.request.args).toEqual(['x'])
    expect(runs[1]?.request.timeoutMs).toBe(10_000)
    expect(runs[0]?.request.env).toMatchObject({
      DRKIT_PHASE: 'pre',
      DRKIT_NAMESPACE: 'corp',
      DRKIT_LINK_PATH: '/eng',
      DRKIT_POLICY: 'gold',
      DRKIT_MIRROR_ID: 'm1',
      DRKIT_FROM_SITE: 'east',
      DRKIT_FROM_SHARE: 'eng',
      DRKIT_TO_SITE: 'west',
      DRKIT_TO_SHARE: 'eng_dr',
    })
    expect(runs[1]?.request.env['DRKIT_PHASE']).toBe('post')
  })

  it('a failing pre-hook stops the failover (the link stays on its primary) unless the policy says continue; a failing post-hook is reported only', async () => {
    const w = await protectedWorld({ preFailoverHook: { script: 'pre' } })
    w.hosts['west']!.setHookHandler(() => ({ exitCode: 3, stdout: '', stderr: 'no quorum', timedOut: false }))
    await expect(w.ns.failover(link)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect((await stateOf(w))?.state).toBe('failoverError')
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['east/eng:active'] })
    expect(w.names('namespace.hookFailed')[0]?.payload).toMatchObject({ phase: 'pre', exitCode: 3, aborted: true })
    expect(w.faults['west']!.count('createShare')).toBe(0)

    const c = await protectedWorld({ preFailoverHook: { script: 'pre', timeout: '1s' }, postFailoverHook: { script: 'post' }, onPreHookFailure: 'continue' })
    c.hosts['west']!.setHookHandler((request) =>
      request.env['DRKIT_PHASE'] === 'pre' ? new Promise(() => undefined) : { exitCode: 1, stdout: '', stderr: 'oops', timedOut: false },
    )
    const failing = c.ns.failover(link)
    await c.clock.advance(1_000)
    await failing
    expect((await stateOf(c))?.state).toBe('failedOver')
    expect(c.names('namespace.hookFailed').map((e) => e.payload)).toMatchObject([
      { phase: 'pre', timedOut: true, aborted: false },
      { phase: 'post', exitCode: 1, aborted: false },
    ])
  })

  it('behaviour 22: when the namespace server fails after the destination share was created, failoverFailed is raised, the link is failoverError and never without a target', async () => {
    const w = await protectedWorld()
    w.serverFaults.fail({ method: 'patchNamespace' })
    const failing = settled(w.ns.failover(link))
    for (let i = 0; i < 10; i++) await w.clock.advance(2_000)
    expect(await failing).toMatchObject({ code: 'E_ADAPTER' })
    const protection = await stateOf(w)
    expect(protection?.state).toBe('failoverError')
    expect(protection?.lastError).toMatch(/patchNamespace/)
    expect(await w.raw['west']!.getShare('eng_dr')).toBeDefined()
    expect((await w.ns.get(link)).targets).toEqual([{ site: 'east', share: 'eng', state: 'active' }])
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['east/eng:active'] })
    expect(w.names('namespace.failoverFailed')[0]).toMatchObject({ severity: 'error', payload: { ...link, code: 'E_ADAPTER', state: 'failoverError' } })
    expect(w.mirrors.failovers).toEqual([])
    w.serverFaults.reset()
    await w.ns.failover(link)
    expect((await stateOf(w))?.state).toBe('failedOver')
    expect(createdShares(w.faults['west']!)).toBe(1)
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['west/eng_dr:active'] })
  })

  it('transient storage and namespace-server faults during a failover are retried with backoff and the failover completes', async () => {
    const w = await protectedWorld()
    w.faults['west']!.fail({ method: 'createShare', times: 2 })
    w.serverFaults.fail({ method: 'patchNamespace', times: 2 })
    const done = settled(w.ns.failover(link))
    for (let i = 0; i < 10; i++) await w.clock.advance(2_000)
    expect(await done).toBeUndefined()
    expect((await stateOf(w))?.state).toBe('failedOver')
    expect(w.faults['west']!.count('createShare')).toBe(3)
    expect(w.serverFaults.count('patchNamespace')).toBeGreaterThanOrEqual(3)
    expect(await w.raw['west']!.getShare('eng_dr')).toBeDefined()
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['west/eng_dr:active'] })
  })

  it('an aborted signal stops the failover before its next step; completed steps are compensated and the link stays on its primary', async () => {
    const w = await protectedWorld({ preFailoverHook: { script: 'pre' } })
    const controller = new AbortController()
    w.hosts['west']!.setHookHandler(() => {
      controller.abort()
      return { exitCode: 0, stdout: '', stderr: '', timedOut: false }
    })
    expect(await settled(w.ns.failover({ ...link, signal: controller.signal }))).toMatchObject({ code: 'E_ABORTED' })
    expect((await stateOf(w))?.state).toBe('failoverError')
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['east/eng:active'] })
    expect(w.faults['west']!.count('createShare')).toBe(0)
    await expect(w.ns.failover({ ...link, signal: 'stop' as never })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
  })

  it('a mirror failover that fails stops the link failover on its primary', async () => {
    const w = await protectedWorld()
    w.mirrors.failWith = new DrError('E_PRECONDITION', 'mirror is resyncing')
    await expect(w.ns.failover(link)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect((await stateOf(w))?.state).toBe('failoverError')
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['east/eng:active'] })
  })

  it('a destination share name taken by another volume at failover time stops the failover with E_CONFLICT', async () => {
    const w = await protectedWorld()
    await w.raw['west']!.createVolume({ name: 'other', sizeBytes: 4096 * 8, blockSize: 4096 }, token)
    await w.raw['west']!.createShare({ name: 'eng_dr', volume: 'other', path: '/', protocol: 'smb', access: ['read'] }, token)
    await expect(w.ns.failover(link)).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect((await w.ns.get(link)).targets).toEqual([{ site: 'east', share: 'eng', state: 'active' }])
  })

  it('failover of a link that is not protected, or of bad input, is refused; failover of a failed-over link does nothing', async () => {
    const w = await protectedWorld()
    await w.ns.createLink({ namespace: 'corp', path: '/plain', targets: [{ site: 'east', share: 'ops' }] })
    await expect(w.ns.failover({ namespace: 'corp', path: '/plain' })).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await expect(w.ns.failover({ namespace: 'corp' } as never)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await w.ns.failover(link)
    await w.ns.failover(link)
    expect(w.names('namespace.failoverStarted')).toHaveLength(1)
    await expect(w.ns.unprotect(link)).resolves.toMatchObject({ protection: null })
  })

  it('fails many links over in parallel, at most the configured number at once, with one destination share and one mirror failover each', async () => {
    const w = await protectedWorld({ failuresBeforeInaccessible: 1 }, { failoverConcurrency: 4 })
    for (let i = 0; i < 20; i++) {
      await w.ns.createLink({ namespace: 'corp', path: `/l${i}`, targets: [{ site: 'east', share: 'eng' }] })
      await w.ns.protect({ namespace: 'corp', path: `/l${i}`, policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    }
    let running = 0
    let peak = 0
    w.hosts['west']!.setHookHandler(async () => {
      running++
      peak = Math.max(peak, running)
      await new Promise((resolve) => setImmediate(resolve))
      running--
      return { exitCode: 0, stdout: '', stderr: '', timedOut: false }
    })
    await w.ns.updatePolicy({ name: 'gold', preFailoverHook: { script: 'pre' } })
    await w.raw['east']!.deleteShare('eng', token)
    expect(await w.ns.probeNow()).toMatchObject({ failoversStarted: 21 })
    await w.ns.idle()
    expect(peak).toBeLessThanOrEqual(4)
    expect(peak).toBeGreaterThan(1)
    const nodes = await w.ns.list({ namespace: 'corp' })
    expect(nodes.every((n) => n.protection?.state === 'failedOver')).toBe(true)
    expect(createdShares(w.faults['west']!)).toBe(1)
    expect(w.mirrors.failovers).toHaveLength(1)
  })
})

describe('failback', () => {
  it('moves a failed-over link back to its original share once the mirror replicates from it again and it answers', async () => {
    const w = await protectedWorld()
    await w.raw['east']!.deleteShare('eng', token)
    await w.ns.failover(link)
    await expect(w.ns.failback(link)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    w.mirrors.returnTo('m1', { site: 'east', volume: 'data' })
    await expect(w.ns.failback(link)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await w.raw['east']!.createShare({ name: 'eng', volume: 'data', path: '/eng', protocol: 'smb', access: ['read', 'write'] }, token)
    const node = await w.ns.failback(link)
    expect(node.protection?.state).toBe('protected')
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['east/eng:active'] })
    expect(w.names('namespace.linkFailedBack')[0]?.payload).toMatchObject({ from: { site: 'west', share: 'eng_dr' }, to: { site: 'east', share: 'eng' } })
    await expect(w.ns.failback(link)).rejects.toMatchObject({ code: 'E_PRECONDITION' })
  })
})
