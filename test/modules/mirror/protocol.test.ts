import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import { MirrorAgent } from '../../../src/modules/mirror/agent.js'
import { chainCrc, payloadCrc, planChunks, readChunk, summarize } from '../../../src/modules/mirror/delta-chunks.js'
import { planDelta } from '../../../src/modules/mirror/decide.js'
import { crc32Js } from '../../../src/kernel/crc32.js'
import { ManualClock } from '../../../src/kernel/clock.js'
import {
  PROTOCOL_VERSION,
  decodeFrame,
  decodeRuns,
  encodeChunk,
  encodeControl,
  encodeRuns,
  type BlockRun,
  type ControlFrame,
} from '../../../src/modules/mirror/protocol.js'
import type { Channel } from '../../../src/ports/network.js'
import { BS, agentWorld, block, token, until } from '../../fixtures/mirror-world.js'

const HOUR = 3_600_000

const policies = {
  cut: { everyMs: HOUR, highWaterMarkBytes: 1 << 30, probeMs: 60_000 },
  transfer: { chunkBytes: 4 * BS, retries: 3, stagingMaxBytes: null },
}

/** The two ways a destination receives the next delta set: applied as it arrives, or staged and played later. */
const paths = [
  { path: 'applied on arrival (immediate playback)', playback: { everyMs: null, highWaterMarkBytes: null }, staged: false },
  { path: 'staged (playback batched hourly)', playback: { everyMs: HOUR, highWaterMarkBytes: null }, staged: true },
] as const

type Playback = (typeof paths)[number]['playback']

/** The frames of one delta set, one run per chunk, plus its header. */
function deltaFrames(n: number, baseN: number | null, runs: BlockRun[], epoch = 1, corruptHeader = false): { chunks: Uint8Array[]; header: Uint8Array } {
  let crc = 0
  let blocks = 0
  let holes = 0
  const chunks = runs.map((run, index) => {
    const payload = encodeRuns([run])
    const chunkCrc = payloadCrc(payload)
    crc = chainCrc(crc, chunkCrc)
    if (run.data === null) holes += run.count
    else blocks += run.count
    return encodeChunk({ epoch, n, baseN, index, runs: 1, crc: chunkCrc }, payload)
  })
  const header = encodeControl({
    t: 'header',
    epoch,
    n,
    baseN,
    chunks: chunks.length,
    blocks,
    holes,
    dataBytes: blocks * BS,
    sizeBytes: 64 * BS,
    blockSize: BS,
    crc: corruptHeader ? crc ^ 1 : crc,
    cutAt: n,
  })
  return { chunks, header }
}

/** A hand-driven source: connects to the west agent and speaks the protocol frame by frame. */
async function crafted(epoch = 1, playback: Playback = paths[0].playback) {
  const clock = new ManualClock()
  const w = agentWorld({ clock })
  const west = w.storages['west']!
  await west.createVolume({ name: 'db', sizeBytes: 64 * BS, blockSize: BS }, token)
  await west.setWritable('db', false, token)
  const agent = await MirrorAgent.start(w.ctx('west'))
  const destination = await agent.attachDestination({ session: 'm1', epoch, volume: 'db', peer: { site: 'east', volume: 'db' }, base: null, playback, ...policies })
  const received: ControlFrame[] = []
  let closed = false
  const open = async (helloEpoch = epoch): Promise<Channel> => {
    const channel = await w.fabric.port('east').connect('west', 'drkit.mirror')
    void (async () => {
      try {
        for await (const bytes of channel.frames()) {
          const frame = decodeFrame(bytes)
          if (frame.kind === 'control') received.push(frame.frame)
        }
      } catch {
        // the channel broke; the test looks at what arrived
      } finally {
        closed = true
      }
    })()
    closed = false
    const before = received.length
    await channel.send(encodeControl({ t: 'hello', v: PROTOCOL_VERSION, session: 'm1', epoch: helloEpoch, site: 'east', volume: 'db', blockSize: BS }))
    await until(() => received.slice(before).some((f) => f.t === 'state' || f.t === 'refused'), 'state')
    return channel
  }
  const channel = await open()
  const full = deltaFrames(11, null, [{ start: 0, count: 2, data: new Uint8Array(2 * BS).fill(11) }], epoch)
  for (const frame of [...full.chunks, full.header]) await channel.send(frame)
  await destination.waitPlayed(11)
  /** Plays what is complete (the staged path waits for its hourly batch). */
  const play = async (): Promise<void> => {
    if (playback.everyMs !== null) await clock.advance(playback.everyMs)
    await destination.idle()
  }
  /** The replica as readers see it: its newest delta-set snapshot. */
  const view = async (block: number): Promise<Uint8Array> => west.read('db', block * BS, BS, { snapshot: `drkit.m.m1.ds-${destination.played ?? 0}` })
  return { w, west, agent, destination, channel, received, open, play, view, isClosed: () => closed }
}

