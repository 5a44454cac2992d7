import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../src/kernel/clock.js'
import type { Channel, NamespaceDocument, NetworkPort } from '../../src/ports/network.js'
import { MemoryIdentityRegistry, MemoryNamespaceServer, MemoryNetworkFabric } from '../../src/adapters/memory/network.js'
import { networkConformance } from '../../src/testkit/network-conformance.js'

const token = { scope: 'test', value: 1 }

/** Listens for `service` on `server` and connects from `client`; returns both ends. */
async function connect(client: NetworkPort, server: NetworkPort, service = 'svc'): Promise<{ near: Channel; far: Channel }> {
  const accepted: Channel[] = []
  await server.listen(service, (channel) => accepted.push(channel))
  const near = await client.connect(server.site, service)
  const far = accepted[0]
  if (far === undefined) throw new Error('the listener was not called')
  return { near, far }
}

/** Tracks whether a promise settled, without leaving a rejection unhandled. */
function track(promise: Promise<unknown>): { settled: boolean; error: unknown } {
  const state: { settled: boolean; error: unknown } = { settled: false, error: undefined }
  promise.then(
    () => {
      state.settled = true
    },
    (error: unknown) => {
      state.settled = true
      state.error = error
    },
  )
  return state
}

describe('memory network: conformance', () => {
  const suite = networkConformance({
    async create() {
      // A manual clock and the fabric's declared window let the back-pressure and bandwidth cases check exactly.
      const clock = new ManualClock()
      const fabric = new MemoryNetworkFabric({ clock })
      return {
        a: fabric.port('east'),
        b: fabric.port('west'),
        partition: async () => fabric.partition('east', 'west'),
        heal: async () => fabric.heal('east', 'west'),
        clock,
        window: 64,
      }
    },
    async dispose(target) {
      await target.a.close()
      await target.b.close()
    },
  })
  for (const c of suite) it(c.name, c.run)
})

