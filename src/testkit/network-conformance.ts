import assert from 'node:assert/strict'
import { Buffer } from 'node:buffer'
import type { ManualClock } from '../kernel/clock.js'
import type { Channel, NetworkPort } from '../ports/network.js'
import { failsWith } from './assertions.js'
import { withAdapter, type AdapterFactory, type ConformanceCase } from './conformance.js'
import { identityCases, namespaceCases } from './network-conformance-naming.js'

/**
 * What a network conformance case runs against: the network ports of two sites that can reach each other; when
 * the adapter can simulate one, functions that cut the two sites apart and join them again (without them the
 * partition case checks nothing); and what lets the timing cases check without wall time:
 *
 * - `clock`: the {@link ManualClock} both ports run on. The bandwidth case then measures the limit in virtual time,
 *   and an in-process adapter is known to be idle once the clock has flushed pending work (`advance(0)`).
 * - `window`: how many frames a channel accepts before its receiver reads (the adapter's send window, for frames
 *   well under its byte window). The back-pressure case then fills exactly that window.
 * - `inFlight(channel)`: how many frames sent on `channel` its peer has not consumed (the credit the sender has
 *   used). With `window`, the back-pressure case checks that the credit is used up when the window is.
 *
 * Without `window` the back-pressure case checks only that what was sent to a receiver that did not read arrives
 * whole and in order once it reads; without `clock`, the bandwidth case checks only that lifting a limit releases
 * the frames it held.
 *
 * @public
 */
export interface NetworkConformanceTarget {
  readonly a: NetworkPort
  readonly b: NetworkPort
  readonly partition?: () => Promise<void>
  readonly heal?: () => Promise<void>
  readonly clock?: ManualClock
  readonly window?: number
  readonly inFlight?: (channel: Channel) => number
}

const SERVICE = 'conformance'

interface Accepted {
  readonly onChannel: (channel: Channel) => void
  readonly next: () => Promise<Channel>
}

/** Collects the channels a listener accepts, so a case can wait for the next one. */
function acceptQueue(): Accepted {
  const ready: Channel[] = []
  const waiting: Array<(channel: Channel) => void> = []
  return {
    onChannel: (channel) => {
      const waiter = waiting.shift()
      if (waiter === undefined) ready.push(channel)
      else waiter(channel)
    },
    next: () => {
      const channel = ready.shift()
      return channel === undefined ? new Promise<Channel>((resolve) => waiting.push(resolve)) : Promise.resolve(channel)
    },
  }
}

/** Listens on site a and connects from site b: `client` is b's end, `server` a's end. */
async function open(target: NetworkConformanceTarget): Promise<{ client: Channel; server: Channel; accepted: Accepted }> {
  const accepted = acceptQueue()
  await target.a.listen(SERVICE, accepted.onChannel)
  const client = await target.b.connect(target.a.site, SERVICE)
  return { client, server: await accepted.next(), accepted }
}

/** A frame whose bytes say which frame it is: filled with a byte of its index, index first, size last. */
function patternFrame(index: number, size: number): Uint8Array {
  const frame = new Uint8Array(size).fill((index * 31 + 7) & 0xff)
  const view = new DataView(frame.buffer)
  if (size >= 4) view.setUint32(0, index)
  if (size >= 8) view.setUint32(size - 4, size)
  return frame
}

function assertFrame(received: Uint8Array | undefined, index: number, size: number): void {
  assert.ok(received !== undefined, `frame ${index} is missing`)
  assert.equal(received.byteLength, size, `frame ${index} has ${received.byteLength} bytes instead of ${size}`)
  const same = Buffer.compare(Buffer.from(received.buffer, received.byteOffset, received.byteLength), patternFrame(index, size)) === 0
  assert.ok(same, `frame ${index} arrived with other bytes than were sent`)
}

/** Reads `channel` until its peer closes it. */
async function readAll(channel: Channel): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = []
  for await (const frame of channel.frames()) frames.push(frame)
  return frames
}