const data = (value: number, count = 1): Uint8Array => new Uint8Array(count * BS).fill(value)

describe('mirror protocol: frames and codecs', () => {
  it('round-trips control and chunk frames, and refuses unknown, truncated or malformed frames with E_CORRUPT', () => {
    const control: ControlFrame = { t: 'ack', epoch: 3, n: 7, status: 'played' }
    expect(decodeFrame(encodeControl(control))).toEqual({ kind: 'control', frame: control })
    const runs: BlockRun[] = [{ start: 4, count: 2, data: data(1, 2) }, { start: 9, count: 3, data: null }]
    const payload = encodeRuns(runs)
    const frame = decodeFrame(encodeChunk({ epoch: 2, n: 5, baseN: 4, index: 0, runs: 2, crc: payloadCrc(payload) }, payload))
    expect(frame.kind).toBe('chunk')
    if (frame.kind === 'chunk') {
      expect(frame.header).toEqual({ epoch: 2, n: 5, baseN: 4, index: 0, runs: 2, crc: payloadCrc(payload) })
      expect(decodeRuns(frame.payload, BS, 2)).toEqual(runs)
    }
    const bad = [
      new Uint8Array([]),
      new Uint8Array([9, 1, 2]),
      new Uint8Array([1, ...new TextEncoder().encode('{"t":"launch"}')]),
      new Uint8Array([1, ...new TextEncoder().encode('not json')]),
      encodeChunk({ epoch: 1, n: 1, baseN: null, index: 0, runs: 1, crc: 0 }, payload).subarray(0, 40),
    ]
    for (const bytes of bad) expect(() => decodeFrame(bytes)).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }))
    expect(() => decodeRuns(payload, BS, 3)).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }))
  })

  it('chunk checksums are the standard CRC-32 on every supported Node (the kernel\'s JavaScript CRC-32 gives the same values)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ maxLength: 3000 }), (first, second) => {
        const a = payloadCrc(first)
        expect(a).toBe(crc32Js(first))
        const chained = new Uint8Array(4)
        new DataView(chained.buffer).setUint32(0, payloadCrc(second), true)
        expect(chainCrc(a, payloadCrc(second))).toBe(crc32Js(chained, a))
      }),
      { numRuns: 50 },
    )
    expect(payloadCrc(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
  })

  it('property: chunk plans cover exactly the changed blocks, ascending, each chunk within the chunk size; runs survive encoding', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 3000 }), { maxLength: 150 }), fc.integer({ min: 1, max: 20 }), fc.double({ min: 0, max: 1, noNaN: true }), (raw, perChunk, holeRatio) => {
        const blocks = [...raw].sort((a, b) => a - b)
        const holes = blocks.filter((_, i) => (i * 7919) % 100 < holeRatio * 100)
        const plans = planChunks(blocks, holes, BS, perChunk * BS)
        const covered = plans.flatMap((p) => p.runs.flatMap((r) => Array.from({ length: r.count }, (_, i) => ({ block: r.start + i, hole: r.hole }))))
        expect(covered.map((c) => c.block)).toEqual(blocks)
        expect(covered.filter((c) => c.hole).map((c) => c.block)).toEqual(holes)
        for (const plan of plans) expect(plan.dataBytes).toBeLessThanOrEqual(perChunk * BS)
        expect(planChunks(blocks, holes, BS, perChunk * BS)).toEqual(plans)
        const summary = summarize(plans)
        expect(summary.blocks + summary.holes).toBe(blocks.length)
        for (const plan of plans) {
          const runs = plan.runs.map((r): BlockRun => ({ start: r.start, count: r.count, data: r.hole ? null : data(r.start & 0xff, r.count) }))
          expect(decodeRuns(encodeRuns(runs), BS, runs.length)).toEqual(runs)
        }
      }),
      { numRuns: 60 },
    )
  })
})

