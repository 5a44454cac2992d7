import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/kernel/index.js'
import { injectFaults, type FaultInjector } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { BS, block, blockHashes, settle, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem, replicating } from '../../fixtures/mirror-system.js'

type Log = string[]

/** Wraps a storage so that its mutating calls are appended to `log` as `site.method(volume,arg)`. */
function logged(site: string, storage: StoragePort, log: Log): StoragePort {
  const watched = new Set(['setWritable', 'createSnapshot', 'write', 'fence', 'unfence'])
  return new Proxy(storage, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object)
      if (typeof value !== 'function') return value
      const fn = (value as (...args: unknown[]) => unknown).bind(object)
      if (typeof property !== 'string' || !watched.has(property)) return fn
      return async (...args: unknown[]) => {
        const result = await fn(...args)
        log.push(`${site}.${property}(${String(args[0])},${property === 'write' ? '' : String(args[1])})`)
        return result
      }
    },
  })
}

async function system(options: { playback?: { every?: string }; faults?: boolean; log?: Log } = {}) {
  const clock = new ManualClock()
  const faults: Record<string, FaultInjector<StoragePort>> = {}
  const d = await durable({
    clock,
    sizeBlocks: 256,
    wrap: (site, storage) => {
      let port = storage
      if (options.faults === true) {
        faults[site] = injectFaults(port, { name: 'memory', clock })
        port = faults[site]!.port
      }
      return options.log === undefined ? port : logged(site, port, options.log)
    },
  })
  const s = await openSystem(d)
  await replicating(s, { blocks: 16, ...(options.playback === undefined ? {} : { playback: options.playback }) })
  const status = () => s.mirrors.status('m')
  return { clock, d, s, faults, east: d.raw['east']!, west: d.raw['west']!, status }
}

/** Replicates up to delta set 40 played, then 41–43 received but not played (playback batched hourly). */
async function fortyThree() {
  const w = await system({ playback: { every: '1h' } })
  for (let n = 2; n <= 40; n++) {
    await w.east.write('db', (n % 16) * BS, block(n), token)
    await w.s.mirrors.cutNow('m')
  }
  await until(async () => (await w.status()).lastReceived === 40, 'received 40')
  await w.clock.advance(3_600_000)
  await until(async () => (await w.status()).lastPlayedBack === 40, 'played 40')
  for (let n = 41; n <= 43; n++) {
    await w.east.write('db', (n % 16) * BS, block(n), token)
    await w.s.mirrors.cutNow('m')
  }
  await until(async () => (await w.status()).lastReceived === 43, 'received 43')
  expect((await w.status()).lastPlayedBack).toBe(40)
  return w
}

