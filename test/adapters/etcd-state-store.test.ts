import { randomUUID } from 'node:crypto'
import * as t from 'io-ts'
import { afterAll, describe, expect, it } from 'vitest'
import { isDrError } from '../../src/kernel/errors.js'
import { JournaledStore } from '../../src/kernel/store.js'
import type { StateStore } from '../../src/kernel/state-store.js'
import { stateStoreConformance, type StateStoreFactory } from '../../src/testkit/state-store-conformance.js'
import { EtcdStateStore, etcdStateStore } from '../../src/adapters/etcd/etcd-state-store.js'
import { EtcdLeaseManager, etcdLeaseManager } from '../../src/adapters/etcd/etcd-lease-manager.js'
import type { EtcdLease } from '../../src/adapters/etcd/etcd-lease.js'
import { EtcdConnection } from '../../src/adapters/etcd/etcd-connection.js'
import { EtcdKeys, prefixEnd } from '../../src/adapters/etcd/etcd-keys.js'
import { AppendPipeline, type PendingAppend } from '../../src/adapters/etcd/etcd-append-pipeline.js'
import { encodeBatch } from '../../src/adapters/etcd/etcd-journal-codec.js'
import { EtcdTestCluster, etcdEndpoints, uniquePrefix } from '../fixtures/etcd-endpoints.js'

const cluster = new EtcdTestCluster()
const hosts = (): string[] => etcdEndpoints()
const adminClient = () => cluster.admin()
const managers: EtcdLeaseManager[] = []

afterAll(async () => {
  await Promise.all(managers.map((manager) => manager.close()))
  await cluster.cleanUp()
})

/** A lease manager on `prefix`, closed after the file's tests. */
function managerOn(prefix: string): EtcdLeaseManager {
  const manager = etcdLeaseManager({ hosts: hosts(), prefix, ttlMs: 10_000 })
  managers.push(manager)
  return manager
}

function storeOn(prefix: string, extra: Partial<Parameters<typeof etcdStateStore>[0]> = {}): EtcdStateStore {
  cluster.track(prefix)
  return etcdStateStore({ hosts: hosts(), prefix, ...extra })
}

const prefixes = new WeakMap<StateStore, string>()
const factory: StateStoreFactory = {
  create: async () => {
    const prefix = uniquePrefix('state')
    const store = storeOn(prefix)
    prefixes.set(store, prefix)
    return store
  },
  dispose: async (store) => {
    await store.close()
  },
  reopen: async (store) => {
    const prefix = prefixOf(store)
    await store.close()
    const again = storeOn(prefix)
    prefixes.set(again, prefix)
    return again
  },
  // The leadership key of the scope, taken over from whichever conformance coordinator held it.
  lease: async (store, scope) => (await managerOn(prefixOf(store)).acquire(scope, 'conformance', { takeOver: true })).token,
  peer: async (store) => {
    const prefix = prefixOf(store)
    const other = storeOn(prefix)
    prefixes.set(other, prefix)
    return other
  },
}

function prefixOf(store: StateStore): string {
  const prefix = prefixes.get(store)
  if (prefix === undefined) throw new Error('store not made by this factory')
  return prefix
}

const rec = (n: number) => ({ type: 't', data: { n } })

describe('etcd state store conformance', () => {
  for (const c of stateStoreConformance(factory)) it(c.name, c.run)
})

