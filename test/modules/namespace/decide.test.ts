import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import { produce } from 'immer'
import {
  decideBeginSwitch,
  decideCreateNamespace,
  decideCreateNode,
  decideCreatePolicy,
  decideProtect,
  decideSwitch,
  emptyNamespaceState,
  nodeAt,
  normaliseLogicalPath,
  normaliseTargets,
  reduceNamespaceState,
  resolveInState,
  thresholdTransition,
  type NamespaceJournalEvent,
  type NamespaceState,
  type Protection,
  type Target,
} from '../../../src/modules/namespace/index.js'

function fold(state: NamespaceState, events: readonly NamespaceJournalEvent[]): NamespaceState {
  return events.reduce((s, event) => produce(s, (draft) => reduceNamespaceState(draft, event)), state)
}

function must<A>(either: E.Either<Error, A>): A {
  if (E.isLeft(either)) throw either.left
  return either.right
}

const share = fc.record({ site: fc.constantFrom('east', 'west', 'north'), share: fc.constantFrom('a', 'b', 'c', 'd') })
const targets = fc.uniqueArray(share, { minLength: 1, maxLength: 4, selector: (t) => `${t.site}/${t.share}` }).chain((list) =>
  fc.tuple(fc.constant(list), fc.array(fc.constantFrom<'active' | 'standby'>('active', 'standby'), { minLength: list.length, maxLength: list.length })),
)

describe('namespace decisions (pure)', () => {
  it('a normalised target list is never empty and has exactly one active target', () => {
    fc.assert(
      fc.property(targets, ([list, states]) => {
        const normal = must(normaliseTargets(list.map((t, i) => ({ ...t, state: states[i] ?? 'standby' })), { namespace: 'n', path: '/l' }))
        expect(normal.length).toBe(list.length)
        expect(normal.filter((t) => t.state === 'active')).toHaveLength(1)
      }),
    )
    expect(E.isLeft(normaliseTargets([], { namespace: 'n', path: '/l' }))).toBe(true)
  })

  it('a switch never leaves a link without a target and makes the new share the only active one; switching twice changes nothing', () => {
    fc.assert(
      fc.property(targets, share, ([list], to) => {
        const from = list[0]!
        const initial: Target[] = list.map((t, i) => ({ ...t, state: i === 0 ? 'active' : 'standby' }))
        let state = fold(emptyNamespaceState, must(decideCreateNamespace(emptyNamespaceState, 'n', [{ path: '/l', targets: initial }], 0)))
        const events = must(decideSwitch(state, 'n', '/l', from, to, 'failingOver', 1))
        state = fold(state, events)
        const after = must(resolveInState(state, 'n', '/l'))
        expect(after.target).toEqual({ site: to.site, share: to.share, state: 'active' })
        const link = nodeAt(state, 'n', '/l')!
        expect(link.targets.length).toBeGreaterThan(0)
        expect(link.targets.filter((t) => t.state === 'active')).toHaveLength(1)
        if (from.site !== to.site || from.share !== to.share) expect(must(decideSwitch(state, 'n', '/l', from, to, 'failingOver', 2))).toEqual([])
      }),
    )
  })

  it('a failover begins once: a failed-over or failing-over link yields no events, a failing-back one is refused', () => {
    const protection: Protection = {
      policy: 'policy-1',
      mirrorId: 'm1',
      primary: { site: 'east', share: 'a', volume: 'v', path: '/', protocol: 'smb', access: ['read'] },
      destination: { site: 'west', share: 'a_dr', volume: 'v' },
      state: 'protected',
      since: 0,
      workflowId: null,
      lastError: null,
    }
    let state = fold(emptyNamespaceState, must(decideCreateNamespace(emptyNamespaceState, 'n', [{ path: '/l', targets: [{ site: 'east', share: 'a', state: 'active' }] }], 0)))
    state = fold(state, must(decideCreatePolicy(state, { name: 'gold', automaticFailover: true, breakMirror: true }, 0)))
    state = fold(state, must(decideProtect(state, 'n', '/l', protection)))
    const begin = must(decideBeginSwitch(state, 'n', '/l', 'failover', 'wf-1', 1))
    expect(begin).toHaveLength(1)
    state = fold(state, begin)
    expect(must(decideBeginSwitch(state, 'n', '/l', 'failover', 'wf-2', 2))).toEqual([])
    expect(E.isLeft(decideBeginSwitch(state, 'n', '/l', 'failback', 'wf-3', 2))).toBe(true)
  })

  it('nodes need an existing parent folder and a free place', () => {
    let state = fold(emptyNamespaceState, must(decideCreateNamespace(emptyNamespaceState, 'n', [], 0)))
    expect(E.isLeft(decideCreateNode(state, 'n', '/a/b', 'folder', [], 0))).toBe(true)
    state = fold(state, must(decideCreateNode(state, 'n', '/a', 'folder', [], 0)))
    expect(must(decideCreateNode(state, 'n', '/a/b', 'link', [{ site: 'east', share: 'x', state: 'standby' }], 0))).toHaveLength(1)
    expect(E.isLeft(decideCreateNode(state, 'n', '/a', 'folder', [], 0))).toBe(true)
  })

  it('logical paths normalise separators and refuse traversal and reserved characters', () => {
    expect(normaliseLogicalPath('\\eng\\src\\')).toBe('/eng/src')
    expect(normaliseLogicalPath('//eng//src')).toBe('/eng/src')
    expect(normaliseLogicalPath('/')).toBe('/')
    for (const bad of ['/a/../b', '/a/./b', '/a:b', '/a*', '/a\u0001', `/${'x'.repeat(256)}`]) expect(normaliseLogicalPath(bad)).toBeUndefined()
  })

  it('a threshold is exceeded strictly above its limit, once per crossing', () => {
    expect(thresholdTransition({ above: 50 }, 50, false)).toBe('unchanged')
    expect(thresholdTransition({ above: 50 }, 50.01, false)).toBe('exceeded')
    expect(thresholdTransition({ above: 50 }, 70, true)).toBe('unchanged')
    expect(thresholdTransition({ above: 50 }, 50, true)).toBe('recovered')
  })
})