describe.each(paths)('mirror receiver, $path: completeness, order, checksums, epochs (behaviours 8–11)', ({ playback, staged }) => {
  it('behaviour 8: chunks arriving out of order, or with a chunk and the header missing, never integrate the delta set; lastPlayedBack is unchanged', async () => {
    const r = await crafted(1, playback)
    const d12 = deltaFrames(12, 11, [0, 1, 2, 3, 4].map((i) => ({ start: 10 + i, count: 1, data: data(12) })))
    for (const i of [3, 0, 4, 1]) await r.channel.send(d12.chunks[i]!).catch(() => undefined)
    await until(() => r.isClosed(), 'refused')
    expect(r.received.at(-1)).toMatchObject({ t: 'refused', code: 'E_INVALID_INPUT' })
    const again = await r.open()
    for (const i of [0, 1, 3, 4]) await again.send(d12.chunks[i]!).catch(() => undefined)
    await until(() => r.isClosed(), 'refused again')
    await r.play()
    expect(r.destination.played).toBe(11)
    expect(r.destination.progress()).toMatchObject({ played: 11, complete: [], partials: [{ n: 12, received: 2, full: false }] })
    expect(await r.view(10)).toEqual(new Uint8Array(BS))
    if (staged) expect(await r.west.read('db', 10 * BS, BS)).toEqual(new Uint8Array(BS))
    await r.destination.fence(2)
    expect(r.destination.progress().partials).toEqual([])
    expect(await r.west.read('db', 10 * BS, BS), 'a partial set dropped by a failover leaves nothing behind').toEqual(new Uint8Array(BS))
    await r.agent.close()
  })

  it('behaviour 9: delta set 12 with every chunk and a matching header sent last becomes complete and is played after 11 and before 13', async () => {
    const r = await crafted(1, playback)
    const d12 = deltaFrames(12, 11, [{ start: 20, count: 1, data: data(12) }, { start: 21, count: 1, data: data(12) }])
    const d13 = deltaFrames(13, 12, [{ start: 20, count: 1, data: data(13) }])
    for (const frame of [...d12.chunks, d12.header, ...d13.chunks, d13.header]) await r.channel.send(frame)
    await r.play()
    await r.destination.waitPlayed(13)
    const applied = r.w.seen.filter((e) => e.name === 'mirror.deltaSetApplied').map((e) => (e.payload as { deltaSet: number }).deltaSet)
    expect(applied).toEqual([11, 12, 13])
    const acks = () => r.received.filter((f) => f.t === 'ack').map((f) => (f.t === 'ack' ? `${f.n}:${f.status}` : ''))
    await until(() => acks().includes('13:played'), 'ack of 13')
    expect(acks().filter((a) => a.endsWith('played'))).toEqual(['11:played', '12:played', '13:played'])
    if (staged) expect(acks().indexOf('12:complete')).toBeLessThan(acks().indexOf('12:played'))
    else expect(acks().filter((a) => a.endsWith('complete')), 'a set applied on arrival is acknowledged once, played').toEqual([])
    expect(await r.west.read('db', 20 * BS, 2 * BS)).toEqual(new Uint8Array([...data(13), ...data(12)]))
    expect((await r.west.volumeInfo('db')).writable).toBe(false)
    await r.agent.close()
  })

  it('behaviour 10: a header whose data checksum does not match is never integrated; mirror.checksumMismatch is emitted and a resend is asked for', async () => {
    const r = await crafted(1, playback)
    const d12 = deltaFrames(12, 11, [{ start: 30, count: 1, data: data(12) }], 1, true)
    for (const frame of [...d12.chunks, d12.header]) await r.channel.send(frame)
    await until(() => r.isClosed(), 'closed')
    expect(r.w.seen.filter((e) => e.name === 'mirror.checksumMismatch').map((e) => e.payload)).toEqual([expect.objectContaining({ deltaSet: 12 })])
    expect(r.received.at(-1)).toMatchObject({ t: 'resend', n: 12, chunk: 0 })
    expect(r.destination.progress()).toMatchObject({ played: 11, complete: [], partials: [] })
    expect(await r.west.read('db', 30 * BS, BS), 'what arrived of the refused set was rolled back or never applied').toEqual(new Uint8Array(BS))
    const bad = encodeChunk({ epoch: 1, n: 12, baseN: 11, index: 0, runs: 1, crc: 1234 }, encodeRuns([{ start: 30, count: 1, data: data(12) }]))
    const again = await r.open()
    await again.send(bad).catch(() => undefined)
    await until(() => r.isClosed(), 'closed again')
    await r.play()
    expect(r.w.seen.filter((e) => e.name === 'mirror.checksumMismatch')).toHaveLength(2)
    expect(await r.west.read('db', 30 * BS, BS)).toEqual(new Uint8Array(BS))
    expect(r.destination.played).toBe(11)
    await r.agent.close()
  })

  it('behaviour 11: with 13 and 15 complete but not 14, playback stops after 13 and never applies 15', async () => {
    const r = await crafted(1, playback)
    const d12 = deltaFrames(12, 11, [{ start: 40, count: 1, data: data(12) }])
    const d13 = deltaFrames(13, 12, [{ start: 41, count: 1, data: data(13) }])
    const d15 = deltaFrames(15, 14, [{ start: 42, count: 1, data: data(15) }])
    for (const frame of [...d12.chunks, d12.header, ...d13.chunks, d13.header, ...d15.chunks, d15.header]) await r.channel.send(frame)
    await until(() => r.received.some((f) => f.t === 'ack' && f.n === 15 && f.status === 'complete'), '15 complete')
    await r.play()
    await r.destination.waitPlayed(13)
    await r.destination.idle()
    expect(r.destination.progress()).toMatchObject({ played: 13, complete: [15] })
    expect(await r.west.read('db', 42 * BS, BS)).toEqual(new Uint8Array(BS))
    await r.agent.close()
  })

  it('frames of an older epoch are refused with E_FENCED and mirror.staleEpochRefused; a newer, unknown epoch is refused too', async () => {
    const r = await crafted(2, playback)
    await r.open(1)
    expect(r.received.at(-1)).toMatchObject({ t: 'refused', code: 'E_FENCED', epoch: 2 })
    expect(r.w.seen.filter((e) => e.name === 'mirror.staleEpochRefused').map((e) => e.payload)).toEqual([expect.objectContaining({ epoch: 1, current: 2, from: 'east' })])
    const channel = await r.open(2)
    const stale = deltaFrames(12, 11, [{ start: 50, count: 1, data: data(1) }], 1)
    await channel.send(stale.chunks[0]!)
    await until(() => r.isClosed(), 'refused')
    expect(r.received.at(-1)).toMatchObject({ t: 'refused', code: 'E_FENCED' })
    await r.open(3)
    expect(r.received.at(-1)).toMatchObject({ t: 'refused', code: 'E_PRECONDITION' })
    expect(r.destination.played).toBe(11)
    expect(await r.west.read('db', 50 * BS, BS)).toEqual(new Uint8Array(BS))
    await r.agent.close()
  })
})

