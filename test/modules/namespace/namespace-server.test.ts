import { describe, expect, it } from 'vitest'
import { MemoryNamespaceServer } from '../../../src/adapters/memory/network.js'
import { rejects, serverTargets, token } from '../../fixtures/namespace-world.js'

const active = (site: string, share: string) => ({ site, share, state: 'active' as const })

async function seeded(): Promise<MemoryNamespaceServer> {
  const server = new MemoryNamespaceServer()
  await server.writeNamespace(
    {
      namespace: 'corp',
      version: 1,
      links: [
        { path: '/a', targets: [active('east', 'a')] },
        { path: '/b', targets: [active('east', 'b')] },
        { path: '/c', targets: [active('east', 'c')] },
      ],
    },
    token,
  )
  return server
}

describe('the memory namespace server: patches and privileges', () => {
  it('a patch sets and removes only the links it names, at the next version', async () => {
    const server = await seeded()
    await server.patchNamespace({ namespace: 'corp', version: 2, set: [{ path: '\\b', targets: [active('west', 'b_dr')] }, { path: '/d', targets: [active('east', 'd')] }], remove: ['/c', '/never'] }, token)
    expect((await server.readNamespace('corp')).version).toBe(2)
    expect(await serverTargets(server, 'corp')).toEqual({ '/a': ['east/a:active'], '/b': ['west/b_dr:active'], '/d': ['east/d:active'] })
    expect(await server.resolve('corp', '/b/x')).toEqual({ link: '/b', target: active('west', 'b_dr'), remainder: '/x' })
  })

  it('a stale version, a link without targets, a path named twice or a stale token is refused and changes nothing', async () => {
    const server = await seeded()
    const before = await server.readNamespace('corp')
    await rejects(server.patchNamespace({ namespace: 'corp', version: 3, set: [], remove: ['/a'] }, token), 'E_CONFLICT')
    await rejects(server.patchNamespace({ namespace: 'corp', version: 2, set: [{ path: '/a', targets: [] }], remove: ['/b'] }, token), 'E_PRECONDITION')
    await rejects(server.patchNamespace({ namespace: 'corp', version: 2, set: [{ path: '/a', targets: [active('east', 'x')] }], remove: ['/a'] }, token), 'E_INVALID_INPUT')
    await rejects(server.patchNamespace({ namespace: 'corp', version: 2, set: [], remove: [7] } as never, token), 'E_INVALID_INPUT')
    await server.presentToken({ ...token, value: token.value + 1 })
    await rejects(server.patchNamespace({ namespace: 'corp', version: 2, set: [], remove: ['/a'] }, token), 'E_FENCED')
    expect(await server.readNamespace('corp')).toEqual(before)
  })

  it('grants restrict who is referred through a link; a link without grants refers anyone', async () => {
    const server = await seeded()
    server.grant('corp', 'a', ['alice', 'bob'])
    expect((await server.resolve('corp', '/a/file', 'bob')).target).toEqual(active('east', 'a'))
    await rejects(server.resolve('corp', '/a/file', 'mallory'), 'E_PRECONDITION')
    await rejects(server.resolve('corp', '/a/file'), 'E_PRECONDITION')
    expect((await server.resolve('corp', '/b/file', 'mallory')).target).toEqual(active('east', 'b'))
    await rejects(server.resolve('corp', '/a', 'not a name'), 'E_INVALID_INPUT')
    expect(() => server.grant('corp', '/a', ['ok', ''])).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    server.grant('corp', '/a', null)
    expect((await server.resolve('corp', '/a/file')).link).toBe('/a')
  })
})
