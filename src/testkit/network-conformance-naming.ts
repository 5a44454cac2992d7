import assert from 'node:assert/strict'
import type { LinkTarget, NamespaceDocument } from '../ports/network.js'
import { failsWith } from './assertions.js'
import { withAdapter, type AdapterFactory, type ConformanceCase } from './conformance.js'
import type { NetworkConformanceTarget } from './network-conformance.js'

/** The namespace-server cases of the network conformance suite: versioned documents and patches, referrals, fencing. */
export function namespaceCases(factory: AdapterFactory<NetworkConformanceTarget>): ConformanceCase[] {
  const token = { scope: 'conformance-namespace', value: 5 }
  const target = (site: string, share: string, state: LinkTarget['state']): LinkTarget => ({ site, share, state })
  const tree = (t: NetworkConformanceTarget, version: number): NamespaceDocument => ({
    namespace: 'corp',
    version,
    links: [
      { path: '/data', targets: [target(t.a.site, 'data-a', 'standby'), target(t.b.site, 'data-b', 'active')] },
      { path: '/data/projects', targets: [target(t.a.site, 'projects', 'active')] },
      { path: '/archive', targets: [target(t.b.site, 'archive', 'standby')] },
    ],
  })
  return [
    withAdapter(factory, 'namespace server: an unknown namespace reads as empty at version 0; writes succeed only at version + 1 (E_CONFLICT otherwise)', async (t) => {
      const server = t.a.namespaceServer
      assert.deepEqual(await server.readNamespace('corp'), { namespace: 'corp', version: 0, links: [] })
      await server.writeNamespace(tree(t, 1), token)
      const read = await server.readNamespace('corp')
      assert.equal(read.version, 1)
      assert.deepEqual(read.links.map((link) => link.path), ['/data', '/data/projects', '/archive'])
      assert.deepEqual(read.links[0]?.targets, tree(t, 1).links[0]?.targets)
      await assert.rejects(server.writeNamespace(tree(t, 1), token), failsWith('E_CONFLICT'))
      await assert.rejects(server.writeNamespace(tree(t, 3), token), failsWith('E_CONFLICT'))
      await server.writeNamespace({ namespace: 'corp', version: 2, links: [] }, token)
      assert.deepEqual(await server.readNamespace('corp'), { namespace: 'corp', version: 2, links: [] })
    }),

    withAdapter(factory, 'namespace server: a document with a link that has no target is refused with E_PRECONDITION and nothing changes', async (t) => {
      const server = t.a.namespaceServer
      await server.writeNamespace(tree(t, 1), token)
      const bare = { ...tree(t, 2), links: [...tree(t, 2).links, { path: '/empty', targets: [] }] }
      await assert.rejects(server.writeNamespace(bare, token), failsWith('E_PRECONDITION'))
      assert.equal((await server.readNamespace('corp')).version, 1)
    }),

    withAdapter(factory, 'namespace server: resolve refers a path to the first active target of the longest matching link, with the remainder', async (t) => {
      const server = t.a.namespaceServer
      await server.writeNamespace(tree(t, 1), token)
      assert.deepEqual(await server.resolve('corp', '/data/projects/x/y.txt'), {
        link: '/data/projects',
        target: target(t.a.site, 'projects', 'active'),
        remainder: '/x/y.txt',
      })
      assert.deepEqual(await server.resolve('corp', '/data/other'), {
        link: '/data',
        target: target(t.b.site, 'data-b', 'active'),
        remainder: '/other',
      })
      assert.equal((await server.resolve('corp', '/data')).remainder, '')
      assert.equal((await server.resolve('corp', 'data//projects/')).link, '/data/projects', 'paths are normalised')
    }),

    withAdapter(factory, 'namespace server: resolve without a covering link or an active target rejects with E_NOT_FOUND', async (t) => {
      const server = t.a.namespaceServer
      await assert.rejects(server.resolve('corp', '/data'), failsWith('E_NOT_FOUND'))
      await server.writeNamespace(tree(t, 1), token)
      await assert.rejects(server.resolve('corp', '/dataset'), failsWith('E_NOT_FOUND'), 'a link covers whole path segments only')
      await assert.rejects(server.resolve('corp', '/archive/2025'), failsWith('E_NOT_FOUND'), 'standby targets are not referred to')
      await assert.rejects(server.resolve('other', '/data'), failsWith('E_NOT_FOUND'))
    }),

    withAdapter(factory, 'namespace server: a patch sets and removes only the links it names, at version + 1 (E_CONFLICT otherwise)', async (t) => {
      const server = t.a.namespaceServer
      await server.writeNamespace(tree(t, 1), token)
      const moved = { path: '/data', targets: [target(t.a.site, 'data-a', 'active'), target(t.b.site, 'data-b', 'standby')] }
      await server.patchNamespace({ namespace: 'corp', version: 2, set: [moved, { path: '/new', targets: [target(t.b.site, 'new', 'active')] }], remove: ['/archive', '/absent'] }, token)
      const read = await server.readNamespace('corp')
      assert.equal(read.version, 2)
      const byPath = new Map(read.links.map((link) => [link.path, link.targets]))
      assert.deepEqual([...byPath.keys()].sort(), ['/data', '/data/projects', '/new'])
      assert.deepEqual(byPath.get('/data'), moved.targets)
      assert.deepEqual(byPath.get('/data/projects'), tree(t, 1).links[1]?.targets, 'a link the patch does not name is unchanged')
      assert.equal((await server.resolve('corp', '/data/x')).target.share, 'data-a')
      await assert.rejects(server.patchNamespace({ namespace: 'corp', version: 2, set: [], remove: ['/new'] }, token), failsWith('E_CONFLICT'))
      await assert.rejects(server.patchNamespace({ namespace: 'corp', version: 4, set: [], remove: ['/new'] }, token), failsWith('E_CONFLICT'))
      assert.deepEqual(await server.readNamespace('corp'), read, 'a refused patch changes nothing')
    }),

    withAdapter(factory, 'namespace server: a patch that leaves a link with no target, or carries a stale token, is refused and changes nothing', async (t) => {
      const server = t.a.namespaceServer
      await server.writeNamespace(tree(t, 1), token)
      const before = await server.readNamespace('corp')
      await assert.rejects(server.patchNamespace({ namespace: 'corp', version: 2, set: [{ path: '/data', targets: [] }], remove: [] }, token), failsWith('E_PRECONDITION'))
      await assert.rejects(server.patchNamespace({ namespace: 'corp', version: 2, set: [], remove: ['/archive'] }, { ...token, value: 4 }), failsWith('E_FENCED'))
      assert.deepEqual(await server.readNamespace('corp'), before)
    }),

    withAdapter(factory, 'namespace server: a stale fence token is refused with E_FENCED and nothing changes', async (t) => {
      const server = t.a.namespaceServer
      await server.writeNamespace(tree(t, 1), token)
      await assert.rejects(server.writeNamespace(tree(t, 2), { ...token, value: 4 }), failsWith('E_FENCED'))
      assert.equal((await server.readNamespace('corp')).version, 1)
      await server.writeNamespace(tree(t, 2), { ...token, value: 6 })
      await assert.rejects(server.writeNamespace(tree(t, 3), token), failsWith('E_FENCED'))
      await server.writeNamespace(tree(t, 3), { scope: 'conformance-other-scope', value: 1 })
      assert.equal((await server.readNamespace('corp')).version, 3)
    }),
  ]
}

