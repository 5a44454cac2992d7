import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/kernel/index.js'
import { injectFaults, type FaultInjector } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { BS, block, blockHashes, settle, token, until } from '../../fixtures/mirror-world.js'
import { durable, openSystem, replicating } from '../../fixtures/mirror-system.js'

async function system(options: { playback?: { every?: string; highWaterMark?: string }; stagingMax?: string; backlogMax?: string; slowWest?: boolean; chunk?: number } = {}) {
  const clock = new ManualClock()
  let west: FaultInjector<StoragePort> | undefined
  const d = await durable({
    clock,
    sizeBlocks: 512,
    wrap: (site, storage) => {
      if (site !== 'west' || options.slowWest !== true) return storage
      west = injectFaults(storage, { name: 'memory', clock })
      return west.port
    },
  })
  const s = await openSystem(d)
  await replicating(s, {
    blocks: 8,
    transfer: {
      ...(options.chunk === undefined ? {} : { chunkSize: options.chunk }),
      ...(options.stagingMax === undefined ? {} : { stagingMax: options.stagingMax }),
      ...(options.backlogMax === undefined ? {} : { backlogMax: options.backlogMax }),
    },
    ...(options.playback === undefined ? {} : { playback: options.playback }),
  })
  const applied = () => s.names('mirror.deltaSetApplied').map((e) => e.payload['deltaSet'] as number)
  return { clock, d, s, east: d.raw['east']!, west: d.raw['west']!, westFaults: west, applied }
}