/** Seeded pseudo-random numbers in [0, 1), so a failing run can be repeated. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let mixed = Math.imul(state ^ (state >>> 15), state | 1)
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61)
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296
  }
}

/** A promise watched without ever rejecting: whether it settled yet, and the error it failed with if it did. */
interface Watched {
  settled: boolean
  readonly outcome: Promise<unknown>
}

function watch(promise: Promise<unknown>): Watched {
  const watched: Watched = {
    settled: false,
    outcome: promise.then(
      () => {
        watched.settled = true
        return undefined
      },
      (error: unknown) => {
        watched.settled = true
        return error
      },
    ),
  }
  return watched
}

/** Waits, turn by turn of the event loop, until `condition` holds (a positive wait: it never asserts on time). */
async function eventually(condition: () => boolean, what: string, turns = 200_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  assert.fail(`${what} never happened`)
}

function channelCases(factory: AdapterFactory<NetworkConformanceTarget>): ConformanceCase[] {
  return [
    withAdapter(factory, 'a channel carries a frame each way and names its local and remote sites', async (t) => {
      const { client, server } = await open(t)
      assert.equal(client.localSite, t.b.site)
      assert.equal(client.remoteSite, t.a.site)
      assert.equal(server.localSite, t.a.site)
      assert.equal(server.remoteSite, t.b.site)
      const toServer = server.frames()[Symbol.asyncIterator]()
      const toClient = client.frames()[Symbol.asyncIterator]()
      await client.send(patternFrame(1, 100))
      assertFrame((await toServer.next()).value, 1, 100)
      await server.send(patternFrame(2, 200))
      assertFrame((await toClient.next()).value, 2, 200)
      await client.close()
    }),

    withAdapter(factory, 'a thousand frames of random sizes (0 B to 256 KiB) arrive whole, unchanged and in order', async (t) => {
      const { client, server } = await open(t)
      const random = seededRandom(20260101)
      const sizes = Array.from({ length: 1000 }, (_, i) => (i === 0 ? 0 : i === 1 ? 256 * 1024 : Math.floor(random() * (256 * 1024 + 1))))
      const sending = (async () => {
        for (const [index, size] of sizes.entries()) await client.send(patternFrame(index, size))
        await client.close()
      })()
      const receiving = (async () => {
        let index = 0
        for await (const frame of server.frames()) {
          assertFrame(frame, index, sizes[index] ?? 0)
          index++
        }
        return index
      })()
      const [, count] = await Promise.all([sending, receiving])
      assert.equal(count, sizes.length)
    }),

    withAdapter(factory, "a sender may reuse a frame's buffer once send resolved: the peer receives the bytes as they were sent", async (t) => {
      const { client, server } = await open(t)
      const sizes = [64 * 1024, 1000, 256 * 1024, 0, 17]
      const buffer = new Uint8Array(256 * 1024)
      const sending = (async () => {
        for (const [index, size] of sizes.entries()) {
          const frame = buffer.subarray(0, size)
          frame.set(patternFrame(index, size))
          await client.send(frame)
          buffer.fill(0xa5)
        }
        await client.close()
      })()
      const [, received] = await Promise.all([sending, readAll(server)])
      assert.equal(received.length, sizes.length)
      received.forEach((frame, index) => assertFrame(frame, index, sizes[index] ?? 0))
    }),

    withAdapter(factory, 'both directions of a channel carry frames at the same time', async (t) => {
      const { client, server } = await open(t)
      const count = 200
      const sendAll = async (channel: Channel, offset: number): Promise<void> => {
        for (let i = 0; i < count; i++) await channel.send(patternFrame(offset + i, 1024 + i))
      }
      const readSome = async (channel: Channel, offset: number): Promise<void> => {
        const frames = channel.frames()[Symbol.asyncIterator]()
        for (let i = 0; i < count; i++) assertFrame((await frames.next()).value, offset + i, 1024 + i)
      }
      await Promise.all([sendAll(client, 0), sendAll(server, 10_000), readSome(server, 0), readSome(client, 10_000)])
      await client.close()
    }),

    withAdapter(factory, "closing a channel ends the peer's iteration after the frames already sent; later sends reject with E_UNAVAILABLE", async (t) => {
      const { client, server } = await open(t)
      for (let i = 0; i < 3; i++) await client.send(patternFrame(i, 10))
      await client.close()
      const received = await readAll(server)
      assert.equal(received.length, 3)
      received.forEach((frame, index) => assertFrame(frame, index, 10))
      await assert.rejects(client.send(patternFrame(3, 10)), failsWith('E_UNAVAILABLE'))
      assert.deepEqual(await readAll(client), [], "the closer's own iteration ends too")
    }),

    withAdapter(factory, 'connecting to a service nobody listens on, or no longer listens on, rejects with E_UNAVAILABLE', async (t) => {
      await assert.rejects(t.b.connect(t.a.site, 'nobody-listens'), failsWith('E_UNAVAILABLE'))
      const stop = await t.a.listen('short-lived', () => undefined)
      await stop()
      await assert.rejects(t.b.connect(t.a.site, 'short-lived'), failsWith('E_UNAVAILABLE'))
      const accepted = acceptQueue()
      await t.a.listen('short-lived', accepted.onChannel)
      const channel = await t.b.connect(t.a.site, 'short-lived')
      await accepted.next()
      await channel.close()
    }),

    withAdapter(factory, 'a second listener on the same service is refused with E_CONFLICT', async (t) => {
      await t.a.listen(SERVICE, () => undefined)
      await assert.rejects(t.a.listen(SERVICE, () => undefined), failsWith('E_CONFLICT'))
    }),

    withAdapter(factory, 'send applies back-pressure: a receiver that does not read gets one window accepted, the next send waits for a read, and everything arrives whole and in order', async (t) => {
      const { client, server } = await open(t)
      const size = 1024
      const window = t.window
      if (window === undefined) {
        const sends = Array.from({ length: 256 }, (_, index) => client.send(patternFrame(index, size)))
        const frames = server.frames()[Symbol.asyncIterator]()
        for (let i = 0; i < 256; i++) assertFrame((await frames.next()).value, i, size)
        await Promise.all(sends)
        await client.close()
        return
      }
      for (let index = 0; index < window; index++) await client.send(patternFrame(index, size))
      const blocked = watch(client.send(patternFrame(window, size)))
      if (t.inFlight !== undefined) assert.equal(t.inFlight(client), window, 'a full window uses up the sender\'s credit')
      if (t.clock !== undefined) await t.clock.advance(0)
      if (t.inFlight !== undefined || t.clock !== undefined) assert.equal(blocked.settled, false, 'a send beyond the window completed while the receiver did not read')
      const frames = server.frames()[Symbol.asyncIterator]()
      assertFrame((await frames.next()).value, 0, size)
      assert.equal(await blocked.outcome, undefined, 'the blocked send failed once the receiver read')
      for (let i = 1; i <= window; i++) assertFrame((await frames.next()).value, i, size)
      await client.close()
    }),

    withAdapter(factory, 'a bandwidth limit paces frames to the rate (measured in virtual time); lifting it releases what it held', async (t) => {
      const { client, server } = await open(t)
      const limit = 16 * 1024
      const size = 4 * 1024
      const count = 32
      client.setBandwidthLimit(limit)
      let received = 0
      const receiving = (async () => {
        const frames = server.frames()[Symbol.asyncIterator]()
        while (received < count + 4) {
          const next = await frames.next()
          if (next.done === true) break
          assertFrame(next.value, received, size)
          received++
        }
      })()
      const sends = Array.from({ length: count }, (_, index) => watch(client.send(patternFrame(index, size))))
      if (t.clock !== undefined) {
        const clock = t.clock
        const start = clock.now()
        for (let second = 1; received < count && second <= 60; second++) {
          await clock.advance(1000)
          const allowed = (limit * (clock.now() - start)) / 1000 + limit + size
          assert.ok(received * size <= allowed, `${received * size} bytes arrived within ${second} s at a limit of ${limit} B/s`)
        }
        await eventually(() => received === count, 'every frame under the limit')
        assert.ok(clock.now() - start >= ((count * size - limit - size) * 1000) / limit, 'the frames went faster than the limit')
      }
      client.setBandwidthLimit(limit / 1024)
      const held = Array.from({ length: 4 }, (_, index) => watch(client.send(patternFrame(count + index, size))))
      client.setBandwidthLimit(undefined)
      for (const sending of [...sends, ...held]) assert.equal(await sending.outcome, undefined)
      await receiving
      assert.equal(received, count + 4)
      await client.close()
    }),

    withAdapter(factory, 'probe finds the other site reachable and an unknown site unreachable, without rejecting', async (t) => {
      const there = await t.b.probe(t.a.site, 5000)
      assert.equal(there.site, t.a.site)
      assert.equal(there.reachable, true)
      assert.equal((await t.a.probe(t.b.site)).reachable, true)
      const nowhere = await t.a.probe('no-such-site', 1000)
      assert.equal(nowhere.site, 'no-such-site')
      assert.equal(nowhere.reachable, false)
    }),

    withAdapter(factory, 'closing a port ends its channels at the peer and stops its listeners', async (t) => {
      const { client } = await open(t)
      await t.a.close()
      assert.deepEqual(await readAll(client), [])
      await assert.rejects(t.b.connect(t.a.site, SERVICE), failsWith('E_UNAVAILABLE'))
    }),

    withAdapter(factory, 'a partition breaks open channels with E_UNAVAILABLE, makes the site unreachable and refuses connects; heal restores them', async (t) => {
      if (t.partition === undefined || t.heal === undefined) return
      const { client, server, accepted } = await open(t)
      const atServer = server.frames()[Symbol.asyncIterator]()
      const atClient = client.frames()[Symbol.asyncIterator]()
      await client.send(patternFrame(0, 10))
      assertFrame((await atServer.next()).value, 0, 10)
      await t.partition()
      await assert.rejects(atServer.next(), failsWith('E_UNAVAILABLE'))
      await assert.rejects(atClient.next(), failsWith('E_UNAVAILABLE'))
      await assert.rejects(client.send(patternFrame(1, 10)), failsWith('E_UNAVAILABLE'))
      await assert.rejects(server.send(patternFrame(1, 10)), failsWith('E_UNAVAILABLE'))
      assert.equal((await t.b.probe(t.a.site, 1000)).reachable, false)
      await assert.rejects(t.b.connect(t.a.site, SERVICE), failsWith('E_UNAVAILABLE'))
      await t.heal()
      assert.equal((await t.b.probe(t.a.site, 5000)).reachable, true)
      const again = await t.b.connect(t.a.site, SERVICE)
      const serverAgain = await accepted.next()
      await again.send(patternFrame(2, 10))
      assertFrame((await serverAgain.frames()[Symbol.asyncIterator]().next()).value, 2, 10)
      await again.close()
    }),
  ]
}

/**
 * The conformance suite of `NetworkPort`: channels (round trip, frame boundaries and order, both directions,
 * close, missing and duplicate listeners, back-pressure, bandwidth limit), probes, port close, partitions when
 * the target can simulate them, and the namespace server and identity registry the ports expose. Run it
 * against any network adapter: `for (const c of networkConformance(factory)) it(c.name, c.run)`.
 *
 * @public
 */
export function networkConformance(factory: AdapterFactory<NetworkConformanceTarget>): ConformanceCase[] {
  return [...channelCases(factory), ...namespaceCases(factory), ...identityCases(factory)]
}
