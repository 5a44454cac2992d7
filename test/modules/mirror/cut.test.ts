import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/kernel/index.js'
import { injectFaults, type FaultInjector } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { BS, block, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem } from '../../fixtures/mirror-system.js'

const MiB = 1024 * 1024

async function system(options: { sizeBlocks?: number; cut?: { every?: string; highWaterMark?: string; probe?: string }; tapEast?: boolean } = {}) {
  const clock = new ManualClock()
  let eastFaults: FaultInjector<StoragePort> | undefined
  const d = await durable({
    clock,
    sizeBlocks: options.sizeBlocks ?? 256,
    wrap: (site, storage) => {
      if (site !== 'east' || options.tapEast !== true) return storage
      eastFaults = injectFaults(storage, { name: 'memory', clock })
      return eastFaults.port
    },
  })
  const s = await openSystem(d)
  await d.raw['east']!.write('db', 0, block(1), token)
  await s.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '600s', highWaterMark: '8MiB', probe: '1s', ...options.cut }, transfer: { chunkSize: '32KiB' } })
  await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
  const cuts = () => s.names('mirror.deltaSetCut').map((e) => e.payload as { deltaSet: number; trigger: string; changedBytes: number })
  return { clock, d, s, cuts, east: d.raw['east']!, west: d.raw['west']!, eastFaults }
}

