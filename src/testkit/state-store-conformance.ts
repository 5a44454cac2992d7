import assert from 'node:assert/strict'
import { DrError, isDrError, type DrErrorCode } from '../kernel/errors.js'
import type { Json } from '../kernel/codecs.js'
import type { JournalRecord, NewRecord, StateStore } from '../kernel/state-store.js'
import { withAdapter, type ConformanceCase } from './conformance.js'
import { fencingCases, type FencingFactory } from './state-store-conformance-fencing.js'

/**
 * What {@link stateStoreConformance} needs: a factory of fresh, empty stores; for stores that persist, `reopen`,
 * which closes a store and opens the same durable state again as a restart would (the suite disposes of the
 * reopened store itself; without it the persistence cases are left out); and for stores that coordinators on several
 * machines share, `lease` and `peer` (see {@link FencingFactory}; without them the deposed-writer case is left out).
 *
 * @public
 */
export interface StateStoreFactory extends FencingFactory {
  readonly reopen?: (store: StateStore) => Promise<StateStore>
}

const record = (type: string, data: Json): NewRecord => ({ type, data })

async function rejectsWith(promise: Promise<unknown>, code: DrErrorCode, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isDrError(error, code), `${what}: expected a DrError ${code}, got ${String(error)}`)
    return true
  })
}

function throwsWith(run: () => unknown, code: DrErrorCode, what: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(isDrError(error, code), `${what}: expected a DrError ${code}, got ${String(error)}`)
    return true
  })
}

/** The fields of journal records a caller controls or can predict, for comparisons that ignore `at`. */
const shape = (records: readonly JournalRecord[]): unknown[] => records.map(({ stream, version, type, data }) => ({ stream, version, type, data }))

/** JSON values that stores must give back exactly as `JSON.parse(JSON.stringify(value))` does. */
const JSON_SAMPLES: readonly Json[] = [
  null,
  true,
  false,
  0,
  -0,
  -1,
  1.5,
  1e-7,
  1e300,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  '',
  'plain',
  'üñíçødé ✓ 😀 𝄞 中文',
  'quote " backslash \\ newline \n tab \t nul \u0000 separators \u2028\u2029',
  'lone surrogate \ud800 end',
  'x'.repeat(100_000),
  [],
  {},
  [1, [2, [3, [4, []]]]],
  { nested: { deeper: { deepest: [null, { k: 'v' }, true] } } },
  { 'key with spaces': 1, ключ: 2, '': 3, b: [], a: {} },
]

