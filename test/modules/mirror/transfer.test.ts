import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/kernel/index.js'
import { injectFaults } from '../../../src/testkit/faults.js'
import type { NetworkPort } from '../../../src/ports/network.js'
import { BS, block, blockHashes, chunkDeltaSet, chunkIndex, random, settle, tapNetwork, token, until, type TappedFrame } from '../../fixtures/mirror-world.js'
import { durable, openSystem, replicating, type Durable } from '../../fixtures/mirror-system.js'
import { crashableWorld } from '../../fixtures/mirror-crash.js'
import type { StoragePort } from '../../../src/ports/storage.js'

const CHUNK = 8 * BS

/** Durable parts whose east network reports every frame sent to `onSend` (which may hold it back). */
async function tapped(onSend: (frame: TappedFrame, d: Durable) => void | Promise<void>, sizeBlocks = 512) {
  const clock = new ManualClock()
  const d: Durable = await durable({ clock, sizeBlocks })
  const east = tapNetwork(d.fabric.port('east'), (frame) => onSend(frame, d))
  return { ...d, networks: { east, west: d.fabric.port('west') } }
}

async function fill(d: Durable, blocks: number, from = 0): Promise<void> {
  for (let b = from; b < from + blocks; b++) await d.raw['east']!.write('db', b * BS, random(BS), token)
}

const create = { id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '1h' }, transfer: { chunkSize: CHUNK, retries: 3 } } as const

/** The two ways a destination receives the next delta set: applied as it arrives, or staged and played later. */
const paths = [
  { path: 'applied on arrival', playback: undefined },
  { path: 'staged, playback batched every 30 min', playback: { every: '30m' } },
] as const

/**
 * Creates relationship `m` over 80 filled blocks and holds the initial copy back from its fifth chunk on, until
 * `release()`; resolves once the copy is under way at the destination.
 */
async function heldCopy(transfer: { readonly stagingMax?: string } = {}) {
  let release: () => void = () => undefined
  const held = new Promise<void>((resolve) => (release = resolve))
  const d = await tapped((frame) => (frame.type === 2 && chunkDeltaSet(frame.bytes) === 1 && chunkIndex(frame.bytes) >= 4 ? held : undefined))
  const s = await openSystem(d)
  await fill(d, 80)
  await s.mirrors.create({ ...create, transfer: { ...create.transfer, ...transfer } })
  await until(async () => (((await d.raw['west']!.getConfig('db', 'drkit.mirror.progress')) as { received?: number } | undefined)?.received ?? 0) > 0, 'copy under way')
  return { d, s, release }
}

/** How many chunks of delta set `n` west holds durably: in the replica's progress record, or in staging. */
async function storedChunks(d: { readonly raw: Record<string, StoragePort> }, n: number): Promise<number> {
  const progress = (await d.raw['west']!.getConfig('db', 'drkit.mirror.progress')) as { n: number; received: number } | undefined
  if (progress?.n === n) return progress.received
  const staged = (await d.raw['west']!.getConfig('db.mirror-staging', 'drkit.mirror.staging')) as { sets: Array<{ n: number; received: number }> } | undefined
  return staged?.sets.find((x) => x.n === n)?.received ?? 0
}