describe('mirror failover (behaviours 17–22)', () => {
  it('behaviour 17: failover with sync while the source is unreachable fails at once and changes nothing', async () => {
    const w = await system()
    w.d.fabric.partition('east', 'west')
    await expect(w.s.mirrors.failover('m', { mode: 'sync' })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    expect((await w.west.volumeInfo('db')).writable).toBe(false)
    expect((await w.east.volumeInfo('db')).writable).toBe(true)
    expect((await w.status())).toMatchObject({ state: 'replicating', epoch: 1, operation: null })
    expect((await w.d.stateStore.listStreams('workflow/mirror.failover'))).toEqual([])
    await w.s.module.close()
  })

  it('behaviour 18: default failover plays 41–43 received but unplayed, stamps the restart point 43 and makes the destination writable', async () => {
    const w = await fortyThree()
    const result = await w.s.mirrors.failover('m', { mode: 'default' })
    expect(result).toEqual({ restartPoint: 'drkit.m.m.rp-2', lastApplied: 43, epoch: 2 })
    const rp = (await w.west.listSnapshots('db')).find((x) => x.name === result.restartPoint)!
    expect(rp.labels).toMatchObject({ 'drkit.mirror.lastApplied': '43', 'drkit.mirror.epoch': '2', 'drkit.mirror.mode': 'default' })
    expect(rp.holds).toContain('drkit.mirror.m.restart-point')
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
    expect(await w.d.writableNow()).toEqual(['west'])
    expect(w.s.names('mirror.failedOver').map((e) => e.payload)).toEqual([
      { id: 'm', mode: 'default', restartPoint: { site: 'west', volume: 'db', snapshot: 'drkit.m.m.rp-2' }, lastApplied: 43, epoch: 2 },
    ])
    expect(await w.status()).toMatchObject({ state: 'failedOver', epoch: 2, direction: 'reverse', restartPoint: { lastApplied: 43, site: 'west' } })
    expect(w.d.violations).toEqual([])
    await w.s.module.close()
  })

  it('behaviour 19: failover now replays nothing: the restart point is stamped 40, the destination is writable, 41–43 are dropped', async () => {
    const w = await fortyThree()
    const result = await w.s.mirrors.failover('m', { mode: 'now' })
    expect(result).toMatchObject({ lastApplied: 40, epoch: 2 })
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.west, 'db', result.restartPoint))
    expect(await blockHashes(w.west, 'db')).not.toEqual(await blockHashes(w.east, 'db'))
    expect(w.s.names('mirror.deltaSetApplied').map((e) => e.payload['deltaSet'])).not.toContain(41)
    expect((await w.west.getConfig('db.mirror-staging', 'drkit.mirror.staging')) as { sets: unknown[] }).toMatchObject({ sets: [] })
    expect(await w.d.writableNow()).toEqual(['west'])
    await w.s.module.close()
  })

  it('behaviour 20: failover with sync makes the source read-only before the last cut, loses nothing, and makes the destination writable only after replication stopped', async () => {
    const log: Log = []
    const w = await system({ log })
    for (let b = 20; b < 60; b++) await w.east.write('db', b * BS, block(b), token)
    const result = await w.s.mirrors.failover('m', { mode: 'sync' })
    const finalCut = `east.createSnapshot(db,drkit.m.m.ds-${result.lastApplied})`
    expect(log.indexOf('east.setWritable(db,false)')).toBeGreaterThanOrEqual(0)
    expect(log.indexOf('east.setWritable(db,false)')).toBeLessThan(log.indexOf(finalCut))
    expect(w.s.names('mirror.deltaSetCut').at(-1)!.payload).toMatchObject({ deltaSet: result.lastApplied, trigger: 'final' })
    const promoted = log.lastIndexOf('west.setWritable(db,true)')
    expect(promoted).toBeGreaterThan(log.indexOf(`west.createSnapshot(db,drkit.m.m.ds-${result.lastApplied})`))
    expect(promoted).toBeGreaterThan(log.indexOf('west.createSnapshot(db,drkit.m.m.rp-2)'))
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
    expect(await w.d.writableNow()).toEqual(['west'])
    expect(w.d.violations).toEqual([])
    await w.s.module.close()
  })

  it('behaviour 21: when the source cannot be made read-only, a default failover still completes and emits mirror.sourceReadOnlyFailed', async () => {
    const w = await system({ faults: true })
    w.faults['east']!.fail({ method: 'setWritable' })
    const result = await w.s.mirrors.failover('m', { mode: 'default' })
    expect(result.lastApplied).toBe(1)
    expect(w.s.names('mirror.sourceReadOnlyFailed').map((e) => e.payload)).toEqual([expect.objectContaining({ site: 'east', volume: 'db', code: 'E_ADAPTER' })])
    expect((await w.west.volumeInfo('db')).writable).toBe(true)
    await w.s.module.close()
  })

  it('behaviour 22 (per-volume part; the VDM loads at the DR site only once every member is writable and is unloaded at the source: test/modules/server-groups/failover.test.ts, "members fail over in parallel…"): four relationships (a VDM root plus three data volumes) fail over concurrently; all four destinations end writable and all four sources read-only', async () => {
    const clock = new ManualClock()
    const d = await durable({ clock, create: false })
    const s = await openSystem(d)
    const names = ['root', 'fs1', 'fs2', 'fs3']
    for (const name of names) {
      await d.raw['east']!.createVolume({ name, sizeBytes: 64 * BS, blockSize: BS }, token)
      await d.raw['east']!.write(name, 0, block(names.indexOf(name) + 1), token)
      await s.mirrors.create({ id: name, source: { site: 'east', volume: name }, destination: { site: 'west' }, cut: { every: '10h' } })
    }
    for (const name of names) await until(async () => (await s.mirrors.status(name)).lastPlayedBack === 1, `copy of ${name}`)
    const order: string[] = []
    d.stateStore.subscribe('workflow/mirror.failover', (record) => {
      const data = record.data as { name?: string }
      if (record.type === 'step.completed') order.push(`${record.stream.split(':')[1]}:${data.name}`)
    })
    const results = await Promise.all(names.map((name) => s.mirrors.failover(name, { mode: 'default' })))
    expect(results.map((r) => r.epoch)).toEqual([2, 2, 2, 2])
    const firstCommit = order.findIndex((o) => o.endsWith(':commit'))
    for (const name of names) expect(order.indexOf(`${name}:probe-source`)).toBeLessThan(firstCommit)
    for (const name of names) {
      expect((await d.raw['west']!.volumeInfo(name)).writable).toBe(true)
      expect((await d.raw['east']!.volumeInfo(name)).writable).toBe(false)
    }
    await s.module.close()
  })
})

