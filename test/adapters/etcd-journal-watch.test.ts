/**
 * The etcd state store's subscriptions: every coordinator's appends in commit order; the watch that fell behind a
 * compaction catching up by modification revision; an append never sent before the watch knows where it starts;
 * and an append that resolves before its delivery being reported.
 */
import { GRPCUnavailableError, type IRangeRequest, type IRangeResponse } from 'etcd3'
import { afterAll, describe, expect, it } from 'vitest'
import { isDrError } from '../../src/kernel/errors.js'
import type { JournalRecord } from '../../src/kernel/state-store.js'
import { EtcdStateStore, etcdStateStore, type EtcdWatchLag } from '../../src/adapters/etcd/etcd-state-store.js'
import { EtcdConnection } from '../../src/adapters/etcd/etcd-connection.js'
import { EtcdTestCluster, etcdEndpoints, uniquePrefix } from '../fixtures/etcd-endpoints.js'

const cluster = new EtcdTestCluster()
afterAll(() => cluster.cleanUp())

const rec = (n: number) => ({ type: 't', data: { n } })

function storeOn(prefix: string, extra: Partial<Parameters<typeof etcdStateStore>[0]> = {}): EtcdStateStore {
  cluster.track(prefix)
  return etcdStateStore({ hosts: etcdEndpoints(), prefix, ...extra })
}

/** A store on its own connection, whose etcd range calls go through `range` (given the real one) first. */
function storeWithRange(prefix: string, range: (real: (request: IRangeRequest) => Promise<IRangeResponse>, request: IRangeRequest, call: number) => Promise<IRangeResponse>) {
  cluster.track(prefix)
  const connection = new EtcdConnection({ hosts: etcdEndpoints(), prefix })
  const kv = connection.client.kv
  const real = kv.range.bind(kv)
  let calls = 0
  kv.range = (request: IRangeRequest) => range(real, request, calls++)
  return new EtcdStateStore({ hosts: etcdEndpoints(), prefix }, { connection })
}

/** Records `seen` and resolves `until(n)` once `n` records were seen. */
function collector() {
  const seen: JournalRecord[] = []
  const waiting: Array<{ n: number; resolve: () => void }> = []
  const listener = (record: JournalRecord): void => {
    seen.push(record)
    for (const w of waiting.filter((w) => seen.length >= w.n)) w.resolve()
  }
  const until = (n: number): Promise<void> => (seen.length >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve })))
  return { seen, listener, until }
}

describe('etcd journal watch', () => {
  it('delivers every coordinator’s appends to a subscriber in commit order, after commit', async () => {
    const prefix = uniquePrefix('watch')
    const reader = storeOn(prefix)
    const writerA = storeOn(prefix)
    const writerB = storeOn(prefix)
    try {
      const { seen, listener, until } = collector()
      const readable: Promise<boolean>[] = []
      reader.subscribe('w/', (r) => {
        listener(r)
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
      await until(1 + streams.length * (perStream + perStream / 5))
      for (const stream of streams) {
        const delivered = seen.filter((r) => r.stream === stream)
        const stored = await reader.read(stream)
        expect(delivered.map(({ stream: s, version, type, data, revision }) => ({ s, version, type, data, revision }))).toEqual(
          stored.map(({ stream: s, version, type, data, revision }) => ({ s, version, type, data, revision })),
        )
      }
      const revisions = seen.map((r) => r.revision ?? Number.NaN)
      expect(revisions).toEqual([...revisions].sort((a, b) => a - b))
      expect((await Promise.all(readable)).every(Boolean)).toBe(true)
    } finally {
      await Promise.all([reader.close(), writerA.close(), writerB.close()])
    }
  })

  it('catches up by modification revision when etcd compacted the revision its watch starts from, then watches on', async () => {
    const prefix = uniquePrefix('catch-up')
    const writer = storeOn(prefix)
    let version = 0
    const caughtUpFrom: string[] = []
    // The watch reads its start revision; before it is created, others append and etcd compacts past that revision.
    const reader = storeWithRange(prefix, async (real, request, call) => {
      if (request.min_mod_revision !== undefined) caughtUpFrom.push(String(request.min_mod_revision))
      const response = await real(request)
      if (call === 0) {
        for (; version < 3; version++) await writer.append('c', version, [rec(version)])
        await cluster.compactAll(prefix)
      }
      return response
    })
    try {
      const { seen, listener, until } = collector()
      reader.subscribe('c', listener)
      await until(3)
      await writer.append('c', 3, [rec(3)])
      await until(4)
      expect(seen.map((r) => [r.version, r.data])).toEqual([0, 1, 2, 3].map((n) => [n + 1, { n }]))
      // The reader's own append after the catch-up is delivered before it resolves.
      await reader.append('c', 4, [rec(4)])
      expect(seen.map((r) => r.version)).toEqual([1, 2, 3, 4, 5])
      // etcd cancelled the watch (its start revision was compacted): the missed appends were read back by revision.
      expect(caughtUpFrom).toHaveLength(1)
      expect(Number(caughtUpFrom[0])).toBeLessThanOrEqual(seen[0]?.revision ?? 0)
    } finally {
      await Promise.all([reader.close(), writer.close()])
    }
  })

  it('sends no append before the watch knows its start revision: a failed start fails the append, writing nothing', async () => {
    const prefix = uniquePrefix('ready')
    let failStart: () => void = () => undefined
    const store = storeWithRange(prefix, (real, request, call) =>
      call === 0
        ? new Promise<IRangeResponse>((_resolve, reject) => {
            failStart = () => reject(new GRPCUnavailableError('injected: etcd did not answer the watch start'))
          })
        : real(request),
    )
    try {
      const { seen, listener } = collector()
      store.subscribe('s', listener)
      const first = store.append('s', 0, [rec(1)])
      failStart()
      await expect(first).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
      expect(await store.version('s')).toBe(0)
      // The next append starts the watch first; it is delivered before it resolves.
      expect(await store.append('s', 0, [rec(2)])).toBe(1)
      expect(seen.map((r) => r.data)).toEqual([{ n: 2 }])
    } finally {
      await store.close()
    }
  })

  it('reports an append that resolved before the watch delivered it', async () => {
    const prefix = uniquePrefix('lag')
    const lags: EtcdWatchLag[] = []
    cluster.track(prefix)
    const connection = new EtcdConnection({ hosts: etcdEndpoints(), prefix, dialTimeoutMs: 300 })
    // The watch is created on a key range no append touches, so it never delivers one.
    const watch = connection.client.watch.bind(connection.client)
    connection.client.watch = () => {
      const builder = watch()
      const inRange = builder.inRange.bind(builder)
      builder.inRange = () => inRange({ start: `${prefix}/nothing/`, end: `${prefix}/nothing0` })
      return builder
    }
    const store = new EtcdStateStore({ hosts: etcdEndpoints(), prefix, dialTimeoutMs: 300, onWatchLag: (lag) => lags.push(lag) }, { connection })
    try {
      store.subscribe('s', () => undefined)
      expect(await store.append('s', 0, [rec(1)])).toBe(1)
      const [record] = await store.read('s')
      expect(lags).toEqual([{ stream: 's', revision: record?.revision, delivered: expect.any(Number), waitedMs: expect.any(Number) }])
      expect(lags[0]?.delivered).toBeLessThan(record?.revision ?? 0)
      // An append to a stream nobody subscribed to does not wait for the watch.
      await store.append('unwatched', 0, [rec(2)])
      expect(lags).toHaveLength(1)
    } finally {
      await store.close()
    }
  })
})