describe('mirror transfer: retries, resumption, initial copy (behaviours 6, 7, 15, 16)', () => {
  it('behaviour 6: a transfer that fails N+1 times in a row is retried exactly N times, then mirror.sendFailed is emitted once; nothing is marked sent', async () => {
    const clock = new ManualClock()
    const d = await durable({ clock })
    const faults = injectFaults(d.fabric.port('east'), { name: 'memory', clock })
    const s = await openSystem({ ...d, networks: { east: faults.port, west: d.fabric.port('west') } })
    await fill(d, 10)
    d.fabric.partition('east', 'west')
    await s.mirrors.create(create)
    await until(() => s.names('mirror.sendFailed').length === 1, 'sendFailed', 2000).catch(async () => {
      for (let i = 0; i < 20 && s.names('mirror.sendFailed').length === 0; i++) await clock.advance(1_000)
    })
    expect(s.names('mirror.sendFailed')).toHaveLength(1)
    expect(faults.count('connect')).toBe(4)
    expect(s.names('mirror.sendFailed')[0]!.payload).toMatchObject({ deltaSet: 1, retries: 3, code: 'E_UNAVAILABLE' })
    await clock.advance(30_000)
    expect(s.names('mirror.sendFailed')).toHaveLength(1)
    const status = await s.mirrors.status('m')
    expect(status.lastSent).toBeNull()
    expect(status.lastPlayedBack).toBeNull()
    d.fabric.heal('east', 'west')
    await clock.advance(10_000)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'recovered')
    await s.module.close()
  })

  it.each(paths)('a channel cut mid-delta-set (partition) resumes at the first chunk the destination lacks; acknowledged chunks are never resent ($path)', async ({ playback }) => {
    const sent: Array<{ n: number; index: number }> = []
    let cut = false
    const d = await tapped((frame, world) => {
      if (frame.type !== 2) return
      const entry = { n: chunkDeltaSet(frame.bytes), index: chunkIndex(frame.bytes) }
      sent.push(entry)
      if (entry.n === 2 && entry.index === 10 && !cut) {
        cut = true
        world.fabric.partition('east', 'west')
      }
    })
    const s = await openSystem(d)
    await fill(d, 4)
    await s.mirrors.create({ ...create, ...(playback === undefined ? {} : { playback }) })
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    await fill(d, 160, 100)
    await s.mirrors.cutNow('m')
    await until(() => cut, 'partition')
    await settle()
    const received = await storedChunks(d, 2)
    expect(received).toBeGreaterThan(0)
    d.fabric.heal('east', 'west')
    await d.clock.advance(10_000)
    await until(async () => (await s.mirrors.status('m')).lastReceived === 2, 'delta 2 received')
    if (playback !== undefined) await d.clock.advance(1_800_000)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 2, 'delta 2 played')
    const ofTwo = sent.filter((x) => x.n === 2).map((x) => x.index)
    const firstAttempt = ofTwo.slice(0, ofTwo.indexOf(10) + 1)
    const resumed = ofTwo.slice(firstAttempt.length)
    expect(resumed[0]).toBe(received)
    expect(resumed).toEqual(Array.from({ length: 20 - received }, (_, i) => received + i))
    expect(s.names('mirror.deltaSetSent').at(-1)!.payload).toMatchObject({ deltaSet: 2, chunks: 20, resumedFromChunk: received, chunksSent: 20 - received })
    expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db', 'drkit.m.m.ds-2'))
    await s.module.close()
  })

  it.each(paths)('behaviour 7: a transfer interrupted by the death of the process resends the interrupted chunk first, never the chunks already stored ($path)', async ({ playback }) => {
    const sent: Array<{ n: number; index: number; incarnation: number }> = []
    const w = await crashableWorld({
      sizeBlocks: 512,
      network: (_site, port, incarnation) =>
        tapNetwork(port, (frame) => {
          if (frame.type !== 2) return
          const entry = { n: chunkDeltaSet(frame.bytes), index: chunkIndex(frame.bytes), incarnation: incarnation.number }
          sent.push(entry)
          if (entry.n === 2 && entry.index === 12 && incarnation.number === 1) incarnation.kill()
        }),
    })
    let current = await w.start()
    for (let b = 0; b < 4; b++) await w.raw['east']!.write('db', b * BS, random(BS), token)
    await current.mirrors.create({ ...create, ...(playback === undefined ? {} : { playback }) })
    await until(async () => (await current.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    for (let b = 100; b < 260; b++) await w.raw['east']!.write('db', b * BS, random(BS), token)
    await current.mirrors.cutNow('m')
    await until(() => current.isDead(), 'killed mid-transfer')
    await settle()
    const received = await storedChunks({ raw: w.raw }, 2)
    expect(received).toBeGreaterThan(0)
    expect(received).toBeLessThan(20)
    current = await w.start()
    await w.clock.advance(10_000)
    await until(async () => (await current.mirrors.status('m')).lastReceived === 2, 'delta 2 received after the restart')
    if (playback !== undefined) await w.clock.advance(1_800_000)
    await until(async () => (await current.mirrors.status('m')).lastPlayedBack === 2, 'delta 2 played')
    const resumed = sent.filter((x) => x.incarnation === 2 && x.n === 2).map((x) => x.index)
    expect(resumed[0]).toBe(received)
    expect(resumed).toEqual(Array.from({ length: 20 - received }, (_, i) => received + i))
    expect(w.names('mirror.deltaSetApplied').filter((e) => e.payload['deltaSet'] === 2)).toHaveLength(1)
    expect(await blockHashes(w.raw['west']!, 'db')).toEqual(await blockHashes(w.raw['east']!, 'db', 'drkit.m.m.ds-2'))
    expect(w.violations).toEqual([])
    await current.module.close()
  })

  it('behaviour 15: the initial copy is cut 1 stamped with its delta-set number, sends only allocated blocks, and playback continues at delta set 2', async () => {
    const d = await durable({ clock: new ManualClock(), sizeBlocks: 1024 })
    const s = await openSystem(d)
    for (const b of [0, 1, 2, 500, 501, 1023]) await d.raw['east']!.write('db', b * BS, block(b), token)
    await s.mirrors.create(create)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
    const cut1 = (await d.raw['east']!.listSnapshots('db')).find((x) => x.name === 'drkit.m.m.ds-1')!
    expect(cut1.labels).toMatchObject({ 'drkit.mirror.deltaSet': '1', 'drkit.mirror.baseDeltaSet': '', 'drkit.mirror.kind': 'cut' })
    expect(s.names('mirror.deltaSetSent')[0]!.payload).toMatchObject({ deltaSet: 1, full: true, bytes: 6 * BS })
    expect((await d.raw['west']!.volumeInfo('db')).allocatedBytes).toBe(6 * BS)
    await d.raw['east']!.write('db', 9 * BS, block(9), token)
    const { deltaSet } = await s.mirrors.cutNow('m')
    expect(deltaSet).toBe(2)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 2, 'delta 2')
    expect(s.names('mirror.deltaSetApplied').map((e) => e.payload['deltaSet'])).toEqual([1, 2])
    expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
    await s.module.close()
  })

  it('behaviour 16: writes during the initial copy are cut into delta set 2, which arrives alongside the copy and is buffered at the destination, not applied; it is played once the copy is whole', async () => {
    const { d, s, release } = await heldCopy()
    await d.raw['east']!.write('db', 5 * BS, block(55), token)
    expect((await s.mirrors.cutNow('m')).deltaSet).toBe(2)
    const staging = async () => ((await d.raw['west']!.getConfig('db.mirror-staging', 'drkit.mirror.staging')) as { sets: Array<{ n: number; header: unknown }> }).sets
    await until(async () => (await staging()).some((x) => x.n === 2 && x.header !== null), 'delta set 2 buffered at the destination')
    expect((await s.mirrors.status('m')).lastPlayedBack).toBeNull()
    expect(s.names('mirror.deltaSetApplied')).toEqual([])
    expect(await d.raw['west']!.read('db', 5 * BS, BS), 'delta set 2 is not applied while the copy is incomplete').toEqual(await d.raw['east']!.read('db', 5 * BS, BS, { snapshot: 'drkit.m.m.ds-1' }))
    release()
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 2, 'copy, then delta set 2')
    expect(s.names('mirror.deltaSetApplied').map((e) => e.payload['deltaSet'])).toEqual([1, 2])
    expect(s.names('mirror.deltaSetSent').find((e) => e.payload['deltaSet'] === 2)!.payload).toMatchObject({ bytes: BS, full: false })
    expect(await d.raw['west']!.read('db', 5 * BS, BS)).toEqual(block(55))
    expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
    await s.module.close()
  })

  it('what goes alongside a held copy stops at the destination\'s staging bound; the rest follows the copy, in order', async () => {
    const { d, s, release } = await heldCopy({ stagingMax: '16KiB' })
    const cut = async (first: number): Promise<number> => {
      for (let b = first; b < first + 8; b++) await d.raw['east']!.write('db', b * BS, block(b + 1), token)
      return (await s.mirrors.cutNow('m')).deltaSet
    }
    const second = await cut(300)
    await until(async () => s.names('mirror.deltaSetSent').some((e) => e.payload['deltaSet'] === second), 'first set alongside')
    const third = await cut(320)
    await settle()
    const staged = ((await d.raw['west']!.getConfig('db.mirror-staging', 'drkit.mirror.staging')) as { sets: Array<{ n: number }> }).sets.map((x) => x.n)
    expect(staged, 'the first set went alongside; the next waits for the copy: staging is bounded').toEqual([second])
    release()
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === third, 'copy, then both sets')
    expect(s.names('mirror.deltaSetApplied').map((e) => e.payload['deltaSet'])).toEqual([1, second, third])
    expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
    await s.module.close()
  })

  it('an interrupted initial copy resumes where it stopped, and the delta sets cut meanwhile follow it', async () => {
    const sent: Array<{ n: number; index: number }> = []
    let cut = false
    const d = await tapped((frame, world) => {
      if (frame.type !== 2) return
      sent.push({ n: chunkDeltaSet(frame.bytes), index: chunkIndex(frame.bytes) })
      if (chunkDeltaSet(frame.bytes) === 1 && chunkIndex(frame.bytes) === 3 && !cut) {
        cut = true
        world.fabric.partition('east', 'west')
      }
    })
    const s = await openSystem(d)
    await fill(d, 80)
    await s.mirrors.create(create)
    await until(() => cut, 'copy interrupted')
    await d.raw['east']!.write('db', 5 * BS, block(55), token)
    await s.mirrors.cutNow('m')
    const progress = (await d.raw['west']!.getConfig('db', 'drkit.mirror.progress')) as { n: number; received: number }
    expect(progress.n).toBe(1)
    expect((await s.mirrors.status('m')).lastPlayedBack).toBeNull()
    d.fabric.heal('east', 'west')
    await d.clock.advance(10_000)
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 2, 'copy and delta 2')
    expect(s.names('mirror.deltaSetApplied').map((e) => e.payload['deltaSet'])).toEqual([1, 2])
    const ofOne = sent.filter((x) => x.n === 1).map((x) => x.index)
    expect(ofOne.slice(ofOne.indexOf(3) + 1)[0]).toBe(progress.received)
    expect(s.names('mirror.deltaSetSent').find((e) => e.payload['deltaSet'] === 2)!.payload).toMatchObject({ bytes: BS, full: false })
    expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
    await s.module.close()
  })
})