describe('memory network: partitions', () => {
  it('a partition rejects sends still waiting for window room with E_UNAVAILABLE', async () => {
    const fabric = new MemoryNetworkFabric({ window: { frames: 2 } })
    const { near } = await connect(fabric.port('west'), fabric.port('east'))
    await near.send(new Uint8Array(1))
    await near.send(new Uint8Array(1))
    const waiting = near.send(new Uint8Array(1))
    fabric.partition('west', 'east')
    await expect(waiting).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
  })

  it('isolate cuts a site off from every other site; heal joins one pair again, healAll every pair', async () => {
    const fabric = new MemoryNetworkFabric()
    const [east, west, north] = [fabric.port('east'), fabric.port('west'), fabric.port('north')]
    const eastNorth = await connect(north, east, 'en')
    const westNorth = await connect(north, west, 'wn')
    fabric.isolate('east')
    const reachable = async (from: NetworkPort, to: NetworkPort) => (await from.probe(to.site)).reachable
    expect([await reachable(west, east), await reachable(north, east), await reachable(west, north)]).toEqual([false, false, true])
    expect(await reachable(east, east)).toBe(true)
    await expect(eastNorth.near.send(new Uint8Array(1))).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    await westNorth.near.send(new Uint8Array(1))
    await expect(north.connect('east', 'en')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    fabric.heal('west', 'east')
    expect([await reachable(west, east), await reachable(north, east)]).toEqual([true, false])
    fabric.healAll()
    expect(await reachable(north, east)).toBe(true)
    const again = await north.connect('east', 'en')
    await again.send(new Uint8Array([7]))
  })

  it('connects to a site without a port, or whose port closed, fail with E_UNAVAILABLE and probe it unreachable', async () => {
    const fabric = new MemoryNetworkFabric()
    const east = fabric.port('east')
    await expect(east.connect('nowhere', 'svc')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    const west = fabric.port('west')
    await west.listen('svc', () => undefined)
    await west.close()
    await expect(east.connect('west', 'svc')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
    expect(await east.probe('west')).toEqual({ site: 'west', reachable: false })
  })
})

describe('memory network: time, windows and copies', () => {
  it('with latency on a ManualClock, connects, frames and probes take their time', async () => {
    const clock = new ManualClock(0)
    const fabric = new MemoryNetworkFabric({ clock, latencyMs: 10 })
    const [east, west] = [fabric.port('east'), fabric.port('west')]
    const accepted: Channel[] = []
    await east.listen('svc', (channel) => accepted.push(channel))
    const connecting = west.connect('east', 'svc')
    const connected = track(connecting)
    await clock.advance(19)
    expect(connected.settled).toBe(false)
    await clock.advance(1)
    const near = await connecting
    await near.send(new Uint8Array([1, 2, 3]))
    const reading = accepted[0]?.frames()[Symbol.asyncIterator]().next()
    const read = track(reading ?? Promise.reject(new Error('no channel')))
    await clock.advance(9)
    expect(read.settled).toBe(false)
    await clock.advance(1)
    expect((await reading)?.value).toEqual(new Uint8Array([1, 2, 3]))
    const probing = west.probe('east')
    await clock.advance(20)
    expect(await probing).toEqual({ site: 'east', reachable: true, rttMs: 20 })
    const impatient = west.probe('east', 5)
    await clock.advance(5)
    expect(await impatient).toEqual({ site: 'east', reachable: false })
  })

  it('with a bandwidth limit on a ManualClock, N bytes take N / limit seconds; removing the limit releases waiting sends', async () => {
    const clock = new ManualClock(0)
    const fabric = new MemoryNetworkFabric({ clock })
    const { near, far } = await connect(fabric.port('west'), fabric.port('east'))
    near.setBandwidthLimit(1000)
    const sends = Array.from({ length: 10 }, (_, i) => track(near.send(new Uint8Array(500).fill(i))))
    const received: number[] = []
    const reading = (async () => {
      for await (const frame of far.frames()) received.push(frame[0] ?? -1)
    })()
    await clock.advance(4999)
    expect(sends.filter((s) => s.settled).length).toBe(9)
    await clock.advance(1)
    expect(sends.every((s) => s.settled && s.error === undefined)).toBe(true)
    const more = Array.from({ length: 3 }, () => track(near.send(new Uint8Array(2000))))
    await clock.advance(1)
    expect(more.some((s) => s.settled)).toBe(false)
    near.setBandwidthLimit(undefined)
    await clock.advance(0)
    expect(more.every((s) => s.settled && s.error === undefined)).toBe(true)
    await near.close()
    await reading
    expect(received.slice(0, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(() => near.setBandwidthLimit(0)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
  })

  it('the default window holds 64 frames or 4 MiB in flight; one frame larger than the window fits an empty window', async () => {
    const fabric = new MemoryNetworkFabric()
    const { near, far } = await connect(fabric.port('west'), fabric.port('east'))
    const frames = far.frames()[Symbol.asyncIterator]()
    for (let i = 0; i < 64; i++) await near.send(new Uint8Array(1))
    const sixtyFifth = track(near.send(new Uint8Array(1)))
    await new Promise((resolve) => setImmediate(resolve))
    expect(sixtyFifth.settled).toBe(false)
    for (let i = 0; i < 65; i++) await frames.next()
    expect(sixtyFifth.settled).toBe(true)
    for (let i = 0; i < 4; i++) await near.send(new Uint8Array(1024 * 1024))
    const fifth = track(near.send(new Uint8Array(1)))
    await new Promise((resolve) => setImmediate(resolve))
    expect(fifth.settled).toBe(false)
    for (let i = 0; i < 5; i++) await frames.next()
    await near.send(new Uint8Array(5 * 1024 * 1024))
    expect((await frames.next()).value?.byteLength).toBe(5 * 1024 * 1024)
  })

  it('copies every frame: changing a buffer after send changes nothing that arrives', async () => {
    const fabric = new MemoryNetworkFabric()
    const { near, far } = await connect(fabric.port('west'), fabric.port('east'))
    const buffer = new Uint8Array([1, 2, 3])
    await near.send(buffer)
    buffer.fill(9)
    expect((await far.frames()[Symbol.asyncIterator]().next()).value).toEqual(new Uint8Array([1, 2, 3]))
  })
})

describe('memory network: ports and listeners', () => {
  it('a closed port rejects later calls with E_CLOSED; the fabric gives the restarted site a fresh port', async () => {
    const fabric = new MemoryNetworkFabric()
    const east = fabric.port('east')
    expect(fabric.port('east')).toBe(east)
    await east.close()
    await east.close()
    await expect(east.listen('svc', () => undefined)).rejects.toMatchObject({ code: 'E_CLOSED' })
    await expect(east.connect('west', 'svc')).rejects.toMatchObject({ code: 'E_CLOSED' })
    await expect(east.probe('west')).rejects.toMatchObject({ code: 'E_CLOSED' })
    const restarted = fabric.port('east')
    expect(restarted).not.toBe(east)
    expect(restarted.kind).toBe('memory')
    await restarted.listen('svc', () => undefined)
  })

  it('a listener that throws refuses the channel: connect rejects with E_UNAVAILABLE', async () => {
    const fabric = new MemoryNetworkFabric()
    await fabric.port('east').listen('svc', () => {
      throw new Error('no thanks')
    })
    await expect(fabric.port('west').connect('east', 'svc')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' })
  })

  it('refuses bad options and site names with E_INVALID_INPUT', () => {
    expect(() => new MemoryNetworkFabric({ latencyMs: -1 })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect(() => new MemoryNetworkFabric({ window: { bytes: 0 } })).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
    expect(() => new MemoryNetworkFabric().port('no spaces')).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }))
  })
})

describe('memory network: namespace server and identity registry', () => {
  const document = (version: number): NamespaceDocument => ({
    namespace: 'corp',
    version,
    links: [{ path: 'data\\projects/', targets: [{ site: 'east', share: 'projects', state: 'active' }] }],
  })

  it('every port of a fabric shares one namespace server and one identity registry', async () => {
    const fabric = new MemoryNetworkFabric()
    const [east, west] = [fabric.port('east'), fabric.port('west')]
    expect(east.namespaceServer).toBe(fabric.namespaceServer)
    expect(west.identity).toBe(fabric.identity)
    await east.namespaceServer.writeNamespace(document(1), token)
    expect((await west.namespaceServer.readNamespace('corp')).version).toBe(1)
    await west.identity.claimAddress('10.0.0.1', 'west', token)
    expect(await east.identity.addressOwner('10.0.0.1')).toBe('west')
  })

  it('stores links with normalised paths and copies documents both ways', async () => {
    const server = new MemoryNamespaceServer()
    const target: { site: string; share: string; state: 'active' | 'standby' } = { site: 'east', share: 'projects', state: 'active' }
    await server.writeNamespace({ namespace: 'corp', version: 1, links: [{ path: 'data\\projects/', targets: [target] }] }, token)
    target.state = 'standby'
    const read = await server.readNamespace('corp')
    expect(read.links[0]).toEqual({ path: '/data/projects', targets: [{ site: 'east', share: 'projects', state: 'active' }] })
    ;(read.links as unknown[]).length = 0
    expect((await server.readNamespace('corp')).links.length).toBe(1)
    expect(await server.resolve('corp', '\\data\\projects\\q1')).toMatchObject({ link: '/data/projects', remainder: '/q1' })
  })

  it('a root link covers every path', async () => {
    const server = new MemoryNamespaceServer()
    await server.writeNamespace({ namespace: 'corp', version: 1, links: [{ path: '/', targets: [{ site: 'east', share: 'root', state: 'active' }] }] }, token)
    expect(await server.resolve('corp', '/a/b')).toMatchObject({ link: '/', remainder: '/a/b' })
    expect(await server.resolve('corp', '/')).toMatchObject({ link: '/', remainder: '' })
  })

  it('refuses malformed documents and duplicate link paths with E_INVALID_INPUT', async () => {
    const server = new MemoryNamespaceServer()
    const twice = { ...document(1), links: [...document(1).links, { path: '/data/projects', targets: [{ site: 'west', share: 's', state: 'active' as const }] }] }
    await expect(server.writeNamespace(twice, token)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    const badState = { namespace: 'corp', version: 1, links: [{ path: '/x', targets: [{ site: 'east', share: 's', state: 'primary' }] }] }
    await expect(server.writeNamespace(badState as unknown as NamespaceDocument, token)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(server.readNamespace('')).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    expect((await server.readNamespace('corp')).version).toBe(0)
  })

  it('the identity registry works on its own and refuses empty addresses with E_INVALID_INPUT', async () => {
    const identity = new MemoryIdentityRegistry()
    await identity.claimAddress('fe80::1', 'east', token)
    expect(await identity.addressOwner('fe80::1')).toBe('east')
    await expect(identity.claimAddress('', 'east', token)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
    await expect(identity.setNameRecord('db', '', token)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' })
  })
})
