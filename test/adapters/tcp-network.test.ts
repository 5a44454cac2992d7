import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import * as net from 'node:net'
import { isDrError } from '../../src/kernel/errors.js'
import { ManualClock } from '../../src/kernel/clock.js'
import type { Channel } from '../../src/ports/network.js'
import { MemoryIdentityRegistry, MemoryNamespaceServer } from '../../src/adapters/memory/network.js'
import { networkConformance, type NetworkConformanceTarget } from '../../src/testkit/network-conformance.js'
import { tcpNetwork, type TcpNetwork } from '../../src/adapters/tcp/tcp-network.js'
import type { TcpNetworkOptions } from '../../src/adapters/tcp/tcp-options.js'
import type { TcpChannel } from '../../src/adapters/tcp/tcp-channel.js'
import { encodeFrame, FrameDecoder, FrameType } from '../../src/adapters/tcp/framing.js'
import { TcpFaultProxy } from '../fixtures/tcp-proxy.js'
import { siteCertificates } from '../fixtures/certs.js'

interface Pair extends NetworkConformanceTarget {
  readonly a: TcpNetwork
  readonly b: TcpNetwork
  /** Carries b's connections to a. */
  readonly toA: TcpFaultProxy
  /** Carries a's connections to b. */
  readonly toB: TcpFaultProxy
}

type Security = Pick<TcpNetworkOptions, 'tls' | 'plaintext'>

/** Two tcp ports, east (a) and west (b), that reach each other only through fault proxies. */
async function pair(security: (site: string) => Security, extra: Partial<TcpNetworkOptions> = {}): Promise<Pair> {
  const shared = { namespaceServer: new MemoryNamespaceServer(), identity: new MemoryIdentityRegistry() }
  const a = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, ...shared, ...security('east'), ...extra })
  const b = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, ...shared, ...security('west'), ...extra })
  const toA = await TcpFaultProxy.start(await a.address())
  const toB = await TcpFaultProxy.start(await b.address())
  b.setPeer('east', toA.address)
  a.setPeer('west', toB.address)
  return {
    a,
    b,
    toA,
    toB,
    partition: async () => {
      toA.partition()
      toB.partition()
    },
    heal: async () => {
      toA.heal()
      toB.heal()
    },
  }
}

async function dispose(target: NetworkConformanceTarget): Promise<void> {
  const { a, b, toA, toB } = target as Pair
  await Promise.all([a.close(), b.close()])
  await Promise.all([toA.close(), toB.close()])
}

const plaintext = (): Security => ({ plaintext: true })

/** Listens for `service` on `server` and connects from `client`; returns both ends. */
async function open(client: TcpNetwork, server: TcpNetwork, service = 'svc'): Promise<{ near: Channel; far: Channel }> {
  let resolveFar: (channel: Channel) => void = () => undefined
  const far = new Promise<Channel>((resolve) => {
    resolveFar = resolve
  })
  await server.listen(service, (channel) => resolveFar(channel))
  const near = await client.connect(server.site, service)
  return { near, far: await far }
}

/** A pair for the conformance suite: both ports on one manual clock, a 16-frame window, credit visible. */
async function conformancePair(security: (site: string) => Security): Promise<Pair> {
  const clock = new ManualClock()
  const ports = await pair(security, { clock, window: { frames: 16 } })
  return { ...ports, clock, window: 16, inFlight: (channel) => (channel as TcpChannel).backlog.unackedFrames }
}

describe('tcp network: conformance over loopback (plaintext, through fault proxies)', () => {
  const suite = networkConformance({ create: () => conformancePair(plaintext), dispose })
  for (const c of suite) it(c.name, c.run)
})

describe('tcp network: conformance over loopback with mutual TLS', async () => {
  const certs = await siteCertificates(['east', 'west'])
  const suite = networkConformance({
    create: () => conformancePair((site) => ({ tls: certs.material(site) })),
    dispose,
  })
  for (const c of suite) it(c.name, c.run)
})

