import assert from 'node:assert/strict'
import type { FenceToken } from '../kernel/fencing.js'
import type { StateStore } from '../kernel/state-store.js'
import { withAdapter, type AdapterFactory, type ConformanceCase } from './conformance.js'
import { rejectsWith } from './storage-conformance-support.js'

/**
 * What the fencing cases of the state store conformance suite need from a factory: `lease` takes the lease of a
 * scope for a store's coordinator (taking it over from any previous holder) and gives its token; `peer` opens a
 * second store on the same data, as another coordinator would. Stores that only one process writes (memory, file)
 * provide neither: their cases then use made-up, increasing tokens.
 *
 * @public
 */
export interface FencingFactory extends AdapterFactory<StateStore> {
  readonly lease?: (store: StateStore, scope: string) => Promise<FenceToken>
  readonly peer?: (store: StateStore) => Promise<StateStore>
}

const SCOPE = 'conformance/scope'
const record = (data: string) => ({ type: 't', data })

/** Made-up tokens of one scope, each higher than the last, for stores whose tokens need no lease behind them. */
function madeUpTokens(): (store: StateStore, scope: string) => Promise<FenceToken> {
  let value = 0
  return async (_store, scope) => ({ scope, value: ++value })
}

/** Every store: binding writes to a token, refusing a stale or malformed one. */
function bindingCase(factory: FencingFactory): ConformanceCase {
  const lease = factory.lease ?? madeUpTokens()
  return withAdapter(factory, 'fence binds writes to a token; a superseded token is refused with E_FENCED, a malformed one with E_INVALID_INPUT', async (store) => {
    const first = await lease(store, SCOPE)
    await store.fence(first)
    assert.equal(await store.append('s', 0, [record('first')]), 1)
    await store.saveSnapshot({ stream: 's', version: 1, state: 'first' })
    const second = await lease(store, SCOPE)
    assert.ok(second.value > first.value, 'a later lease has a higher token')
    await store.fence(second)
    await rejectsWith(store.fence(first), 'E_FENCED', 'fence with the superseded token')
    const bad = <T>(value: unknown): T => value as T
    await rejectsWith(store.fence(bad({ scope: SCOPE, value: -1 })), 'E_INVALID_INPUT', 'fence with a negative token')
    await rejectsWith(store.fence(bad({ value: 1 })), 'E_INVALID_INPUT', 'fence with a token without scope')
    await rejectsWith(store.fence(bad(null)), 'E_INVALID_INPUT', 'fence without a token')
    assert.equal(await store.append('s', 1, [record('second')]), 2, 'the current holder writes')
    await store.saveSnapshot({ stream: 's', version: 2, state: 'second' })
    assert.deepEqual((await store.read('s')).map((r) => r.data), ['first', 'second'])
    assert.deepEqual(await store.loadSnapshot('s'), { stream: 's', version: 2, state: 'second' })
  })
}

/** Shared stores: a deposed coordinator's writes are refused by the store itself. */
function deposedCase(factory: FencingFactory, lease: NonNullable<FencingFactory['lease']>, peer: NonNullable<FencingFactory['peer']>): ConformanceCase {
  return withAdapter(factory, 'refuses every write of a coordinator deposed from its scope with E_FENCED (not E_CONFLICT), writing nothing; reads go on', async (store) => {
    await store.fence(await lease(store, SCOPE))
    assert.equal(await store.append('s', 0, [record('old leader')]), 1)
    const other = await peer(store)
    try {
      await other.fence(await lease(other, SCOPE))
      await rejectsWith(store.append('s', 1, [record('late')]), 'E_FENCED', 'append at the current version by the deposed coordinator')
      await rejectsWith(store.append('s', 0, [record('late')]), 'E_FENCED', 'append at a stale version by the deposed coordinator')
      await rejectsWith(store.append('other', 0, [record('late')]), 'E_FENCED', 'append to a new stream by the deposed coordinator')
      await rejectsWith(store.saveSnapshot({ stream: 's', version: 1, state: 'late' }), 'E_FENCED', 'snapshot by the deposed coordinator')
      assert.deepEqual((await store.read('s')).map((r) => r.data), ['old leader'], 'the deposed coordinator still reads')
      assert.deepEqual(await other.listStreams(''), ['s'])
      assert.equal(await other.loadSnapshot('s'), undefined)
      assert.equal(await other.append('s', 1, [record('new leader')]), 2)
      assert.deepEqual((await other.read('s')).map((r) => r.data), ['old leader', 'new leader'])
    } finally {
      await factory.dispose(other)
    }
  })
}

/**
 * The fencing cases of the state store conformance suite: every store binds writes to a token and refuses a stale
 * one; a store that several coordinators share (the factory gives `lease` and `peer`) also refuses every write of a
 * coordinator once another one holds the scope.
 */
export function fencingCases(factory: FencingFactory): ConformanceCase[] {
  const { lease, peer } = factory
  return [bindingCase(factory), ...(lease === undefined || peer === undefined ? [] : [deposedCase(factory, lease, peer)])]
}
