import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../../src/kernel/index.js'
import { decodeFrame } from '../../../src/modules/mirror/protocol.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { BS, block, blockHashes, chunkDeltaSet, chunkIndex, settle, tapNetwork, token, until, type TappedFrame } from '../../fixtures/mirror-world.js'
import { crashableWorld } from '../../fixtures/mirror-crash.js'
import { durable, openSystem, replicating, type Durable } from '../../fixtures/mirror-system.js'

interface Options {
  readonly onEastSend?: (frame: TappedFrame, d: Durable) => void
  readonly onWestSend?: (frame: TappedFrame, d: Durable) => void | Promise<void>
  readonly wrap?: (site: string, storage: StoragePort, d: () => Durable) => StoragePort
}

async function world(options: Options = {}) {
  const clock = new ManualClock()
  let self: Durable | undefined
  const base = await durable({ clock, sizeBlocks: 256, ...(options.wrap === undefined ? {} : { wrap: (site: string, storage: StoragePort) => options.wrap!(site, storage, () => self!) }) })
  const d: Durable = {
    ...base,
    networks: {
      east: tapNetwork(base.fabric.port('east'), (f) => options.onEastSend?.(f, d)),
      west: tapNetwork(base.fabric.port('west'), (f) => options.onWestSend?.(f, d)),
    },
  }
  self = d
  const s = await openSystem(d)
  for (let b = 0; b < 32; b++) await d.raw['east']!.write('db', b * BS, block(b + 1), token)
  await s.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h', probe: '1h' }, transfer: { chunkSize: 4 * BS } })
  await until(async () => (await s.mirrors.status('m')).lastPlayedBack === 1, 'initial copy')
  return { clock, d, s, east: d.raw['east']!, west: d.raw['west']!, status: () => s.mirrors.status('m') }
}

type World = Awaited<ReturnType<typeof world>>

/** Replicates to 43, then cuts 44–47 on east while west cannot be reached, then fails over (default) to west. */
async function failedOverAt43(w: World) {
  for (let n = 2; n <= 43; n++) {
    await w.east.write('db', (n % 32) * BS, block(n), token)
    await w.s.mirrors.cutNow('m')
  }
  await until(async () => (await w.status()).lastPlayedBack === 43, 'played 43')
  w.d.fabric.partition('east', 'west')
  const changed: Record<number, number[]> = { 44: [100, 101], 45: [102, 5], 46: [103, 101], 47: [104] }
  for (const [n, blocks] of Object.entries(changed)) {
    for (const b of blocks) await w.east.write('db', b * BS, block(Number(n) + b), token)
    expect((await w.s.mirrors.cutNow('m')).deltaSet).toBe(Number(n))
  }
  const result = await w.s.mirrors.failover('m', { mode: 'default' })
  expect(result.lastApplied).toBe(43)
  w.d.fabric.heal('east', 'west')
  return { result, union: [...new Set(Object.values(changed).flat())].sort((a, b) => a - b) }
}

