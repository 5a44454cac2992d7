import { describe, expect, it } from 'vitest'
import * as t from 'io-ts'
import * as E from 'fp-ts/lib/Either.js'
import { DrError, JournaledStore, Store } from '../../src/kernel/index.js'
import { memoryStateStore } from '../../src/kernel/memory-state-store.js'
import type { StateStore } from '../../src/kernel/state-store.js'
import { injectFaults } from '../../src/testkit/faults.js'

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
const open = (stateStore: StateStore = memoryStateStore(), snapshotEvery?: number, sharedDraft = false) =>
  JournaledStore.open<Counter, CounterEvent>({
    stateStore,
    stream: 'counter',
    initial: { total: 0, history: [] },
    reducer,
    eventCodec: CounterEvent,
    stateCodec: Counter,
    sharedDraft,
    ...(snapshotEvery === undefined ? {} : { snapshotEvery }),
  })

/** A decision adding `amount`, refused once the total would pass `limit`; records the total it saw. */
const add = (amount: number, seen: number[] = [], limit = Number.POSITIVE_INFINITY) => (state: Counter) => {
  seen.push(state.total)
  return state.total + amount > limit ? E.left(new DrError('E_PRECONDITION', 'over the limit')) : E.right([{ type: 'added' as const, data: { amount } }])
}

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

  for (const sharedDraft of [false, true]) {
    describe(sharedDraft ? 'group commit, decisions sharing one draft' : 'group commit', () => {
      it('folds the decisions queued while an append is in flight into one append; each caller gets its own events and sees the ones before', async () => {
        const faults = injectFaults<StateStore>(memoryStateStore(), { name: 'state' })
        const store = await open(faults.port, undefined, sharedDraft)
        const seen: number[] = []
        const committed: number[] = []
        store.onCommitted((events) => committed.push(events.length))
        const results = await Promise.all(Array.from({ length: 100 }, (_, i) => store.execute(add(i + 1, seen))))
        expect(results.map((events) => events[0]?.data)).toEqual(Array.from({ length: 100 }, (_, i) => ({ amount: i + 1 })))
        expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => (i * (i + 1)) / 2))
        expect(store.state.total).toBe(5050)
        expect(store.version).toBe(100)
        expect(faults.count('append')).toBeLessThan(100)
        expect(committed.reduce((a, b) => a + b, 0)).toBe(100)
        expect((await open(faults.port)).state).toEqual(store.state)
      })

      it('a refused decision fails alone; the others of its batch commit', async () => {
        const store = await open(memoryStateStore(), undefined, sharedDraft)
        const outcomes = await Promise.allSettled([store.execute(add(4, [], 10)), store.execute(add(7, [], 10)), store.execute(add(6, [], 10))])
        expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
        expect(outcomes[1]).toMatchObject({ reason: { code: 'E_PRECONDITION' } })
        expect(store.state).toEqual({ total: 10, history: [4, 6] })
      })

      it('a failed append rejects every decision of its batch and changes no state; later decisions commit', async () => {
        const faults = injectFaults<StateStore>(memoryStateStore(), { name: 'state' })
        const store = await open(faults.port, undefined, sharedDraft)
        await store.execute(add(1))
        faults.fail({ method: 'append', times: 1 })
        const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => store.execute(add(1))))
        expect(outcomes.every((o) => o.status === 'rejected' && (o.reason as DrError).code === 'E_ADAPTER')).toBe(true)
        expect(store.state).toEqual({ total: 1, history: [1] })
        expect(store.version).toBe(1)
        await store.execute(add(2))
        expect((await open(faults.port)).state).toEqual({ total: 3, history: [1, 2] })
      })

      it('after another writer appended, the whole batch catches up and is decided again', async () => {
        const stateStore = memoryStateStore()
        const a = await open(stateStore, undefined, sharedDraft)
        const b = await open(stateStore, undefined, sharedDraft)
        await a.execute(add(100))
        const seen: number[] = []
        await Promise.all([b.execute(add(1, seen)), b.execute(add(2, seen))])
        expect(seen).toEqual([0, 1, 100, 101])
        expect(b.state.total).toBe(103)
        expect(b.version).toBe(3)
      })
    })
  }

  it('a reducer that throws fails only the decision whose events it folds, even in a shared draft, and nothing of it is journaled', async () => {
    const stateStore = memoryStateStore()
    const store = await JournaledStore.open<Counter, CounterEvent>({
      stateStore,
      stream: 'counter',
      initial: { total: 0, history: [] },
      reducer: (draft, event) => {
        if (event.type === 'added' && event.data.amount < 0) throw new DrError('E_INTERNAL', 'negative')
        reducer(draft, event)
      },
      eventCodec: CounterEvent,
      sharedDraft: true,
    })
    const outcomes = await Promise.allSettled([store.execute(add(1)), store.execute(add(-1)), store.execute(add(2))])
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(store.state).toEqual({ total: 3, history: [1, 2] })
    await expect(store.commit([{ type: 'added', data: { amount: -5 } }])).rejects.toMatchObject({ code: 'E_INTERNAL' })
    expect((await stateStore.read('counter')).map((r) => r.data)).toEqual([{ amount: 1 }, { amount: 2 }])
  })

  it('computes patches only for subscribers that take them; commit listeners get each append once', async () => {
    const store = await open()
    const commits: Array<readonly CounterEvent[]> = []
    store.onCommitted((events) => commits.push(events))
    await Promise.all([store.execute(add(1)), store.execute(add(2))])
    const steps: Array<{ total: number; patches: number }> = []
    const stop = store.subscribe((state, _event, patches) => steps.push({ total: state.total, patches: patches.length }))
    await Promise.all([store.execute(add(3)), store.execute(add(4))])
    stop()
    expect(steps).toEqual([
      { total: 6, patches: 2 },
      { total: 10, patches: 2 },
    ])
    expect(commits.flat().map((e) => (e.type === 'added' ? e.data.amount : 0))).toEqual([1, 2, 3, 4])
  })

  it('a reducer may keep an event\'s object in the state and change it for a later event of the same batch: journaled events never change', async () => {
    const Put = t.union([
      t.type({ type: t.literal('put'), data: t.type({ id: t.string, value: t.type({ n: t.number }) }) }),
      t.type({ type: t.literal('bump'), data: t.type({ id: t.string }) }),
    ])
    type Put = t.TypeOf<typeof Put>
    const reducePut = (draft: Record<string, { n: number }>, event: Put) => {
      if (event.type === 'put') draft[event.data.id] = event.data.value
      else if (draft[event.data.id] !== undefined) draft[event.data.id]!.n += 1
    }
    const stateStore = memoryStateStore()
    for (const sharedDraft of [false, true]) {
      const stream = `things-${String(sharedDraft)}`
      const openThings = () => JournaledStore.open<Record<string, { n: number }>, Put>({ stateStore, stream, initial: {}, reducer: reducePut, eventCodec: Put, sharedDraft })
      const store = await openThings()
      await Promise.all([
        store.execute(() => E.right([{ type: 'put' as const, data: { id: 'a', value: { n: 1 } } }])),
        store.execute(() => E.right([{ type: 'bump' as const, data: { id: 'a' } }, { type: 'bump' as const, data: { id: 'a' } }])),
      ])
      expect(store.state).toEqual({ a: { n: 3 } })
      expect((await stateStore.read(stream))[0]?.data).toEqual({ id: 'a', value: { n: 1 } })
      expect((await openThings()).state).toEqual({ a: { n: 3 } })
    }
  })

  it('with gather, the decisions made in one turn of the event loop share one append even on a journal that appends at once', async () => {
    const appends = async (gather: boolean): Promise<number> => {
      const faults = injectFaults<StateStore>(memoryStateStore(), { name: 'state' })
      const store = await JournaledStore.open<Counter, CounterEvent>({ stateStore: faults.port, stream: 'counter', initial: { total: 0, history: [] }, reducer, eventCodec: CounterEvent, gather })
      const decided: Array<Promise<unknown>> = []
      for (let i = 0; i < 50; i++) {
        decided.push(store.execute(add(1)))
        for (let tick = 0; tick < 10; tick++) await Promise.resolve()
      }
      await Promise.all(decided)
      expect(store.state.total).toBe(50)
      return faults.count('append')
    }
    expect(await appends(true)).toBe(1)
    expect(await appends(false)).toBeGreaterThan(1)
  })
})

