import { describe, expect, it } from 'vitest'
import * as t from 'io-ts'
import * as E from 'fp-ts/lib/Either.js'
import { DrError, JournaledStore, Store } from '../../src/kernel/index.js'
import { memoryStateStore } from '../../src/kernel/memory-state-store.js'

const CounterEvent = t.union([
  t.type({ type: t.literal('added'), data: t.type({ amount: t.number }) }),
  t.type({ type: t.literal('reset'), data: t.null }),
])
type CounterEvent = t.TypeOf<typeof CounterEvent>
interface Counter {
  total: number
  history: number[]
}
const Counter = t.type({ total: t.number, history: t.array(t.number) })
const reducer = (draft: Counter, event: CounterEvent) => {
  if (event.type === 'added') {
    draft.total += event.data.amount
    draft.history.push(event.data.amount)
  } else {
    draft.total = 0
    draft.history = []
  }
}
const open = (stateStore = memoryStateStore(), snapshotEvery?: number) =>
  JournaledStore.open<Counter, CounterEvent>({
    stateStore,
    stream: 'counter',
    initial: { total: 0, history: [] },
    reducer,
    eventCodec: CounterEvent,
    stateCodec: Counter,
    ...(snapshotEvery === undefined ? {} : { snapshotEvery }),
  })

describe('Store (immer)', () => {
  it('folds events into frozen state, returns patches and notifies subscribers', () => {
    const store = new Store<Counter, CounterEvent>({ total: 0, history: [] }, reducer)
    const seen: number[] = []
    store.subscribe((state) => seen.push(state.total))
    const before = store.state
    const patches = store.apply({ type: 'added', data: { amount: 3 } })
    expect(before.total).toBe(0)
    expect(store.state.total).toBe(3)
    expect(patches.length).toBeGreaterThan(0)
    expect(Object.isFrozen(store.state)).toBe(true)
    expect(seen).toEqual([3])
  })
})

describe('JournaledStore', () => {
  it('journals events before they are visible and rebuilds state by replay', async () => {
    const stateStore = memoryStateStore()
    const store = await open(stateStore)
    await store.commit([{ type: 'added', data: { amount: 2 } }, { type: 'added', data: { amount: 5 } }])
    expect(store.state.total).toBe(7)
    const reopened = await open(stateStore)
    expect(reopened.state).toEqual({ total: 7, history: [2, 5] })
    expect(reopened.version).toBe(2)
  })

  it('runs pure decisions and refuses with the decision error, changing nothing', async () => {
    const store = await open()
    const decide = (amount: number) => (state: Counter) =>
      state.total + amount > 10 ? E.left(new DrError('E_PRECONDITION', 'over the limit')) : E.right([{ type: 'added' as const, data: { amount } }])
    await store.execute(decide(6))
    await expect(store.execute(decide(6))).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    expect(store.state.total).toBe(6)
    expect(store.version).toBe(1)
  })

  it('runs 200 concurrent decisions of one process one after another: none conflicts, each sees the one before', async () => {
    const store = await open()
    const seen: number[] = []
    const decisions = Array.from({ length: 200 }, () =>
      store.execute((state) => {
        seen.push(state.total)
        return E.right([{ type: 'added' as const, data: { amount: 1 } }])
      }, 1),
    )
    await Promise.all(decisions)
    expect(store.state.total).toBe(200)
    expect(seen).toEqual(Array.from({ length: 200 }, (_, n) => n))
    expect(store.version).toBe(200)
  })

  it('rejects a stale commit with E_CONFLICT, and execute() catches up and decides again', async () => {
    const stateStore = memoryStateStore()
    const a = await open(stateStore)
    const b = await open(stateStore)
    await a.commit([{ type: 'added', data: { amount: 1 } }])
    await expect(b.commit([{ type: 'added', data: { amount: 1 } }])).rejects.toMatchObject({ code: 'E_CONFLICT' })
    expect(b.state.total).toBe(0)
    await b.execute((state) => E.right([{ type: 'added', data: { amount: state.total + 10 } }]))
    expect(b.state.total).toBe(12)
  })

  it('saves state snapshots and replays only what came after', async () => {
    const stateStore = memoryStateStore()
    const store = await open(stateStore, 2)
    for (let i = 1; i <= 5; i++) await store.commit([{ type: 'added', data: { amount: i } }])
    const saved = await stateStore.loadSnapshot('counter')
    expect(saved?.version).toBe(4)
    const reopened = await open(stateStore, 2)
    expect(reopened.state.total).toBe(15)
  })

  it('detects a damaged journal or saved state with E_CORRUPT', async () => {
    const stateStore = memoryStateStore()
    await stateStore.append('counter', 0, [{ type: 'added', data: { amount: 'three' } }])
    await expect(open(stateStore)).rejects.toMatchObject({ code: 'E_CORRUPT' })
    const other = memoryStateStore()
    await other.saveSnapshot({ stream: 'counter', version: 1, state: { total: 'x' } })
    await expect(open(other)).rejects.toMatchObject({ code: 'E_CORRUPT' })
  })
})