describe('mirror resync (behaviours 23–26)', () => {
  it('behaviour 23: the old primary sends the union of the blocks of its delta sets 44..47, receives their values as of the restart point, and writes them', async () => {
    const fetched: number[][] = []
    const w = await world({
      onEastSend: (frame) => {
        if (frame.type !== 1) return
        const decoded = decodeFrame(frame.bytes)
        if (decoded.kind === 'control' && decoded.frame.t === 'fetch') fetched.push([...decoded.frame.blocks])
      },
    })
    const { result, union } = await failedOverAt43(w)
    await w.s.mirrors.resync('m', { acknowledgeDataLoss: true })
    expect(fetched.flat().sort((a, b) => a - b)).toEqual(union)
    expect(w.s.names('mirror.resynced')[0]!.payload).toMatchObject({ mode: 'undo', undoneBlocks: union.length })
    const rp = await blockHashes(w.west, 'db', `drkit.m.m.ds-44`)
    const east = await blockHashes(w.east, 'db')
    for (const b of union) expect(east[b]).toBe(rp[b])
    expect(result.restartPoint).toBe('drkit.m.m.rp-2')
    await w.s.module.close()
  })

  it('behaviour 24: reverse replication starts from the restart point: the intermediate snapshot is the new primary\'s first cut, its differential is played on the old primary (kept read-only), then the restart point is deleted', async () => {
    const w = await world()
    await failedOverAt43(w)
    await w.west.write('db', 200 * BS, block(200), token)
    const split = w.d.violations.length
    await w.s.mirrors.resync('m', { acknowledgeDataLoss: true })
    const intermediate = (await w.west.listSnapshots('db')).find((x) => x.name === 'drkit.m.m.ds-44')!
    expect(intermediate.labels).toMatchObject({ 'drkit.mirror.base': 'drkit.m.m.rp-2', 'drkit.mirror.baseDeltaSet': '43', 'drkit.mirror.kind': 'cut' })
    expect(w.s.names('mirror.deltaSetSent').filter((e) => (e.payload['deltaSet'] as number) >= 44).map((e) => e.payload)).toEqual([
      expect.objectContaining({ deltaSet: 44, full: false, bytes: BS }),
    ])
    expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db', 'drkit.m.m.ds-44'))
    expect(await w.d.writableNow()).toEqual(['west'])
    expect((await w.west.listSnapshots('db')).map((x) => x.name)).not.toContain('drkit.m.m.rp-2')
    expect((await w.east.listSnapshots('db')).map((x) => x.name)).not.toContain('drkit.m.m.undo-2')
    expect(await w.status()).toMatchObject({ state: 'replicating', direction: 'reverse', restartPoint: null })
    await w.west.write('db', 201 * BS, block(201), token)
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    await until(async () => (await w.status()).lastPlayedBack === deltaSet, 'reverse replication')
    expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db'))
    expect(split).toBe(1)
    expect(w.d.violations.slice(split)).toEqual([])
    await w.s.module.close()
  })

  it('behaviour 25, with the two intermediate points of the note as delta sets: when the old primary lacks the restart point\'s delta set, mirror.fullCopyRequired is emitted, the first intermediate point (the new primary\'s first cut) is copied in full, the second (its next cut) goes alongside as the 1→2 differential and is buffered, not played, until the copy is whole; afterwards the restart point, the undo snapshot and the first intermediate point are deleted', async () => {
    let release: () => void = () => undefined
    const held = new Promise<void>((resolve) => (release = resolve))
    const w = await world({ onWestSend: (frame) => (frame.type === 2 && chunkDeltaSet(frame.bytes) === 44 && chunkIndex(frame.bytes) >= 2 ? held : undefined) })
    await failedOverAt43(w)
    for (const snap of await w.east.listSnapshots('db')) {
      if (snap.name !== 'drkit.m.m.ds-43') continue
      for (const tag of snap.holds) await w.east.releaseSnapshot('db', snap.name, tag, token)
      await w.east.deleteSnapshot('db', snap.name, token)
    }
    const resynced = w.s.mirrors.resync('m', { acknowledgeDataLoss: true, timeout: '48h' })
    await until(() => w.s.names('mirror.deltaSetSent').length > 0 || w.s.names('mirror.fullCopyRequired').length > 0, 'resync under way')
    await until(async () => ((await w.east.getConfig('db', 'drkit.mirror.progress')) as { n?: number } | undefined)?.n === 44, 'full copy of the first intermediate point under way')
    expect(w.s.names('mirror.fullCopyRequired').map((e) => e.payload)).toEqual([expect.objectContaining({ site: 'east', volume: 'db' })])
    // Writes on the new primary during the copy: its next cut, the second intermediate point.
    for (const b of [7, 8, 200]) await w.west.write('db', b * BS, block(b + 70), token)
    await w.clock.advance(36_000_000)
    const staged = async () => ((await w.east.getConfig('db.mirror-staging', 'drkit.mirror.staging')) as { sets: Array<{ n: number; baseN: number; header: unknown }> }).sets
    await until(async () => (await staged()).some((x) => x.n === 45 && x.baseN === 44 && x.header !== null), 'the 1 → 2 differential buffered at the old primary')
    expect(w.s.names('mirror.deltaSetApplied').filter((e) => e.payload['site'] === 'east')).toEqual([])
    release()
    await resynced
    await until(async () => (await w.status()).lastPlayedBack === 45, 'second intermediate point played')
    const sent = w.s.names('mirror.deltaSetSent').filter((e) => (e.payload['deltaSet'] as number) > 43).map((e) => e.payload)
    // The differential was sent (and staged) before the held copy finished.
    expect(sent).toEqual([expect.objectContaining({ deltaSet: 45, full: false, bytes: 3 * BS }), expect.objectContaining({ deltaSet: 44, full: true })])
    expect(w.s.names('mirror.resynced')[0]!.payload).toMatchObject({ mode: 'full', undoneBlocks: 0 })
    expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db', 'drkit.m.m.ds-45'))
    await until(async () => !(await w.west.listSnapshots('db')).some((x) => x.name === 'drkit.m.m.ds-44'), 'first intermediate point retired')
    for (const side of [w.east, w.west]) {
      const names = (await side.listSnapshots('db')).map((x) => x.name)
      expect(names.filter((n) => n.includes('.rp-') || n.includes('.undo-') || n === 'drkit.m.m.ds-44')).toEqual([])
      expect(names).toContain('drkit.m.m.ds-45')
    }
    await w.s.module.close()
  })

  it('behaviour 26: the process killed in the middle of the restart → intermediate copy resumes automatically once restarted; the old primary ends identical to an uninterrupted run', async () => {
    const w = await crashableWorld({
      network: (site, port, incarnation) =>
        tapNetwork(port, (frame) => {
          if (site === 'west' && incarnation.number === 1 && frame.type === 2 && chunkDeltaSet(frame.bytes) === 44 && chunkIndex(frame.bytes) === 8) incarnation.kill()
        }),
    })
    const first = await w.start()
    const east = w.raw['east']!
    const west = w.raw['west']!
    for (let b = 0; b < 32; b++) await east.write('db', b * BS, block(b + 1), token)
    await first.mirrors.create({ id: 'm', source: { site: 'east', volume: 'db' }, destination: { site: 'west' }, cut: { every: '10h', probe: '1h' }, transfer: { chunkSize: 4 * BS } })
    for (let n = 2; n <= 43; n++) {
      await east.write('db', (n % 32) * BS, block(n), token)
      await first.mirrors.cutNow('m')
    }
    await until(async () => (await first.mirrors.status('m')).lastPlayedBack === 43, 'played 43')
    w.fabric.partition('east', 'west')
    for (const b of [100, 101, 102, 5]) await east.write('db', b * BS, block(b + 7), token)
    await first.mirrors.cutNow('m')
    expect((await first.mirrors.failover('m', { mode: 'default' })).lastApplied).toBe(43)
    // The old primary could not be reached to be made read-only (behaviour 21): that split brain is the resync's job.
    const splitBrain = w.violations.length
    w.fabric.heal('east', 'west')
    for (let b = 120; b < 180; b++) await west.write('db', b * BS, block(b), token)
    // The dead process's call never settles; what it did is what the journal and the volumes say.
    void first.mirrors.resync('m', { acknowledgeDataLoss: true }).catch(() => undefined)
    await until(() => first.isDead(), 'killed during the differential copy')
    await settle()
    const progress = (await east.getConfig('db', 'drkit.mirror.progress')) as { n: number; received: number }
    expect(progress).toMatchObject({ n: 44 })
    expect(progress.received).toBeGreaterThan(0)
    const restarted = await w.start()
    const recovering = restarted.mirrors.recover()
    for (let i = 0; i < 60 && (await restarted.mirrors.status('m')).state !== 'replicating'; i++) await w.clock.advance(1_000)
    await recovering
    const status = await restarted.mirrors.status('m')
    expect(status).toMatchObject({ state: 'replicating', direction: 'reverse', lastPlayedBack: 44 })
    const resent = w.names('mirror.deltaSetSent').filter((e) => e.incarnation === 2 && e.payload['deltaSet'] === 44)
    expect(resent.map((e) => e.payload['resumedFromChunk'])).toEqual([progress.received])
    expect(w.names('mirror.deltaSetApplied').filter((e) => e.payload['site'] === 'east' && e.payload['deltaSet'] === 44)).toHaveLength(1)
    expect(await blockHashes(east, 'db')).toEqual(await blockHashes(west, 'db', 'drkit.m.m.ds-44'))
    expect(await blockHashes(east, 'db')).toEqual(await blockHashes(west, 'db'))
    expect(w.violations.slice(splitBrain)).toEqual([])
    expect(await w.writableNow()).toEqual(['west'])
    await restarted.module.close()
  })
})