describe('mirror playback consistency (behaviours 12, 13, 14, 30, 37)', () => {
  it('behaviour 12, as decided in docs/mirror.md (§10.8: readers get whole delta sets, not a block index): while delta set n is being applied, the read view (the recovery-point snapshot) shows delta set n-1 whole; afterwards it shows n', async () => {
    const w = await system({ slowWest: true })
    await w.east.write('db', 2 * BS, block(200), token)
    await w.east.write('db', 6 * BS, block(201), token)
    let holding = true
    w.westFaults!.setLatency((call) => (holding && call.method === 'writeRanges' && call.args[0] === 'db' ? 60_000 : 0))
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    await until(() => w.westFaults!.calls.some((c) => c.method === 'writeRanges' && c.args[0] === 'db' && c.outcome === 'pending'), 'apply under way')
    const during = await w.s.mirrors.status('m')
    expect(during.recoveryPoint).toMatchObject({ deltaSet: deltaSet - 1, snapshot: `drkit.m.m.ds-${deltaSet - 1}` })
    const view = during.recoveryPoint!.snapshot
    expect(await w.west.read('db', 2 * BS, BS, { snapshot: view })).toEqual(block(3))
    expect(await w.west.read('db', 6 * BS, BS, { snapshot: view })).toEqual(block(7))
    holding = false
    await w.clock.advance(60_000)
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === deltaSet, 'applied')
    const after = (await w.s.mirrors.status('m')).recoveryPoint!.snapshot
    expect(await w.west.read('db', 2 * BS, BS, { snapshot: after })).toEqual(block(200))
    expect(await w.west.read('db', 6 * BS, BS, { snapshot: after })).toEqual(block(201))
    await w.s.module.close()
  })

  it.each([
    ['staged, playback batched hourly: stop waits for the apply to finish, leaving delta set n whole', { every: '1h' }, 0],
    ['applied on arrival: stop waits for the write in progress, then rolls the half-received set back, leaving delta set n-1 whole', undefined, 1],
  ] as const)('behaviour 13 (%s)', async (_, playback, behind) => {
    const w = await system({ slowWest: true, ...(playback === undefined ? {} : { playback }), chunk: 4 * BS })
    for (let b = 10; b < 30; b++) await w.east.write('db', b * BS, block(b + 50), token)
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    if (playback !== undefined) await until(async () => (await w.s.mirrors.status('m')).lastReceived === deltaSet, 'staged')
    let holding = true
    w.westFaults!.setLatency((call) => (holding && call.method === 'writeRanges' && call.args[0] === 'db' ? 30 * 60_000 : 0))
    if (playback !== undefined) await w.clock.advance(3_600_000)
    await until(() => w.westFaults!.calls.some((c) => c.method === 'writeRanges' && c.args[0] === 'db' && c.outcome === 'pending'), 'apply under way')
    let stopped = false
    const stopping = w.s.mirrors.stop('m').then(() => (stopped = true))
    await settle()
    expect(stopped).toBe(false)
    holding = false
    await w.clock.advance(30 * 60_000)
    await stopping
    const whole = deltaSet - behind
    expect(w.applied().includes(deltaSet)).toBe(behind === 0)
    expect((await w.s.mirrors.status('m')).state).toBe('stopped')
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.west, 'db', `drkit.m.m.ds-${whole}`))
    expect((await w.west.volumeInfo('db')).writable).toBe(false)
    await w.s.mirrors.start('m')
    await w.clock.advance(3_600_000)
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack! >= deltaSet, 'played after start')
    expect(await blockHashes(w.west, 'db', `drkit.m.m.ds-${deltaSet}`)).toEqual(await blockHashes(w.east, 'db', `drkit.m.m.ds-${deltaSet}`))
    await w.s.module.close()
  })

  it('behaviour 14: with a playback policy of 1200 s / 50 MB, three small delta sets within 5 min wait until 1200 s, then all three are applied in order', async () => {
    const w = await system({ playback: { every: '1200s', highWaterMark: '50MB' } })
    const n: number[] = []
    for (let i = 0; i < 3; i++) {
      await w.east.write('db', (40 + i) * BS, block(40 + i), token)
      n.push((await w.s.mirrors.cutNow('m')).deltaSet)
      await until(async () => (await w.s.mirrors.status('m')).lastReceived === n[i], `received ${n[i]}`)
      await w.clock.advance(100_000)
    }
    expect(w.applied()).toEqual([1])
    await w.clock.advance(1_200_000 - 300_000 - 1_000)
    expect(w.applied()).toEqual([1])
    await w.clock.advance(1_000)
    await until(() => w.applied().length === 4, 'batch applied')
    expect(w.applied()).toEqual([1, ...n])
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
    await w.s.module.close()
  })

  it('behaviour 30: with the destination staging full and its playback held, the destination stops reading and the source waits in send; once the source backlog also reaches its limit, the source volume\'s I/O is suspended until the destination\'s playback starts; nothing is lost, everything arrives in order', async () => {
    const stagingMax = 128 * 1024
    const backlogMax = 400 * 1024
    const w = await system({ playback: { every: '1h' }, stagingMax: '128KiB', backlogMax: '400KiB', chunk: BS })
    const flow = () => w.s.names('mirror.flowControlled').map((e) => e.payload)
    const cuts: number[] = []
    for (let i = 0; i < 16 && flow().length === 0; i++) {
      for (let b = 0; b < 10; b++) await w.east.write('db', (100 + b) * BS, block(i * 10 + b + 1), token)
      cuts.push((await w.s.mirrors.cutNow('m')).deltaSet)
      await settle()
    }
    // The source was waiting in a send when its backlog reached the limit: its I/O is suspended.
    expect(flow()).toEqual([expect.objectContaining({ id: 'm', site: 'east', volume: 'db', suspended: true, limitBytes: backlogMax })])
    expect(flow()[0]!['backlogBytes'] as number).toBeGreaterThanOrEqual(backlogMax)
    expect(await w.east.isFenced('db')).toBe(true)
    const staging = (await w.west.getConfig('db.mirror-staging', 'drkit.mirror.staging')) as { sets: Array<{ bytes: number }> }
    const staged = staging.sets.reduce((sum, set) => sum + set.bytes, 0)
    expect(staged).toBeGreaterThan(0)
    // A delta set is staged whole or not at all, so the bound is crossed by at most the set that crossed it (10 chunk
    // records of two blocks each).
    expect(staged, 'the destination stopped reading at its staging bound').toBeLessThanOrEqual(stagingMax + 10 * 2 * BS)
    const held = await w.s.mirrors.status('m')
    expect(held.lastPlayedBack).toBe(1)
    expect(held.lastSent ?? 0).toBeLessThan(cuts.at(-1)!)
    let written = false
    const suspendedWrite = w.east.write('db', 5 * BS, block(250), token).then(() => (written = true))
    await settle()
    expect(written, 'a write to the suspended source waits').toBe(false)
    await w.clock.advance(3_600_000)
    await suspendedWrite
    expect(flow().at(-1)).toMatchObject({ suspended: false })
    expect(await w.east.isFenced('db')).toBe(false)
    const last = (await w.s.mirrors.cutNow('m')).deltaSet
    for (let i = 0; i < 12 && (await w.s.mirrors.status('m')).lastPlayedBack !== last; i++) {
      await w.clock.advance(3_600_000)
      await settle(100)
    }
    expect(w.applied()).toEqual([1, ...cuts, last])
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
    await w.s.module.close()
  })

  it('behaviour 37: a destination older than the oldest cut the source keeps gets a full copy of the newest cut, stamped with its delta-set number (36), and increments after it; an up-to-date one gets nothing newer', async () => {
    const w = await system()
    for (let i = 2; i <= 36; i++) {
      await w.east.write('db', (i % 20) * BS, block(i), token)
      await w.s.mirrors.cutNow('m')
    }
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === 36, 'played 36')
    await w.s.mirrors.stop('m')
    const before = (await w.s.mirrors.status('m')).transfer.chunkFramesSent
    await w.s.mirrors.start('m')
    await settle(200)
    expect((await w.s.mirrors.status('m')).transfer.chunkFramesSent).toBe(before)
    expect((await w.east.listSnapshots('db')).map((x) => x.name)).toEqual(['drkit.m.m.ds-36'])
    await w.s.mirrors.stop('m')
    for (const snap of await w.west.listSnapshots('db')) {
      for (const tag of snap.holds) await w.west.releaseSnapshot('db', snap.name, tag, token)
      await w.west.deleteSnapshot('db', snap.name, token)
    }
    await w.s.mirrors.start('m')
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === 36, 'full copy of 36')
    expect(w.s.names('mirror.deltaSetSent').at(-1)!.payload).toMatchObject({ deltaSet: 36, full: true })
    expect((await w.west.listSnapshots('db')).find((x) => x.name === 'drkit.m.m.ds-36')?.labels).toMatchObject({ 'drkit.mirror.deltaSet': '36' })
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db', 'drkit.m.m.ds-36'))
    await w.east.write('db', 51 * BS, block(51), token)
    const next = await w.s.mirrors.cutNow('m')
    expect(next.deltaSet).toBe(37)
    await until(async () => (await w.s.mirrors.status('m')).lastPlayedBack === 37, 'incremental 37')
    expect(w.s.names('mirror.deltaSetSent').at(-1)!.payload).toMatchObject({ deltaSet: 37, full: false, bytes: BS })
    expect(await blockHashes(w.west, 'db')).toEqual(await blockHashes(w.east, 'db'))
    await w.s.module.close()
  })
})