/** The identity-registry cases of the network conformance suite, and the presentation of a token through a port. */
export function identityCases(factory: AdapterFactory<NetworkConformanceTarget>): ConformanceCase[] {
  const token = { scope: 'conformance-identity', value: 5 }
  return [
    withAdapter(factory, 'identity registry: claims move an address between sites idempotently; only the holder releases it', async (t) => {
      const identity = t.a.identity
      const address = '10.0.0.10'
      assert.equal(await identity.addressOwner(address), undefined)
      await identity.claimAddress(address, t.a.site, token)
      await identity.claimAddress(address, t.a.site, token)
      assert.equal(await identity.addressOwner(address), t.a.site)
      await identity.claimAddress(address, t.b.site, token)
      assert.equal(await identity.addressOwner(address), t.b.site)
      await identity.releaseAddress(address, t.a.site, token)
      assert.equal(await identity.addressOwner(address), t.b.site, 'a site that does not hold the address cannot release it')
      await identity.releaseAddress(address, t.b.site, token)
      await identity.releaseAddress(address, t.b.site, token)
      assert.equal(await identity.addressOwner(address), undefined)
    }),

    withAdapter(factory, 'identity registry: name records are set, moved, read and deleted idempotently', async (t) => {
      const identity = t.a.identity
      assert.equal(await identity.getNameRecord('db.example.test'), undefined)
      await identity.setNameRecord('db.example.test', '10.0.0.10', token)
      assert.equal(await identity.getNameRecord('db.example.test'), '10.0.0.10')
      await identity.setNameRecord('db.example.test', '10.0.1.10', token)
      assert.equal(await identity.getNameRecord('db.example.test'), '10.0.1.10')
      await identity.deleteNameRecord('db.example.test', token)
      await identity.deleteNameRecord('db.example.test', token)
      assert.equal(await identity.getNameRecord('db.example.test'), undefined)
    }),

    withAdapter(factory, 'identity registry: every write with a stale fence token is refused with E_FENCED and nothing changes', async (t) => {
      const identity = t.a.identity
      const stale = { ...token, value: 4 }
      await identity.claimAddress('10.0.0.10', t.a.site, token)
      await identity.setNameRecord('db.example.test', '10.0.0.10', token)
      await assert.rejects(identity.claimAddress('10.0.0.10', t.b.site, stale), failsWith('E_FENCED'))
      await assert.rejects(identity.claimAddress('10.0.0.11', t.b.site, stale), failsWith('E_FENCED'))
      await assert.rejects(identity.releaseAddress('10.0.0.10', t.a.site, stale), failsWith('E_FENCED'))
      await assert.rejects(identity.setNameRecord('db.example.test', '10.0.0.11', stale), failsWith('E_FENCED'))
      await assert.rejects(identity.deleteNameRecord('db.example.test', stale), failsWith('E_FENCED'))
      assert.equal(await identity.addressOwner('10.0.0.10'), t.a.site)
      assert.equal(await identity.addressOwner('10.0.0.11'), undefined)
      assert.equal(await identity.getNameRecord('db.example.test'), '10.0.0.10')
    }),

    withAdapter(factory, "presentToken on a port fences its namespace server and identity registry at once; a stale presentation is refused", async (t) => {
      const newer = { ...token, value: token.value + 1 }
      await t.a.identity.claimAddress('10.0.0.10', t.a.site, token)
      await t.a.namespaceServer.writeNamespace({ namespace: 'corp', version: 1, links: [] }, token)
      await t.b.presentToken(newer)
      assert.equal(await t.a.identity.addressOwner('10.0.0.10'), t.a.site, 'presentToken changed no identity')
      assert.equal((await t.a.namespaceServer.readNamespace('corp')).version, 1, 'presentToken changed no namespace')
      await assert.rejects(t.a.identity.claimAddress('10.0.0.10', t.b.site, token), failsWith('E_FENCED'))
      await assert.rejects(t.a.namespaceServer.writeNamespace({ namespace: 'corp', version: 2, links: [] }, token), failsWith('E_FENCED'))
      await assert.rejects(t.b.presentToken(token), failsWith('E_FENCED'))
      await t.a.identity.claimAddress('10.0.0.10', t.b.site, newer)
      assert.equal(await t.a.identity.addressOwner('10.0.0.10'), t.b.site)
    }),
  ]
}