describe('mirror failback and planned swap (behaviours 27–29)', () => {
  async function reversed() {
    const w = await world()
    await w.s.mirrors.failover('m', { mode: 'default' })
    await w.west.write('db', 40 * BS, block(140), token)
    await w.s.mirrors.resync('m', { acknowledgeDataLoss: true })
    return w
  }

  it('behaviour 27: with the reverse session 2 chunks behind, failback converges to within one chunk, makes the current primary read-only, sends the last delta set, reverses and only then makes the old primary writable; never both writable', async () => {
    const w = await reversed()
    for (let b = 60; b < 68; b++) await w.west.write('db', b * BS, block(b + 7), token)
    expect((await w.status()).lagBytes).toBe(8 * BS)
    await w.s.mirrors.failback('m')
    const cuts = w.s.names('mirror.deltaSetCut').map((e) => e.payload).filter((p) => p['site'] === 'west')
    expect(cuts.at(-1)).toMatchObject({ trigger: 'final', changedBytes: 0 })
    expect(cuts.at(-2)).toMatchObject({ trigger: 'manual', changedBytes: 8 * BS })
    expect(await w.status()).toMatchObject({ state: 'replicating', direction: 'forward', epoch: 3, source: { site: 'east', writable: true }, destination: { site: 'west', writable: false } })
    expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db'))
    expect(w.d.violations).toEqual([])
    expect(await w.d.writableNow()).toEqual(['east'])
    await w.east.write('db', 70 * BS, block(70), token)
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    await until(async () => (await w.status()).lastPlayedBack === deltaSet, 'forward again')
    expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db'))
    await w.s.module.close()
  })

  it('behaviour 28: a failback that fails after the primary was made read-only (network error) puts it back; re-issued after the fix it completes without a full copy and without losing data', async () => {
    let armed = false
    const w = await world({
      wrap: (site, storage, d) =>
        new Proxy(storage, {
          get(object, property) {
            const value: unknown = Reflect.get(object, property, object)
            if (property === 'setWritable' && site === 'west') {
              return async (volume: string, flag: boolean, fence: typeof token) => {
                await object.setWritable(volume, flag, fence)
                if (armed && volume === 'db' && !flag) {
                  armed = false
                  d().fabric.partition('east', 'west')
                }
              }
            }
            return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(object) : value
          },
        }),
    })
    await w.s.mirrors.failover('m', { mode: 'default' })
    await w.s.mirrors.resync('m', { acknowledgeDataLoss: true })
    await w.west.write('db', 50 * BS, block(150), token)
    armed = true
    const failing = w.s.mirrors.failback('m', { timeout: '30s' }).catch((error: unknown) => error)
    await until(() => !armed, 'partition after read-only')
    await settle()
    await w.clock.advance(31_000)
    expect(await failing).toMatchObject({ code: 'E_TIMEOUT' })
    expect(await w.status()).toMatchObject({ state: 'replicating', direction: 'reverse', epoch: 2, operation: null })
    expect(await w.d.writableNow()).toEqual(['west'])
    expect(w.s.names('mirror.operationFailed').map((e) => e.payload)).toEqual([expect.objectContaining({ id: 'm', kind: 'failback', state: 'replicating', resumable: false, code: 'E_TIMEOUT' })])
    w.d.fabric.heal('east', 'west')
    await w.clock.advance(10_000)
    const before = w.s.names('mirror.deltaSetSent').length
    await w.s.mirrors.failback('m')
    expect(w.s.names('mirror.deltaSetSent').slice(before).every((e) => e.payload['full'] === false)).toBe(true)
    expect(await w.d.writableNow()).toEqual(['east'])
    expect(await w.east.read('db', 50 * BS, BS)).toEqual(block(150))
    expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db'))
    expect(w.d.violations).toEqual([])
    await w.s.module.close()
  })

  it('behaviour 29: a planned swap of a healthy relationship reverses the direction without a full copy and keeps replicating', async () => {
    const w = await world()
    await w.east.write('db', 20 * BS, block(120), token)
    const sentBefore = w.s.names('mirror.deltaSetSent').length
    await w.s.mirrors.swap('m')
    expect(await w.status()).toMatchObject({ state: 'replicating', direction: 'reverse', epoch: 2, source: { site: 'west', writable: true }, destination: { site: 'east', writable: false } })
    expect(w.s.names('mirror.failedBack')[0]!.payload).toMatchObject({ kind: 'swap', primary: { site: 'west', volume: 'db' }, epoch: 2 })
    await w.west.write('db', 21 * BS, block(121), token)
    const { deltaSet } = await w.s.mirrors.cutNow('m')
    await until(async () => (await w.status()).lastPlayedBack === deltaSet, 'reverse replication')
    const after = w.s.names('mirror.deltaSetSent').slice(sentBefore)
    expect(after.every((e) => e.payload['full'] === false)).toBe(true)
    expect(after.reduce((sum, e) => sum + (e.payload['bytes'] as number), 0)).toBe(2 * BS)
    expect(await blockHashes(w.east, 'db')).toEqual(await blockHashes(w.west, 'db'))
    await w.s.mirrors.swap('m')
    expect(await w.status()).toMatchObject({ direction: 'forward', epoch: 3 })
    expect(w.d.violations).toEqual([])
    await w.s.module.close()
  })

  it('a playback batching policy never holds an operation: failover with sync, resync, failback and swap play what they wait for at once', async () => {
    const clock = new ManualClock()
    const d = await durable({ clock, sizeBlocks: 64 })
    const s = await openSystem(d)
    const east = d.raw['east']!
    const west = d.raw['west']!
    const status = () => s.mirrors.status('m')
    await replicating(s, { blocks: 1, playback: { every: '1h' } })
    await east.write('db', 2 * BS, block(2), token)
    const { deltaSet } = await s.mirrors.cutNow('m')
    await until(async () => (await status()).lastReceived === deltaSet, 'received, held by the batch')
    expect((await status()).lastPlayedBack).toBe(1)
    // The clock never moves from here on: nothing falls due by the policy.
    const failedOver = await s.mirrors.failover('m', { mode: 'sync' })
    expect(failedOver.lastApplied).toBeGreaterThan(deltaSet)
    expect(await blockHashes(west, 'db')).toEqual(await blockHashes(east, 'db'))
    await west.write('db', 3 * BS, block(3), token)
    await s.mirrors.resync('m')
    await west.write('db', 4 * BS, block(4), token)
    await s.mirrors.failback('m')
    expect(await status()).toMatchObject({ state: 'replicating', direction: 'forward' })
    expect(await blockHashes(east, 'db')).toEqual(await blockHashes(west, 'db'))
    await east.write('db', 5 * BS, block(5), token)
    await s.mirrors.swap('m')
    expect(await status()).toMatchObject({ state: 'replicating', direction: 'reverse' })
    expect(await blockHashes(east, 'db')).toEqual(await blockHashes(west, 'db'))
    expect(d.violations).toEqual([])
    await s.module.close()
  })
})