describe('mirror receiver: deltas that go backwards (behaviour 34)', () => {
  it('behaviour 34: a delta from M ≤ L is refused and nothing is sent or applied', async () => {
    expect(E.isLeft(planDelta(5, 5))).toBe(true)
    expect(E.isLeft(planDelta(5, 3))).toBe(true)
    expect(planDelta(null, 1)).toEqual(E.right({ from: null, to: 1 }))
    expect(planDelta(4, 5)).toEqual(E.right({ from: 4, to: 5 }))
    const r = await crafted()
    const backwards = deltaFrames(10, 11, [{ start: 60, count: 1, data: data(10) }])
    await r.channel.send(backwards.chunks[0]!).catch(() => undefined)
    await until(() => r.isClosed(), 'refused')
    expect(r.received.at(-1)).toMatchObject({ t: 'refused', code: 'E_INVALID_INPUT' })
    expect(r.destination.played).toBe(11)
    expect(await r.west.read('db', 60 * BS, BS)).toEqual(new Uint8Array(BS))
    await r.agent.close()
  })
})

describe('mirror deltas over storage snapshots (behaviours 35, 36)', () => {
  it('behaviour 35: between snapshots L and M where only blocks 3 and 9 changed, the delta is exactly (3, M[3]) then (9, M[9])', async () => {
    const w = agentWorld()
    const east = w.storages['east']!
    await east.createVolume({ name: 'v', sizeBytes: 32 * BS, blockSize: BS }, token)
    for (let b = 0; b < 16; b++) await east.write('v', b * BS, block(b), token)
    await east.createSnapshot('v', 'L', token)
    await east.write('v', 9 * BS, block(90), token)
    await east.write('v', 3 * BS, block(30), token)
    await east.createSnapshot('v', 'M', token)
    await east.write('v', 3 * BS, block(31), token)
    const changed = await east.changedBlocks('v', 'L', 'M')
    const plans = planChunks(changed.blocks, changed.holes, BS, 1024 * 1024)
    expect(plans.map((p) => p.runs)).toEqual([[{ start: 3, count: 1, hole: false }, { start: 9, count: 1, hole: false }]])
    const runs = await readChunk(east, 'v', 'M', plans[0]!, BS)
    expect(runs).toEqual([{ start: 3, count: 1, data: block(30) }, { start: 9, count: 1, data: block(90) }])
  })

  it('behaviour 36: a block trimmed between L and M is sent as a hole (no data on the wire) and is unallocated at the destination', async () => {
    const w = agentWorld()
    const east = w.storages['east']!
    await east.createVolume({ name: 'v', sizeBytes: 32 * BS, blockSize: BS }, token)
    for (let b = 0; b < 8; b++) await east.write('v', b * BS, block(b + 1), token)
    await east.createSnapshot('v', 'L', token)
    await east.trim('v', 5 * BS, BS, token)
    await east.createSnapshot('v', 'M', token)
    const changed = await east.changedBlocks('v', 'L', 'M')
    const plans = planChunks(changed.blocks, changed.holes, BS, 1024 * 1024)
    expect(plans.map((p) => p.runs)).toEqual([[{ start: 5, count: 1, hole: true }]])
    const runs = await readChunk(east, 'v', 'M', plans[0]!, BS)
    expect(runs).toEqual([{ start: 5, count: 1, data: null }])
    expect(encodeRuns(runs).length).toBe(9)
  })
})