describe('etcd state store on a real etcd', () => {
  it('lets exactly one of two clients win a race for the same expected version, 50 times over', async () => {
    const prefix = uniquePrefix('race')
    const a = storeOn(prefix)
    const b = storeOn(prefix)
    try {
      let version = 0
      for (let round = 0; round < 50; round++) {
        const results = await Promise.allSettled([
          a.append('race', version, [{ type: 'a', data: round }, { type: 'a2', data: round }]),
          b.append('race', version, [{ type: 'b', data: round }]),
        ])
        const won = results.filter((r) => r.status === 'fulfilled')
        const lost = results.filter((r) => r.status === 'rejected')
        expect(won).toHaveLength(1)
        expect(lost).toHaveLength(1)
        const reason: unknown = lost[0]?.status === 'rejected' ? lost[0].reason : undefined
        expect(isDrError(reason, 'E_CONFLICT')).toBe(true)
        const winner = won[0]?.status === 'fulfilled' ? won[0].value : -1
        expect(winner === version + 1 || winner === version + 2).toBe(true)
        version = winner
      }
      const records = await b.read('race')
      expect(records.map((r) => r.version)).toEqual(Array.from({ length: version }, (_, i) => i + 1))
      expect(await a.version('race')).toBe(version)
      // Each round wrote exactly one writer's records: a's two or b's one, never a mix.
      const rounds = new Map<number, string[]>()
      for (const r of records) rounds.set(r.data as number, [...(rounds.get(r.data as number) ?? []), r.type])
      for (const types of rounds.values()) expect(types.join()).toMatch(/^(a,a2|b)$/)
      expect(rounds.size).toBe(50)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('keeps stream names that extend or look like each other apart', async () => {
    const store = storeOn(uniquePrefix('names'))
    try {
      const names = ['x', 'x#1', 'x%23', 'x%', 'x/y', 'x#', '#', '%', 'x$', 'ü', 'x😀']
      for (const [i, name] of names.entries()) await store.append(name, 0, [rec(i), rec(i + 100)])
      for (const [i, name] of names.entries()) {
        expect((await store.read(name)).map((r) => r.data)).toEqual([{ n: i }, { n: i + 100 }])
        expect((await store.read(name, 1)).map((r) => r.data)).toEqual([{ n: i + 100 }])
        expect(await store.version(name)).toBe(2)
      }
      expect(await store.listStreams('')).toEqual([...names].sort())
      expect(await store.listStreams('x#')).toEqual(['x#', 'x#1'])
      expect(await store.listStreams('x%')).toEqual(['x%', 'x%23'])
      expect(await store.listStreams('x\ud83d')).toEqual(['x😀'])
    } finally {
      await store.close()
    }
  })

  it('refuses appends and snapshots too large for one etcd request with E_INVALID_INPUT, writing nothing', async () => {
    const store = storeOn(uniquePrefix('limits'), { maxRequestBytes: 200_000 })
    try {
      const big = 'z'.repeat(250_000)
      await expect(store.append('s', 0, [{ type: 't', data: big }])).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_INVALID_INPUT'))
      const many = Array.from({ length: 5_000 }, (_, n) => ({ type: 't', data: { n, pad: 'p'.repeat(40) } }))
      await expect(store.append('s', 0, many)).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_INVALID_INPUT'))
      await expect(store.saveSnapshot({ stream: 's', version: 0, state: big })).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_INVALID_INPUT'))
      expect(await store.version('s')).toBe(0)
      expect(await store.listStreams('')).toEqual([])
      expect(await store.loadSnapshot('s')).toBeUndefined()
      // 1,000 records in one append are one key: well within etcd's transaction limits.
      expect(await store.append('s', 0, Array.from({ length: 1_000 }, (_, n) => rec(n)))).toBe(1_000)
    } finally {
      await store.close()
    }
  })

  it('replays, lists and watches after etcd compacted every old revision', async () => {
    const prefix = uniquePrefix('compact')
    const store = storeOn(prefix)
    try {
      const seen: number[] = []
      store.subscribe('c', (r) => seen.push(r.version))
      for (let v = 0; v < 20; v++) await store.append('c', v, [rec(v)])
      await store.saveSnapshot({ stream: 'c', version: 10, state: { upTo: 10 } })
      await cluster.compactAll(prefix)
      const again = storeOn(prefix)
      try {
        expect((await again.read('c')).map((r) => r.version)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
        expect((await again.read('c', 10)).map((r) => r.version)).toEqual(Array.from({ length: 10 }, (_, i) => i + 11))
        expect(await again.loadSnapshot('c')).toEqual({ stream: 'c', version: 10, state: { upTo: 10 } })
        expect(await again.listStreams('')).toEqual(['c'])
        await again.append('c', 20, [rec(20)])
        await store.append('c', 21, [rec(21)])
        expect(seen).toEqual(Array.from({ length: 22 }, (_, i) => i + 1))
      } finally {
        await again.close()
      }
    } finally {
      await store.close()
    }
  })

  it('replays a JournaledStore from its saved state after etcd compacted every old revision, reading only the records after it', async () => {
    const prefix = uniquePrefix('snapshot-replay')
    const Added = t.type({ type: t.literal('added'), data: t.type({ n: t.number }) })
    const Totals = t.type({ total: t.number, count: t.number })
    const open = (store: StateStore) =>
      JournaledStore.open({
        stateStore: store,
        stream: 'totals',
        initial: { total: 0, count: 0 },
        reducer: (draft: t.TypeOf<typeof Totals>, event: t.TypeOf<typeof Added>) => {
          draft.total += event.data.n
          draft.count += 1
        },
        eventCodec: Added,
        stateCodec: Totals,
        snapshotEvery: 10,
      })
    const writer = storeOn(prefix)
    try {
      const journaled = await open(writer)
      for (let n = 1; n <= 25; n++) await journaled.commit([{ type: 'added', data: { n } }])
    } finally {
      await writer.close()
    }
    await cluster.compactAll(prefix)
    const reads: Array<{ after: number; records: number }> = []
    const reader = storeOn(prefix)
    const counting = new Proxy(reader, {
      get: (target, key) => {
        if (key === 'read') {
          return async (stream: string, after?: number) => {
            const records = await target.read(stream, after)
            reads.push({ after: after ?? 0, records: records.length })
            return records
          }
        }
        const value: unknown = Reflect.get(target, key, target)
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
      },
    })
    try {
      const replayed = await open(counting)
      expect(replayed.state).toEqual({ total: 325, count: 25 })
      expect(replayed.version).toBe(25)
      // The snapshot taken at version 20 is where replay starts: five records are read, not 25.
      expect(reads).toEqual([{ after: 20, records: 5 }])
      await replayed.commit([{ type: 'added', data: { n: 26 } }])
      expect(replayed.state).toEqual({ total: 351, count: 26 })
    } finally {
      await reader.close()
    }
  })

  it('stamps each record with the etcd revision that committed its append, increasing in commit order across streams', async () => {
    const store = storeOn(uniquePrefix('revision'))
    try {
      await store.append('a', 0, [rec(1), rec(2)])
      await store.append('b', 0, [rec(3)])
      await store.append('a', 2, [rec(4)])
      const a = await store.read('a')
      const b = await store.read('b')
      const [a1, a2, a3] = a.map((r) => r.revision ?? Number.NaN)
      const [b1] = b.map((r) => r.revision ?? Number.NaN)
      expect(a1).toBe(a2)
      expect(b1).toBeGreaterThan(a1 ?? Infinity)
      expect(a3).toBeGreaterThan(b1 ?? Infinity)
      expect(a.map((r) => r.version)).toEqual([1, 2, 3])
    } finally {
      await store.close()
    }
  })

  it('fences writes only with a token that holds its lease on the same prefix; a lease lost to expiry refuses the next write with E_FENCED, which JournaledStore does not retry', async () => {
    const prefix = uniquePrefix('fence')
    const store = storeOn(prefix)
    try {
      // A token that no etcd lease of this prefix stands behind (an in-process lease manager's, another prefix's).
      await expect(store.fence({ scope: 'drkit/system', value: 1 })).rejects.toMatchObject({ code: 'E_FENCED', details: { scope: 'drkit/system' } })
      const elsewhere = await managerOn(uniquePrefix('elsewhere')).acquire('drkit/system', 'x')
      await expect(store.fence(elsewhere.token)).rejects.toMatchObject({ code: 'E_FENCED' })
      const lease = await managerOn(prefix).acquire('drkit/system', 'leader')
      await store.fence(lease.token)
      const journaled = await JournaledStore.open({
        stateStore: store,
        stream: 'j',
        initial: 0,
        reducer: (_draft: number, event: { type: 'set'; data: number }) => event.data,
        eventCodec: t.type({ type: t.literal('set'), data: t.number }),
      })
      await journaled.execute(() => ({ _tag: 'Right', right: [{ type: 'set', data: 1 }] }))
      // The lease ends in etcd (its TTL ran out while this coordinator was paused, say): the key is gone.
      await adminClient().leaseClient.leaseRevoke({ ID: (lease as EtcdLease).leaseId })
      let decisions = 0
      const refused = await journaled
        .execute(() => {
          decisions++
          return { _tag: 'Right', right: [{ type: 'set', data: 2 }] }
        })
        .catch((error: unknown) => error)
      expect(refused).toMatchObject({ code: 'E_FENCED', details: { scope: 'drkit/system', token: lease.token.value } })
      expect(decisions).toBe(1)
      expect((await store.read('j')).map((r) => r.data)).toEqual([1])
      await expect(store.saveSnapshot({ stream: 'j', version: 1, state: 1 })).rejects.toMatchObject({ code: 'E_FENCED' })
      expect(await store.loadSnapshot('j')).toBeUndefined()
    } finally {
      await store.close()
    }
  })

  it('treats a retried append whose first attempt was applied as applied, not as a conflict', async () => {
    const prefix = uniquePrefix('retry')
    cluster.track(prefix)
    const connection = new EtcdConnection({ hosts: hosts(), prefix }).retain()
    try {
      const keys = new EtcdKeys(prefix)
      const pipeline = new AppendPipeline(connection, 1_572_864)
      const id = randomUUID()
      const value = Buffer.from(encodeBatch(id, Date.now(), [rec(1)]))
      const append: PendingAppend = {
        stream: 's',
        expectedVersion: 0,
        newVersion: 1,
        id,
        versionKey: keys.version('s'),
        batchKey: keys.batch('s', 1),
        value,
        bytes: value.length,
        fence: undefined,
      }
      const first = await pipeline.submit(append)
      expect(first.kind).toBe('written')
      expect(await pipeline.submit(append)).toEqual(first)
      const other = await pipeline.submit({ ...append, id: randomUUID() })
      expect(other).toEqual({ kind: 'conflict', actualVersion: 1 })
    } finally {
      connection.release()
    }
  })

  it('reports a damaged journal as E_CORRUPT instead of trusting it', async () => {
    const prefix = uniquePrefix('corrupt')
    const store = storeOn(prefix)
    try {
      await store.append('d', 0, [rec(1)])
      await store.append('d', 1, [rec(2)])
      await store.append('d', 2, [rec(3)])
      const keys = new EtcdKeys(prefix)
      await adminClient().delete().key(keys.batch('d', 2))
      await expect(store.read('d')).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CORRUPT'))
      await adminClient().put(keys.batch('d', 2)).value('not json')
      await expect(store.read('d', 1)).rejects.toSatisfy((e: unknown) => isDrError(e, 'E_CORRUPT'))
      expect((await store.read('d', 2)).map((r) => r.data)).toEqual([{ n: 3 }])
    } finally {
      await store.close()
    }
  })

  it('wraps an unreachable etcd as E_UNAVAILABLE with the etcd error as cause, and bad options as E_INVALID_INPUT', async () => {
    const store = etcdStateStore({ hosts: 'http://127.0.0.1:9', prefix: 'nowhere', dialTimeoutMs: 500 })
    try {
      const error: unknown = await store.append('s', 0, [rec(1)]).catch((e: unknown) => e)
      expect(isDrError(error, 'E_UNAVAILABLE')).toBe(true)
      expect(error instanceof Error && error.cause !== undefined).toBe(true)
    } finally {
      await store.close()
    }
    const bad = <T>(value: unknown): T => value as T
    for (const options of [{}, { hosts: [] }, { hosts: 'localhost:2379' }, { hosts: 'http://h:1', prefix: 'p/' }, { hosts: 'http://h:1', dialTimeoutMs: 0 }]) {
      expect(() => etcdStateStore(bad(options))).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    }
  })

  it('keeps its keys inside its own prefix', async () => {
    const prefix = uniquePrefix('tidy')
    const store = storeOn(prefix)
    try {
      await store.append('s', 0, [rec(1)])
      await store.saveSnapshot({ stream: 's', version: 1, state: 1 })
      const all = await adminClient().getAll().inRange({ start: `${prefix}/`, end: prefixEnd(Buffer.from(`${prefix}/`)) }).keys()
      expect(all.sort()).toEqual([`${prefix}/j/s#0000000000000001`, `${prefix}/s/s`, `${prefix}/v/s`])
    } finally {
      await store.close()
    }
  })
})