describe('mirror delta-set cutting (note 002 §9 behaviours 1–5)', () => {
  it('behaviour 1: 9 MB of distinct blocks within 10 s cut a delta set at the next probe, before the 600 s timeout; the timeout re-arms and the modification size resets', async () => {
    const w = await system({ sizeBlocks: 2560 })
    const start = w.clock.now()
    for (let second = 0; second < 9; second++) {
      await w.east.write('db', (1 + second * 256) * BS, new Uint8Array(MiB).fill(second + 10), token)
      await w.clock.advance(1000)
    }
    const hwm = w.cuts().find((c) => c.trigger === 'highWaterMark')
    expect(hwm).toBeDefined()
    expect(hwm!.changedBytes).toBeGreaterThanOrEqual(8 * MiB)
    const status = await w.s.mirrors.status('m')
    expect(status.lastCut).toMatchObject({ deltaSet: hwm!.deltaSet })
    const hwmCutAt = status.lastCut!.cutAt!
    expect(hwmCutAt - start).toBeLessThan(10_000)
    // the modification size was reset by the cut: what is pending now is only what was written after it
    expect(status.lagBytes).toBeLessThan(8 * MiB)
    // the timeout was re-armed at the cut: nothing fires at start + 600 s, one cut fires at cut + 600 s
    await w.clock.advance(hwmCutAt + 599_000 - w.clock.now())
    expect(w.cuts().filter((c) => c.trigger === 'timeout')).toEqual([])
    await w.clock.advance(2_000)
    expect(w.cuts().filter((c) => c.trigger === 'timeout')).toHaveLength(1)
    await until(async () => (await w.s.mirrors.status('m')).lagBytes === 0, 'drained')
    await w.s.module.close()
  })

  it('behaviour 2: with one block written, the 600 s timeout cuts exactly one delta set holding that block', async () => {
    const w = await system()
    await w.east.write('db', 5 * BS, block(9), token)
    await w.clock.advance(599_000)
    expect(w.cuts().filter((c) => c.trigger !== 'initial')).toEqual([])
    await w.clock.advance(1_000)
    const after = w.cuts().filter((c) => c.trigger !== 'initial')
    expect(after).toEqual([expect.objectContaining({ deltaSet: 2, trigger: 'timeout', changedBytes: BS })])
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === 2, 'played')
    const applied = w.s.names('mirror.deltaSetApplied').map((e) => e.payload)
    expect(applied[1]).toMatchObject({ deltaSet: 2, blocks: 1 })
    await w.s.module.close()
  })

  it('behaviour 3: block 42 written 5 times between cuts is sent once, with its value at the cut', async () => {
    const w = await system()
    for (let v = 1; v <= 5; v++) await w.east.write('db', 42 * BS, block(100 + v), token)
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === deltaSet, 'played')
    const sent = w.s.names('mirror.deltaSetSent').find((e) => e.payload['deltaSet'] === deltaSet)!.payload
    expect(sent).toMatchObject({ bytes: BS, chunks: 1 })
    expect(await w.west.read('db', 42 * BS, BS)).toEqual(block(105))
    await w.s.module.close()
  })

  it('behaviour 4: a block written after the cut but before the delta set is sent travels in the next delta set only; the cut keeps the old value', async () => {
    const w = await system()
    w.d.fabric.partition('east', 'west')
    await w.east.write('db', 7 * BS, block(70), token)
    const { deltaSet: n } = await w.s.mirrors.cutNow('m')
    await w.east.write('db', 7 * BS, block(71), token)
    w.d.fabric.heal('east', 'west')
    await w.clock.advance(10_000)
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === n, 'n played')
    expect(await w.west.read('db', 7 * BS, BS)).toEqual(block(70))
    const { deltaSet: next } = await w.s.mirrors.cutNow('m')
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === next, 'n+1 played')
    expect(await w.west.read('db', 7 * BS, BS)).toEqual(block(71))
    await w.s.module.close()
  })

  it('behaviour 5: the cut fences the volume only around the snapshot and unfences before any block of the delta set is read', async () => {
    const w = await system({ tapEast: true })
    await w.east.write('db', 3 * BS, block(3), token)
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === deltaSet, 'played')
    const calls = w.eastFaults!.calls
    const name = `drkit.m.m.ds-${deltaSet}`
    const snap = calls.findIndex((c) => c.method === 'createSnapshot' && c.args[1] === name)
    const fence = calls.slice(0, snap).map((c) => c.method).lastIndexOf('fence')
    const unfence = calls.findIndex((c, i) => i > snap && c.method === 'unfence')
    const firstRead = calls.findIndex((c) => c.method === 'readRanges' && (c.args[2] as { snapshot?: string } | undefined)?.snapshot === name)
    expect(fence).toBeGreaterThanOrEqual(0)
    expect(fence).toBeLessThan(snap)
    expect(unfence).toBeGreaterThan(snap)
    expect(firstRead).toBeGreaterThan(unfence)
    expect(calls.slice(fence + 1, snap).map((c) => c.method)).toEqual([])
    expect(await w.east.isFenced('db')).toBe(false)
    await w.s.module.close()
  })

  it('an unfence that fails is retried with backoff: the cut stands, the volume ends unfenced and writes that waited complete', async () => {
    const w = await system({ tapEast: true })
    const unfences = () => w.eastFaults!.count('unfence') - initial
    const initial = w.eastFaults!.count('unfence')
    w.eastFaults!.fail({ method: 'unfence', times: 3 })
    await w.east.write('db', 3 * BS, block(31), token)
    const cutting = w.s.mirrors.cutNow('m')
    await until(() => unfences() >= 1, 'first unfence')
    const waiting = w.d.storages['east']!.write('db', 4 * BS, block(41), token)
    for (let i = 0; i < 10 && unfences() < 4; i++) await w.clock.advance(1_000)
    const { deltaSet } = await cutting
    await waiting
    expect(unfences()).toBe(4)
    expect(await w.east.isFenced('db')).toBe(false)
    expect(w.s.names('mirror.unfenceFailed')).toEqual([])
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === deltaSet, 'played')
    expect(await w.west.read('db', 3 * BS, BS)).toEqual(block(31))
    await w.s.module.close()
  })

  it('an unfence that keeps failing emits mirror.unfenceFailed and is retried in the background until the volume is unfenced', async () => {
    const w = await system({ tapEast: true })
    const stopFailing = w.eastFaults!.fail({ method: 'unfence' })
    const cutting = w.s.mirrors.cutNow('m')
    for (let i = 0; i < 20 && w.s.names('mirror.unfenceFailed').length === 0; i++) await w.clock.advance(1_000)
    expect(w.s.names('mirror.unfenceFailed').map((e) => e.payload)).toEqual([expect.objectContaining({ id: 'm', site: 'east', volume: 'db', attempts: 5, code: 'E_ADAPTER' })])
    const { deltaSet } = await cutting
    expect(deltaSet).toBe(2)
    expect(await w.east.isFenced('db')).toBe(true)
    await w.clock.advance(20_000)
    expect(await w.east.isFenced('db')).toBe(true)
    expect(w.s.names('mirror.unfenceFailed')).toHaveLength(1)
    stopFailing()
    await w.clock.advance(5_000)
    expect(await w.east.isFenced('db')).toBe(false)
    await w.east.write('db', 6 * BS, block(61), token)
    await w.s.module.close()
  })

  it('status lists each cut\'s changed blocks once: with many cuts pending, a status call costs one changed-block listing (what is not cut yet)', async () => {
    const w = await system({ tapEast: true })
    w.d.fabric.partition('east', 'west')
    for (let n = 0; n < 12; n++) {
      await w.east.write('db', (10 + n) * BS, block(n), token)
      await w.s.mirrors.cutNow('m')
    }
    await w.east.write('db', 40 * BS, block(40), token)
    const before = w.eastFaults!.count('changedBlocks')
    const status = await w.s.mirrors.status('m')
    expect(w.eastFaults!.count('changedBlocks') - before).toBe(1)
    expect(status.lagBytes).toBe(13 * BS)
    w.d.fabric.heal('east', 'west')
    await w.s.module.close()
  })
})