/** A frame that says which frame it is: a byte pattern of its index, with index and size written in. */
function numbered(index: number, size: number): Buffer {
  const frame = Buffer.alloc(size, (index * 131 + 17) & 0xff)
  if (size >= 8) {
    frame.writeUInt32BE(index, 0)
    frame.writeUInt32BE(size, size - 4)
  }
  return frame
}

/** Waits, turn by turn of the event loop, until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1))
}

function track(promise: Promise<unknown>): { settled: boolean; error: unknown } {
  const state: { settled: boolean; error: unknown } = { settled: false, error: undefined }
  promise.then(
    () => void (state.settled = true),
    (error: unknown) => {
      state.settled = true
      state.error = error
    },
  )
  return state
}

describe('tcp network: frames, corruption and back-pressure', () => {
  let current: Pair | undefined
  afterEach(async () => {
    if (current !== undefined) await dispose(current)
    current = undefined
  })

  it('1,000 random frames of up to 1 MiB each arrive whole and in order', async () => {
    current = await pair(plaintext)
    const { near, far } = await open(current.b, current.a)
    const sizes = [0, 1024 * 1024, ...fc.sample(fc.integer({ min: 0, max: 1024 * 1024 }), { numRuns: 998, seed: 7 })]
    const sending = (async () => {
      for (const [index, size] of sizes.entries()) await near.send(numbered(index, size))
      await near.close()
    })()
    let index = 0
    for await (const frame of far.frames()) {
      expect(frame.byteLength).toBe(sizes[index])
      expect(Buffer.compare(Buffer.from(frame), numbered(index, sizes[index] ?? 0))).toBe(0)
      index++
    }
    await sending
    expect(index).toBe(1000)
  })

  it('a large frame given back with release lends its memory to a later frame; frames kept are never touched', async () => {
    current = await pair(plaintext)
    const { near, far } = await open(current.b, current.a)
    const sizes = [512 * 1024, 300 * 1024, 512 * 1024, 500 * 1024, 100]
    const sending = (async () => {
      for (const [index, size] of sizes.entries()) await near.send(numbered(index, size))
      await near.close()
    })()
    const frames = far.frames()[Symbol.asyncIterator]()
    const first = (await frames.next()).value as Uint8Array
    expect(Buffer.compare(Buffer.from(first), numbered(0, sizes[0]!))).toBe(0)
    const kept = (await frames.next()).value as Uint8Array
    far.release?.(first)
    far.release?.(first)
    const third = (await frames.next()).value as Uint8Array
    expect(third.buffer, 'the released frame memory was reused').toBe(first.buffer)
    expect(Buffer.compare(Buffer.from(third), numbered(2, sizes[2]!))).toBe(0)
    const fourth = (await frames.next()).value as Uint8Array
    expect(fourth.buffer, 'a second release of the same frame gave nothing back twice').not.toBe(third.buffer)
    expect(Buffer.compare(Buffer.from(fourth), numbered(3, sizes[3]!))).toBe(0)
    expect(Buffer.compare(Buffer.from(kept), numbered(1, sizes[1]!)), 'a frame not released keeps its bytes').toBe(0)
    far.release?.(numbered(9, 100))
    expect(Buffer.compare(Buffer.from((await frames.next()).value as Uint8Array), numbered(4, 100))).toBe(0)
    await sending
  })

  it.each([
    ['payload', 13 + 500],
    ['header length field', 2],
    ['payload checksum', 6],
  ])('a byte damaged on the wire in the %s breaks the channel with E_CORRUPT and the frame is never delivered', async (_, offset) => {
    current = await pair(plaintext)
    const { near, far } = await open(current.b, current.a)
    await near.send(numbered(0, 100))
    const frames = far.frames()[Symbol.asyncIterator]()
    expect(Buffer.compare(Buffer.from((await frames.next()).value as Uint8Array), numbered(0, 100))).toBe(0)
    current.toA.corruptUpAt(current.toA.total.up + offset)
    const sending = track(near.send(numbered(1, 4096)))
    await expect(frames.next()).rejects.toSatisfy((error: unknown) => isDrError(error, 'E_CORRUPT'))
    await expect(frames.next(), 'nothing is delivered after the corruption').rejects.toSatisfy((error: unknown) => isDrError(error, 'E_CORRUPT'))
    await until(() => sending.settled)
    await (near as TcpChannel).finished
    await expect(near.send(numbered(2, 10))).rejects.toSatisfy((error: unknown) => isDrError(error, 'E_UNAVAILABLE'))
    await expect(near.frames()[Symbol.asyncIterator]().next()).rejects.toSatisfy((error: unknown) => isDrError(error, 'E_UNAVAILABLE'))
  })

  it('back-pressure: with a receiver that does not read, sends beyond the window stay pending until it reads', async () => {
    current = await pair(plaintext, { window: { frames: 8, bytes: 1024 * 1024 } })
    const { near, far } = await open(current.b, current.a)
    const farEnd = far as TcpChannel
    const nearEnd = near as TcpChannel
    const sends = Array.from({ length: 40 }, (_, index) => track(near.send(numbered(index, 64 * 1024))))
    await until(() => farEnd.backlog.inboxFrames === 8)
    await until(() => sends.filter((s) => s.settled).length === 8)
    // Let the sockets run for a while: nothing more moves while the receiver does not read.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(sends.filter((s) => s.settled).length).toBe(8)
    expect(nearEnd.backlog.unackedFrames).toBe(8)
    expect(farEnd.backlog.inboxFrames).toBe(8)
    const frames = far.frames()[Symbol.asyncIterator]()
    expect(Buffer.compare(Buffer.from((await frames.next()).value as Uint8Array), numbered(0, 64 * 1024))).toBe(0)
    await until(() => sends.filter((s) => s.settled).length === 9)
    for (let index = 1; index < 40; index++) {
      expect(Buffer.compare(Buffer.from((await frames.next()).value as Uint8Array), numbered(index, 64 * 1024))).toBe(0)
    }
    await until(() => sends.every((s) => s.settled))
    expect(sends.every((s) => s.error === undefined)).toBe(true)
  })

  it('the byte window bounds the frames in flight as well as the frame window', async () => {
    current = await pair(plaintext, { window: { frames: 64, bytes: 256 * 1024 } })
    const { near, far } = await open(current.b, current.a)
    const sends = Array.from({ length: 10 }, (_, index) => track(near.send(numbered(index, 100 * 1024))))
    await until(() => (far as TcpChannel).backlog.inboxFrames === 2)
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(sends.filter((s) => s.settled).length).toBe(2)
    const frames = far.frames()[Symbol.asyncIterator]()
    for (let index = 0; index < 10; index++) expect((await frames.next()).value?.byteLength).toBe(100 * 1024)
    await until(() => sends.every((s) => s.settled))
  })

  it('a frame larger than the byte window goes through an empty window', async () => {
    current = await pair(plaintext, { window: { frames: 4, bytes: 64 * 1024 } })
    const { near, far } = await open(current.b, current.a)
    const big = randomBytes(3 * 1024 * 1024)
    const sending = near.send(big)
    const got = (await far.frames()[Symbol.asyncIterator]().next()).value as Uint8Array
    await sending
    expect(Buffer.compare(Buffer.from(got), big)).toBe(0)
  })
})

describe('tcp network: port behaviour', () => {
  it('exposes the namespace server and identity registry it is given, and refuses with E_PRECONDITION without them', async () => {
    const namespaceServer = new MemoryNamespaceServer()
    const identity = new MemoryIdentityRegistry()
    const given = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true, namespaceServer, identity })
    const bare = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true })
    try {
      expect(given.namespaceServer).toBe(namespaceServer)
      expect(given.identity).toBe(identity)
      expect(given.kind).toBe('tcp')
      expect(() => bare.namespaceServer).toThrow(expect.objectContaining({ code: 'E_PRECONDITION', message: expect.stringMatching(/namespace server/) }))
      expect(() => bare.identity).toThrow(expect.objectContaining({ code: 'E_PRECONDITION', message: expect.stringMatching(/identity registry/) }))
    } finally {
      await Promise.all([given.close(), bare.close()])
    }
  })

  it('after close every call but close rejects with E_CLOSED; close can be repeated', async () => {
    const port = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: { west: { host: '127.0.0.1', port: 1 } }, plaintext: true })
    await port.address()
    await port.close()
    await port.close()
    const closed = (error: unknown): boolean => isDrError(error, 'E_CLOSED')
    await expect(port.listen('svc', () => undefined)).rejects.toSatisfy(closed)
    await expect(port.connect('west', 'svc')).rejects.toSatisfy(closed)
    await expect(port.probe('west')).rejects.toSatisfy(closed)
    await expect(port.address()).rejects.toSatisfy(closed)
    expect(() => port.setPeer('west', { host: '127.0.0.1', port: 2 })).toThrow(expect.objectContaining({ code: 'E_CLOSED' }))
  })

  it('connecting to a site with no known address, or where nothing accepts connections, rejects with E_UNAVAILABLE; probes say unreachable', async () => {
    const spare = net.createServer()
    await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve))
    const deadPort = (spare.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => spare.close(() => resolve()))
    const port = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: { west: { host: '127.0.0.1', port: deadPort } }, plaintext: true })
    try {
      const unavailable = (error: unknown): boolean => isDrError(error, 'E_UNAVAILABLE')
      await expect(port.connect('west', 'svc')).rejects.toSatisfy(unavailable)
      await expect(port.connect('north', 'svc')).rejects.toSatisfy(unavailable)
      expect(await port.probe('west', 1000)).toEqual({ site: 'west', reachable: false })
      expect(await port.probe('north')).toEqual({ site: 'north', reachable: false })
    } finally {
      await port.close()
    }
  })

  it('a connection that reaches another site than the one asked for is refused with E_UNAVAILABLE', async () => {
    const east = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
    const west = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true })
    try {
      await east.listen('svc', () => undefined)
      west.setPeer('north', await east.address())
      await expect(west.connect('north', 'svc')).rejects.toSatisfy(
        (error: unknown) => isDrError(error, 'E_UNAVAILABLE') && error.details['refusal'] === 'wrong-site',
      )
    } finally {
      await Promise.all([east.close(), west.close()])
    }
  })

  it('garbage sent to a port is reported as a protocol violation and opens nothing', async () => {
    const east = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
    try {
      const rejected: string[] = []
      east.onPeerRejected((rejection) => rejected.push(rejection.reason))
      let channels = 0
      await east.listen('svc', () => channels++)
      const socket = net.connect(await east.address())
      socket.on('error', () => undefined)
      socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: east\r\n\r\n'))
      await new Promise((resolve) => socket.on('close', resolve))
      expect(rejected[0]).toMatch(/protocol violation/)
      expect(channels).toBe(0)
    } finally {
      await east.close()
    }
  })

  it('a handshake frame that is well framed but not a hello is refused', async () => {
    const east = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
    try {
      const rejected: string[] = []
      east.onPeerRejected((rejection) => rejected.push(rejection.reason))
      const socket = net.connect(await east.address())
      socket.on('error', () => undefined)
      socket.write(encodeFrame(FrameType.data, Buffer.from('hello?')))
      await new Promise((resolve) => socket.on('close', resolve))
      expect(rejected[0]).toMatch(/not hello/)
    } finally {
      await east.close()
    }
  })

  it('rejects bad options with E_INVALID_INPUT naming the field', () => {
    expect(() => tcpNetwork({ site: 'east', listen: { port: 70000 }, peers: {}, plaintext: true })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/listen\.port/) }),
    )
    expect(() => tcpNetwork({ site: 'bad site', listen: { port: 0 }, peers: {}, plaintext: true })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/site/) }),
    )
    expect(() => tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true, window: { frames: 0 } })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/window\.frames/) }),
    )
  })

  it('onPeerRejected refuses a listener that is not a function; a listener added after it hears the next refusal', async () => {
    const east = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
    try {
      expect(() => east.onPeerRejected('log it' as never)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/listener/) }))
      const heard: string[] = []
      const stop = east.onPeerRejected((rejection) => heard.push(rejection.reason))
      const socket = net.connect(await east.address())
      socket.on('error', () => undefined)
      socket.end(Buffer.from('not a frame at all, just bytes'))
      await until(() => heard.length === 1)
      stop()
    } finally {
      await east.close()
    }
  })

  it('setBandwidthLimit refuses a limit that is not a positive number', async () => {
    const current = await pair(plaintext)
    try {
      const { near } = await open(current.b, current.a)
      expect(() => near.setBandwidthLimit(0)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
      expect(() => near.setBandwidthLimit(Number.NaN)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    } finally {
      await dispose(current)
    }
  })
})

describe('tcp framing', () => {
  it('the decoder gives the same frames however the stream is cut into pieces', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }), (payloads, cuts) => {
        const stream = Buffer.concat(payloads.map((payload) => encodeFrame(FrameType.data, payload)))
        const decoder = new FrameDecoder()
        const out: Buffer[] = []
        let at = 0
        for (let i = 0; at < stream.length; i++) {
          const step = cuts[i % cuts.length] ?? 1
          for (const frame of decoder.push(stream.subarray(at, at + step))) out.push(frame.payload)
          at += step
        }
        return decoder.failure === undefined && out.length === payloads.length && out.every((frame, i) => Buffer.compare(frame, Buffer.from(payloads[i] ?? [])) === 0)
      }),
    )
  })

  it('any single flipped bit in a frame is detected, and no frame after it is returned', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (payload, where, bit) => {
        const stream = Buffer.concat([encodeFrame(FrameType.data, payload), encodeFrame(FrameType.data, payload)])
        const at = where % (stream.length / 2)
        stream[at] = (stream[at] ?? 0) ^ (1 << bit)
        const decoder = new FrameDecoder()
        const frames = decoder.push(stream)
        return frames.length === 0 && decoder.failure?.code === 'E_CORRUPT'
      }),
    )
  })

  it('unchecked frames (TLS connections, whose records TLS authenticates) carry a zero payload checksum and are not verified; the header checksum still is', () => {
    const payload = Buffer.from('over tls')
    const frame = encodeFrame(FrameType.data, payload, false)
    expect(frame.readUInt32BE(5)).toBe(0)
    expect(new FrameDecoder(1024, false).push(frame)).toEqual([{ type: FrameType.data, payload }])
    const checking = new FrameDecoder(1024)
    expect(checking.push(frame)).toEqual([])
    expect(checking.failure?.code).toBe('E_CORRUPT')
    const damagedHeader = Buffer.from(frame)
    damagedHeader[2] = (damagedHeader[2] ?? 0) ^ 1
    const unchecked = new FrameDecoder(1024, false)
    expect(unchecked.push(damagedHeader)).toEqual([])
    expect(unchecked.failure?.code).toBe('E_CORRUPT')
  })

  it('a header announcing more than the frame limit is corruption, not an allocation', () => {
    const decoder = new FrameDecoder(1024)
    expect(decoder.push(encodeFrame(FrameType.data, new Uint8Array(2048)))).toEqual([])
    expect(decoder.failure?.code).toBe('E_CORRUPT')
  })
})

describe('tcp network: frame size limit', () => {
  it('a frame over the smaller of the two ends’ limits is refused with E_INVALID_INPUT and the channel carries on', async () => {
    const current = await pair(plaintext)
    const small = tcpNetwork({ site: 'north', listen: { port: 0 }, peers: {}, plaintext: true, maxFrameBytes: 64 * 1024 })
    try {
      current.b.setPeer('north', await small.address())
      const { near, far } = await open(current.b, small)
      await expect(near.send(new Uint8Array(64 * 1024 + 1))).rejects.toSatisfy((error: unknown) => isDrError(error, 'E_INVALID_INPUT'))
      await near.send(new Uint8Array(64 * 1024))
      expect((await far.frames()[Symbol.asyncIterator]().next()).value?.byteLength).toBe(64 * 1024)
    } finally {
      await small.close()
      await dispose(current)
    }
  })
})