function coreCases(factory: StateStoreFactory): ConformanceCase[] {
  return [
    withAdapter(factory, 'appends records and reads them back in order with 1-based versions', async (store) => {
      const before = Date.now()
      const version = await store.append('orders/1', 0, [record('created', { id: 1 }), record('paid', { amount: 12.5 }), record('shipped', null)])
      assert.equal(version, 3)
      const records = await store.read('orders/1')
      assert.deepEqual(shape(records), [
        { stream: 'orders/1', version: 1, type: 'created', data: { id: 1 } },
        { stream: 'orders/1', version: 2, type: 'paid', data: { amount: 12.5 } },
        { stream: 'orders/1', version: 3, type: 'shipped', data: null },
      ])
      for (const { at } of records) assert.ok(Number.isFinite(at) && at >= before - 60_000, `at ${at} is a recent time in ms`)
      assert.equal(await store.version('orders/1'), 3)
    }),

    withAdapter(factory, 'keeps versions per stream and returns the new version from each append', async (store) => {
      assert.equal(await store.append('a', 0, [record('t', 1)]), 1)
      assert.equal(await store.append('b', 0, [record('t', 1), record('t', 2)]), 2)
      assert.equal(await store.append('a', 1, [record('t', 2), record('t', 3), record('t', 4)]), 4)
      assert.equal(await store.append('b', 2, [record('t', 3)]), 3)
      assert.deepEqual((await store.read('a')).map((r) => [r.version, r.data]), [[1, 1], [2, 2], [3, 3], [4, 4]])
      assert.deepEqual((await store.read('b')).map((r) => [r.version, r.data]), [[1, 1], [2, 2], [3, 3]])
    }),

    withAdapter(factory, 'rejects an append at the wrong expected version with E_CONFLICT and writes nothing', async (store) => {
      await rejectsWith(store.append('fresh', 1, [record('t', 1)]), 'E_CONFLICT', 'a new stream expected at version 1')
      assert.deepEqual(await store.listStreams(''), [])
      await store.append('s', 0, [record('t', 1), record('t', 2)])
      await rejectsWith(store.append('s', 0, [record('t', 'x')]), 'E_CONFLICT', 'stale expected version')
      await rejectsWith(store.append('s', 1, [record('t', 'x')]), 'E_CONFLICT', 'stale expected version')
      await rejectsWith(store.append('s', 3, [record('t', 'x')]), 'E_CONFLICT', 'expected version ahead of the stream')
      assert.equal(await store.version('s'), 2)
      assert.deepEqual((await store.read('s')).map((r) => r.data), [1, 2])
      assert.equal(await store.append('s', 2, [record('t', 3)]), 3)
    }),

    withAdapter(factory, 'lets exactly one of several concurrent appends at the same expected version win', async (store) => {
      await store.append('race', 0, [record('t', 'base')])
      const outcomes = await Promise.allSettled(
        Array.from({ length: 8 }, (_, writer) => store.append('race', 1, [record('t', { writer, part: 0 }), record('t', { writer, part: 1 })])),
      )
      const winners = outcomes.flatMap((outcome, writer) => (outcome.status === 'fulfilled' ? [writer] : []))
      assert.equal(winners.length, 1, `exactly one winner, got ${winners.length}`)
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') assert.ok(isDrError(outcome.reason, 'E_CONFLICT'), `a loser gets E_CONFLICT, got ${String(outcome.reason)}`)
        else assert.equal(outcome.value, 3)
      }
      const winner = winners[0]
      assert.deepEqual((await store.read('race')).map((r) => r.data), ['base', { writer: winner, part: 0 }, { writer: winner, part: 1 }])
    }),

    withAdapter(factory, 'keeps every multi-record append whole and contiguous when writers race on one stream', async (store) => {
      const writers = 4
      const batches = 5
      const size = 3
      await Promise.all(
        Array.from({ length: writers }, async (_, writer) => {
          for (let batch = 0; batch < batches; batch++) {
            const records = Array.from({ length: size }, (_unused, index) => record('part', { writer, batch, index }))
            for (;;) {
              try {
                await store.append('shared', await store.version('shared'), records)
                break
              } catch (error) {
                if (!isDrError(error, 'E_CONFLICT')) throw error
              }
            }
          }
        }),
      )
      const all = await store.read('shared')
      assert.equal(all.length, writers * batches * size)
      const seen = new Set<string>()
      for (let start = 0; start < all.length; start += size) {
        const chunk = all.slice(start, start + size).map((r) => r.data as { writer: number; batch: number; index: number })
        const head = chunk[0]
        assert.ok(head !== undefined)
        assert.deepEqual(chunk, [0, 1, 2].map((index) => ({ writer: head.writer, batch: head.batch, index })), `records ${start + 1}-${start + size} are one append`)
        seen.add(`${head.writer}/${head.batch}`)
      }
      assert.equal(seen.size, writers * batches)
    }),

    withAdapter(factory, 'reads only the records after a given version', async (store) => {
      await store.append('s', 0, [record('t', 1), record('t', 2)])
      await store.append('s', 2, [record('t', 3), record('t', 4), record('t', 5)])
      await store.append('s', 5, [record('t', 6)])
      for (let after = 0; after <= 8; after++) {
        const expected = [1, 2, 3, 4, 5, 6].filter((version) => version > after)
        assert.deepEqual((await store.read('s', after)).map((r) => r.version), expected, `read after ${after}`)
      }
      assert.deepEqual((await store.read('s')).map((r) => r.data), [1, 2, 3, 4, 5, 6])
    }),

    withAdapter(factory, 'reports version 0 and no records for an unknown stream', async (store) => {
      await store.append('known', 0, [record('t', null)])
      assert.equal(await store.version('unknown'), 0)
      assert.deepEqual(await store.read('unknown'), [])
      assert.deepEqual(await store.read('unknown', 3), [])
      assert.equal(await store.loadSnapshot('unknown'), undefined)
    }),

    withAdapter(factory, 'lists the streams that start with a prefix, sorted', async (store) => {
      for (const name of ['workflow/b', 'snapshot/catalog', 'workflow/a', 'workflow/c/1', 'workflowish', 'volume/x']) {
        await store.append(name, 0, [record('t', name)])
      }
      assert.deepEqual(await store.listStreams('workflow/'), ['workflow/a', 'workflow/b', 'workflow/c/1'])
      assert.deepEqual(await store.listStreams('workflow'), ['workflow/a', 'workflow/b', 'workflow/c/1', 'workflowish'])
      assert.deepEqual(await store.listStreams(''), ['snapshot/catalog', 'volume/x', 'workflow/a', 'workflow/b', 'workflow/c/1', 'workflowish'])
      assert.deepEqual(await store.listStreams('nothing/'), [])
    }),

    withAdapter(factory, 'delivers appended records to subscribers in append order, only for their prefix', async (store) => {
      const seen: JournalRecord[] = []
      const all: string[] = []
      store.subscribe('jobs/', (r) => seen.push(r))
      store.subscribe('', (r) => all.push(`${r.stream}#${r.version}`))
      await store.append('jobs/1', 0, [record('a', 1), record('b', 2)])
      await store.append('other', 0, [record('c', 3)])
      await Promise.all([store.append('jobs/2', 0, [record('d', 4)]), store.append('jobs/1', 2, [record('e', 5)])])
      assert.deepEqual(seen.map((r) => `${r.stream}#${r.version}:${r.type}`), ['jobs/1#1:a', 'jobs/1#2:b', 'jobs/2#1:d', 'jobs/1#3:e'])
      assert.deepEqual(all, ['jobs/1#1', 'jobs/1#2', 'other#1', 'jobs/2#1', 'jobs/1#3'])
      assert.deepEqual(shape(seen.filter((r) => r.stream === 'jobs/1')), shape(await store.read('jobs/1')))
    }),

    withAdapter(factory, 'stops delivering after unsubscribe, and a throwing listener harms neither the append nor others', async (store) => {
      const first: number[] = []
      const second: number[] = []
      const unsubscribe = store.subscribe('s', (r) => first.push(r.version))
      store.subscribe('s', () => {
        throw new DrError('E_INTERNAL', 'a listener that fails')
      })
      store.subscribe('s', (r) => second.push(r.version))
      await store.append('s', 0, [record('t', 1)])
      unsubscribe()
      unsubscribe()
      assert.equal(await store.append('s', 1, [record('t', 2)]), 2)
      assert.deepEqual(first, [1])
      assert.deepEqual(second, [1, 2])
    }),

    withAdapter(factory, 'notifies a subscriber only once the record can be read', async (store) => {
      const reads: Promise<readonly JournalRecord[]>[] = []
      store.subscribe('s', (r) => reads.push(store.read(r.stream, r.version - 1)))
      await store.append('s', 0, [record('t', 1)])
      await store.append('s', 1, [record('t', 2), record('t', 3)])
      const seen = await Promise.all(reads)
      assert.deepEqual(seen.map((records) => records[0]?.data), [1, 2, 3])
    }),

    withAdapter(factory, 'saves snapshots, loads the newest, and still reads from any version', async (store) => {
      await store.append('s', 0, [1, 2, 3, 4, 5].map((n) => record('t', n)))
      assert.equal(await store.loadSnapshot('s'), undefined)
      await store.saveSnapshot({ stream: 's', version: 2, state: { total: 3 } })
      await store.saveSnapshot({ stream: 's', version: 4, state: { total: 10, items: [1, 2, 3, 4] } })
      assert.deepEqual(await store.loadSnapshot('s'), { stream: 's', version: 4, state: { total: 10, items: [1, 2, 3, 4] } })
      await store.saveSnapshot({ stream: 's', version: 3, state: { total: 6 } })
      assert.deepEqual(await store.loadSnapshot('s'), { stream: 's', version: 4, state: { total: 10, items: [1, 2, 3, 4] } }, 'an older snapshot does not replace a newer one')
      await store.saveSnapshot({ stream: 'other', version: 0, state: null })
      assert.deepEqual(await store.loadSnapshot('other'), { stream: 'other', version: 0, state: null })
      assert.equal((await store.loadSnapshot('s'))?.version, 4)
      assert.deepEqual((await store.read('s', 4)).map((r) => r.data), [5])
      assert.deepEqual((await store.read('s', 1)).map((r) => r.data), [2, 3, 4, 5])
    }),

    withAdapter(factory, 'round-trips JSON data exactly, unaffected by later changes to the appended objects', async (store) => {
      await store.append('json', 0, JSON_SAMPLES.map((data, index) => record(`sample-${index}`, data)))
      const expected: unknown[] = JSON_SAMPLES.map((data) => JSON.parse(JSON.stringify(data)))
      assert.deepEqual((await store.read('json')).map((r) => r.data), expected)
      const mutable = { list: [1, 2], inner: { flag: true } }
      await store.append('json', JSON_SAMPLES.length, [record('mutable', mutable)])
      mutable.list.push(3)
      mutable.inner.flag = false
      assert.deepEqual((await store.read('json', JSON_SAMPLES.length))[0]?.data, { list: [1, 2], inner: { flag: true } })
      const state = { deep: { value: 1 } }
      await store.saveSnapshot({ stream: 'json', version: 1, state })
      state.deep.value = 2
      assert.deepEqual((await store.loadSnapshot('json'))?.state, { deep: { value: 1 } })
    }),

    withAdapter(factory, 'rejects invalid input with E_INVALID_INPUT and changes nothing', async (store) => {
      const circular: Record<string, unknown> = {}
      circular['self'] = circular
      const bad = <T>(value: unknown): T => value as T
      const appends: ReadonlyArray<[string, unknown, unknown, unknown]> = [
        ['empty stream name', '', 0, [record('t', 1)]],
        ['non-string stream name', 42, 0, [record('t', 1)]],
        ['control character in stream name', 'a\u0000b', 0, [record('t', 1)]],
        ['stream name over 1024 characters', 'x'.repeat(1025), 0, [record('t', 1)]],
        ['negative expected version', 's', -1, [record('t', 1)]],
        ['fractional expected version', 's', 1.5, [record('t', 1)]],
        ['NaN expected version', 's', Number.NaN, [record('t', 1)]],
        ['string expected version', 's', '0', [record('t', 1)]],
        ['no records', 's', 0, []],
        ['records not an array', 's', 0, null],
        ['empty record type', 's', 0, [record('', 1)]],
        ['missing record type', 's', 0, [{ data: 1 }]],
        ['undefined data', 's', 0, [{ type: 't', data: undefined }]],
        ['function data', 's', 0, [{ type: 't', data: () => 1 }]],
        ['NaN data', 's', 0, [{ type: 't', data: Number.NaN }]],
        ['Infinity data', 's', 0, [{ type: 't', data: Number.POSITIVE_INFINITY }]],
        ['bigint data', 's', 0, [{ type: 't', data: 10n }]],
        ['Date data', 's', 0, [{ type: 't', data: new Date(0) }]],
        ['undefined inside data', 's', 0, [{ type: 't', data: { a: undefined } }]],
        ['circular data', 's', 0, [{ type: 't', data: circular }]],
        ['one bad record among good ones', 's', 0, [record('t', 1), { type: 't', data: Number.NaN }]],
      ]
      for (const [what, stream, expectedVersion, records] of appends) {
        await rejectsWith(store.append(bad(stream), bad(expectedVersion), bad(records)), 'E_INVALID_INPUT', `append with ${what}`)
      }
      await rejectsWith(store.read(''), 'E_INVALID_INPUT', 'read of an empty stream name')
      await rejectsWith(store.read('s', -1), 'E_INVALID_INPUT', 'read after a negative version')
      await rejectsWith(store.read('s', 0.5), 'E_INVALID_INPUT', 'read after a fractional version')
      await rejectsWith(store.version(bad(undefined)), 'E_INVALID_INPUT', 'version of no stream')
      await rejectsWith(store.listStreams(bad(5)), 'E_INVALID_INPUT', 'listStreams with a number')
      throwsWith(() => store.subscribe(bad(null), () => undefined), 'E_INVALID_INPUT', 'subscribe with a null prefix')
      throwsWith(() => store.subscribe('', bad('not a function')), 'E_INVALID_INPUT', 'subscribe without a listener')
      await rejectsWith(store.saveSnapshot(bad({ stream: '', version: 0, state: null })), 'E_INVALID_INPUT', 'snapshot of an empty stream name')
      await rejectsWith(store.saveSnapshot(bad({ stream: 's', version: -1, state: null })), 'E_INVALID_INPUT', 'snapshot at a negative version')
      await rejectsWith(store.saveSnapshot(bad({ stream: 's', version: 1 })), 'E_INVALID_INPUT', 'snapshot without state')
      await rejectsWith(store.saveSnapshot(bad(null)), 'E_INVALID_INPUT', 'null snapshot')
      await rejectsWith(store.loadSnapshot(''), 'E_INVALID_INPUT', 'loadSnapshot of an empty stream name')
      assert.deepEqual(await store.listStreams(''), [])
      assert.equal(await store.version('s'), 0)
      assert.equal(await store.loadSnapshot('s'), undefined)
    }),

    withAdapter(factory, 'rejects every call with E_CLOSED after close, and closing again is harmless', async (store) => {
      await store.append('s', 0, [record('t', 1)])
      const seen: number[] = []
      store.subscribe('', (r) => seen.push(r.version))
      await store.close()
      await rejectsWith(store.append('s', 1, [record('t', 2)]), 'E_CLOSED', 'append after close')
      await rejectsWith(store.read('s'), 'E_CLOSED', 'read after close')
      await rejectsWith(store.version('s'), 'E_CLOSED', 'version after close')
      await rejectsWith(store.listStreams(''), 'E_CLOSED', 'listStreams after close')
      await rejectsWith(store.saveSnapshot({ stream: 's', version: 1, state: null }), 'E_CLOSED', 'saveSnapshot after close')
      await rejectsWith(store.loadSnapshot('s'), 'E_CLOSED', 'loadSnapshot after close')
      await rejectsWith(store.fence({ scope: 's', value: 1 }), 'E_CLOSED', 'fence after close')
      throwsWith(() => store.subscribe('', () => undefined), 'E_CLOSED', 'subscribe after close')
      await store.close()
      assert.deepEqual(seen, [])
    }),

    withAdapter(factory, 'keeps up with many concurrent appends across streams and a large append', async (store) => {
      const streams = 50
      const rounds = 4
      for (let round = 0; round < rounds; round++) {
        const versions = await Promise.all(Array.from({ length: streams }, (_, n) => store.append(`many/${n}`, round, [record('r', { n, round })])))
        assert.deepEqual(versions, Array.from({ length: streams }, () => round + 1))
      }
      for (let n = 0; n < streams; n += 7) {
        assert.deepEqual((await store.read(`many/${n}`)).map((r) => r.data), Array.from({ length: rounds }, (_, round) => ({ n, round })))
      }
      assert.equal((await store.listStreams('many/')).length, streams)
      const big = Array.from({ length: 1000 }, (_, index) => record('bulk', { index, text: 'y'.repeat(64) }))
      assert.equal(await store.append('bulk', 0, big), 1000)
      assert.deepEqual((await store.read('bulk', 990)).map((r) => (r.data as { index: number }).index), [990, 991, 992, 993, 994, 995, 996, 997, 998, 999])
    }),
  ]
}

