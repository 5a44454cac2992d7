import { describe, expect, it } from 'vitest'
import { namespaceDurable, openNamespace, protectedWorld, rejects } from '../../fixtures/namespace-world.js'

async function world() {
  const w = await openNamespace(await namespaceDurable())
  await w.ns.createNamespace({ namespace: 'corp' })
  for (const path of ['/eng', '/eng2', '/eng3']) await w.ns.createLink({ namespace: 'corp', path, targets: [{ site: 'east', share: 'eng' }] })
  await w.ns.createLink({ namespace: 'corp', path: '/ops', targets: [{ site: 'east', share: 'ops' }] })
  return w
}

describe('data-protection policies', () => {
  it('behaviour 1: a policy "gold" (automatic, break, 3 probes) is saved with exactly those values and read back by name or id', async () => {
    const w = await world()
    const saved = await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 3 })
    expect(saved).toMatchObject({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 3 })
    expect(await w.ns.getPolicy({ name: 'gold' })).toEqual(saved)
    expect(await w.ns.getPolicy({ name: saved.id })).toEqual(saved)
    const reopened = await openNamespace(w)
    expect(await reopened.ns.getPolicy({ name: 'gold' })).toEqual(saved)
  })

  it('behaviour 2: associating "gold" with a link records the four Table-2 fields and the link is data protected', async () => {
    const w = await world()
    const gold = await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 3 })
    const node = await w.ns.protect({ namespace: 'corp', path: '\\eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    expect(node.path).toBe('/eng')
    expect(node.protection).toMatchObject({ policy: gold.id, mirrorId: 'm1', destination: { site: 'west', share: 'eng_dr', volume: 'data' }, state: 'protected' })
    expect(node.protection?.primary).toMatchObject({ site: 'east', share: 'eng', volume: 'data' })
    expect(w.names('namespace.linkProtected')).toHaveLength(1)
  })

  it('behaviour 3: one policy protects three links, and each failover uses that policy', async () => {
    const w = await world()
    await w.ns.createPolicy({ name: 'gold', automaticFailover: false, breakMirror: false })
    const paths = ['/eng', '/eng2', '/eng3']
    for (const path of paths) await w.ns.protect({ namespace: 'corp', path, policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    const gold = await w.ns.getPolicy({ name: 'gold' })
    for (const path of paths) expect((await w.ns.get({ namespace: 'corp', path })).protection?.policy).toBe(gold.id)
    await w.ns.updatePolicy({ name: 'gold', breakMirror: true, mirrorFailoverMode: 'now', preFailoverHook: { script: '/opt/dr/pre.sh' } })
    expect(w.names('namespace.policySaved').at(-1)?.payload).toMatchObject({ created: false, links: 3 })
    const hooks: Array<Record<string, string>> = []
    w.hosts['west']!.setHookHandler((request) => {
      hooks.push(request.env)
      return { exitCode: 0, stdout: '', stderr: '', timedOut: false }
    })
    for (const path of paths) await w.ns.failover({ namespace: 'corp', path })
    for (const path of paths) expect((await w.ns.get({ namespace: 'corp', path })).protection?.state).toBe('failedOver')
    expect(hooks.map((env) => [env['DRKIT_LINK_PATH'], env['DRKIT_POLICY']])).toEqual(paths.map((path) => [path, 'gold']))
    expect(w.mirrors.failovers).toEqual([{ id: 'm1', mode: 'now' }])
    expect(w.names('namespace.linkFailedOver').map((e) => (e.payload as { path: string }).path)).toEqual(paths)
  })

  it('behaviour 23: protecting with a mirror that does not exist is rejected and changes nothing', async () => {
    const w = await world()
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true })
    await rejects(w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'nope', destinationShare: 'eng_dr' }), 'E_NOT_FOUND')
    expect((await w.ns.get({ namespace: 'corp', path: '/eng' })).protection).toBeNull()
  })

  it('a share that is not on the mirror source volume, a missing primary share or a clashing destination share is refused', async () => {
    const w = await world()
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true })
    await w.raw['east']!.createVolume({ name: 'other', sizeBytes: 4096 * 8, blockSize: 4096 }, { scope: 'namespace-test', value: 1 })
    await w.raw['east']!.createShare({ name: 'elsewhere', volume: 'other', path: '/', protocol: 'smb', access: ['read'] }, { scope: 'namespace-test', value: 1 })
    await w.ns.createLink({ namespace: 'corp', path: '/x', targets: [{ site: 'east', share: 'elsewhere' }] })
    await rejects(w.ns.protect({ namespace: 'corp', path: '/x', policy: 'gold', mirrorId: 'm1', destinationShare: 'x_dr' }), 'E_PRECONDITION')
    await w.ns.createLink({ namespace: 'corp', path: '/ghost', targets: [{ site: 'east', share: 'ghost' }] })
    await rejects(w.ns.protect({ namespace: 'corp', path: '/ghost', policy: 'gold', mirrorId: 'm1', destinationShare: 'g_dr' }), 'E_PRECONDITION')
    await w.raw['west']!.createVolume({ name: 'v2', sizeBytes: 4096 * 8, blockSize: 4096 }, { scope: 'namespace-test', value: 1 })
    await w.raw['west']!.createShare({ name: 'taken', volume: 'v2', path: '/', protocol: 'smb', access: ['read'] }, { scope: 'namespace-test', value: 1 })
    await rejects(w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'taken' }), 'E_CONFLICT')
    await rejects(w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'none', mirrorId: 'm1', destinationShare: 'eng_dr' }), 'E_NOT_FOUND')
    await w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    await rejects(w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' }), 'E_CONFLICT')
  })

  it('policy names are unique, a policy in use cannot be deleted, an unused one can', async () => {
    const w = await world()
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true })
    await rejects(w.ns.createPolicy({ name: 'gold', automaticFailover: false, breakMirror: false }), 'E_CONFLICT')
    await w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    await rejects(w.ns.deletePolicy({ name: 'gold' }), 'E_PRECONDITION')
    await w.ns.unprotect({ namespace: 'corp', path: '/eng' })
    await w.ns.deletePolicy({ name: 'gold' })
    expect(await w.ns.listPolicies()).toEqual([])
    await rejects(w.ns.getPolicy({ name: 'gold' }), 'E_NOT_FOUND')
  })

  it('settings are validated and defaulted; durations may be strings; bad settings change nothing', async () => {
    const w = await world()
    const p = await w.ns.createPolicy({
      name: 'silver',
      automaticFailover: true,
      breakMirror: false,
      probeTimeout: '2s',
      inaccessibleAfter: '1m',
      probeInterval: '10s',
      access: ['read', 'write'],
      preFailoverHook: { script: '/bin/pre', args: ['a'], timeout: '5s' },
      onPreHookFailure: 'continue',
    })
    expect(p).toMatchObject({ probeTimeoutMs: 2000, inaccessibleAfterMs: 60_000, probeIntervalMs: 10_000, failuresBeforeInaccessible: 3, preFailoverHook: { script: '/bin/pre', args: ['a'], timeoutMs: 5000, site: null } })
    const bad: unknown[] = [
      { name: 'x', automaticFailover: 'yes', breakMirror: true },
      { name: 'x', automaticFailover: true },
      { name: '', automaticFailover: true, breakMirror: true },
      { name: 'x', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 0 },
      { name: 'x', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 1.5 },
      { name: 'x', automaticFailover: true, breakMirror: true, probeTimeout: '0s' },
      { name: 'x', automaticFailover: true, breakMirror: true, probeInterval: '1ms' },
      { name: 'x', automaticFailover: true, breakMirror: true, access: [] },
      { name: 'x', automaticFailover: true, breakMirror: true, access: ['read', 'read'] },
      { name: 'x', automaticFailover: true, breakMirror: true, preFailoverHook: { script: '   ' } },
      { name: 'x', automaticFailover: true, breakMirror: true, onPreHookFailure: 'maybe' },
      { name: 'x', automaticFailover: true, breakMirror: true, mirrorFailoverMode: 'fast' },
      null,
      'gold',
    ]
    for (const input of bad) await rejects(w.ns.createPolicy(input as never), 'E_INVALID_INPUT')
    await rejects(w.ns.updatePolicy({ name: 'silver', failuresBeforeInaccessible: -1 }), 'E_INVALID_INPUT')
    await rejects(w.ns.updatePolicy({ name: 'nope', breakMirror: true }), 'E_NOT_FOUND')
    expect((await w.ns.listPolicies()).map((x) => x.name)).toEqual(['silver'])
    expect(await w.ns.getPolicy({ name: 'silver' })).toEqual(p)
  })

  it('editing a policy applies to every link that uses it from the next probe on', async () => {
    const w = await protectedWorld()
    await w.ns.updatePolicy({ name: 'gold', failuresBeforeInaccessible: 1, automaticFailover: false })
    await w.raw['east']!.deleteShare('eng', { scope: 'namespace-test', value: 1 })
    await w.ns.probeNow()
    expect((await w.ns.get({ namespace: 'corp', path: '/eng' })).protection?.state).toBe('failoverRequired')
  })

  it('protect and unprotect reject bad input without changing anything', async () => {
    const w = await protectedWorld()
    const bad: unknown[] = [
      { namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1' },
      { namespace: 'corp', path: '/e:ng', policy: 'gold', mirrorId: 'm1', destinationShare: 'x' },
      { namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'a b' },
      { namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'x', primary: { site: 'east' } },
    ]
    for (const input of bad) await rejects(w.ns.protect(input as never), 'E_INVALID_INPUT')
    await rejects(w.ns.unprotect({ namespace: 'corp', path: '../eng' }), 'E_INVALID_INPUT')
    expect((await w.ns.get({ namespace: 'corp', path: '/eng' })).protection?.destination.share).toBe('eng_dr')
  })
})
