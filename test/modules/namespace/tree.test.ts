import { describe, expect, it } from 'vitest'
import { DrError } from '../../../src/kernel/index.js'
import type { NamespaceServer, Referral } from '../../../src/ports/network.js'
import { namespaceDurable, openNamespace, serverTargets, token, rejects } from '../../fixtures/namespace-world.js'

async function world() {
  const w = await openNamespace(await namespaceDurable())
  await w.ns.createNamespace({ namespace: 'corp' })
  return w
}

/** A client of the namespace server whose referrals the domain controller (PDC) checks against grants by link. */
function pdcClient(server: NamespaceServer, principal: string, grants: Record<string, readonly string[]>) {
  return {
    async resolve(namespace: string, path: string): Promise<Referral> {
      const referral = await server.resolve(namespace, path)
      if (!(grants[referral.link] ?? []).includes(principal)) {
        throw new DrError('E_PRECONDITION', `access denied: ${principal} has no rights on ${referral.link}`, { principal, link: referral.link })
      }
      return referral
    },
  }
}

describe('logical namespace', () => {
  it('behaviour 20: an edit of drkit\'s copy is pushed to the namespace server and a later read from the server shows it', async () => {
    const w = await world()
    await w.ns.createFolder({ namespace: 'corp', path: '/dept' })
    await w.ns.createLink({ namespace: 'corp', path: '/dept/eng', targets: [{ site: 'east', share: 'eng' }] })
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/dept/eng': ['east/eng:active'] })
    await w.ns.addTarget({ namespace: 'corp', path: '/dept/eng', site: 'west', share: 'eng_copy' })
    await w.ns.rename({ namespace: 'corp', path: '/dept', name: 'division' })
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/division/eng': ['east/eng:active', 'west/eng_copy:standby'] })
    await w.ns.addTarget({ namespace: 'corp', path: '/division/eng', site: 'east', share: 'ops', state: 'active' })
    await w.ns.removeTarget({ namespace: 'corp', path: '/division/eng', site: 'east', share: 'eng' })
    await w.ns.move({ namespace: 'corp', from: '/division/eng', to: '/eng' })
    expect(await serverTargets(w.server, 'corp')).toEqual({ '/eng': ['east/ops:active', 'west/eng_copy:standby'] })
    expect(await w.ns.resolve({ namespace: 'corp', path: '/eng/a/b.txt' })).toEqual({ link: '/eng', target: { site: 'east', share: 'ops', state: 'active' }, remainder: '/a/b.txt' })
    await w.ns.delete({ namespace: 'corp', path: '/division' })
    await w.ns.delete({ namespace: 'corp', path: '/eng' })
    expect(await serverTargets(w.server, 'corp')).toEqual({})
    expect(w.names('namespace.pushed').length).toBeGreaterThan(0)
  })

  it('adopts the links a namespace server already has, and repairs drift with push', async () => {
    const d = await namespaceDurable()
    await d.server.writeNamespace({ namespace: 'corp', version: 1, links: [{ path: '/legacy', targets: [{ site: 'east', share: 'ops', state: 'active' }] }] }, token)
    const w = await openNamespace(d)
    const nodes = await w.ns.createNamespace({ namespace: 'corp' })
    expect(nodes.map((n) => [n.path, n.kind])).toEqual([['/legacy', 'link']])
    await rejects(w.ns.createNamespace({ namespace: 'corp' }), 'E_CONFLICT')
    await d.server.writeNamespace({ namespace: 'corp', version: 2, links: [] }, token)
    const { version } = await w.ns.push({ namespace: 'corp' })
    expect(version).toBe(3)
    expect(await serverTargets(d.server, 'corp')).toEqual({ '/legacy': ['east/ops:active'] })
  })

  it('keeps the tree consistent: parents must exist, links hold no children, folders delete only when empty, a link keeps a target', async () => {
    const w = await world()
    await rejects(w.ns.createFolder({ namespace: 'corp', path: '/a/b' }), 'E_NOT_FOUND')
    await w.ns.createFolder({ namespace: 'corp', path: '/a' })
    await rejects(w.ns.createFolder({ namespace: 'corp', path: '/a' }), 'E_CONFLICT')
    await w.ns.createLink({ namespace: 'corp', path: '/a/l', targets: [{ site: 'east', share: 'eng' }] })
    await rejects(w.ns.createFolder({ namespace: 'corp', path: '/a/l/x' }), 'E_PRECONDITION')
    await rejects(w.ns.delete({ namespace: 'corp', path: '/a' }), 'E_PRECONDITION')
    await rejects(w.ns.removeTarget({ namespace: 'corp', path: '/a/l', site: 'east', share: 'eng' }), 'E_PRECONDITION')
    await rejects(w.ns.addTarget({ namespace: 'corp', path: '/a/l', site: 'east', share: 'eng' }), 'E_CONFLICT')
    await rejects(w.ns.move({ namespace: 'corp', from: '/a', to: '/a/inner' }), 'E_PRECONDITION')
    await rejects(w.ns.get({ namespace: 'corp', path: '/nothing' }), 'E_NOT_FOUND')
    await rejects(w.ns.list({ namespace: 'other' }), 'E_NOT_FOUND')
    await rejects(w.ns.createLink({ namespace: 'other', path: '/x', targets: [{ site: 'east', share: 'eng' }] }), 'E_NOT_FOUND')
    await rejects(w.ns.resolve({ namespace: 'corp', path: '/nowhere' }), 'E_NOT_FOUND')
    expect((await w.ns.list({ namespace: 'corp' })).map((n) => n.path)).toEqual(['/a', '/a/l'])
  })

  it('rejects bad input with E_INVALID_INPUT and changes nothing', async () => {
    const w = await world()
    const before = await serverTargets(w.server, 'corp')
    await rejects(w.ns.createLink({ namespace: 'corp', path: '/x', targets: [] }), 'E_INVALID_INPUT')
    await rejects(w.ns.createLink({ namespace: 'corp', path: '/x/../y', targets: [{ site: 'east', share: 'eng' }] }), 'E_INVALID_INPUT')
    await rejects(w.ns.createLink({ namespace: 'corp', path: '/x', targets: [{ site: 'east', share: 'eng', state: 'primary' as never }] }), 'E_INVALID_INPUT')
    await rejects(w.ns.createFolder({ namespace: 'corp', path: '/a|b' }), 'E_INVALID_INPUT')
    await rejects(w.ns.createFolder({ namespace: 'c orp', path: '/a' }), 'E_INVALID_INPUT')
    await rejects(w.ns.rename({ namespace: 'corp', path: '/a', name: 'b/c' }), 'E_INVALID_INPUT')
    await rejects(w.ns.move({ namespace: 'corp', from: '/a' } as never), 'E_INVALID_INPUT')
    await rejects(w.ns.addTarget({ namespace: 'corp', path: '/a', site: '', share: 'x' }), 'E_INVALID_INPUT')
    await rejects(w.ns.history({ limit: 0 }), 'E_INVALID_INPUT')
    await rejects(w.ns.createNamespace({ namespace: 7 } as never), 'E_INVALID_INPUT')
    expect(await w.ns.list({ namespace: 'corp' })).toEqual([])
    expect(await serverTargets(w.server, 'corp')).toEqual(before)
  })

  it('behaviour 25: a client without privileges for a link is denied the referral by the domain controller; one with them is referred', async () => {
    const w = await world()
    await w.ns.createLink({ namespace: 'corp', path: '/eng', targets: [{ site: 'east', share: 'eng' }] })
    const grants = { '/eng': ['alice'] }
    await rejects(pdcClient(w.server, 'mallory', grants).resolve('corp', '/eng/plans.doc'), 'E_PRECONDITION')
    expect((await pdcClient(w.server, 'alice', grants).resolve('corp', '/eng/plans.doc')).target).toMatchObject({ site: 'east', share: 'eng' })
    await w.ns.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: false })
    await w.ns.protect({ namespace: 'corp', path: '/eng', policy: 'gold', mirrorId: 'm1', destinationShare: 'eng_dr' })
    await w.ns.failover({ namespace: 'corp', path: '/eng' })
    await rejects(pdcClient(w.server, 'mallory', grants).resolve('corp', '/eng/plans.doc'), 'E_PRECONDITION')
    expect((await pdcClient(w.server, 'alice', grants).resolve('corp', '/eng/plans.doc')).target).toMatchObject({ site: 'west', share: 'eng_dr' })
  })

  it('state survives a restart: the catalog is the fold of the journal', async () => {
    const w = await world()
    await w.ns.createFolder({ namespace: 'corp', path: '/a' })
    await w.ns.createLink({ namespace: 'corp', path: '/a/l', targets: [{ site: 'east', share: 'eng' }] })
    const again = await openNamespace(w)
    expect(await again.ns.list({ namespace: 'corp' })).toEqual(await w.ns.list({ namespace: 'corp' }))
  })
})