describe('mirror transfer: bandwidth limit', () => {
  it('a session limited to 16 KiB/s never sends more than rate × time plus one second of burst and a frame (virtual time); lifting the limit lets the next delta set through at once', async () => {
    const d = await durable({ clock: new ManualClock(), sizeBlocks: 512 })
    const s = await openSystem(d)
    await replicating(s, { blocks: 16 })
    const rate = 16 * 1024
    expect((await s.mirrors.setBandwidth('m', { bandwidth: '16KiB' })).transfer.bandwidthBytesPerSecond).toBe(rate)
    for (const site of ['east', 'west']) expect(await d.raw[site]!.getConfig('db', 'drkit.mirror.session')).toMatchObject({ transfer: { bandwidthBytesPerSecond: rate } })
    for (let b = 0; b < 64; b++) await d.raw['east']!.write('db', (100 + b) * BS, random(BS), token)
    const sent = async () => (await s.mirrors.status('m')).transfer.bytesSent
    const base = await sent()
    const start = d.clock.now()
    const { deltaSet } = await s.mirrors.cutNow('m')
    const frame = 4 * BS + 32 + 9 * 4
    let elapsed = 0
    while ((await s.mirrors.status('m')).lastPlayedBack !== deltaSet) {
      await d.clock.advance(250)
      elapsed = d.clock.now() - start
      expect(await sent() - base).toBeLessThanOrEqual((rate * elapsed) / 1000 + rate + frame)
      expect(elapsed).toBeLessThan(60_000)
    }
    expect(await sent() - base).toBeGreaterThanOrEqual(64 * BS)
    expect(elapsed).toBeGreaterThanOrEqual(((64 * BS - rate - frame) * 1000) / rate)
    expect((await s.mirrors.setBandwidth('m', { bandwidth: null })).transfer.bandwidthBytesPerSecond).toBeNull()
    for (let b = 0; b < 64; b++) await d.raw['east']!.write('db', (200 + b) * BS, random(BS), token)
    const next = (await s.mirrors.cutNow('m')).deltaSet
    await until(async () => (await s.mirrors.status('m')).lastPlayedBack === next, 'unlimited delta set')
    expect(await blockHashes(d.raw['west']!, 'db')).toEqual(await blockHashes(d.raw['east']!, 'db'))
    await expect(s.mirrors.setBandwidth('m', { bandwidth: 'fast' } as never)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(s.mirrors.setBandwidth('m', { bandwidth: 0 })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect((await s.mirrors.status('m')).transfer.bandwidthBytesPerSecond).toBeNull()
    await s.module.close()
  })

  it('a bandwidth given at create is recorded with the relationship and survives a coordinator restart', async () => {
    const d = await durable({ clock: new ManualClock() })
    const s = await openSystem(d)
    await s.mirrors.create({ ...create, transfer: { ...create.transfer, bandwidth: '1MiB' } })
    expect((await s.mirrors.status('m')).transfer.bandwidthBytesPerSecond).toBe(1024 * 1024)
    await s.module.close()
    const again = await openSystem(d)
    expect((await again.mirrors.status('m')).transfer.bandwidthBytesPerSecond).toBe(1024 * 1024)
    expect(await d.raw['east']!.getConfig('db', 'drkit.mirror.session')).toMatchObject({ transfer: { bandwidthBytesPerSecond: 1024 * 1024 } })
    await again.module.close()
  })
})

export type { NetworkPort }
