import { describe, expect, it } from 'vitest'
import { isDrError } from '../../../src/kernel/index.js'
import { NamespaceFacade } from '../../../src/modules/namespace/index.js'
import { NAMESPACE_STREAM } from '../../../src/modules/namespace/catalog.js'
import { protectedWorld, settled } from '../../fixtures/namespace-world.js'

type World = Awaited<ReturnType<typeof protectedWorld>>

/** Methods that take no options at all. */
const NO_OPTIONS = new Set(['listPolicies', 'listThresholds', 'idle', 'recover'])

/** For every facade method that takes options: a bad options object and the field its message must name. */
const BAD: Record<string, { readonly input: unknown; readonly field: string }> = {
  createNamespace: { input: { namespace: 7 }, field: 'namespace' },
  list: { input: { namespace: '' }, field: 'namespace' },
  get: { input: { namespace: 'corp', path: '/a/../b' }, field: 'path' },
  createFolder: { input: { namespace: 'corp', path: '/a|b' }, field: 'path' },
  createLink: { input: { namespace: 'corp', path: '/x', targets: [] }, field: 'targets' },
  rename: { input: { namespace: 'corp', path: '/eng', name: 'b/c' }, field: 'name' },
  move: { input: { namespace: 'corp', from: '/eng' }, field: 'to' },
  delete: { input: { namespace: 'corp', path: 42 }, field: 'path' },
  addTarget: { input: { namespace: 'corp', path: '/plain', site: '', share: 'x' }, field: 'site' },
  removeTarget: { input: { namespace: 'corp', path: '/plain', site: 'east' }, field: 'share' },
  resolve: { input: { namespace: 'corp', path: '/eng', principal: '' }, field: 'principal' },
  push: { input: { namespace: null }, field: 'namespace' },
  createPolicy: { input: { name: 'x', automaticFailover: 'yes', breakMirror: true }, field: 'automaticFailover' },
  updatePolicy: { input: { name: 'gold', failuresBeforeInaccessible: 0 }, field: 'failuresBeforeInaccessible' },
  deletePolicy: { input: { name: '' }, field: 'name' },
  getPolicy: { input: {}, field: 'name' },
  protect: { input: { namespace: 'corp', path: '/plain', policy: 'gold', mirrorId: 'm1' }, field: 'destinationShare' },
  unprotect: { input: { namespace: 'corp', path: '../eng' }, field: 'path' },
  failover: { input: { namespace: 'corp', path: '/eng', signal: 'stop' }, field: 'signal' },
  failback: { input: { namespace: 'corp' }, field: 'path' },
  reportInaccessible: { input: { site: 'east' }, field: 'share' },
  probeNow: { input: { all: 'yes' }, field: 'all' },
  addThreshold: { input: { name: 't', site: 'east', metric: 'usedPercent', above: 101, severity: 'warning' }, field: 'above' },
  removeThreshold: { input: { name: 3 }, field: 'name' },
  history: { input: { since: Number.NaN }, field: 'since' },
}

/** Everything a call could change: the catalog journal, the namespace server, the shares, the mirrors, the history. */
async function snapshot(w: World) {
  await w.module.facade.idle()
  return {
    catalog: await w.stateStore.version(NAMESPACE_STREAM),
    server: await w.server.readNamespace('corp'),
    shares: { east: await w.raw['east']!.listShares(), west: await w.raw['west']!.listShares() },
    mirrors: structuredClone(w.mirrors.failovers),
    events: w.seen.length,
  }
}

async function world(): Promise<World> {
  const w = await protectedWorld()
  await w.ns.createLink({ namespace: 'corp', path: '/plain', targets: [{ site: 'east', share: 'ops' }] })
  await w.ns.addThreshold({ name: 'space', site: 'east', metric: 'usedPercent', above: 90, severity: 'warning' })
  return w
}

describe('bad input to every dr.namespace method', () => {
  it('the table covers every method of the facade that takes options', () => {
    const methods = Object.getOwnPropertyNames(NamespaceFacade.prototype).filter((name) => name !== 'constructor' && !NO_OPTIONS.has(name))
    expect(methods.sort()).toEqual(Object.keys(BAD).sort())
  })

  for (const [method, { input, field }] of Object.entries(BAD)) {
    it(`${method}: rejects bad options and null with E_INVALID_INPUT naming the field, changing nothing`, async () => {
      const w = await world()
      const before = await snapshot(w)
      const call = (options: unknown): Promise<unknown> => (w.ns as unknown as Record<string, (o: unknown) => Promise<unknown>>)[method]!(options)
      for (const [bad, named] of [
        [input, `"${field}"`],
        [null, '(root)'],
      ] as const) {
        const error = await settled(call(bad))
        expect(isDrError(error, 'E_INVALID_INPUT'), `${method}(${JSON.stringify(bad)}) → ${String(error)}`).toBe(true)
        expect((error as Error).message).toContain(named)
      }
      expect(await snapshot(w)).toEqual(before)
    })
  }
})