function persistenceCases(factory: StateStoreFactory, reopen: (store: StateStore) => Promise<StateStore>): ConformanceCase[] {
  return [
    withAdapter(factory, 'keeps streams, records, versions and snapshots across close and reopen', async (store) => {
      await store.append('w/1', 0, [record('started', { input: [1, 'two'] }), record('step', { index: 0 })])
      await store.append('w/2', 0, [record('started', null)])
      await store.append('w/1', 2, [record('step', { index: 1 })])
      await store.saveSnapshot({ stream: 'w/1', version: 2, state: { steps: 1 } })
      const before = await store.read('w/1')
      const again = await reopen(store)
      try {
        assert.deepEqual(await again.read('w/1'), before)
        assert.deepEqual(shape(await again.read('w/2')), [{ stream: 'w/2', version: 1, type: 'started', data: null }])
        assert.equal(await again.version('w/1'), 3)
        assert.deepEqual(await again.listStreams('w/'), ['w/1', 'w/2'])
        assert.deepEqual(await again.loadSnapshot('w/1'), { stream: 'w/1', version: 2, state: { steps: 1 } })
        assert.deepEqual((await again.read('w/1', 2)).map((r) => r.data), [{ index: 1 }])
      } finally {
        await factory.dispose(again)
      }
    }),
    withAdapter(factory, 'continues appending after a reopen, with optimistic concurrency intact and old listeners gone', async (store) => {
      const oldListener: number[] = []
      store.subscribe('', (r) => oldListener.push(r.version))
      await store.append('s', 0, [record('t', 1)])
      const again = await reopen(store)
      try {
        await rejectsWith(store.append('s', 1, [record('t', 'stale instance')]), 'E_CLOSED', 'append to the instance that was reopened')
        await rejectsWith(again.append('s', 0, [record('t', 'stale')]), 'E_CONFLICT', 'append at a version from before the reopen')
        assert.equal(await again.append('s', 1, [record('t', 2), record('t', 3)]), 3)
        assert.deepEqual(oldListener, [1])
        const third = await reopen(again)
        try {
          assert.deepEqual((await third.read('s')).map((r) => r.data), [1, 2, 3])
          assert.equal(await third.append('s', 3, [record('t', 4)]), 4)
        } finally {
          await factory.dispose(third)
        }
      } finally {
        await factory.dispose(again)
      }
    }),
  ]
}

/**
 * The conformance suite every {@link StateStore} must pass: append/read, per-stream 1-based versions,
 * optimistic concurrency (`E_CONFLICT`, exactly one winner of a race, atomic multi-record appends), reads
 * after a version, prefix listing, subscriptions, snapshots, exact JSON round trips, `E_INVALID_INPUT`,
 * `E_CLOSED`, writes bound to a fence token, and — when the factory can `reopen` — persistence across a restart,
 * and — when it gives `lease` and `peer` — the refusal of a deposed coordinator's writes.
 * Run it under any test runner: `for (const c of stateStoreConformance(factory)) it(c.name, c.run)`.
 *
 * @public
 */
export function stateStoreConformance(factory: StateStoreFactory): ConformanceCase[] {
  const { reopen } = factory
  return [...coreCases(factory), ...fencingCases(factory), ...(reopen === undefined ? [] : persistenceCases(factory, reopen))]
}
