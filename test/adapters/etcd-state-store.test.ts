import { randomUUID } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { isDrError } from '../../src/kernel/errors.js'
import type { JournalRecord, StateStore } from '../../src/kernel/state-store.js'
import { stateStoreConformance, type StateStoreFactory } from '../../src/testkit/state-store-conformance.js'
import { EtcdStateStore, etcdStateStore } from '../../src/adapters/etcd/etcd-state-store.js'
import { EtcdConnection } from '../../src/adapters/etcd/etcd-connection.js'
import { EtcdKeys, prefixEnd } from '../../src/adapters/etcd/etcd-keys.js'
import { AppendPipeline, type PendingAppend } from '../../src/adapters/etcd/etcd-append-pipeline.js'
import { encodeBatch } from '../../src/adapters/etcd/etcd-journal-codec.js'
import { EtcdTestCluster, etcdEndpoints, uniquePrefix } from '../fixtures/etcd-endpoints.js'

const cluster = new EtcdTestCluster()
const hosts = (): string[] => etcdEndpoints()
const adminClient = () => cluster.admin()

afterAll(() => cluster.cleanUp())

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
    const prefix = prefixes.get(store)
    if (prefix === undefined) throw new Error('store not made by this factory')
    await store.close()
    const again = storeOn(prefix)
    prefixes.set(again, prefix)
    return again
  },
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

  it('delivers every coordinator’s appends to a subscriber in commit order, after commit', async () => {
    const prefix = uniquePrefix('watch')
    const reader = storeOn(prefix)
    const writerA = storeOn(prefix)
    const writerB = storeOn(prefix)
    try {
      const seen: JournalRecord[] = []
      const readable: Promise<boolean>[] = []
      reader.subscribe('w/', (r) => {
        seen.push(r)
        readable.push(reader.read(r.stream, r.version - 1).then((rs) => rs[0]?.version === r.version))
      })
      reader.subscribe('other', () => {
        throw new Error('no record of another prefix may arrive')
      })
      await reader.append('w/reader', 0, [rec(0)])
      expect(seen.map((r) => r.stream)).toEqual(['w/reader'])
      const streams = ['w/1', 'w/2', 'w/3', 'w/4']
      const perStream = 25
      await Promise.all(
        streams.flatMap((stream, s) =>
          [writerA, writerB].map(async (writer, w) => {
            // Two writers share each stream; each retries on conflict, so both interleave.
            let done = 0
            while (done < perStream / (w === 0 ? 1 : 5)) {
              const version = await writer.version(stream)
              try {
                await writer.append(stream, version, [rec(s * 1000 + version)])
                done++
              } catch (error) {
                if (!isDrError(error, 'E_CONFLICT')) throw error
              }
            }
          }),
        ),
      )
      const total = 1 + streams.length * (perStream + perStream / 5)
      const deadline = Date.now() + 10_000
      while (seen.length < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
      expect(seen).toHaveLength(total)
      for (const stream of streams) {
        const delivered = seen.filter((r) => r.stream === stream)
        const stored = await reader.read(stream)
        expect(delivered.map(({ stream: s, version, type, data }) => ({ s, version, type, data }))).toEqual(
          stored.map(({ stream: s, version, type, data }) => ({ s, version, type, data })),
        )
      }
      expect((await Promise.all(readable)).every(Boolean)).toBe(true)
    } finally {
      await Promise.all([reader.close(), writerA.close(), writerB.close()])
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
      const head = await adminClient().put(`${prefix}/unrelated`).value('x')
      await adminClient().kv.compact({ revision: head.header.revision, physical: true })
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
      }
      const first = await pipeline.submit(append)
      const retried = await pipeline.submit(append)
      expect(first.ok && retried.ok && retried.revision === first.revision).toBe(true)
      const other = await pipeline.submit({ ...append, id: randomUUID() })
      expect(other).toEqual({ ok: false, actualVersion: 1 })
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