describe('mirror split brain and faults', () => {
  it('split brain: the old primary keeps writing after a failover it did not see; its delta sets are refused (E_FENCED, staleEpochRefused); after resync it matches the new primary', async () => {
    const w = await system({ faults: true })
    w.d.fabric.partition('east', 'west')
    w.faults['east']!.crash()
    const result = await w.s.mirrors.failover('m', { mode: 'default' })
    expect(w.s.names('mirror.sourceReadOnlyFailed')).toHaveLength(1)
    w.faults['east']!.restart()
    await w.east.write('db', 3 * BS, block(222), token)
    await w.west.write('db', 4 * BS, block(111), token)
    const east = (await w.s.module.facade.status('m'))
    expect(east.state).toBe('failedOver')
    w.d.fabric.heal('east', 'west')
    await w.clock.advance(36_000_000)
    await until(() => w.s.names('mirror.staleEpochRefused').length > 0, 'stale epoch refused')
    expect(w.s.names('mirror.staleEpochRefused')[0]!.payload).toMatchObject({ site: 'west', epoch: 1, current: 2 })
    expect(w.s.names('mirror.peerRejected').map((e) => e.payload['code'])).toContain('E_FENCED')
    expect(await w.west.read('db', 3 * BS, BS)).toEqual(block(4))
    expect(await blockHashes(w.west, 'db', result.restartPoint)).not.toEqual(await blockHashes(w.east, 'db'))
    await expect(w.s.mirrors.resync('m')).rejects.toMatchObject({ code: 'E_PRECONDITION' })
    await w.s.mirrors.resync('m', { safetySnapshot: true })
    const status = await w.status()
    expect(status).toMatchObject({ state: 'replicating', direction: 'reverse', source: { site: 'west', writable: true }, destination: { site: 'east', writable: false } })
    const safety = (await w.east.listSnapshots('db')).find((x) => x.name === 'drkit.m.m.undo-2')!
    expect(safety.holds).toContain('drkit.mirror.m.safety')
    expect(await w.east.read('db', 3 * BS, BS, { snapshot: safety.name })).toEqual(block(222))
    expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db', `drkit.m.m.ds-${status.lastPlayedBack}`))
    expect(await w.east.read('db', 4 * BS, BS)).toEqual(block(111))
    await w.s.module.close()
  })

  it('a fenced old source stops cutting: once refused with E_FENCED it cuts nothing more, its session record is inactive and its volume is not fenced', async () => {
    const w = await system({ faults: true })
    w.d.fabric.partition('east', 'west')
    w.faults['east']!.crash()
    await w.s.mirrors.failover('m', { mode: 'default' })
    w.faults['east']!.restart()
    await w.east.write('db', 3 * BS, block(222), token)
    w.d.fabric.heal('east', 'west')
    await w.clock.advance(36_000_000)
    await until(() => w.s.names('mirror.peerRejected').some((e) => e.payload['code'] === 'E_FENCED'), 'fenced')
    await settle()
    const eastCuts = async () => (await w.east.listSnapshots('db')).filter((x) => x.name.startsWith('drkit.m.m.ds-')).map((x) => x.name)
    const before = await eastCuts()
    const cutEvents = w.s.names('mirror.deltaSetCut').length
    await w.east.write('db', 5 * BS, block(223), token)
    for (let period = 0; period < 5; period++) await w.clock.advance(36_000_000)
    expect(await eastCuts()).toEqual(before)
    expect(w.s.names('mirror.deltaSetCut')).toHaveLength(cutEvents)
    expect(await w.east.getConfig('db', 'drkit.mirror.session')).toMatchObject({ role: 'source', epoch: 1, active: false })
    expect(await w.east.isFenced('db')).toBe(false)
    await w.s.module.close()
  })

  it('an adapter failure while reading the source is retried and the delta set still arrives whole', async () => {
    const w = await system({ faults: true })
    w.faults['east']!.fail({ method: 'read', times: 2 })
    await w.east.write('db', 9 * BS, block(99), token)
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    await settle()
    await w.clock.advance(10_000)
    await until(async () => (await w.status()).lastPlayedBack === deltaSet, 'played after retries')
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
    await w.s.module.close()
  })

  it.each([
    ['applied on arrival', undefined],
    ['staged, playback batched hourly', { every: '1h' }],
  ] as const)('an adapter failure while applying (%s) leaves the replica at the last whole delta set; the retry applies it exactly once', async (_, playback) => {
    const w = await system({ faults: true, ...(playback === undefined ? {} : { playback }) })
    w.faults['west']!.fail({ method: 'writeRanges', when: (call) => call.args[0] === 'db', times: 1 })
    await w.east.write('db', 9 * BS, block(99), token)
    await w.east.write('db', 10 * BS, block(98), token)
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    if (playback !== undefined) {
      await until(async () => (await w.status()).lastReceived === deltaSet, 'staged')
      await w.clock.advance(3_600_000)
    }
    await until(() => w.faults['west']!.calls.some((c) => c.method === 'writeRanges' && c.outcome === 'failed'), 'failed apply')
    await settle()
    expect((await w.status()).lastPlayedBack).toBe(deltaSet - 1)
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.west, 'db', 'drkit.m.m.ds-1'))
    expect((await w.west.volumeInfo('db')).writable).toBe(false)
    await w.clock.advance(2_000)
    await until(async () => (await w.status()).lastPlayedBack === deltaSet, 'applied on retry')
    expect(w.s.names('mirror.deltaSetApplied').filter((e) => e.payload['deltaSet'] === deltaSet)).toHaveLength(1)
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
    await w.s.module.close()
  })

  it('an adapter failure past the point of no return of a failover leaves it resumable; re-issuing it finishes the failover', async () => {
    const w = await system({ faults: true })
    w.faults['west']!.fail({ method: 'setWritable', when: (call) => call.args[1] === true, times: 1 })
    await expect(w.s.mirrors.failover('m', { mode: 'default' })).rejects.toMatchObject({ code: 'E_ADAPTER' })
    expect(await w.status()).toMatchObject({ state: 'failingOver', operation: 'failover', epoch: 2 })
    expect(w.s.names('mirror.operationStarted').map((e) => e.payload)).toEqual([{ id: 'm', kind: 'failover', state: 'failingOver', resumed: false }])
    expect(w.s.names('mirror.operationFailed').map((e) => e.payload)).toEqual([expect.objectContaining({ id: 'm', kind: 'failover', state: 'failingOver', resumable: true, code: 'E_ADAPTER' })])
    const result = await w.s.mirrors.failover('m', { mode: 'default' })
    expect(result).toMatchObject({ lastApplied: 1, epoch: 2 })
    expect(w.s.names('mirror.operationStarted').at(-1)!.payload).toMatchObject({ kind: 'failover', resumed: true })
    expect(await w.status()).toMatchObject({ state: 'failedOver', epoch: 2 })
    expect(await w.d.writableNow()).toEqual(['west'])
    await w.s.module.close()
  })
})
